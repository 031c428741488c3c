//! Listing 7-2: rebuilding the account summaries while a writer keeps
//! appending, then replacing them with version 2, run side by side.

use std::error::Error;
use std::sync::Arc;
use std::time::Duration;

use bank::account::{Account, AccountCommand};
use bank::summaries::{AccountSummaries, BankTotals, TOTALS_KEY};
use composable_rust::Position;
use composable_rust::prelude::*;
use composable_rust::{
    AggregateRepository, InMemoryEventStore, InMemoryProjectionStore, ProjectionManager,
};
use listing_07_02::{AccountSummariesV2, AccountSummaryV2, summary_v2_key};

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error + Send + Sync>> {
    // ANCHOR: setup
    let events = InMemoryEventStore::new();
    let accounts = AggregateRepository::<Account, _>::new(events.clone(), ());
    for (id, owner) in (1..).zip(["Ada", "Grace", "Edsger"]) {
        let account = accounts.stream_id(id)?;
        let owner = owner.to_string();
        accounts
            .execute(&account, AccountCommand::Open { owner })
            .await?;
        accounts
            .execute(&account, AccountCommand::Deposit { amount: 100 })
            .await?;
    }

    let read_model = Arc::new(InMemoryProjectionStore::new());
    let v1 = ProjectionManager::new(
        AccountSummaries::new(),
        Arc::clone(&read_model),
        events.clone(),
    );
    let running_v1 = v1.start();
    // ANCHOR_END: setup

    // ANCHOR: rebuild
    // A writer deposits 200 times while the projection rebuilds.
    let writer = tokio::spawn({
        let accounts = AggregateRepository::<Account, _>::new(events.clone(), ());
        async move {
            let ada = accounts.stream_id(1)?;
            let mut last = Position::START;
            for _ in 0..200 {
                let deposit = AccountCommand::Deposit { amount: 1 };
                last = accounts
                    .execute(&ada, deposit)
                    .await?
                    .position
                    .unwrap_or(last);
                tokio::task::yield_now().await;
            }
            Ok::<_, Box<dyn Error + Send + Sync>>(last)
        }
    });
    v1.rebuild().await?;
    let last = writer.await??;

    v1.wait_for(last, Duration::from_secs(5)).await?;
    let totals: BankTotals = read_model.get_json(TOTALS_KEY).await?.unwrap_or_default();
    println!(
        "rebuilt while writing: {} accounts, {} deposited",
        totals.accounts, totals.deposits
    );
    // ANCHOR_END: rebuild

    // ANCHOR: compare
    // The same events, projected from scratch into an empty store.
    let fresh = Arc::new(InMemoryProjectionStore::new());
    ProjectionManager::new(AccountSummaries::new(), Arc::clone(&fresh), events.clone())
        .catch_up()
        .await?;
    println!(
        "identical to a read model built from scratch: {}",
        read_model.scan_prefix("account-summary:") == fresh.scan_prefix("account-summary:")
    );
    // ANCHOR_END: compare

    // ANCHOR: side_by_side
    // Version 2 starts from the first event, under its own name, while
    // version 1 keeps serving the accounts screen.
    let v2 = ProjectionManager::new(
        AccountSummariesV2::new(),
        Arc::clone(&read_model),
        events.clone(),
    );
    let running_v2 = v2.start();
    v2.wait_for(v1.position(), Duration::from_secs(5)).await?;

    // Version 2 has caught up: switch the reads over to it...
    let ada = accounts.stream_id(1)?;
    let row: AccountSummaryV2 = read_model
        .get_json(&summary_v2_key(&ada))
        .await?
        .unwrap_or_default();
    println!(
        "v2: {} has {} from {} deposits, the largest {}",
        row.owner, row.balance, row.deposits, row.largest_deposit
    );

    // ...then retire version 1 and delete its rows.
    v1.shutdown();
    running_v1.await??;
    let mut tx = read_model.begin().await?;
    v1.projection().reset(&mut tx).await?;
    read_model.commit(tx).await?;
    println!(
        "rows left: v1 {}, v2 {}",
        read_model.scan_prefix("account-summary:").len(),
        read_model.scan_prefix("account-summary-v2:").len()
    );
    // ANCHOR_END: side_by_side

    v2.shutdown();
    running_v2.await??;
    Ok(())
}
