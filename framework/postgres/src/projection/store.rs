//! [`PostgresProjectionStore`]: construction, migrations, and the core's
//! projection store traits.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use composable_rust_core::projection::{
    DeadLetter, Delivery, ProjectionCheckpoint, ProjectionRequest, ProjectionStore,
    QueryableProjectionStore,
};
use composable_rust_core::{Position, ProjectionError, StoredEvent};
use sqlx::migrate::Migrator;
use sqlx::postgres::PgPoolOptions;
use sqlx::{Executor, PgPool};
use uuid::Uuid;

use super::bulk::BulkLoad;
use super::documents::{Document, DocumentQuery};
use super::sql::{Statements, prefix_successor};
use super::tx::{PostgresProjectionTx, valid_key};
use crate::error::PostgresError;
use crate::schema::SchemaName;

/// The migrations in `migrations/projections/`, embedded in the binary.
/// Their versions (10001 to 19999) never meet the event store's (1 to
/// 9999), and both migrators ignore versions they do not know, so the two
/// stores can share a schema and its `_sqlx_migrations` table.
fn migrator() -> Migrator {
    let mut migrator = sqlx::migrate!("./migrations/projections");
    migrator.set_ignore_missing(true);
    migrator
}

/// Read models, checkpoints and dead letters in PostgreSQL.
///
/// Its tables (`projection_data`, `projection_checkpoints`,
/// `projection_dead_letters`) live in one schema,
/// [`DEFAULT_SCHEMA`](crate::DEFAULT_SCHEMA) (the event store's default)
/// unless you choose another with [`with_schema`](Self::with_schema).
/// Create them with [`migrate`](Self::migrate) before first use. The pool
/// may point at the event store's database or at a separate read database.
///
/// **Delivery: exactly once.** A [`PostgresProjectionTx`] is one
/// transaction: a batch's read-model writes, its checkpoint and its dead
/// letters commit together, so after a crash the manager resumes exactly
/// after the last committed event. Run one
/// [`ProjectionManager`](composable_rust_core::ProjectionManager) per
/// projection name; if a second one (say, in another process) commits a
/// batch first, the checkpoint only moves forwards, so the other's
/// overlapping batch fails with `CR-E0113` and rolls back instead of
/// applying events twice.
///
/// # Pool settings
///
/// [`connect`](Self::connect) uses sqlx's defaults (10 connections). To
/// choose, build the pool yourself and pass it to [`new`](Self::new) or
/// [`with_schema`](Self::with_schema):
///
/// ```no_run
/// use std::time::Duration;
/// use composable_rust_postgres::PostgresProjectionStore;
/// use sqlx::postgres::PgPoolOptions;
///
/// # async fn example() -> Result<(), Box<dyn std::error::Error>> {
/// let read_db = PgPoolOptions::new()
///     // One connection per running manager (held for a batch), plus
///     // what your queries need at peak.
///     .max_connections(16)
///     // Fail fast when the database is gone; the manager retries.
///     .acquire_timeout(Duration::from_secs(3))
///     .connect("postgres://app@read-db:5432/read_models")
///     .await?;
/// let store = PostgresProjectionStore::new(read_db).with_schema("shop")?;
/// store.migrate().await?;
/// # Ok(())
/// # }
/// ```
///
/// Clones are cheap and share the pool and the statements.
#[derive(Clone)]
pub struct PostgresProjectionStore {
    inner: Arc<Inner>,
}

/// What clones of a store share.
pub(crate) struct Inner {
    pub(crate) pool: PgPool,
    pub(crate) schema: SchemaName,
    pub(crate) sql: Statements,
    /// Set on the store a blue/green rebuild loads a new version through
    /// (see `bulk.rs`): new keys go out with `COPY`.
    pub(crate) bulk: Option<BulkLoad>,
}

impl Inner {
    /// Classifies a sqlx error of `operation` on the store's own tables.
    pub(crate) fn error(&self, error: sqlx::Error, operation: &'static str) -> PostgresError {
        PostgresError::from_sqlx_projection(error, operation, self.schema.as_str(), None)
    }
}

