//! [`BlueGreen`]: rebuild a projection into a new version of its read model
//! while the live version keeps serving, then switch readers in one
//! transaction and drop the old version after a grace period.
//!
//! ```text
//! schema orders           views: projection_data, projection_checkpoints, ...
//!   (what readers query)  + blue_green_versions (the registry)
//!        │ switch = one transaction that re-points every view
//!        ▼
//! schema orders_v1 (live)      schema orders_v2 (building, bulk-loaded)
//! ```
//!
//! - Every version is a complete projection store in a schema of its own,
//!   `<base>_v<n>`; the manager that keeps a version up to date writes to it
//!   directly ([`live_store`](BlueGreen::live_store)).
//! - Readers query the base schema ([`reader`](BlueGreen::reader), or any
//!   SQL on `<base>.<table>`): it holds one view per table of the live
//!   version. The switch drops and re-creates those views and updates the
//!   registry in one transaction, so each statement a reader runs sees
//!   either the old version or the new one, never a mix (ADR-027).
//! - [`rebuild`](BlueGreen::rebuild) loads the new version with
//!   [`load_version`] (bulk `COPY` for new keys, see `bulk.rs`), catches up
//!   to the head, and switches only once the new version's checkpoint is at
//!   least the live one's (checked while holding the live checkpoint's row
//!   lock, so readers never step back in time). Any failure drops the new
//!   version and leaves the live one as it was.
//! - [`drop_retired`](BlueGreen::drop_retired) drops versions retired more
//!   than the grace period ago, by the [`Clock`] it was given.

mod error;
mod sql;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use composable_rust_core::Projection;
use composable_rust_core::clock::{Clock, SystemClock};
use composable_rust_core::projection::EventSource;
pub use composable_rust_core::projection::blue_green::Switched;
use composable_rust_core::projection::blue_green::{
    LoadFailure, LoadOptions, RebuildProgress, load_version,
};
use sqlx::{Connection, PgPool};
use tokio::sync::watch;

pub use error::BlueGreenError;

use super::store::PostgresProjectionStore;
use crate::schema::{SchemaName, check_identifier};

/// The longest base name: versions are `<base>_v<n>` within the 56
/// characters a schema name may have.
const MAX_BASE_LEN: usize = 48;
/// Catch-up rounds before giving up on a switch.
const SWITCH_ATTEMPTS: u32 = 20;

/// The state of one version in the registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionState {
    /// Being loaded; nobody reads it.
    Building,
    /// What readers see.
    Live,
    /// Replaced; dropped by [`BlueGreen::drop_retired`] after the grace
    /// period.
    Retired,
}

/// One version of a blue/green read model, from the registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    /// 1, 2, 3...
    pub number: u32,
    /// Its schema, `<base>_v<number>`.
    pub schema: String,
    /// Building, live or retired.
    pub state: VersionState,
    /// When it became live.
    pub switched_at: Option<DateTime<Utc>>,
    /// When it was replaced.
    pub retired_at: Option<DateTime<Utc>>,
}

/// Blue/green versions of one projection's PostgreSQL read model.
///
/// Give each projection rebuilt this way a base name of its own: a version
/// holds exactly what one projection writes.
///
/// # Examples
///
/// ```no_run
/// use std::sync::Arc;
/// use composable_rust_core::ProjectionManager;
/// use composable_rust_postgres::{BlueGreen, PostgresEventStore};
/// # use composable_rust_core::{Projection, ProjectionError, StoredEvent};
/// # use composable_rust_postgres::{PostgresProjectionStore, PostgresProjectionTx};
/// # struct Totals;
/// # #[async_trait::async_trait]
/// # impl Projection for Totals {
/// #     type Store = PostgresProjectionStore;
/// #     fn name(&self) -> &str { "totals" }
/// #     async fn apply(&self, _: &StoredEvent, _: &mut PostgresProjectionTx) -> Result<(), ProjectionError> { Ok(()) }
/// #     async fn reset(&self, _: &mut PostgresProjectionTx) -> Result<(), ProjectionError> { Ok(()) }
/// # }
///
/// # async fn example(pool: sqlx::PgPool, events: PostgresEventStore) -> Result<(), Box<dyn std::error::Error>> {
/// let versions = BlueGreen::new(pool, "totals_read")?;
/// versions.migrate().await?;
/// // Load version n+1 beside the live one, catch up, switch readers.
/// let switched = versions.rebuild(&Totals, Arc::new(events.clone())).await?;
/// println!("readers now see version {}", switched.to);
/// // Keep the new version up to date (stop the old version's manager).
/// let manager = ProjectionManager::new(Totals, Arc::new(versions.live_store().await?), events);
/// let _running = manager.start();
/// // Readers query the base schema's views.
/// let reader = versions.reader();
/// # Ok(())
/// # }
/// ```
pub struct BlueGreen {
    pool: PgPool,
    base: SchemaName,
    clock: Arc<dyn Clock>,
    grace_period: Duration,
    options: LoadOptions,
    progress: watch::Sender<RebuildProgress>,
}

