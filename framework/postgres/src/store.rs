//! [`PostgresEventStore`]: construction, migrations, and the
//! [`EventStore`] implementation, which delegates to the `append`, `read`
//! and `snapshot` modules.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use composable_rust_core::event::DEFAULT_MAX_PAYLOAD_BYTES;
use composable_rust_core::event_store::{
    KnownVersion, ReplayAndDecide, ReplayVisitor, Replayed, StreamAppend,
};
use composable_rust_core::metrics::{BACKEND_POSTGRES, observe_append, observe_read};
use composable_rust_core::trace::{append_to_streams_traced, append_traced};
use composable_rust_core::{
    AppendOutcome, EventStore, EventStoreError, ExpectedVersion, NewEvent, Position, Snapshot,
    StoredEvent, StreamId,
};
use sqlx::migrate::Migrator;
use sqlx::postgres::PgPoolOptions;
use sqlx::{Connection, Executor, PgConnection, PgPool};
use tokio::sync::watch;

use crate::error::PostgresError;
use crate::notify::Notifier;
use crate::schema::SchemaName;
use crate::sql::Statements;

/// The migrations in `migrations/` (not its subfolders), embedded in the
/// binary. Their versions are 1 to 9999; the projection store's
/// (`migrations/projections/`) are 10001 to 19999, so both can share a
/// schema and its `_sqlx_migrations` table: each migrator ignores the
/// versions it does not know (`ignore_missing`).
fn migrator() -> Migrator {
    let mut migrator = sqlx::migrate!("./migrations");
    migrator.set_ignore_missing(true);
    migrator
}

/// An [`EventStore`] in PostgreSQL.
///
/// Its tables (`events`, `snapshots`) live in one schema,
/// [`DEFAULT_SCHEMA`](crate::DEFAULT_SCHEMA) unless you choose another
/// with [`with_schema`](Self::with_schema); several stores can share a
/// database in different schemas. Create the tables with
/// [`migrate`](Self::migrate) before first use.
///
/// Appends accept only events that read back (see
/// [`check_storable`](composable_rust_core::event::check_storable)):
/// payloads and metadata at most 64 levels deep, without NUL characters,
/// and at most [`DEFAULT_MAX_PAYLOAD_BYTES`] (16 MiB) of JSON each unless
/// you choose another limit with
/// [`with_max_payload_bytes`](Self::with_max_payload_bytes).
///
/// Clones are cheap and share the pool, the statements and the
/// notification listener.
#[derive(Clone)]
pub struct PostgresEventStore {
    inner: Arc<Inner>,
    max_payload_bytes: usize,
}

struct Inner {
    pool: PgPool,
    schema: SchemaName,
    sql: Statements,
    notifier: Notifier,
    /// Whether the stored transaction ids were found behind the server's
    /// (checked once, on the first read; see
    /// [`check_transaction_ids`](PostgresEventStore::check_transaction_ids)).
    transaction_ids_checked: AtomicBool,
}

/// How long a pooled connection may sit idle before
/// [`PostgresEventStore::pool_options`] pings it when it is handed out.
pub const PING_AFTER_IDLE: Duration = Duration::from_secs(1);

/// The largest value PostgreSQL's `jsonb` can hold, in bytes (256 MiB - 1):
/// the ceiling of [`PostgresEventStore::with_max_payload_bytes`].
pub const MAX_JSONB_BYTES: usize = (1 << 28) - 1;

impl PostgresEventStore {
    /// A store on `pool`, in the schema [`DEFAULT_SCHEMA`](crate::DEFAULT_SCHEMA).
    pub fn new(pool: PgPool) -> Self {
        Self::build(pool, SchemaName::default_schema())
    }