impl PostgresProjectionStore {
    /// A store on `pool`, in the schema [`DEFAULT_SCHEMA`](crate::DEFAULT_SCHEMA).
    pub fn new(pool: PgPool) -> Self {
        Self::build(pool, SchemaName::default_schema())
    }

    /// The same store (same pool) in `schema` instead, which may be the
    /// event store's: `PostgresProjectionStore::new(pool).with_schema("read")?`.
    ///
    /// # Errors
    ///
    /// [`PostgresError::InvalidSchemaName`] (`CR-E0101`) unless `schema`
    /// matches `^[a-z_][a-z0-9_]{0,55}$` and does not start with `pg_`.
    pub fn with_schema(self, schema: &str) -> Result<Self, PostgresError> {
        Ok(Self::build(
            self.inner.pool.clone(),
            SchemaName::new(schema)?,
        ))
    }

    /// Connects a new pool (sqlx's default options) to `url`, which may be
    /// a separate read database, and returns a store in the default
    /// schema. For other pool options or another schema, build the pool
    /// yourself (see [Pool settings](Self#pool-settings)).
    ///
    /// # Errors
    ///
    /// [`PostgresError::Unreachable`] (`CR-E0102`) if the URL is malformed
    /// or the server cannot be reached.
    pub async fn connect(url: &str) -> Result<Self, PostgresError> {
        let pool = PgPool::connect(url)
            .await
            .map_err(|error| PostgresError::Unreachable {
                source: Arc::new(error),
            })?;
        Ok(Self::new(pool))
    }

    fn build(pool: PgPool, schema: SchemaName) -> Self {
        Self {
            inner: Arc::new(Inner {
                sql: Statements::new(&schema),
                pool,
                schema,
                bulk: None,
            }),
        }
    }

    /// A store on `pool` in an already validated `schema`.
    pub(crate) fn from_schema(pool: PgPool, schema: SchemaName) -> Self {
        Self::build(pool, schema)
    }

    /// A store on `pool` in `schema` that bulk-loads (`COPY`) keys it has
    /// not written before: only for a version nobody else writes, while a
    /// blue/green rebuild loads it.
    pub(crate) fn bulk_loading(pool: PgPool, schema: SchemaName) -> Self {
        Self {
            inner: Arc::new(Inner {
                sql: Statements::new(&schema),
                bulk: Some(BulkLoad::new(&schema)),
                pool,
                schema,
            }),
        }
    }

    /// Creates the schema if needed and brings the projection store's
    /// tables up to date with the migrations embedded in this crate
    /// (`migrations/projections/` in its source).
    ///
    /// Call it once at startup; running it again changes nothing. Until it
    /// has run, every operation fails with
    /// [`ProjectionMigrationsNotRun`](PostgresError::ProjectionMigrationsNotRun)
    /// (`CR-E0107`). Like the event store's, it runs on a dedicated
    /// connection (the pool's connect options, plus the store's schema as
    /// the `search_path`; closed afterwards), and records its versions in
    /// that schema's `_sqlx_migrations` table, which it can share with an
    /// event store in the same schema. sqlx holds an advisory lock while
    /// migrating, so concurrent calls are safe.
    ///
    /// # Errors
    ///
    /// [`Unreachable`](PostgresError::Unreachable) (`CR-E0102`) if no
    /// connection can be opened; [`ProjectionQuery`](PostgresError::ProjectionQuery)
    /// (`CR-E0109`) if the schema cannot be created, e.g. because the user
    /// may not; [`ProjectionMigration`](PostgresError::ProjectionMigration)
    /// (`CR-E0108`) if a migration fails.
    pub async fn migrate(&self) -> Result<(), PostgresError> {
        let schema = &self.inner.schema;
        let failed = |error: sqlx::migrate::MigrateError| PostgresError::ProjectionMigration {
            schema: schema.as_str().to_owned(),
            source: Arc::new(error),
        };
        create_schema(&self.inner.pool, schema)
            .await
            .map_err(|error| {
                PostgresError::from_sqlx_projection(
                    error,
                    "create the projection store's schema",
                    schema.as_str(),
                    None,
                )
            })?;
        // A one-connection pool whose connections start with the schema as
        // their search_path (the migrations are unqualified SQL). A pool,
        // not a bare connection: `Migrator::run` on a `&mut PgConnection`
        // makes a future that cannot be spawned (sqlx's "Acquire is not
        // general enough"), and `migrate()` should run anywhere.
        let options = self
            .inner
            .pool
            .connect_options()
            .as_ref()
            .clone()
            .options([("search_path", schema.as_str())]);
        let migrations = PgPoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await
            .map_err(|error| PostgresError::Unreachable {
                source: Arc::new(error),
            })?;
        let result = migrator().run(&migrations).await.map_err(failed);
        migrations.close().await;
        result
    }

