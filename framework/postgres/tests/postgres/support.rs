//! Shared helpers: the database URL, migrated stores in test schemas
//! (`composable_rust_testing::fixtures::TestSchema`) that drop
//! themselves, the gate that keeps tests holding transactions open apart,
//! and a store wrapper for the conformance suite.

use std::ops::Deref;
use std::sync::{Arc, LazyLock};

use async_trait::async_trait;
use composable_rust_core::event_store::{
    KnownVersion, ReplayAndDecide, ReplayVisitor, StreamAppend,
};
use composable_rust_core::{
    AppendOutcome, EventStore, EventStoreError, ExpectedVersion, NewEvent, Position, Snapshot,
    StoredEvent, StreamId,
};
use composable_rust_postgres::PostgresEventStore;
use composable_rust_testing::fixtures::TestSchema;
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use tokio::sync::{OwnedRwLockReadGuard, OwnedRwLockWriteGuard, RwLock, watch};
use uuid::Uuid;

pub(crate) use composable_rust_testing::services::database_url;

/// A pool on `DATABASE_URL`.
pub(crate) async fn pool() -> PgPool {
    let url = database_url();
    PgPoolOptions::new()
        .max_connections(10)
        .connect(&url)
        .await
        .unwrap_or_else(|error| panic!("cannot connect to DATABASE_URL={url}: {error}"))
}

/// Tests that hold transactions open on purpose take this exclusively:
/// the read horizon is server-wide, so their open transactions would hold
/// back every other test's reads (by design, see `read_all`).
static GATE: LazyLock<Arc<RwLock<()>>> = LazyLock::new(|| Arc::new(RwLock::new(())));

/// Held by ordinary tests while they run.
pub(crate) async fn shared_gate() -> OwnedRwLockReadGuard<()> {
    Arc::clone(&GATE).read_owned().await
}

/// Held by tests that keep transactions open on purpose.
pub(crate) async fn exclusive_gate() -> OwnedRwLockWriteGuard<()> {
    Arc::clone(&GATE).write_owned().await
}

/// A migrated store in its own schema, dropped with it. Derefs to the
/// store; implements `EventStore` for the conformance suite.
#[derive(Debug)]
pub(crate) struct TestStore {
    pub store: PostgresEventStore,
    // Fields drop in order: the store (and its pool) before the schema.
    _schema: TestSchema,
    _gate: Gate,
}

/// Which side of the [`GATE`] a test holds.
#[derive(Debug)]
#[allow(dead_code)] // held only for its Drop
enum Gate {
    Shared(OwnedRwLockReadGuard<()>),
    Exclusive(OwnedRwLockWriteGuard<()>),
}

/// A fresh, migrated store in a new schema, for an ordinary test.
pub(crate) async fn fresh_store() -> TestStore {
    let gate = Gate::Shared(shared_gate().await);
    store_in_new_schema(gate).await
}

/// A fresh, migrated store for a test that keeps transactions open on
/// purpose: no other test of this binary runs meanwhile.
pub(crate) async fn exclusive_store() -> TestStore {
    let gate = Gate::Exclusive(exclusive_gate().await);
    store_in_new_schema(gate).await
}

async fn store_in_new_schema(gate: Gate) -> TestStore {
    let schema = TestSchema::new();
    let store = PostgresEventStore::new(pool().await)
        .with_schema(schema.name())
        .expect("valid schema");
    store.migrate().await.expect("migrations run");
    TestStore {
        store,
        _schema: schema,
        _gate: gate,
    }
}

impl Deref for TestStore {
    type Target = PostgresEventStore;
    fn deref(&self) -> &PostgresEventStore {
        &self.store
    }
}

#[async_trait]
impl EventStore for TestStore {
    async fn append(
        &self,
        stream_id: &StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendOutcome, EventStoreError> {
        self.store.append(stream_id, expected, events).await
    }
    // Every provided method PostgreSQL overrides is forwarded too, so the
    // suites test PostgreSQL's own statements, not the trait's defaults.
    async fn append_after(
        &self,
        stream_id: &StreamId,
        version: KnownVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendOutcome, EventStoreError> {
        self.store.append_after(stream_id, version, events).await
    }
    async fn append_to_streams(
        &self,
        appends: Vec<StreamAppend>,
    ) -> Result<Vec<AppendOutcome>, EventStoreError> {
        self.store.append_to_streams(appends).await
    }
    async fn replay(
        &self,
        stream_id: &StreamId,
        snapshot_schema: Option<u32>,
        visit: &mut ReplayVisitor<'_>,
    ) -> Result<(), EventStoreError> {
        self.store.replay(stream_id, snapshot_schema, visit).await
    }
    async fn replay_and_append(
        &self,
        stream_id: &StreamId,
        snapshot_schema: Option<u32>,
        command: &mut (dyn ReplayAndDecide + '_),
    ) -> Result<Option<AppendOutcome>, EventStoreError> {
        self.store
            .replay_and_append(stream_id, snapshot_schema, command)
            .await
    }
    async fn load_stream(
        &self,
        stream_id: &StreamId,
        from_version: u64,
    ) -> Result<Vec<StoredEvent>, EventStoreError> {
        self.store.load_stream(stream_id, from_version).await
    }
    async fn stream_version(&self, stream_id: &StreamId) -> Result<u64, EventStoreError> {
        self.store.stream_version(stream_id).await
    }
    async fn read_all(
        &self,
        after: Position,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, EventStoreError> {
        self.store.read_all(after, limit).await
    }
    async fn count_after(&self, after: Position) -> Result<u64, EventStoreError> {
        self.store.count_after(after).await
    }
    async fn save_snapshot(&self, snapshot: &Snapshot) -> Result<(), EventStoreError> {
        self.store.save_snapshot(snapshot).await
    }
    async fn load_snapshot(
        &self,
        stream_id: &StreamId,
    ) -> Result<Option<Snapshot>, EventStoreError> {
        self.store.load_snapshot(stream_id).await
    }
    fn subscribe(&self) -> watch::Receiver<u64> {
        self.store.subscribe()
    }
}

/// A stream id unique to this call.
pub(crate) fn stream(name: &str) -> StreamId {
    StreamId::new(format!("{name}-{}", Uuid::new_v4().simple())).expect("valid stream id")
}

/// A small event numbered `n`.
pub(crate) fn event(n: u64) -> NewEvent {
    NewEvent::new("Happened", serde_json::json!({ "n": n }))
}
