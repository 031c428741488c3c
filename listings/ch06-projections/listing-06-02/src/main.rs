//! Listing 6-2: the account summaries projection kept up to date by a
//! ProjectionManager while commands are executed, with read-your-writes.

use std::sync::Arc;
use std::time::Duration;

use composable_rust::prelude::*;
use composable_rust::{
    AggregateRepository, InMemoryEventStore, InMemoryProjectionStore, ProjectionManager,
};
use listing_04_01::{Account, AccountCommand};
use listing_06_01::{AccountSummaries, AccountSummary, BankTotals, TOTALS_KEY, summary_key};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // ANCHOR: setup
    // The write side: an event store and a repository of accounts.
    let events = InMemoryEventStore::new();
    let accounts = AggregateRepository::<Account, _>::new(events.clone(), ());

    // The read side: a projection store and a manager that keeps the
    // projection up to date from the event store's global stream.
    let read_model = Arc::new(InMemoryProjectionStore::new());
    let manager = ProjectionManager::new(
        AccountSummaries::new(),
        Arc::clone(&read_model),
        events.clone(),
    );
    let running = manager.start();
    // ANCHOR_END: setup

    // ANCHOR: write_then_read
    let ada = accounts.stream_id(1)?;
    accounts
        .execute(
            &ada,
            AccountCommand::Open {
                owner: "Ada".into(),
            },
        )
        .await?;
    let deposit = accounts
        .execute(&ada, AccountCommand::Deposit { amount: 120 })
        .await?;

    // Read your own write: wait until the projection has applied it.
    let written = deposit.position.expect("a deposit appends an event");
    manager.wait_for(written, Duration::from_secs(5)).await?;
    let summary: AccountSummary = read_model
        .get_json(&summary_key(&ada))
        .await?
        .unwrap_or_default();
    println!(
        "{}: balance {} after {} transaction(s)",
        summary.owner, summary.balance, summary.transactions
    );
    // ANCHOR_END: write_then_read

    // ANCHOR: more_accounts
    for (id, owner, amount) in [(2, "Grace", 300), (3, "Edsger", 45)] {
        let account = accounts.stream_id(id)?;
        accounts
            .execute(
                &account,
                AccountCommand::Open {
                    owner: owner.into(),
                },
            )
            .await?;
        let last = accounts
            .execute(&account, AccountCommand::Deposit { amount })
            .await?;
        manager
            .wait_for(last.position.unwrap_or_default(), Duration::from_secs(5))
            .await?;
    }
    let totals: BankTotals = read_model.get_json(TOTALS_KEY).await?.unwrap_or_default();
    println!(
        "the bank: {} accounts, {} deposited",
        totals.accounts, totals.deposits
    );

    let lag = manager.lag().await?;
    println!("events behind: {}", lag.events_behind);
    println!("events applied: {}", manager.stats().events_applied);

    manager.shutdown();
    running.await??;
    // ANCHOR_END: more_accounts
    Ok(())
}