    /// The pool the store uses.
    pub fn pool(&self) -> &PgPool {
        &self.inner.pool
    }

    /// The schema the store's tables live in.
    pub fn schema(&self) -> &str {
        self.inner.schema.as_str()
    }

    /// The schema as a quoted SQL identifier (validated: the only text
    /// spliced into SQL).
    pub(super) fn quoted_schema(&self) -> String {
        self.inner.schema.quoted()
    }

    /// Every committed key starting with `prefix` and its value, in key
    /// (byte) order; `%`, `_` and `\` are ordinary characters.
    ///
    /// # Errors
    ///
    /// [`ProjectionError::Backend`] if the query fails.
    pub async fn scan_prefix(
        &self,
        prefix: &str,
    ) -> Result<Vec<(String, Vec<u8>)>, ProjectionError> {
        if !valid_key(prefix) {
            return Ok(Vec::new());
        }
        let sql = &self.inner.sql;
        let query = match prefix_successor(prefix) {
            Some(upper) => sqlx::query_as(&sql.scan_range).bind(prefix).bind(upper),
            None => sqlx::query_as(&sql.scan_from).bind(prefix),
        };
        Ok(query
            .fetch_all(&self.inner.pool)
            .await
            .map_err(|error| self.inner.error(error, "scan keys by prefix"))?)
    }
}

/// `CREATE SCHEMA IF NOT EXISTS`, tolerating a concurrent creator.
async fn create_schema(pool: &PgPool, schema: &SchemaName) -> Result<(), sqlx::Error> {
    let created = pool
        .execute(format!("CREATE SCHEMA IF NOT EXISTS {}", schema.quoted()).as_str())
        .await;
    match created {
        // Two processes creating the same schema at once: one of them gets
        // a unique violation on pg_namespace, and the schema exists.
        Err(error)
            if error
                .as_database_error()
                .is_some_and(|database| database.is_unique_violation()) =>
        {
            Ok(())
        }
        other => other.map(|_| ()),
    }
}

