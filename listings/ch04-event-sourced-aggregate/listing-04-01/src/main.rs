//! The account aggregate run by a repository over an event store in memory:
//! commands become stored events, and the state is rebuilt from them.

use bank::account::{Account, AccountCommand};
use composable_rust::aggregate::RepositoryError;
use composable_rust::prelude::*;
use composable_rust::{AggregateRepository, InMemoryEventStore};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let events = InMemoryEventStore::new();
    let accounts = AggregateRepository::<Account, _>::new(events.clone(), ());

    let ada = accounts.stream_id(1)?; // "account-1"
    let commands = [
        AccountCommand::Open {
            owner: "Ada".into(),
        },
        AccountCommand::Deposit { amount: 100 },
        AccountCommand::Withdraw { amount: 30 },
        AccountCommand::Withdraw { amount: 500 },
    ];
    for command in commands {
        match accounts.execute(&ada, command).await {
            Ok(done) => println!("{:?} -> balance {}", done.events, done.state.balance),
            Err(RepositoryError::Rejected(reason)) => println!("refused: {reason}"),
            Err(error) => return Err(error.into()),
        }
    }

    println!("the stream {ada}:");
    for event in events.load_stream(&ada, 0).await? {
        println!(
            "  v{} {} {}",
            event.stream_version, event.event_type, event.payload
        );
    }
    let loaded = accounts.load(&ada).await?;
    println!(
        "replayed {} events: balance {}",
        loaded.events_replayed, loaded.state.balance
    );
    Ok(())
}
