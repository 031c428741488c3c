//! Listing 4-2: the account of listing 4-1, stored in PostgreSQL: append and
//! replay, snapshots, and two tellers racing for the same account.
//!
//! Needs `DATABASE_URL`. Each run works in a schema of its own and drops it
//! at the end, so the listing can run again and again.

use composable_rust::aggregate::RepositoryError;
use composable_rust::postgres::PostgresEventStore;
use composable_rust::prelude::*;
use composable_rust::{AggregateRepository, ExpectedVersion, SnapshotPolicy};
use listing_04_01::{Account, AccountCommand, AccountError};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("DATABASE_URL").map_err(
        |_| "set DATABASE_URL, e.g. DATABASE_URL=postgres://postgres@localhost:5432/postgres",
    )?;
    let pool = sqlx::PgPool::connect(&url).await?;
    let schema = format!("listing_04_02_{}", uuid::Uuid::new_v4().simple());
    let result = run(pool.clone(), &schema).await;
    sqlx::query(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
        .execute(&pool)
        .await?;
    result
}

async fn run(pool: sqlx::PgPool, schema: &str) -> Result<(), Box<dyn std::error::Error>> {
    // ANCHOR: connect
    let store = PostgresEventStore::new(pool).with_schema(schema)?;
    store.migrate().await?; // creates the schema's tables, once
    let accounts = AggregateRepository::<Account, _>::new(store.clone(), ());
    // ANCHOR_END: connect

    // ANCHOR: execute
    let ada = accounts.stream_id(1)?; // "account-1"
    accounts
        .execute(
            &ada,
            AccountCommand::Open {
                owner: "Ada".into(),
            },
        )
        .await?;
    accounts
        .execute(&ada, AccountCommand::Deposit { amount: 100 })
        .await?;
    accounts
        .execute(&ada, AccountCommand::Withdraw { amount: 30 })
        .await?;

    match accounts
        .execute(&ada, AccountCommand::Withdraw { amount: 500 })
        .await
    {
        Err(RepositoryError::Rejected(error)) => println!("refused: {error}"),
        other => println!("unexpected: {other:?}"),
    }
    // ANCHOR_END: execute

    // ANCHOR: replay
    for event in store.load_stream(&ada, 0).await? {
        println!(
            "{} v{}: {} {}",
            event.stream_id, event.stream_version, event.event_type, event.payload
        );
    }
    let loaded = accounts.load(&ada).await?;
    println!(
        "replayed {} events: balance {}",
        loaded.events_replayed, loaded.state.balance
    );
    // ANCHOR_END: replay

    // ANCHOR: snapshots
    let with_snapshots = AggregateRepository::<Account, _>::new(store.clone(), ())
        .with_snapshots(SnapshotPolicy::every(100));
    let busy = with_snapshots.stream_id(2)?;
    with_snapshots
        .execute(
            &busy,
            AccountCommand::Open {
                owner: "Grace".into(),
            },
        )
        .await?;
    for _ in 0..249 {
        with_snapshots
            .execute(&busy, AccountCommand::Deposit { amount: 1 })
            .await?;
    }
    let fast = with_snapshots.load(&busy).await?;
    let snapshot = fast.snapshot_version.unwrap_or(0);
    println!(
        "loaded version {} from the snapshot at version {snapshot} plus {} events: balance {}",
        fast.version, fast.events_replayed, fast.state.balance
    );
    // ANCHOR_END: snapshots

    // ANCHOR: conflict
    // Two tellers load Ada's account at the same version...
    let seen_by_first = accounts.load(&ada).await?.version;
    let seen_by_second = accounts.load(&ada).await?.version;
    assert_eq!(seen_by_first, seen_by_second);

    // ...the first one's withdrawal is appended...
    accounts
        .execute(&ada, AccountCommand::Withdraw { amount: 50 })
        .await?;

    // ...and the second one's append, still expecting the old version, is
    // refused by the store. Nothing is written.
    let stale = listing_04_01::AccountEvent::Withdrawn { amount: 50 };
    let appended = store
        .append(
            &ada,
            ExpectedVersion::Exact(seen_by_second),
            vec![composable_rust::NewEvent::from_event(&stale)?],
        )
        .await;
    if let Err(error) = appended {
        println!("{error}");
    }

    // The fix: reload and decide again. With a balance of 20 left, the
    // retried withdrawal is refused for a real reason.
    let retried = accounts
        .execute_with_retry(&ada, 3, || AccountCommand::Withdraw { amount: 50 })
        .await;
    if let Err(RepositoryError::Rejected(AccountError::InsufficientFunds { balance, .. })) = retried
    {
        println!("after reloading: refused, the balance is only {balance}");
    }
    // ANCHOR_END: conflict
    Ok(())
}