    /// The same store (same pool and settings) in `schema` instead:
    /// `PostgresEventStore::new(pool).with_schema("orders")?`.
    ///
    /// # Errors
    ///
    /// [`PostgresError::InvalidSchemaName`] (`CR-E0101`) unless `schema`
    /// matches `^[a-z_][a-z0-9_]{0,55}$` and does not start with `pg_`.
    pub fn with_schema(self, schema: &str) -> Result<Self, PostgresError> {
        let max_payload_bytes = self.max_payload_bytes;
        let store = Self::build(self.inner.pool.clone(), SchemaName::new(schema)?);
        Ok(store.with_max_payload_bytes(max_payload_bytes))
    }

    /// The pool options the store recommends: sqlx's defaults, except that
    /// a connection is pinged before it is handed out only when it sat
    /// idle for more than [`PING_AFTER_IDLE`] (sqlx's default pings on
    /// every acquire, one extra round trip per statement: about a third of
    /// a one-event command).
    ///
    /// A connection that broke while in use recently (the server
    /// restarted) fails the statement that uses it next, with a transient
    /// `CR-E0104` error, and sqlx closes it; retry the operation. A
    /// connection that sat idle, the usual victim of a restart or of a
    /// firewall's idle timeout, is still checked first. Add your own
    /// settings on top:
    ///
    /// ```no_run
    /// # async fn example() -> Result<(), sqlx::Error> {
    /// use composable_rust_postgres::PostgresEventStore;
    ///
    /// let pool = PostgresEventStore::pool_options()
    ///     .max_connections(20)
    ///     .connect("postgres://postgres@localhost:5432/postgres")
    ///     .await?;
    /// let store = PostgresEventStore::new(pool);
    /// # Ok(())
    /// # }
    /// ```
    pub fn pool_options() -> PgPoolOptions {
        PgPoolOptions::new()
            .test_before_acquire(false)
            .before_acquire(|connection, meta| {
                Box::pin(async move {
                    if meta.idle_for > PING_AFTER_IDLE {
                        connection.ping().await?;
                    }
                    Ok(true)
                })
            })
    }

    /// Connects a new pool with [`pool_options`](Self::pool_options) to
    /// `url`, e.g. `postgres://postgres@localhost:5432/postgres`, and
    /// returns a store in the default schema. For other pool options or
    /// another schema, build the pool yourself and call [`new`](Self::new),
    /// then [`with_schema`](Self::with_schema).
    ///
    /// # Errors
    ///
    /// [`PostgresError::Unreachable`] (`CR-E0102`) if the URL is malformed
    /// or the server cannot be reached.
    pub async fn connect(url: &str) -> Result<Self, PostgresError> {
        let pool = Self::pool_options().connect(url).await.map_err(|error| {
            PostgresError::Unreachable {
                source: Arc::new(error),
            }
        })?;
        Ok(Self::new(pool))
    }

    fn build(pool: PgPool, schema: SchemaName) -> Self {
        Self {
            inner: Arc::new(Inner {
                sql: Statements::new(&schema),
                notifier: Notifier::new(schema.notify_channel()),
                pool,
                schema,
                transaction_ids_checked: AtomicBool::new(false),
            }),
            max_payload_bytes: DEFAULT_MAX_PAYLOAD_BYTES,
        }
    }

    /// The same store, accepting payloads (and metadata) of up to `bytes`
    /// bytes of JSON text each instead of [`DEFAULT_MAX_PAYLOAD_BYTES`]
    /// (16 MiB). Capped at [`MAX_JSONB_BYTES`], the most `jsonb` holds.
    /// Larger events are refused with `EventStoreError::UnstorablePayload`
    /// (`CR-E0019`) before anything is sent.
    #[must_use]
    pub fn with_max_payload_bytes(mut self, bytes: usize) -> Self {
        self.max_payload_bytes = bytes.min(MAX_JSONB_BYTES);
        self
    }

    /// The largest payload (and metadata) an append accepts, in bytes of
    /// JSON text.
    pub fn max_payload_bytes(&self) -> usize {
        self.max_payload_bytes
    }

