//! [`PartitionLeases`]: the lease tables (`partition_sets`,
//! `partition_leases`, `partition_workers`) and every statement on them:
//! heartbeats, claiming, renewing and releasing leases, and the fencing
//! check a unit of work runs before it commits.
//!
//! Times come from the worker's [`Clock`](composable_rust_core::Clock)
//! and are bound as parameters (never the server's `now()`), so a test
//! expires a lease by advancing a `TestClock`. Clocks of different
//! machines may disagree a little: that only changes *when* a lease is
//! taken over, never whether two workers can both commit (the token
//! decides that, see [`check`](PartitionLeases::check)).

use std::num::NonZeroU32;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use composable_rust_core::projection::manager::Partition;
use sqlx::migrate::Migrator;
use sqlx::postgres::PgPoolOptions;
use sqlx::{Executor, PgConnection, PgPool};

use super::error::PartitionError;
use crate::PostgresProjectionStore;
use crate::schema::SchemaName;

/// The migrations in `src/partition/migrations/`, versions 20001 to 29999
/// (the event store's are 1 to 9999, the projection store's 10001 to
/// 19999); each migrator ignores the others' versions.
fn migrator() -> Migrator {
    let mut migrator = sqlx::migrate!("./src/partition/migrations");
    migrator.set_ignore_missing(true);
    migrator
}

/// A partition held by a worker: the token it must still hold when it
/// commits (fencing).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// The projection (or saga kind) the partition belongs to.
    pub work: String,
    /// The partition.
    pub partition: Partition,
    /// The worker holding it.
    pub owner: String,
    /// Grows by one every time the partition changes hands.
    pub token: i64,
}

/// One row of `partition_leases`, as [`PartitionLeases::leases`] lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseRow {
    /// The partition's index.
    pub partition: u32,
    /// Its owner, if it has one.
    pub owner: Option<String>,
    /// Its fencing token.
    pub token: i64,
    /// When the owner's lease ends unless renewed.
    pub expires_at: DateTime<Utc>,
}

/// The partition lease tables, in the projection store's database and
/// schema (the lease is checked in the read model's transaction).
///
/// Clones share the pool.
#[derive(Clone)]
pub struct PartitionLeases {
    inner: Arc<Inner>,
}

struct Inner {
    pool: PgPool,
    schema: SchemaName,
    sql: Statements,
}

impl std::fmt::Debug for PartitionLeases {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PartitionLeases")
            .field("schema", &self.inner.schema.as_str())
            .finish_non_exhaustive()
    }
}

impl PartitionLeases {
    /// The lease tables next to `store`'s tables: same pool, same schema.
    pub fn new(store: &PostgresProjectionStore) -> Self {
        let schema = SchemaName::new(store.schema()).expect("a projection store's schema is valid");
        Self {
            inner: Arc::new(Inner {
                sql: Statements::new(&schema),
                pool: store.pool().clone(),
                schema,
            }),
        }
    }

    /// Creates the schema if needed and the lease tables (migrations
    /// embedded in this crate, `src/partition/migrations/`). Call it once
    /// at startup; running it again changes nothing; concurrent calls are
    /// safe (sqlx holds an advisory lock while migrating).
    ///
    /// # Errors
    ///
    /// [`PartitionError::Migration`] (`CR-E0125`) if a migration fails,
    /// [`PartitionError::Query`] (`CR-E0124`) if no connection can be
    /// opened or the schema cannot be created.
    pub async fn migrate(&self) -> Result<(), PartitionError> {
        const OPERATION: &str = "migrate the partition lease tables";
        let schema = &self.inner.schema;
        let created = self
            .inner
            .pool
            .execute(format!("CREATE SCHEMA IF NOT EXISTS {}", schema.quoted()).as_str())
            .await;
        match created {
            // Two processes creating the schema at once: one of them gets a
            // unique violation on pg_namespace, and the schema exists.
            Err(error)
                if error
                    .as_database_error()
                    .is_some_and(|database| database.is_unique_violation()) => {}
            other => {
                other.map_err(|error| PartitionError::query(error, OPERATION, schema.as_str()))?;
            }
        }
        // A one-connection pool with the schema as search_path: the
        // migration's SQL is unqualified (as in the projection store).
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
            .map_err(|error| PartitionError::query(error, OPERATION, schema.as_str()))?;
        let result = migrator()
            .run(&migrations)
            .await
            .map_err(|error| PartitionError::Migration {
                schema: schema.as_str().to_owned(),
                source: Arc::new(error),
            });
        migrations.close().await;
        result
    }

