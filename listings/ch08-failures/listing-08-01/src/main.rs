//! Listing 8-1: one owner's name makes the directory fail. The event is
//! retried, dead-lettered, and the events after it still apply; after the
//! fix, the dead letter is retried.

use std::sync::Arc;
use std::time::Duration;

use bank::account::{Account, AccountCommand};
use composable_rust::CodedError;
use composable_rust::prelude::*;
use composable_rust::projection::{ProjectionConfig, RetryPolicy};
use composable_rust::{
    AggregateRepository, InMemoryEventStore, InMemoryProjectionStore, ProjectionManager,
};
use listing_08_01::{Letter, OwnerDirectory, ascii_initial, initial};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // ANCHOR: setup
    let events = InMemoryEventStore::new();
    let accounts = AggregateRepository::<Account, _>::new(events.clone(), ());
    for (id, owner) in (1..).zip(["Ada", "Édouard", "Grace"]) {
        let account = accounts.stream_id(id)?;
        let owner = owner.to_string();
        accounts
            .execute(&account, AccountCommand::Open { owner })
            .await?;
    }

    // Three attempts in all, waiting 1 ms, then 2 ms, between them.
    let config = ProjectionConfig {
        retry: RetryPolicy {
            max_attempts: 3,
            initial_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(10),
        },
        ..ProjectionConfig::default()
    };
    let read_model = Arc::new(InMemoryProjectionStore::new());
    let manager = ProjectionManager::builder(
        OwnerDirectory::new(ascii_initial),
        Arc::clone(&read_model),
        events.clone(),
    )
    .with_config(config.clone())
    .build();
    manager.catch_up().await?;
    // ANCHOR_END: setup

    // ANCHOR: inspect
    println!("{:?}", manager.stats());
    for letter in manager.dead_letters().await? {
        let event = &letter.event;
        println!(
            "dead letter: {} v{} ({}) after {} attempts",
            event.stream_id, event.stream_version, event.event_type, letter.attempts
        );
        println!("  {}", letter.error);
    }
    print_directory(&read_model).await?;
    // ANCHOR_END: inspect

    // ANCHOR: retry
    // Deploy the fix: a new process runs the fixed projection on the same
    // store, where the dead letters are kept.
    drop(manager);
    let manager = ProjectionManager::builder(
        OwnerDirectory::new(initial),
        Arc::clone(&read_model),
        events.clone(),
    )
    .with_config(config)
    .build();
    let dead_letters = manager.dead_letters().await?;
    for letter in &dead_letters {
        manager.retry_dead_letter(letter.event.event_id).await?;
    }
    println!(
        "retried {}; dead letters left: {}",
        dead_letters.len(),
        manager.dead_letters().await?.len()
    );
    print_directory(&read_model).await?;
    // ANCHOR_END: retry

    // ANCHOR: not_found
    // Retrying it a second time is an error: it is no longer a dead letter.
    let event_id = dead_letters[0].event.event_id;
    let error = manager.retry_dead_letter(event_id).await.unwrap_err();
    println!("retrying again: {}", error.code());
    // ANCHOR_END: not_found
    Ok(())
}

/// Prints every letter of the directory with the owners filed under it.
async fn print_directory(
    read_model: &InMemoryProjectionStore,
) -> Result<(), Box<dyn std::error::Error>> {
    for (key, _) in read_model.scan_prefix("owners:") {
        let letter: Letter = read_model.get_json(&key).await?.unwrap_or_default();
        let owners: Vec<&str> = letter.values().map(String::as_str).collect();
        println!("  {key} {owners:?}");
    }
    Ok(())
}