    /// Creates the schema if needed and brings its tables up to date with
    /// the migrations embedded in this crate (`migrations/` in its source).
    ///
    /// Call it once at startup, before using the store; running it again is
    /// cheap and changes nothing when the tables are current. Until it has
    /// run, every operation fails with
    /// [`MigrationsNotRun`](PostgresError::MigrationsNotRun) (`CR-E0103`).
    ///
    /// The migrations are plain, unqualified SQL, so they run on a
    /// dedicated connection (opened with the pool's connect options, never
    /// returned to the pool) whose `search_path` is set to the store's
    /// schema, after `CREATE SCHEMA IF NOT EXISTS`. Their history is kept
    /// in that schema's own `_sqlx_migrations` table, so each schema
    /// migrates independently. sqlx holds an advisory lock while
    /// migrating, so concurrent calls are safe.
    ///
    /// Then it checks that the stored events' transaction ids are behind
    /// the server's (see [`check_transaction_ids`](Self::check_transaction_ids)).
    ///
    /// # Errors
    ///
    /// [`Unreachable`](PostgresError::Unreachable) (`CR-E0102`) if no
    /// connection can be opened; [`Migration`](PostgresError::Migration)
    /// (`CR-E0105`) if a migration fails, e.g. because the user may not
    /// create schemas; [`TransactionIdsAhead`](PostgresError::TransactionIdsAhead)
    /// (`CR-E0114`) if the events were copied from another server with
    /// their transaction ids.
    pub async fn migrate(&self) -> Result<(), PostgresError> {
        let schema = &self.inner.schema;
        let mut connection = PgConnection::connect_with(&self.inner.pool.connect_options())
            .await
            .map_err(|error| PostgresError::Unreachable {
                source: Arc::new(error),
            })?;
        let result = run_migrations(&mut connection, schema).await;
        // The connection's search_path was changed: never reuse it.
        if let Err(error) = connection.close().await {
            tracing::debug!(%error, "closing the migration connection failed");
        }
        result?;
        self.check_transaction_ids().await
    }

    /// Checks that every stored event's transaction id (the first part of
    /// its position) lies behind the next transaction id this server will
    /// assign, as it does for every event written on this server.
    ///
    /// Events copied from another server with their transaction ids (a
    /// logical dump and restore) may lie ahead: readers would never
    /// deliver them, since they only return events of transactions older
    /// than the oldest one still running, and new events would sort
    /// before them. [`migrate`](Self::migrate) runs this check, and so
    /// do the store's first [`read_all`](EventStore::read_all) and first
    /// [`append`](EventStore::append) (until it passes once); it costs one
    /// indexed `max()`.
    ///
    /// # Errors
    ///
    /// [`TransactionIdsAhead`](PostgresError::TransactionIdsAhead)
    /// (`CR-E0114`, configuration) when a stored transaction id is at or
    /// beyond the server's next one; the query's own errors otherwise.
    pub async fn check_transaction_ids(&self) -> Result<(), PostgresError> {
        const OPERATION: &str = "compare stored transaction ids with the server's";
        let (stored, next) = sqlx::query_as::<_, (Option<i64>, i64)>(&self.sql().transaction_ids)
            .fetch_one(self.pool())
            .await
            .map_err(|error| self.error(error, OPERATION))?;
        let Some(stored) = stored else {
            return Ok(());
        };
        let stored = crate::rows::unsigned(stored, "transaction_id", OPERATION)?;
        let next = crate::rows::unsigned(next, "the snapshot's xmax", OPERATION)?;
        if stored >= next {
            return Err(PostgresError::TransactionIdsAhead {
                schema: self.schema().to_owned(),
                stored,
                next,
            });
        }
        self.inner
            .transaction_ids_checked
            .store(true, Ordering::Relaxed);
        Ok(())
    }

    /// [`check_transaction_ids`](Self::check_transaction_ids), unless it
    /// already passed for this store (or a clone).
    pub(crate) async fn check_transaction_ids_once(&self) -> Result<(), PostgresError> {
        if self.inner.transaction_ids_checked.load(Ordering::Relaxed) {
            return Ok(());
        }
        self.check_transaction_ids().await
    }

