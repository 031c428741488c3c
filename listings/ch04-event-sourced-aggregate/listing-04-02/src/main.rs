//! The bank's command line. Every command works on the event store in
//! PostgreSQL (`DATABASE_URL`), in the schema `bank`:
//!
//! ```text
//! bank open <account> <owner>
//! bank deposit <account> <amount>
//! bank withdraw <account> <amount>
//! bank history <account>
//! ```

use bank::account::{Account, AccountCommand};
use composable_rust::aggregate::RepositoryError;
use composable_rust::postgres::PostgresEventStore;
use composable_rust::prelude::*;
use composable_rust::{AggregateRepository, SnapshotPolicy};

const USAGE: &str = "usage: bank open <account> <owner> | deposit <account> <amount> | withdraw <account> <amount> | history <account>";

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
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
    events.migrate().await?; // creates the schema's tables the first time
    let accounts = AggregateRepository::<Account, _>::new(events.clone(), ())
        .with_snapshots(SnapshotPolicy::every(100));

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
        _ => {
            eprintln!("{USAGE}");
            std::process::exit(2);
        }
    };
    let stream = accounts.stream_id(id)?;
    match accounts
        .execute_with_retry(&stream, 3, || command.clone())
        .await
    {
        Ok(done) => println!("{stream}: balance {}", done.state.balance),
        Err(RepositoryError::Rejected(reason)) => println!("{stream}: refused: {reason}"),
        Err(error) => return Err(error.into()),
    }
    Ok(())
}