impl fmt::Debug for PostgresProjectionStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresProjectionStore")
            .field("schema", &self.schema())
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl ProjectionStore for PostgresProjectionStore {
    type Tx = PostgresProjectionTx;

    /// Exactly once: a unit of work is one PostgreSQL transaction.
    fn delivery(&self) -> Delivery {
        Delivery::ExactlyOnce
    }

    /// Starts a transaction (on a connection from the pool, held until the
    /// unit of work is committed or dropped); while a version bulk-loads,
    /// on first use instead (see [`PostgresProjectionTx`]).
    async fn begin(&self) -> Result<PostgresProjectionTx, ProjectionError> {
        if self.inner.bulk.is_some() {
            return Ok(PostgresProjectionTx::deferred(Arc::clone(&self.inner)));
        }
        let tx = self
            .inner
            .pool
            .begin()
            .await
            .map_err(|error| self.inner.error(error, "begin a unit of work"))?;
        Ok(PostgresProjectionTx::new(tx, Arc::clone(&self.inner)))
    }

    /// `true` only for a version being bulk-loaded by a blue/green
    /// rebuild: its units of work take turns (see
    /// [`PostgresProjectionTx`]).
    fn overlaps_units_of_work(&self) -> bool {
        self.inner.bulk.is_some()
    }

    /// Sends the writes still buffered in `tx`, then commits.
    ///
    /// While a version bulk-loads, the commit (whose rows go out with
    /// `COPY`) runs as a task of its own and always finishes, even when the
    /// caller stops waiting for it: a `COPY` dropped half-way would leave
    /// its connection unusable (sqlx does not recover it), and a commit
    /// the load no longer waits for only writes to a version that will be
    /// dropped.
    async fn commit(&self, tx: PostgresProjectionTx) -> Result<(), ProjectionError> {
        if self.inner.bulk.is_none() {
            return tx.commit().await;
        }
        match tokio::spawn(tx.commit()).await {
            Ok(committed) => committed,
            // A panic in the commit is the caller's panic, as if inline.
            Err(join) if join.is_panic() => std::panic::resume_unwind(join.into_panic()),
            // The runtime is shutting down: the commit did not finish.
            Err(_) => {
                let cancelled = std::io::Error::new(
                    std::io::ErrorKind::Interrupted,
                    "the commit's task was cancelled: the runtime is shutting down",
                );
                Err(self
                    .inner
                    .error(sqlx::Error::Io(cancelled), "commit a unit of work")
                    .into())
            }
        }
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, ProjectionError> {
        if !valid_key(key) {
            return Ok(None);
        }
        Ok(sqlx::query_scalar(&self.inner.sql.get)
            .bind(key)
            .fetch_optional(&self.inner.pool)
            .await
            .map_err(|error| self.inner.error(error, "read a value"))?)
    }
}

/// A position as the two `bigint`s stored, refusing (never wrapping) a part
/// beyond `i64::MAX`, which no event store produces.
fn position_columns(position: Position) -> Result<(i64, i64), PostgresError> {
    let part = |value: u64| {
        i64::try_from(value).map_err(|_| PostgresError::ProjectionCorruptRow {
            operation: "save a checkpoint",
            reason: format!("position {position} does not fit in a bigint"),
        })
    };
    Ok((part(position.commit)?, part(position.sequence)?))
}

fn unsigned(value: i64, what: &str, operation: &'static str) -> Result<u64, PostgresError> {
    u64::try_from(value).map_err(|_| PostgresError::ProjectionCorruptRow {
        operation,
        reason: format!("negative {what} {value}"),
    })
}

/// Compiles only if `migrate()` can run on a spawned task.
#[cfg(test)]
#[allow(dead_code)]
fn migrate_can_be_spawned(store: PostgresProjectionStore) {
    drop(tokio::spawn(async move { store.migrate().await }));
}

fn dead_letter_key(projection: &str, event_id: Uuid) -> String {
    format!("dead letter {projection}/{event_id}")
}

#[async_trait]
impl ProjectionCheckpoint for PostgresProjectionStore {
    async fn load_position(&self, projection: &str) -> Result<Option<Position>, ProjectionError> {
        const OPERATION: &str = "load a checkpoint";
        let row: Option<(i64, i64)> = sqlx::query_as(&self.inner.sql.load_position)
            .bind(projection)
            .fetch_optional(&self.inner.pool)
            .await
            .map_err(|error| self.inner.error(error, OPERATION))?;
        let Some((commit, sequence)) = row else {
            return Ok(None);
        };
        Ok(Some(Position::new(
            unsigned(commit, "commit position", OPERATION)?,
            unsigned(sequence, "sequence", OPERATION)?,
        )))
    }

    /// Moves the checkpoint in `tx`, forwards only (or back to the start,
    /// for a rebuild); otherwise fails with
    /// [`CheckpointConflict`](PostgresError::CheckpointConflict) (`CR-E0113`).
    async fn save_position(
        &self,
        tx: &mut PostgresProjectionTx,
        projection: &str,
        position: Position,
    ) -> Result<(), ProjectionError> {
        let (commit, sequence) = position_columns(position)?;
        let written: Option<i32> = sqlx::query_scalar(&self.inner.sql.save_position)
            .bind(projection)
            .bind(commit)
            .bind(sequence)
            .fetch_optional(tx.unbuffered().await?)
            .await
            .map_err(|error| self.inner.error(error, "save a checkpoint"))?;
        match written {
            Some(_) => Ok(()),
            None => Err(PostgresError::CheckpointConflict {
                projection: projection.to_owned(),
            }
            .into()),
        }
    }

    async fn record_dead_letter(
        &self,
        tx: &mut PostgresProjectionTx,
        letter: &DeadLetter,
    ) -> Result<(), ProjectionError> {
        let event = serde_json::to_value(&letter.event).map_err(|error| {
            ProjectionError::Serialization {
                key: dead_letter_key(&letter.projection, letter.event.event_id),
                reason: error.to_string(),
            }
        })?;
        sqlx::query(&self.inner.sql.record_dead_letter)
            .bind(&letter.projection)
            .bind(letter.event.event_id)
            .bind(event)
            .bind(&letter.error)
            .bind(i64::from(letter.attempts))
            .bind(letter.failed_at)
            .execute(tx.unbuffered().await?)
            .await
            .map_err(|error| self.inner.error(error, "record a dead letter"))?;
        Ok(())
    }

    async fn remove_dead_letter(
        &self,
        tx: &mut PostgresProjectionTx,
        projection: &str,
        event_id: Uuid,
    ) -> Result<bool, ProjectionError> {
        let removed: Option<i32> = sqlx::query_scalar(&self.inner.sql.remove_dead_letter)
            .bind(projection)
            .bind(event_id)
            .fetch_optional(tx.unbuffered().await?)
            .await
            .map_err(|error| self.inner.error(error, "remove a dead letter"))?;
        Ok(removed.is_some())
    }

    async fn dead_letters(&self, projection: &str) -> Result<Vec<DeadLetter>, ProjectionError> {
        const OPERATION: &str = "list dead letters";
        let rows: Vec<(serde_json::Value, String, i64, DateTime<Utc>)> =
            sqlx::query_as(&self.inner.sql.dead_letters)
                .bind(projection)
                .fetch_all(&self.inner.pool)
                .await
                .map_err(|error| self.inner.error(error, OPERATION))?;
        rows.into_iter()
            .map(|(event, error, attempts, failed_at)| {
                let event: StoredEvent = serde_json::from_value(event).map_err(|serde| {
                    ProjectionError::Serialization {
                        key: format!("dead letter of {projection}"),
                        reason: serde.to_string(),
                    }
                })?;
                let attempts =
                    u32::try_from(attempts).map_err(|_| PostgresError::ProjectionCorruptRow {
                        operation: OPERATION,
                        reason: format!("{attempts} attempts"),
                    })?;
                Ok(DeadLetter {
                    projection: projection.to_owned(),
                    event,
                    error,
                    attempts,
                    failed_at,
                })
            })
            .collect()
    }
    /// One `DELETE ... RETURNING` on the requests table, so two managers
    /// never both take a request.
    async fn take_requests(
        &self,
        projection: &str,
    ) -> Result<Vec<ProjectionRequest>, ProjectionError> {
        Ok(self.take_requests_now(projection).await?)
    }
}

/// Queries of [`DocumentTable`](super::DocumentTable)s, on this store's
/// pool: `store.query(&orders.query().contains(json!({"customer": "c-7"})))`.
#[async_trait]
impl QueryableProjectionStore for PostgresProjectionStore {
    type Query = DocumentQuery;
    type Output = Vec<Document>;

    async fn query(&self, query: &DocumentQuery) -> Result<Vec<Document>, ProjectionError> {
        query.fetch_all_on(&self.inner.pool).await
    }
}
