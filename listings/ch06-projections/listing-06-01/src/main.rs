//! The bank's command line. Commands are executed on the event store in
//! PostgreSQL (`DATABASE_URL`, schema `bank`); the account summaries
//! projection keeps its read model in the same database and schema:
//!
//! ```text
//! bank open <account> <owner>
//! bank deposit <account> <amount>
//! bank withdraw <account> <amount>
//! bank history <account>
//! bank summary <account>
//! ```

use std::sync::Arc;
use std::time::Duration;

use bank::account::{Account, AccountCommand};
use bank::summaries::{AccountSummaries, AccountSummary, BankTotals, TOTALS_KEY, summary_key};
use composable_rust::aggregate::RepositoryError;
use composable_rust::postgres::{PostgresEventStore, PostgresProjectionStore};
use composable_rust::prelude::*;
use composable_rust::{AggregateRepository, ProjectionManager, SnapshotPolicy};

const USAGE: &str = "usage: bank open <account> <owner> | deposit <account> <amount> | withdraw <account> <amount> | history <account> | summary <account>";

type Error = Box<dyn std::error::Error>;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();

    let url = std::env::var("DATABASE_URL").map_err(|_| {
        "DATABASE_URL is not set: the bank needs PostgreSQL. Set it, e.g. \
         DATABASE_URL=postgres://postgres@localhost:5432/postgres, or run \
         `source ../composable-rust/ci/start-services`"
    })?;
    let events = PostgresEventStore::connect(&url)
        .await?
        .with_schema("bank")?;
    events.migrate().await?;
    let accounts = AggregateRepository::<Account, _>::new(events.clone(), ())
        .with_snapshots(SnapshotPolicy::every(100));
    // The read side: the read model's store, and the manager that keeps the
    // projection up to date from the event store's global stream.
    let read_model = PostgresProjectionStore::connect(&url)
        .await?
        .with_schema("bank")?;
    read_model.migrate().await?;
    let read_model = Arc::new(read_model);
    let summaries = ProjectionManager::new(
        AccountSummaries::new(),
        Arc::clone(&read_model),
        events.clone(),
    );
    // Apply what was stored before this run.
    summaries.catch_up().await?;

    let (id, command) = match args.as_slice() {
        ["open", id, owner] => (
            *id,
            AccountCommand::Open {
                owner: owner.to_string(),
            },
        ),
        ["deposit", id, amount] => (
            *id,
            AccountCommand::Deposit {
                amount: amount.parse()?,
            },
        ),
        ["withdraw", id, amount] => (
            *id,
            AccountCommand::Withdraw {
                amount: amount.parse()?,
            },
        ),
        ["history", id] => {
            let stream = accounts.stream_id(id)?;
            for event in events.load_stream(&stream, 0).await? {
                println!(
                    "v{} {} {}",
                    event.stream_version, event.event_type, event.payload
                );
            }
            let loaded = accounts.load(&stream).await?;
            println!(
                "balance {} (version {}, {} events replayed)",
                loaded.state.balance, loaded.version, loaded.events_replayed
            );
            return Ok(());
        }
        ["summary", id] => {
            print_summary(&read_model, &accounts.stream_id(id)?).await?;
            return Ok(());
        }
        _ => {
            eprintln!("{USAGE}");
            std::process::exit(2);
        }
    };
    // Follow what is stored from now on, and read your own write.
    let running = summaries.start();
    let stream = accounts.stream_id(id)?;
    match accounts
        .execute_with_retry(&stream, 3, || command.clone())
        .await
    {
        Ok(done) => {
            // Wait until the projection has applied the new events.
            if let Some(position) = done.position {
                summaries.wait_for(position, Duration::from_secs(5)).await?;
            }
            print_summary(&read_model, &stream).await?;
        }
        Err(RepositoryError::Rejected(reason)) => println!("{stream}: refused: {reason}"),
        Err(error) => return Err(error.into()),
    }

    summaries.shutdown();
    running.await??;
    Ok(())
}

/// Prints an account's summary and the bank's totals, from the read model.
async fn print_summary(
    read_model: &PostgresProjectionStore,
    stream: &StreamId,
) -> Result<(), Error> {
    let Some(summary) = read_model
        .get_json::<AccountSummary>(&summary_key(stream))
        .await?
    else {
        println!("{stream}: no such account");
        return Ok(());
    };
    let totals: BankTotals = read_model.get_json(TOTALS_KEY).await?.unwrap_or_default();
    println!(
        "{stream} ({}): balance {} after {} transaction(s); the bank: {} account(s), {} deposited",
        summary.owner, summary.balance, summary.transactions, totals.accounts, totals.deposits
    );
    Ok(())
}
