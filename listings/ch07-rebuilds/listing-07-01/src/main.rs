//! Listing 7-1: the account summaries of listing 6-1 catch up on a history
//! in batches, resume from their checkpoint after a restart, follow live
//! events, and shut down gracefully.

use std::sync::Arc;
use std::time::Duration;

use bank::account::{Account, AccountCommand};
use bank::summaries::{AccountSummaries, AccountSummary, summary_key};
use composable_rust::prelude::*;
use composable_rust::projection::ProjectionConfig;
use composable_rust::{
    AggregateRepository, InMemoryEventStore, InMemoryProjectionStore, ProjectionManager,
};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // ANCHOR: history
    // Five accounts, opened and funded before any projection existed:
    // a history of ten events.
    let events = InMemoryEventStore::new();
    let accounts = AggregateRepository::<Account, _>::new(events.clone(), ());
    let owners = ["Ada", "Grace", "Edsger", "Barbara", "Donald"];
    for (id, owner) in (1..).zip(owners) {
        let account = accounts.stream_id(id)?;
        let owner = owner.to_string();
        accounts
            .execute(&account, AccountCommand::Open { owner })
            .await?;
        accounts
            .execute(&account, AccountCommand::Deposit { amount: 100 })
            .await?;
    }
    // ANCHOR_END: history

    // ANCHOR: catch_up
    let read_model = Arc::new(InMemoryProjectionStore::new());
    let config = ProjectionConfig {
        batch_size: 4,
        ..ProjectionConfig::default()
    };
    let manager = ProjectionManager::builder(
        AccountSummaries::new(),
        Arc::clone(&read_model),
        events.clone(),
    )
    .with_config(config.clone())
    .build();
    let applied = manager.catch_up().await?;
    println!(
        "caught up: {applied} events in {} batches, checkpoint at {}",
        manager.stats().batches,
        manager.position()
    );
    // ANCHOR_END: catch_up

    // ANCHOR: restart
    // The process stops. The read model and its checkpoint stay in the
    // projection store (here: memory we keep; in production: a database).
    drop(manager);

    // Meanwhile, the write side carries on.
    let ada = accounts.stream_id(1)?;
    accounts
        .execute(&ada, AccountCommand::Withdraw { amount: 30 })
        .await?;
    accounts
        .execute(&ada, AccountCommand::Deposit { amount: 5 })
        .await?;

    // A new process, a new manager: it starts from the checkpoint.
    let manager = ProjectionManager::builder(
        AccountSummaries::new(),
        Arc::clone(&read_model),
        events.clone(),
    )
    .with_config(config)
    .build();
    let checkpoint = read_model.load_position(manager.name()).await?;
    println!(
        "restarted from checkpoint {}",
        checkpoint.unwrap_or_default()
    );
    let applied = manager.catch_up().await?;
    let summary: AccountSummary = read_model
        .get_json(&summary_key(&ada))
        .await?
        .unwrap_or_default();
    println!(
        "caught up: {applied} new events; {} has {} after {} transactions",
        summary.owner, summary.balance, summary.transactions
    );
    // ANCHOR_END: restart

    // ANCHOR: live
    // Live: `start` runs the manager on a task; it wakes up when events are
    // appended.
    let running = manager.start();
    let grace = accounts.stream_id(2)?;
    let deposit = accounts
        .execute(&grace, AccountCommand::Deposit { amount: 50 })
        .await?;
    let written = deposit.position.expect("a deposit appends an event");
    manager.wait_for(written, Duration::from_secs(5)).await?;
    let summary: AccountSummary = read_model
        .get_json(&summary_key(&grace))
        .await?
        .unwrap_or_default();
    println!("live: {} has {}", summary.owner, summary.balance);
    // ANCHOR_END: live

    // ANCHOR: shutdown
    // Finish the batch in progress, commit it with its checkpoint, stop.
    manager.shutdown();
    running.await??;
    println!("stopped at {}", manager.position());
    // ANCHOR_END: shutdown
    Ok(())
}