    /// The partitions of `work` and who holds them, by index.
    ///
    /// # Errors
    ///
    /// [`PartitionError::Query`] if the query fails.
    pub async fn leases(&self, work: &str) -> Result<Vec<LeaseRow>, PartitionError> {
        let rows: Vec<(i32, Option<String>, i64, DateTime<Utc>)> =
            sqlx::query_as(&self.inner.sql.leases)
                .bind(work)
                .fetch_all(&self.inner.pool)
                .await
                .map_err(|error| self.error(error, "list partition leases"))?;
        Ok(rows
            .into_iter()
            .map(|(partition, owner, token, expires_at)| LeaseRow {
                partition: u32::try_from(partition).unwrap_or_default(),
                owner,
                token,
                expires_at,
            })
            .collect())
    }

    /// Records `work`'s partition count (the first worker's) and creates
    /// its lease rows.
    ///
    /// # Errors
    ///
    /// [`PartitionError::CountChanged`] (`CR-E0122`) if another count was
    /// recorded; [`PartitionError::Query`] if a query fails.
    pub async fn register(&self, work: &str, count: NonZeroU32) -> Result<(), PartitionError> {
        const OPERATION: &str = "record the partition count";
        let configured = i32::try_from(count.get()).unwrap_or(i32::MAX);
        sqlx::query(&self.inner.sql.register)
            .bind(work)
            .bind(configured)
            .execute(&self.inner.pool)
            .await
            .map_err(|error| self.error(error, OPERATION))?;
        let recorded: i32 = sqlx::query_scalar(&self.inner.sql.recorded_count)
            .bind(work)
            .fetch_one(&self.inner.pool)
            .await
            .map_err(|error| self.error(error, OPERATION))?;
        if recorded != configured {
            return Err(PartitionError::CountChanged {
                work: work.to_owned(),
                recorded: u32::try_from(recorded).unwrap_or_default(),
                configured: count.get(),
            });
        }
        sqlx::query(&self.inner.sql.create_leases)
            .bind(work)
            .bind(configured)
            .execute(&self.inner.pool)
            .await
            .map_err(|error| self.error(error, OPERATION))?;
        Ok(())
    }

    /// Records that `worker` is alive at `now`, and returns the live
    /// workers (seen after `since`), sorted.
    ///
    /// # Errors
    ///
    /// [`PartitionError::Query`] if a query fails.
    pub async fn heartbeat(
        &self,
        work: &str,
        worker: &str,
        now: DateTime<Utc>,
        since: DateTime<Utc>,
    ) -> Result<Vec<String>, PartitionError> {
        const OPERATION: &str = "record a worker's heartbeat";
        sqlx::query(&self.inner.sql.heartbeat)
            .bind(work)
            .bind(worker)
            .bind(now)
            .execute(&self.inner.pool)
            .await
            .map_err(|error| self.error(error, OPERATION))?;
        sqlx::query_scalar(&self.inner.sql.live_workers)
            .bind(work)
            .bind(since)
            .fetch_all(&self.inner.pool)
            .await
            .map_err(|error| self.error(error, OPERATION))
    }

    /// Removes `worker` from the live workers (it is stopping), so the
    /// others rebalance at their next heartbeat.
    ///
    /// # Errors
    ///
    /// [`PartitionError::Query`] if the query fails.
    pub async fn leave(&self, work: &str, worker: &str) -> Result<(), PartitionError> {
        sqlx::query(&self.inner.sql.leave)
            .bind(work)
            .bind(worker)
            .execute(&self.inner.pool)
            .await
            .map_err(|error| self.error(error, "remove a stopping worker"))?;
        Ok(())
    }

    /// Extends `held` to `expires_at`; returns the indexes still held
    /// (the others were taken over since). All of `held` must be one
    /// worker's leases of one piece of work.
    ///
    /// # Errors
    ///
    /// [`PartitionError::Query`] if the query fails.
    pub async fn renew(
        &self,
        held: &[Lease],
        expires_at: DateTime<Utc>,
    ) -> Result<Vec<u32>, PartitionError> {
        let Some(first) = held.first() else {
            return Ok(Vec::new());
        };
        let partitions: Vec<i32> = held.iter().map(|lease| index(lease.partition)).collect();
        let tokens: Vec<i64> = held.iter().map(|lease| lease.token).collect();
        let kept: Vec<i32> = sqlx::query_scalar(&self.inner.sql.renew)
            .bind(&first.work)
            .bind(&first.owner)
            .bind(partitions)
            .bind(tokens)
            .bind(expires_at)
            .fetch_all(&self.inner.pool)
            .await
            .map_err(|error| self.error(error, "renew leases"))?;
        Ok(kept
            .into_iter()
            .filter_map(|partition| u32::try_from(partition).ok())
            .collect())
    }

