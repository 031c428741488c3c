//! Listing 9-1: how far behind is the projection? Lag before and after
//! catching up, the manager's statistics, and the `projection.batch` spans
//! a tracing subscriber prints.

use std::sync::Arc;
use std::time::Duration;

use bank::account::{Account, AccountCommand};
use bank::summaries::AccountSummaries;
use composable_rust::projection::ProjectionConfig;
use composable_rust::{
    AggregateRepository, InMemoryEventStore, InMemoryProjectionStore, ProjectionManager, TestClock,
};
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::fmt::format::FmtSpan;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // ANCHOR: subscriber
    // Print the framework's log events and each span as it opens, to stdout,
    // without timestamps (so the output below is stable).
    tracing_subscriber::fmt()
        .with_max_level(LevelFilter::INFO)
        .with_span_events(FmtSpan::NEW)
        .with_writer(std::io::stdout)
        .without_time()
        .init();
    // ANCHOR_END: subscriber

    // ANCHOR: lag
    // A test clock stamps the events, so "seconds behind" is predictable.
    let clock = TestClock::new();
    let events = InMemoryEventStore::new().with_clock(Arc::new(clock.clone()));
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
    clock.advance(Duration::from_secs(90));

    let config = ProjectionConfig {
        batch_size: 4,
        clock: Arc::new(clock.clone()),
        ..ProjectionConfig::default()
    };
    let read_model = Arc::new(InMemoryProjectionStore::new());
    let manager = ProjectionManager::builder(AccountSummaries::new(), read_model, events)
        .with_config(config)
        .build();

    let lag = manager.lag().await?;
    println!(
        "before: {} events behind, the oldest recorded {:?} ago",
        lag.events_behind, lag.seconds_behind
    );
    manager.catch_up().await?;
    let lag = manager.lag().await?;
    println!(
        "after: {} events behind, {:?}",
        lag.events_behind, lag.seconds_behind
    );
    println!("{:?}", manager.stats());
    // ANCHOR_END: lag
    Ok(())
}
