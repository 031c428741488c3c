//! The storefront, as two processes:
//!
//! ```text
//! storefront [serve]   the HTTP API on 127.0.0.1:3000, the order history,
//!                      and the publisher of the store's events to the bus
//! storefront work      the checkout worker: consumer group `checkout`
//! ```
//!
//! Both need PostgreSQL (`DATABASE_URL`, schema `storefront`) and Redis
//! (`REDIS_URL`).

use std::sync::Arc;
use std::time::Duration;

use composable_rust::postgres::{PostgresEventStore, PostgresProjectionStore};
use composable_rust::redis::RedisStreamsEventBus;
use composable_rust::{ProjectionManager, SagaRuntime};
use storefront::api;
use storefront::cashier::Cashier;
use storefront::checkout::CheckoutSaga;
use storefront::history::OrderHistory;
use storefront::payment::FakeGateway;
use storefront::shop::Shop;
use storefront::worker;

/// The fake gateway declines charges over this many cents.
const CARD_LIMIT: u64 = 10_000;

type Error = Box<dyn std::error::Error>;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        [] | ["serve"] => serve().await,
        ["work"] => work().await,
        _ => {
            eprintln!("usage: storefront [serve] | storefront work");
            std::process::exit(2);
        }
    }
}

/// The event store, and the bus, from `DATABASE_URL` and `REDIS_URL`.
async fn connect() -> Result<(String, PostgresEventStore, RedisStreamsEventBus), Error> {
    let url = std::env::var("DATABASE_URL").map_err(|_| {
        "DATABASE_URL is not set: the shop stores its events in PostgreSQL. Set it, \
         e.g. DATABASE_URL=postgres://postgres@localhost:5432/postgres"
    })?;
    let redis_url = std::env::var("REDIS_URL").map_err(|_| {
        "REDIS_URL is not set: the shop's events travel over Redis Streams. Set it, \
         e.g. REDIS_URL=redis://127.0.0.1:6379"
    })?;
    let events = PostgresEventStore::connect(&url)
        .await?
        .with_schema("storefront")?;
    events.migrate().await?;
    let bus = RedisStreamsEventBus::connect(&redis_url, "storefront").await?;
    Ok((url, events, bus))
}

/// The HTTP process: the API, the order history, and the publisher.
async fn serve() -> Result<(), Error> {
    let (url, events, bus) = connect().await?;
    let read_model = PostgresProjectionStore::connect(&url)
        .await?
        .with_schema("storefront")?;
    read_model.migrate().await?;
    let read_model = Arc::new(read_model);
    let history =
        ProjectionManager::new(OrderHistory::new(), Arc::clone(&read_model), events.clone());
    history.catch_up().await?;
    let _history = history.start();

    // Every event stored from now on, and every one not published before,
    // goes to the bus.
    let publisher = worker::publisher(events.clone(), bus, Arc::clone(&read_model));
    let _publisher = publisher.start();

    let app = api::router(Arc::new(Shop::new(events))).merge(api::history_router(read_model));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}

/// The checkout worker: takes the shop's events from the bus and runs the
/// checkout saga on them, until the process is stopped.
async fn work() -> Result<(), Error> {
    let (_, events, bus) = connect().await?;
    let shop = Arc::new(Shop::new(events.clone()));
    let gateway = Arc::new(FakeGateway::new(CARD_LIMIT));
    let cashier = Cashier::new(shop, events.clone(), gateway);
    let checkout = SagaRuntime::new(CheckoutSaga, events, cashier);
    // Commands an earlier run recorded but did not deliver.
    checkout.resume().await?;

    let mut subscription = worker::subscribe(&bus, "checkout-1").await?;
    println!(
        "checkout worker: consumer checkout-1 of group {}",
        worker::GROUP
    );
    loop {
        worker::deliver(&checkout, subscription.as_mut(), Duration::from_secs(5)).await?;
    }
}
