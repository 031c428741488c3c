//! The account on PostgreSQL: snapshots, and two writers racing for one
//! account. Needs `DATABASE_URL`. The tests write to a schema of their own,
//! `bank_test`, and each uses accounts nobody else uses, so they can run in
//! parallel and again and again.

use bank::account::{Account, AccountCommand, AccountError, AccountEvent};
use composable_rust::aggregate::RepositoryError;
use composable_rust::postgres::PostgresEventStore;
use composable_rust::prelude::*;
use composable_rust::testing::services;
use composable_rust::uuid::Uuid;
use composable_rust::{AggregateRepository, EventStoreError, ExpectedVersion, NewEvent};
use composable_rust::{SnapshotPolicy, StreamId};

/// The test schema's event store, and a new account opened by Ada in it.
async fn new_account() -> (PostgresEventStore, StreamId) {
    // Fails with a message saying how to start PostgreSQL when DATABASE_URL is unset.
    let url = services::database_url();
    let events = PostgresEventStore::connect(&url)
        .await
        .unwrap()
        .with_schema("bank_test")
        .unwrap();
    events.migrate().await.unwrap();
    let accounts = AggregateRepository::<Account, _>::new(events.clone(), ());
    let stream = accounts.stream_id(Uuid::new_v4()).unwrap();
    let open = AccountCommand::Open {
        owner: "Ada".into(),
    };
    accounts.execute(&stream, open).await.unwrap();
    (events, stream)
}

#[tokio::test]
async fn a_long_history_loads_from_a_snapshot() {
    let (events, stream) = new_account().await;
    let accounts = AggregateRepository::<Account, _>::new(events, ())
        .with_snapshots(SnapshotPolicy::every(100));
    for _ in 0..249 {
        let deposit = AccountCommand::Deposit { amount: 1 };
        accounts.execute(&stream, deposit).await.unwrap();
    }

    let loaded = accounts.load(&stream).await.unwrap();
    assert_eq!(loaded.version, 250);
    assert_eq!(loaded.snapshot_version, Some(200));
    assert_eq!(loaded.events_replayed, 50);
    assert_eq!(loaded.state.balance, 249);
}

#[tokio::test]
async fn a_stale_append_is_refused_and_a_retry_decides_again() {
    let (events, stream) = new_account().await;
    let accounts = AggregateRepository::<Account, _>::new(events.clone(), ());
    let deposit = AccountCommand::Deposit { amount: 70 };
    accounts.execute(&stream, deposit).await.unwrap();

    // Two tellers load the account at the same version (2, balance 70).
    let seen_by_first = accounts.load(&stream).await.unwrap().version;
    let seen_by_second = accounts.load(&stream).await.unwrap().version;
    assert_eq!(seen_by_first, seen_by_second);

    // The first one's withdrawal of 50 is appended: version 3, balance 20.
    let withdraw = AccountCommand::Withdraw { amount: 50 };
    accounts.execute(&stream, withdraw).await.unwrap();

    // The second one decided on version 2, so its append is refused.
    let stale = NewEvent::from_event(&AccountEvent::Withdrawn { amount: 50 }).unwrap();
    let appended = events
        .append(&stream, ExpectedVersion::Exact(seen_by_second), vec![stale])
        .await;
    assert!(matches!(
        appended,
        Err(EventStoreError::WrongExpectedVersion { .. })
    ));

    // Reloading and deciding again refuses the withdrawal, for a real reason.
    let retried = accounts
        .execute_with_retry(&stream, 3, || AccountCommand::Withdraw { amount: 50 })
        .await;
    assert!(matches!(
        retried,
        Err(RepositoryError::Rejected(AccountError::InsufficientFunds {
            balance: 20,
            requested: 50
        }))
    ));
}