    /// The pool the store uses.
    pub fn pool(&self) -> &PgPool {
        &self.inner.pool
    }

    /// The schema the store's tables live in.
    pub fn schema(&self) -> &str {
        self.inner.schema.as_str()
    }

    /// The LISTEN/NOTIFY channel appends notify: `<schema>_events`.
    pub fn notify_channel(&self) -> &str {
        self.inner.notifier.channel()
    }

    /// The schema as a quoted SQL identifier (validated: the only text
    /// spliced into SQL).
    pub(crate) fn quoted_schema(&self) -> String {
        self.inner.schema.quoted()
    }

    pub(crate) fn sql(&self) -> &Statements {
        &self.inner.sql
    }

    pub(crate) fn notifier(&self) -> &Notifier {
        &self.inner.notifier
    }

    /// Classifies a sqlx error of `operation` as a [`PostgresError`].
    pub(crate) fn error(&self, error: sqlx::Error, operation: &'static str) -> PostgresError {
        PostgresError::from_sqlx(error, operation, self.schema())
    }
}

async fn run_migrations(
    connection: &mut PgConnection,
    schema: &SchemaName,
) -> Result<(), PostgresError> {
    let failed = |error: sqlx::Error| PostgresError::Migration {
        schema: schema.as_str().to_owned(),
        source: Arc::new(error.into()),
    };
    let quoted = schema.quoted();
    if let Err(error) = connection
        .execute(format!("CREATE SCHEMA IF NOT EXISTS {quoted}").as_str())
        .await
    {
        // Two processes creating the same schema at once: one of them gets
        // a unique violation on pg_namespace, and the schema exists.
        let raced = error
            .as_database_error()
            .is_some_and(|database| database.is_unique_violation());
        if !raced {
            return Err(failed(error));
        }
    }
    connection
        .execute(format!("SET search_path TO {quoted}").as_str())
        .await
        .map_err(failed)?;
    migrator()
        .run(connection)
        .await
        .map_err(|error| PostgresError::Migration {
            schema: schema.as_str().to_owned(),
            source: Arc::new(error),
        })
}

