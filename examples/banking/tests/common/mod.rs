//! What the tests share: a bank on PostgreSQL in a schema of the test's
//! own, read models in that schema and a Redis prefix of the test's own,
//! and a bank in memory. Every bank runs on a `TestClock`, so deadlines
//! pass when a test says so.
#![allow(dead_code)] // each test file uses a part of it

use std::sync::Arc;
use std::time::Duration;

use banking::{Bank, ReadModelSettings, ReadModels};
use chrono::{TimeZone, Utc};
use composable_rust::postgres::PostgresEventStore;
use composable_rust::prelude::*;
use composable_rust::{InMemoryEventStore, TestClock};
use composable_rust_testing::fixtures::{TestKeyPrefix, TestSchema};
use composable_rust_testing::services;

/// The transfer timeout of the test banks.
pub(crate) const TIMEOUT: Duration = Duration::from_secs(30);

/// 3 March 2025, 09:00 UTC: where the test clocks start.
pub(crate) fn clock() -> TestClock {
    TestClock::starting_at(Utc.with_ymd_and_hms(2025, 3, 3, 9, 0, 0).unwrap())
}

/// A bank on PostgreSQL, its clock, and the guard of its schema (last, so
/// the stores are dropped before the schema).
pub(crate) struct PgBank {
    pub(crate) bank: Bank,
    pub(crate) events: Arc<dyn EventStore>,
    pub(crate) clock: TestClock,
    pub(crate) schema: TestSchema,
}

/// A bank on PostgreSQL in a new schema.
pub(crate) async fn pg_bank() -> PgBank {
    let schema = TestSchema::new();
    let events = PostgresEventStore::connect(schema.url())
        .await
        .expect("connect to PostgreSQL")
        .with_schema(schema.name())
        .expect("a valid schema name");
    events.migrate().await.expect("migrate the event store");
    let events: Arc<dyn EventStore> = Arc::new(events);
    let clock = clock();
    let bank = Bank::start(Arc::clone(&events), Arc::new(clock.clone()), TIMEOUT)
        .await
        .expect("start the bank");
    PgBank {
        bank,
        events,
        clock,
        schema,
    }
}

/// A bank in memory, and its clock.
pub(crate) async fn memory_bank() -> (Bank, TestClock) {
    let events: Arc<dyn EventStore> = Arc::new(InMemoryEventStore::new());
    let clock = clock();
    let bank = Bank::start(events, Arc::new(clock.clone()), TIMEOUT)
        .await
        .expect("start the bank");
    (bank, clock)
}

/// The read models of `pg`'s bank, in its schema and a new Redis prefix.
pub(crate) async fn read_models(pg: &PgBank) -> (ReadModels, TestKeyPrefix) {
    let prefix = TestKeyPrefix::new();
    let settings = ReadModelSettings {
        database_url: services::database_url(),
        schema: pg.schema.name().to_owned(),
        redis_url: prefix.url().to_owned(),
        redis_prefix: prefix.as_str().to_owned(),
    };
    let read_models = ReadModels::connect(&settings, Arc::clone(&pg.events))
        .await
        .expect("connect the read models");
    (read_models, prefix)
}