    /// Takes up to `limit` partitions that nobody holds (or whose lease
    /// ended before `now`) for `worker`, until `expires_at`; each gets a
    /// new token. Partitions being committed right now are skipped (`SKIP
    /// LOCKED`), not waited for.
    ///
    /// # Errors
    ///
    /// [`PartitionError::Query`] if the query fails.
    pub async fn claim(
        &self,
        work: &str,
        count: NonZeroU32,
        worker: &str,
        limit: usize,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<Vec<Lease>, PartitionError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let rows: Vec<(i32, i64)> = sqlx::query_as(&self.inner.sql.claim)
            .bind(work)
            .bind(worker)
            .bind(now)
            .bind(expires_at)
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .fetch_all(&self.inner.pool)
            .await
            .map_err(|error| self.error(error, "claim partitions"))?;
        Ok(rows
            .into_iter()
            .filter_map(|(partition, token)| {
                let partition = Partition::new(u32::try_from(partition).ok()?, count)?;
                Some(Lease {
                    work: work.to_owned(),
                    partition,
                    owner: worker.to_owned(),
                    token,
                })
            })
            .collect())
    }

    /// Gives `lease` up (if it is still held with its token): the next
    /// claim takes it at once.
    ///
    /// # Errors
    ///
    /// [`PartitionError::Query`] if the query fails.
    pub async fn release(&self, lease: &Lease) -> Result<(), PartitionError> {
        sqlx::query(&self.inner.sql.release)
            .bind(&lease.work)
            .bind(index(lease.partition))
            .bind(&lease.owner)
            .bind(lease.token)
            .execute(&self.inner.pool)
            .await
            .map_err(|error| self.error(error, "release a lease"))?;
        Ok(())
    }

    /// The fencing check, run on a unit of work's connection just before
    /// it commits: the lease row must still carry `lease`'s owner and
    /// token. It locks the row (`FOR SHARE`) until the commit, so a
    /// takeover (an `UPDATE` of the row) either happened before (the check
    /// fails and the unit of work rolls back) or waits until after the
    /// commit (and the new owner reads the checkpoint it wrote).
    ///
    /// # Errors
    ///
    /// [`PartitionError::LeaseLost`] (`CR-E0121`) if the lease changed
    /// hands; [`PartitionError::Query`] if the query fails.
    pub async fn check(
        &self,
        connection: &mut PgConnection,
        lease: &Lease,
    ) -> Result<(), PartitionError> {
        let held: Option<i32> = sqlx::query_scalar(&self.inner.sql.fence)
            .bind(&lease.work)
            .bind(index(lease.partition))
            .bind(&lease.owner)
            .bind(lease.token)
            .fetch_optional(connection)
            .await
            .map_err(|error| self.error(error, "check a lease before committing"))?;
        match held {
            Some(_) => Ok(()),
            None => Err(PartitionError::LeaseLost {
                work: lease.work.clone(),
                partition: lease.partition,
                worker: lease.owner.clone(),
                token: lease.token,
            }),
        }
    }

    /// Locks every lease row of `work` in `connection`'s transaction
    /// (until it ends: claims skip them meanwhile) and returns them.
    pub(crate) async fn lock_all(
        &self,
        connection: &mut PgConnection,
        work: &str,
    ) -> Result<Vec<LeaseRow>, PartitionError> {
        let rows: Vec<(i32, Option<String>, i64, DateTime<Utc>)> =
            sqlx::query_as(&self.inner.sql.lock_all)
                .bind(work)
                .fetch_all(connection)
                .await
                .map_err(|error| self.error(error, "lock the leases"))?;
        Ok(rows
            .into_iter()
            .map(|(partition, owner, token, expires_at)| LeaseRow {
                partition: u32::try_from(partition).unwrap_or_default(),
                owner,
                token,
                expires_at,
            })
            .collect())
    }