impl fmt::Debug for PostgresEventStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresEventStore")
            .field("schema", &self.schema())
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl EventStore for PostgresEventStore {
    async fn append(
        &self,
        stream_id: &StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendOutcome, EventStoreError> {
        // The span and trace context (see `composable_rust_core::trace`).
        append_traced(stream_id, expected, events, |events| {
            let count = events.len();
            observe_append(
                BACKEND_POSTGRES,
                count,
                crate::append::append(self, stream_id, expected, events),
            )
        })
        .await
    }

    /// Inserts right after `version` without reading the stream's version
    /// first; the primary key refuses the row if another writer appended
    /// since (see the crate's `append` module).
    async fn append_after(
        &self,
        stream_id: &StreamId,
        version: KnownVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendOutcome, EventStoreError> {
        append_traced(stream_id, version.expected(), events, |events| {
            let count = events.len();
            observe_append(
                BACKEND_POSTGRES,
                count,
                crate::append::append_after(self, stream_id, version, events),
            )
        })
        .await
    }

    /// The shares' statements in one transaction (see the crate's
    /// `append_streams` module).
    async fn append_to_streams(
        &self,
        appends: Vec<StreamAppend>,
    ) -> Result<Vec<AppendOutcome>, EventStoreError> {
        append_to_streams_traced(appends, |appends| {
            let count = appends.iter().map(|share| share.events.len()).sum();
            observe_append(
                BACKEND_POSTGRES,
                count,
                crate::append_streams::append_to_streams(self, appends),
            )
        })
        .await
    }

    /// A row that does not decode fails the load with
    /// [`EventStoreError::CorruptEvent`]: an aggregate cannot skip one of
    /// its events.
    async fn load_stream(
        &self,
        stream_id: &StreamId,
        from_version: u64,
    ) -> Result<Vec<StoredEvent>, EventStoreError> {
        observe_read(
            BACKEND_POSTGRES,
            "load_stream",
            crate::read::load_stream(self, stream_id, from_version),
        )
        .await
    }

    async fn stream_version(&self, stream_id: &StreamId) -> Result<u64, EventStoreError> {
        Ok(crate::read::stream_version(self, stream_id).await?)
    }

    /// The replay and the append on one connection of the pool (one
    /// acquisition, so one test of the connection when it goes back).
    async fn replay_and_append(
        &self,
        stream_id: &StreamId,
        snapshot_schema: Option<u32>,
        command: &mut (dyn ReplayAndDecide + '_),
    ) -> Result<Option<AppendOutcome>, EventStoreError> {
        self.check_transaction_ids_once().await?;
        let mut connection = self
            .pool()
            .acquire()
            .await
            .map_err(|error| self.error(error, "replay and append"))?;
        // The version of the last event read: the append goes right after
        // it if the command expects it (see `append::append_after_replay`).
        let mut replayed = None;
        observe_read(
            BACKEND_POSTGRES,
            "replay",
            crate::read::replay_with(
                self,
                &mut *connection,
                stream_id,
                snapshot_schema,
                &mut |item| {
                    if let Replayed::Event(event) = &item {
                        replayed = Some(event.stream_version);
                    }
                    command.visit(item)
                },
            ),
        )
        .await?;
        match command.decide() {
            Some((expected, events)) => append_traced(stream_id, expected, events, |events| {
                let count = events.len();
                observe_append(
                    BACKEND_POSTGRES,
                    count,
                    crate::append::append_after_replay(
                        self,
                        &mut connection,
                        stream_id,
                        expected,
                        replayed,
                        events,
                    ),
                )
            })
            .await
            .map(Some),
            None => Ok(None),
        }
    }

    /// One statement: the snapshot and the events after it, only the
    /// columns rebuilding needs (version, type, schema version, payload as
    /// JSON text), handed over borrowed from the rows. A row whose
    /// metadata is corrupt therefore still replays;
    /// [`load_stream`](EventStore::load_stream) reports it.
    async fn replay(
        &self,
        stream_id: &StreamId,
        snapshot_schema: Option<u32>,
        visit: &mut ReplayVisitor<'_>,
    ) -> Result<(), EventStoreError> {
        observe_read(
            BACKEND_POSTGRES,
            "replay",
            crate::read::replay(self, stream_id, snapshot_schema, visit),
        )
        .await
    }

    /// Up to `limit` events after `after`, in global order, never skipping
    /// one that commits later; see the crate documentation ("No skipped
    /// events") for how.
    ///
    /// A stored row that does not decode ends the page; when it is the
    /// first one, this returns [`EventStoreError::CorruptEvent`] with its
    /// position and raw content, and reading after that position goes on.
    /// The store's first call checks the stored transaction ids
    /// ([`check_transaction_ids`](Self::check_transaction_ids)).
    async fn read_all(
        &self,
        after: Position,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, EventStoreError> {
        observe_read(
            BACKEND_POSTGRES,
            "read_all",
            crate::read::read_all(self, after, limit),
        )
        .await
    }

    /// Counts in place; includes committed events still held back behind
    /// an older transaction in flight (the follower will read them).
    async fn count_after(&self, after: Position) -> Result<u64, EventStoreError> {
        Ok(crate::read::count_after(self, after).await?)
    }

    async fn save_snapshot(&self, snapshot: &Snapshot) -> Result<(), EventStoreError> {
        crate::snapshot::save(self, snapshot).await
    }

    async fn load_snapshot(
        &self,
        stream_id: &StreamId,
    ) -> Result<Option<Snapshot>, EventStoreError> {
        Ok(crate::snapshot::load(self, stream_id).await?)
    }

    /// Bumped after this store's appends and, through a LISTEN task that
    /// the first call spawns on the current tokio runtime, after appends by
    /// anyone else; see the crate documentation ("Following new events").
    fn subscribe(&self) -> watch::Receiver<u64> {
        self.inner.notifier.subscribe(&self.inner.pool)
    }
}
