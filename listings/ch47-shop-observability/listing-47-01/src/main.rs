//! The storefront, as two processes:
//!
//! ```text
//! storefront [serve]   the HTTP API on 127.0.0.1:3000, the order history,
//!                      and the publisher of the store's events to the bus
//! storefront work      the checkout worker: consumer group `checkout`
//! ```
//!
//! Both need PostgreSQL (`DATABASE_URL`, schema `storefront`) and Redis
//! (`REDIS_URL`), log to standard error, and stop gracefully on Ctrl-C.
//! `serve` also answers `GET /metrics`, `/health` and `/ready`.

use std::sync::Arc;
use std::time::Duration;

use composable_rust::postgres::{PostgresEventStore, PostgresProjectionStore};
use composable_rust::redis::RedisStreamsEventBus;
use composable_rust::shutdown::ShutdownGroup;
use composable_rust::{ProjectionManager, SagaRuntime};
use storefront::api;
use storefront::cashier::Cashier;
use storefront::checkout::CheckoutSaga;
use storefront::history::OrderHistory;
use storefront::ops::{self, Ops};
use storefront::payment::FakeGateway;
use storefront::shop::Shop;
use storefront::worker;

/// The fake gateway declines charges over this many cents.
const CARD_LIMIT: u64 = 10_000;

/// The HTTP process is ready while the order history is at most this many
/// events behind.
const MAX_BEHIND: u64 = 100;

/// How long the runners have, all together, to finish what they hold.
const SHUTDOWN_DEADLINE: Duration = Duration::from_secs(10);

type Error = Box<dyn std::error::Error>;

#[tokio::main]
async fn main() -> Result<(), Error> {
    ops::init_tracing();
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

// ANCHOR: serve
/// The HTTP process: the API, the order history, the publisher, and the
/// operations routes.
async fn serve() -> Result<(), Error> {
    let metrics = ops::install_metrics()?;
    let (url, events, bus) = connect().await?;
    let read_model = PostgresProjectionStore::connect(&url)
        .await?
        .with_schema("storefront")?;
    read_model.migrate().await?;
    let read_model = Arc::new(read_model);
    let history =
        ProjectionManager::new(OrderHistory::new(), Arc::clone(&read_model), events.clone());
    history.catch_up().await?;
    let publisher = worker::publisher(events.clone(), bus, Arc::clone(&read_model));

    // The runners stop in this order, after the server: nothing new comes
    // in, then each finishes and checkpoints the batch it holds.
    let mut runners = ShutdownGroup::new();
    runners.add("projection:order-history", history.clone());
    runners.add("publisher", publisher.clone());
    drop(history.start());
    drop(publisher.start());

    let health = Arc::new(ops::health(&events, &history, MAX_BEHIND));
    let app = api::router(Arc::new(Shop::new(events)))
        .merge(api::history_router(read_model))
        .merge(ops::router(Ops { metrics, health }));
    let app = ops::with_request_ids(app);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    tracing::info!("listening on http://{}", listener.local_addr()?);
    // On Ctrl-C: stop accepting, finish the requests in flight, return.
    axum::serve(listener, app)
        .with_graceful_shutdown(ops::ctrl_c())
        .await?;
    let report = runners.shutdown(SHUTDOWN_DEADLINE).await?;
    tracing::info!(?report, "stopped");
    Ok(())
}
// ANCHOR_END: serve

// ANCHOR: work
/// The checkout worker: takes the shop's events from the bus and runs the
/// checkout saga on them, until Ctrl-C.
async fn work() -> Result<(), Error> {
    let (_, events, bus) = connect().await?;
    let shop = Arc::new(Shop::new(events.clone()));
    let gateway = Arc::new(FakeGateway::new(CARD_LIMIT));
    let cashier = Cashier::new(shop, events.clone(), gateway);
    let checkout = SagaRuntime::new(CheckoutSaga, events, cashier);
    // Commands an earlier run recorded but did not deliver.
    checkout.resume().await?;

    let mut subscription = worker::subscribe(&bus, "checkout-1").await?;
    tracing::info!(
        group = worker::GROUP,
        "checkout worker: consumer checkout-1"
    );
    let mut runners = ShutdownGroup::new();
    runners.spawn("consumer:checkout", move |stop| async move {
        // The token is looked at between batches only: a batch received
        // is handled and acknowledged before the loop ends.
        while !stop.is_cancelled() {
            let wait = Duration::from_secs(1);
            if let Err(error) = worker::deliver(&checkout, subscription.as_mut(), wait).await {
                tracing::warn!(%error, "checkout: the bus failed; trying again in a second");
                tokio::time::sleep(wait).await;
            }
        }
        // Let the commands being delivered finish.
        checkout.shutdown().await;
    });
    ops::ctrl_c().await;
    let report = runners.shutdown(SHUTDOWN_DEADLINE).await?;
    tracing::info!(?report, "stopped");
    Ok(())
}
// ANCHOR_END: work