    /// In `connection`'s transaction: forgets `work`'s partition count and
    /// lease rows, and records `count` with fresh rows (a reset may change
    /// the count).
    pub(crate) async fn recreate(
        &self,
        connection: &mut PgConnection,
        work: &str,
        count: NonZeroU32,
    ) -> Result<(), PartitionError> {
        const OPERATION: &str = "record a new partition count";
        let count = i32::try_from(count.get()).unwrap_or(i32::MAX);
        for statement in [&self.inner.sql.forget_leases, &self.inner.sql.forget_count] {
            sqlx::query(statement)
                .bind(work)
                .execute(&mut *connection)
                .await
                .map_err(|error| self.error(error, OPERATION))?;
        }
        for statement in [&self.inner.sql.register, &self.inner.sql.create_leases] {
            sqlx::query(statement)
                .bind(work)
                .bind(count)
                .execute(&mut *connection)
                .await
                .map_err(|error| self.error(error, OPERATION))?;
        }
        Ok(())
    }

    fn error(&self, error: sqlx::Error, operation: &'static str) -> PartitionError {
        PartitionError::query(error, operation, self.inner.schema.as_str())
    }
}

/// A partition's index as the `integer` column holds it (at most 1023).
fn index(partition: Partition) -> i32 {
    i32::try_from(partition.index()).expect("partition counts are at most 1024")
}

/// The statements on the lease tables, built once from the validated,
/// quoted schema name (the only text spliced into SQL; everything else is
/// a bind parameter).
#[derive(Debug)]
struct Statements {
    register: String,
    recorded_count: String,
    create_leases: String,
    heartbeat: String,
    live_workers: String,
    leave: String,
    renew: String,
    claim: String,
    release: String,
    fence: String,
    leases: String,
    lock_all: String,
    forget_leases: String,
    forget_count: String,
}

impl Statements {
    fn new(schema: &SchemaName) -> Self {
        let s = schema.quoted();
        let sets = format!("{s}.partition_sets");
        let leases = format!("{s}.partition_leases");
        let workers = format!("{s}.partition_workers");
        Self {
            register: format!(
                "INSERT INTO {sets} (work, partitions) VALUES ($1, $2) \
                 ON CONFLICT (work) DO NOTHING"
            ),
            recorded_count: format!("SELECT partitions FROM {sets} WHERE work = $1"),
            create_leases: format!(
                "INSERT INTO {leases} (work, partition) \
                 SELECT $1, p FROM generate_series(0, $2 - 1) AS p \
                 ON CONFLICT (work, partition) DO NOTHING"
            ),
            heartbeat: format!(
                "INSERT INTO {workers} (work, worker, seen_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (work, worker) DO UPDATE SET seen_at = EXCLUDED.seen_at"
            ),
            live_workers: format!(
                "SELECT worker FROM {workers} WHERE work = $1 AND seen_at > $2 ORDER BY worker"
            ),
            leave: format!("DELETE FROM {workers} WHERE work = $1 AND worker = $2"),
            renew: format!(
                "UPDATE {leases} AS l SET expires_at = $5 \
                 FROM unnest($3::integer[], $4::bigint[]) AS h(partition, token) \
                 WHERE l.work = $1 AND l.owner = $2 \
                   AND l.partition = h.partition AND l.token = h.token \
                 RETURNING l.partition"
            ),
            claim: format!(
                "WITH free AS ( \
                     SELECT partition FROM {leases} \
                     WHERE work = $1 AND (owner IS NULL OR expires_at <= $3) \
                     ORDER BY partition LIMIT $5 \
                     FOR UPDATE SKIP LOCKED) \
                 UPDATE {leases} AS l SET owner = $2, token = l.token + 1, expires_at = $4 \
                 FROM free WHERE l.work = $1 AND l.partition = free.partition \
                 RETURNING l.partition, l.token"
            ),
            release: format!(
                "UPDATE {leases} SET owner = NULL, expires_at = 'epoch' \
                 WHERE work = $1 AND partition = $2 AND owner = $3 AND token = $4"
            ),
            fence: format!(
                "SELECT 1 FROM {leases} \
                 WHERE work = $1 AND partition = $2 AND owner = $3 AND token = $4 \
                 FOR SHARE"
            ),
            leases: format!(
                "SELECT partition, owner, token, expires_at FROM {leases} \
                 WHERE work = $1 ORDER BY partition"
            ),
            lock_all: format!(
                "SELECT partition, owner, token, expires_at FROM {leases} \
                 WHERE work = $1 ORDER BY partition FOR UPDATE"
            ),
            forget_leases: format!("DELETE FROM {leases} WHERE work = $1"),
            forget_count: format!("DELETE FROM {sets} WHERE work = $1"),
        }
    }
}
