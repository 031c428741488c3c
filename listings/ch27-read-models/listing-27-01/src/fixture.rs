//! What every test of this listing needs: accounts in an in-memory event
//! store on a test clock, and a PostgreSQL projection store in a schema of
//! the test's own.

use std::sync::Arc;

use bank::account::{Account, AccountCommand};
use composable_rust::chrono::{DateTime, Utc};
use composable_rust::postgres::PostgresProjectionStore;
use composable_rust::{AggregateRepository, InMemoryEventStore, StreamId, TestClock};
use composable_rust_testing::fixtures::TestSchema;

pub(crate) struct Fixture {
    pub(crate) events: InMemoryEventStore,
    pub(crate) accounts: AggregateRepository<Account, InMemoryEventStore>,
    pub(crate) clock: TestClock,
    pub(crate) store: Arc<PostgresProjectionStore>,
    // Last: the schema is dropped after the store's pool.
    _schema: TestSchema,
}

impl Fixture {
    pub(crate) async fn new() -> Self {
        let schema = TestSchema::new();
        let store = PostgresProjectionStore::connect(schema.url())
            .await
            .expect("PostgreSQL at DATABASE_URL")
            .with_schema(schema.name())
            .unwrap();
        store.migrate().await.unwrap();
        let start: DateTime<Utc> = "2026-03-02T09:00:00Z".parse().unwrap();
        let clock = TestClock::starting_at(start);
        let events = InMemoryEventStore::new().with_clock(Arc::new(clock.clone()));
        Self {
            accounts: AggregateRepository::new(events.clone(), ()),
            events,
            clock,
            store: Arc::new(store),
            _schema: schema,
        }
    }

    /// Opens account `number` for `owner`.
    pub(crate) async fn open(&self, number: u64, owner: &str) -> StreamId {
        let id = self.accounts.stream_id(number).unwrap();
        let open = AccountCommand::Open {
            owner: owner.into(),
        };
        self.accounts.execute(&id, open).await.unwrap();
        id
    }

    pub(crate) async fn run(&self, id: &StreamId, command: AccountCommand) {
        self.accounts.execute(id, command).await.unwrap();
    }
}