impl std::fmt::Debug for BlueGreen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlueGreen")
            .field("base", &self.base.as_str())
            .field("grace_period", &self.grace_period)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl BlueGreen {
    /// The versions of the read model `base` (its readers' schema) on
    /// `pool`, with a grace period of 10 minutes, the system clock and
    /// [`LoadOptions::default`].
    ///
    /// # Errors
    ///
    /// [`BlueGreenError::InvalidName`] (`CR-E0130`) unless `base` has 1 to
    /// 48 characters from a-z, 0-9 and _, starts with a letter or _, and
    /// not with `pg_`.
    pub fn new(pool: PgPool, base: &str) -> Result<Self, BlueGreenError> {
        let invalid = |reason| BlueGreenError::InvalidName {
            name: base.to_owned(),
            reason,
        };
        check_identifier(base, MAX_BASE_LEN).map_err(invalid)?;
        let base = SchemaName::new(base).map_err(|_| invalid("it is not a schema name"))?;
        Ok(Self {
            pool,
            base,
            clock: Arc::new(SystemClock),
            grace_period: Duration::from_secs(600),
            options: LoadOptions::default(),
            progress: watch::channel(RebuildProgress::default()).0,
        })
    }

    /// How long a replaced version is kept (for readers still on it, and
    /// to switch back by hand) before [`drop_retired`](Self::drop_retired)
    /// drops it.
    #[must_use]
    pub fn with_grace_period(mut self, grace_period: Duration) -> Self {
        self.grace_period = grace_period;
        self
    }

    /// The clock that stamps switches and decides when the grace period
    /// is over (a `TestClock` in tests).
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Batch size and read-ahead of the load.
    #[must_use]
    pub fn with_load_options(mut self, options: LoadOptions) -> Self {
        self.options = options;
        self
    }

    /// The base schema: the readers' schema and the registry's.
    pub fn base(&self) -> &str {
        self.base.as_str()
    }

    /// Progress of the running (or last) load, for a progress bar: events
    /// applied, expected, rate and ETA.
    pub fn progress(&self) -> watch::Receiver<RebuildProgress> {
        self.progress.subscribe()
    }

    /// A store reading the live version through the base schema's views.
    /// For reads only: keep the live version up to date through
    /// [`live_store`](Self::live_store).
    pub fn reader(&self) -> PostgresProjectionStore {
        PostgresProjectionStore::from_schema(self.pool.clone(), self.base.clone())
    }

    /// Creates the base schema and the registry if missing. Run once at
    /// startup; running it again changes nothing.
    ///
    /// # Errors
    ///
    /// [`BlueGreenError::Query`] (`CR-E0132`).
    pub async fn migrate(&self) -> Result<(), BlueGreenError> {
        let mut conn = self.acquire("create the registry").await?;
        for statement in sql::registry_ddl(&self.base) {
            sqlx::query(&statement)
                .execute(&mut *conn)
                .await
                .map_err(|e| self.error(e, "create the registry"))?;
        }
        Ok(())
    }

    /// Every version in the registry, oldest first.
    ///
    /// # Errors
    ///
    /// [`BlueGreenError::Query`] (`CR-E0132`).
    pub async fn versions(&self) -> Result<Vec<Version>, BlueGreenError> {
        sql::versions(&self.pool, &self.base)
            .await
            .map_err(|e| self.error(e, "list versions"))
    }

    /// The live version, if there is one.
    ///
    /// # Errors
    ///
    /// [`BlueGreenError::Query`] (`CR-E0132`).
    pub async fn live(&self) -> Result<Option<Version>, BlueGreenError> {
        Ok(self
            .versions()
            .await?
            .into_iter()
            .find(|version| version.state == VersionState::Live))
    }

    /// A store on the live version's own schema: give it to the manager
    /// that keeps the live version up to date.
    ///
    /// # Errors
    ///
    /// [`BlueGreenError::NoLiveVersion`] (`CR-E0135`) before the first
    /// rebuild; [`BlueGreenError::Query`] (`CR-E0132`).
    pub async fn live_store(&self) -> Result<PostgresProjectionStore, BlueGreenError> {
        let live = self
            .live()
            .await?
            .ok_or_else(|| BlueGreenError::NoLiveVersion {
                base: self.base.as_str().to_owned(),
            })?;
        Ok(PostgresProjectionStore::from_schema(
            self.pool.clone(),
            SchemaName::new(&live.schema)?,
        ))
    }

    /// Loads `projection` into a new version from the first event of
    /// `source`, catches up to the head, and switches readers to it in one
    /// transaction; the replaced version is retired (see
    /// [`drop_retired`](Self::drop_retired)). Meanwhile the live version
    /// keeps serving, and its manager keeps running: stop it after the
    /// switch and start one on [`live_store`](Self::live_store).
    ///
    /// A version left half-built by a killed rebuild is dropped first.
    ///
    /// # Errors
    ///
    /// Each leaves readers on the version they were on, and drops the new
    /// version: [`RebuildFailed`](BlueGreenError::RebuildFailed)
    /// (`CR-E0131`, naming the event that failed),
    /// [`RebuildRunning`](BlueGreenError::RebuildRunning) (`CR-E0133`),
    /// [`CatchUpTimedOut`](BlueGreenError::CatchUpTimedOut) (`CR-E0134`),
    /// [`Query`](BlueGreenError::Query) (`CR-E0132`),
    /// [`UnexpectedName`](BlueGreenError::UnexpectedName) (`CR-E0136`).
    pub async fn rebuild<P>(
        &self,
        projection: &P,
        source: Arc<dyn EventSource>,
    ) -> Result<Switched, BlueGreenError>
    where
        P: Projection<Store = PostgresProjectionStore>,
    {
        // A session advisory lock on a connection of its own, closed (and
        // the lock released) when this returns or its task is aborted.
        let mut lock = self
            .acquire("lock the read model for a rebuild")
            .await?
            .detach();
        let locked = sql::try_lock(&mut lock, &self.base)
            .await
            .map_err(|e| self.error(e, "lock the read model for a rebuild"))?;
        if !locked {
            return Err(BlueGreenError::RebuildRunning {
                base: self.base.as_str().to_owned(),
            });
        }
        self.progress.send_replace(RebuildProgress::default());
        for abandoned in self.versions().await? {
            if abandoned.state == VersionState::Building {
                tracing::warn!(
                    base = self.base(),
                    version = abandoned.number,
                    "dropping a half-built version"
                );
                self.drop_version(&abandoned).await?;
            }
        }
        let (number, schema) = sql::add_version(&self.pool, &self.base, projection.name())
            .await
            .map_err(|e| self.error(e, "register a new version"))?;
        let version = Version {
            number,
            schema: schema.as_str().to_owned(),
            state: VersionState::Building,
            switched_at: None,
            retired_at: None,
        };
        tracing::info!(
            base = self.base(),
            version = number,
            "loading a new version"
        );
        let result = self
            .load_and_switch(projection, source, &version, schema)
            .await;
        if result.is_err() {
            // Best effort: a version that stays behind is dropped by the
            // next rebuild.
            if let Err(error) = self.drop_version(&version).await {
                tracing::warn!(%error, "could not drop the failed version");
            }
        }
        // Unlock before closing: the server may process the close after
        // the next rebuild has already asked for the lock.
        let _ = sql::unlock(&mut lock, &self.base).await;
        let _ = lock.close().await;
        result
    }

    async fn load_and_switch<P>(
        &self,
        projection: &P,
        source: Arc<dyn EventSource>,
        version: &Version,
        schema: SchemaName,
    ) -> Result<Switched, BlueGreenError>
    where
        P: Projection<Store = PostgresProjectionStore>,
    {
        let store = PostgresProjectionStore::bulk_loading(self.pool.clone(), schema.clone());
        store.migrate().await?;
        let label = format!("v{}", version.number);
        let failed = |failure: LoadFailure| BlueGreenError::RebuildFailed {
            projection: projection.name().to_owned(),
            version: version.number,
            event_id: failure.event.map(|(id, _)| id),
            position: failure.event.map(|(_, position)| position),
            source: Box::new(failure.error),
        };
        let mut position = load_version(
            projection,
            &store,
            Arc::clone(&source),
            self.options,
            &label,
            &self.progress,
        )
        .await
        .map_err(failed)?;
        let progress = *self.progress.borrow();
        for _ in 0..SWITCH_ATTEMPTS {
            let now = self.clock.now();
            match sql::switch(
                &self.pool,
                &self.base,
                &schema,
                version.number,
                projection.name(),
                position,
                now,
            )
            .await
            {
                Ok(sql::Switch::Done { from }) => {
                    tracing::info!(base = self.base(), from, to = version.number, %position, "readers switched");
                    return Ok(Switched {
                        from,
                        to: version.number,
                        position,
                        progress,
                    });
                }
                Ok(sql::Switch::Behind) => {
                    // Events arrived since the load's last read: apply them
                    // (a small, ordinary load) and try again.
                    position = load_version(
                        projection,
                        &store,
                        Arc::clone(&source),
                        self.options,
                        &label,
                        &watch::channel(RebuildProgress::default()).0,
                    )
                    .await
                    .map_err(failed)?;
                }
                Err(sql::SwitchError::Sql(e)) => return Err(self.error(e, "switch the views")),
                Err(sql::SwitchError::Name(error)) => return Err(error),
            }
        }
        Err(BlueGreenError::CatchUpTimedOut {
            base: self.base.as_str().to_owned(),
            version: version.number,
            attempts: SWITCH_ATTEMPTS,
        })
    }

    /// Drops every retired version retired at least the grace period ago
    /// (by the clock); returns them.
    ///
    /// # Errors
    ///
    /// [`BlueGreenError::Query`] (`CR-E0132`).
    pub async fn drop_retired(&self) -> Result<Vec<Version>, BlueGreenError> {
        let now = self.clock.now();
        let grace = chrono::Duration::from_std(self.grace_period).unwrap_or(chrono::Duration::MAX);
        let mut dropped = Vec::new();
        for version in self.versions().await? {
            let due = version
                .retired_at
                .is_some_and(|at| at.checked_add_signed(grace).is_none_or(|end| end <= now));
            if version.state == VersionState::Retired && due {
                self.drop_version(&version).await?;
                dropped.push(version);
            }
        }
        Ok(dropped)
    }

    /// Drops a version's schema and its registry row, in one transaction.
    async fn drop_version(&self, version: &Version) -> Result<(), BlueGreenError> {
        let schema = SchemaName::new(&version.schema)?;
        let operation = "drop a version";
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(|e| self.error(e, operation))?;
        sql::drop_version(&mut tx, &self.base, &schema, version.number)
            .await
            .map_err(|e| self.error(e, operation))?;
        tx.commit().await.map_err(|e| self.error(e, operation))
    }

    async fn acquire(
        &self,
        operation: &'static str,
    ) -> Result<sqlx::pool::PoolConnection<sqlx::Postgres>, BlueGreenError> {
        self.pool
            .acquire()
            .await
            .map_err(|e| self.error(e, operation))
    }

    fn error(&self, error: sqlx::Error, operation: &'static str) -> BlueGreenError {
        BlueGreenError::Query {
            base: self.base.as_str().to_owned(),
            operation,
            source: Arc::new(error),
        }
    }
}
