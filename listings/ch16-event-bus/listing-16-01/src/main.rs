//! The bank's command line. Commands are executed on the event store in
//! PostgreSQL (`DATABASE_URL`, schema `bank`); the account summaries
//! projection keeps its read model in the same database and schema.
//! `work` publishes the store's events to Redis Streams (`REDIS_URL`) and
//! feeds them to the transfer saga and the dashboard:
//!
//! ```text
//! bank open <account> <owner>
//! bank deposit <account> <amount>
//! bank withdraw <account> <amount>
//! bank transfer <from> <to> <amount>
//! bank work
//! bank history <account>
//! bank summary <account>
//! ```

use std::sync::Arc;
use std::time::Duration;

use bank::account::{Account, AccountCommand};
use bank::summaries::{AccountSummaries, AccountSummary, BankTotals, TOTALS_KEY, summary_key};
use bank::teller::Teller;
use bank::transfer::{TransferSaga, request_transfer};
use bank::worker::deliver;
use composable_rust::aggregate::RepositoryError;
use composable_rust::postgres::{PostgresEventStore, PostgresProjectionStore};
use composable_rust::prelude::*;
use composable_rust::redis::RedisStreamsEventBus;
use composable_rust::saga::{Handled, SAGA_ID_HEADER};
use composable_rust::{AggregateRepository, ProjectionManager, SagaRuntime, SnapshotPolicy};
use composable_rust::{EventPublisher, SubscribeOptions, SubscriptionSource, Topic};

const USAGE: &str = "usage: bank open <account> <owner> | deposit <account> <amount> | withdraw <account> <amount> | transfer <from> <to> <amount> | work | history <account> | summary <account>";

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
        ["transfer", from, to, amount] => {
            // Only the request: `bank work` carries it out.
            let id = request_transfer(&events, from.parse()?, to.parse()?, amount.parse()?).await?;
            println!("transfer {id}: requested");
            return Ok(());
        }
        ["work"] => return work(&events, read_model, &url).await,
        ["history", id] => {
            let stream = accounts.stream_id(id)?;
            for event in events.load_stream(&stream, 0).await? {
                // The teller marks the events it records for a transfer.
                let transfer = match event.metadata.headers.get(SAGA_ID_HEADER) {
                    Some(id) => format!(" (transfer {id})"),
                    None => String::new(),
                };
                println!(
                    "v{} {} {}{transfer}",
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

/// Works until there is nothing left to do: publishes the store's events
/// to the bus, lets the transfer saga handle them (its commands append more
/// events, which are published in turn), then brings the dashboard up to
/// date from the bus.
async fn work(
    events: &PostgresEventStore,
    read_model: Arc<PostgresProjectionStore>,
    url: &str,
) -> Result<(), Error> {
    let redis_url = std::env::var("REDIS_URL").map_err(|_| {
        "REDIS_URL is not set: `work` needs Redis. Set it, e.g. \
         REDIS_URL=redis://127.0.0.1:6379, or run `source ../composable-rust/ci/start-services`"
    })?;
    let bus = RedisStreamsEventBus::connect(&redis_url, "bank").await?;
    let topic = Topic::new("bank")?;

    // Every event of the store goes to the topic; the publisher's
    // checkpoint lives beside the read model.
    let publisher = EventPublisher::new(
        "bus-publisher",
        events.clone(),
        bus.clone(),
        read_model,
        topic.clone(),
    );

    // The transfer saga, fed by the consumer group "transfers".
    let saga = TransferSaga {
        deadline: Duration::from_secs(30),
    };
    let runtime = SagaRuntime::new(saga, events.clone(), Teller::new(events.clone()));
    runtime.resume().await?;
    let options = SubscribeOptions::new(topic.clone(), "transfers", "transfers-1")?;
    let mut transfers = bus.subscribe(options).await?;

    // The dashboard: account summaries in a schema of their own, fed by the
    // consumer group "dashboard".
    let dashboard_store = PostgresProjectionStore::connect(url)
        .await?
        .with_schema("dashboard")?;
    dashboard_store.migrate().await?;
    let dashboard_store = Arc::new(dashboard_store);
    let options = SubscribeOptions::new(topic, "dashboard", "dashboard-1")?
        .with_take_over_pending(true)
        .with_max_deliveries(u32::MAX);
    let source = SubscriptionSource::new(bus.subscribe(options).await?);
    let dashboard = ProjectionManager::new(
        AccountSummaries::new(),
        Arc::clone(&dashboard_store),
        source,
    );

    let mut published = 0;
    loop {
        let new = publisher.publish_pending().await?;
        let handled = deliver(&runtime, transfers.as_mut(), Duration::from_millis(200)).await?;
        for step in &handled {
            if let Handled::Stepped {
                saga_id,
                outcome: Some(outcome),
            } = step
            {
                let transfer = runtime.instance(saga_id).await?;
                match &transfer.state().undone_because {
                    Some(why) => println!("transfer {saga_id}: {outcome}: {why}"),
                    None => println!("transfer {saga_id}: {outcome}"),
                }
            }
        }
        published += new;
        if new == 0 && handled.is_empty() {
            break;
        }
    }
    runtime.shutdown().await;
    println!("published {published} event(s) to the bus");

    let read = dashboard.catch_up().await?;
    let totals: BankTotals = dashboard_store
        .get_json(TOTALS_KEY)
        .await?
        .unwrap_or_default();
    println!(
        "the dashboard caught up on {read} event(s): {} account(s), {} deposited",
        totals.accounts, totals.deposits
    );
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
