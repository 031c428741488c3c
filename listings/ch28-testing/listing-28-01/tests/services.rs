//! Integration tests on real services: the account on PostgreSQL, its
//! summaries projected into PostgreSQL and into Redis. Each test works in
//! a schema or key prefix of its own, removed when it ends, so the tests
//! run in parallel, again and again, beside everyone else's.

use std::sync::Arc;
use std::time::Duration;

use bank::account::{Account, AccountCommand};
use bank::summaries::{AccountSummaries, AccountSummary, summary_key};
use composable_rust::postgres::{PostgresEventStore, PostgresProjectionStore};
use composable_rust::prelude::*;
use composable_rust::redis::RedisProjectionStore;
use composable_rust::{AggregateRepository, ProjectionManager};
use composable_rust_testing::fixtures::{TestKeyPrefix, TestSchema};

const WAIT: Duration = Duration::from_secs(10);

// ANCHOR: postgres
#[tokio::test]
async fn a_deposit_reaches_the_postgres_read_model() {
    let schema = TestSchema::new(); // fails, saying how, without DATABASE_URL
    let events = PostgresEventStore::connect(schema.url()).await.unwrap();
    let events = events.with_schema(schema.name()).unwrap();
    events.migrate().await.unwrap();
    let read_model = PostgresProjectionStore::connect(schema.url())
        .await
        .unwrap();
    let read_model = Arc::new(read_model.with_schema(schema.name()).unwrap());
    read_model.migrate().await.unwrap();

    let manager = ProjectionManager::new(
        AccountSummaries::new(),
        Arc::clone(&read_model),
        events.clone(),
    );
    let running = manager.start();
    let accounts = AggregateRepository::<Account, _>::new(events, ());
    let ada = accounts.stream_id(1).unwrap();
    let open = AccountCommand::Open {
        owner: "Ada".into(),
    };
    accounts.execute(&ada, open).await.unwrap();
    let deposit = AccountCommand::Deposit { amount: 25 };
    let done = accounts.execute(&ada, deposit).await.unwrap();

    // No sleep: wait for the position the write produced.
    manager
        .wait_for(done.position.unwrap(), WAIT)
        .await
        .unwrap();
    let summary: AccountSummary = read_model
        .get_json(&summary_key(&ada))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((summary.owner.as_str(), summary.balance), ("Ada", 25));

    manager.shutdown();
    running.await.unwrap().unwrap();
    // `schema` drops last: the schema and everything in it are gone.
}
// ANCHOR_END: postgres

// ANCHOR: redis
#[tokio::test]
async fn the_same_projection_runs_on_redis_under_its_own_prefix() {
    let prefix = TestKeyPrefix::new(); // fails, saying how, without REDIS_URL
    let store = RedisProjectionStore::connect(prefix.url(), prefix.as_str())
        .await
        .unwrap();
    let store = Arc::new(store);
    let events = composable_rust::InMemoryEventStore::new();
    let manager =
        ProjectionManager::new(AccountSummaries::new(), Arc::clone(&store), events.clone());

    let accounts = AggregateRepository::<Account, _>::new(events, ());
    let ada = accounts.stream_id(1).unwrap();
    let open = AccountCommand::Open {
        owner: "Ada".into(),
    };
    accounts.execute(&ada, open).await.unwrap();
    assert_eq!(manager.catch_up().await.unwrap(), 1);

    let summary: AccountSummary = store.get_json(&summary_key(&ada)).await.unwrap().unwrap();
    assert_eq!(summary.owner, "Ada");
    // Everything the test wrote is under its prefix, and only there.
    assert!(!prefix.keys().unwrap().is_empty());
}
// ANCHOR_END: redis
