//! The storefront's HTTP server: orders stored in PostgreSQL
//! (`DATABASE_URL`, schema `storefront`), the order history kept up to date
//! in the same schema, every placed order taken through checkout by the
//! checkout saga, the API on 127.0.0.1:3000.

use std::sync::Arc;
use std::time::Duration;

use composable_rust::postgres::{PostgresEventStore, PostgresProjectionStore};
use composable_rust::projection::EventSource;
use composable_rust::{Position, ProjectionManager, SagaRuntime};
use storefront::api;
use storefront::cashier::Cashier;
use storefront::checkout::CheckoutSaga;
use storefront::history::OrderHistory;
use storefront::payment::FakeGateway;
use storefront::shop::Shop;

/// The fake gateway declines charges over this many cents.
const CARD_LIMIT: u64 = 10_000;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("DATABASE_URL").map_err(|_| {
        "DATABASE_URL is not set: the shop stores its events in PostgreSQL. Set it, \
         e.g. DATABASE_URL=postgres://postgres@localhost:5432/postgres"
    })?;
    let events = PostgresEventStore::connect(&url)
        .await?
        .with_schema("storefront")?;
    events.migrate().await?;
    let shop = Arc::new(Shop::new(events.clone()));

    // The read side: the read model's tables, and the manager that applies
    // the order events to them, from the checkpoint it committed last.
    let read_model = PostgresProjectionStore::connect(&url)
        .await?
        .with_schema("storefront")?;
    read_model.migrate().await?;
    let read_model = Arc::new(read_model);
    let history =
        ProjectionManager::new(OrderHistory::new(), Arc::clone(&read_model), events.clone());
    history.catch_up().await?;
    // Follow new events on a task of its own, as long as the server runs.
    let _running = history.start();

    // The checkout: the saga's runtime, with the cashier as its dispatcher.
    let gateway = Arc::new(FakeGateway::new(CARD_LIMIT));
    let cashier = Cashier::new(Arc::clone(&shop), events.clone(), gateway);
    let checkout = SagaRuntime::new(CheckoutSaga, events.clone(), cashier);
    // Commands an earlier run recorded but did not deliver.
    checkout.resume().await?;
    tokio::spawn(run_checkout(checkout, events));

    let app = api::router(shop).merge(api::history_router(read_model));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}

/// Hands every stored event to the checkout saga, from the start of the
/// store (events it already handled are recognised and skipped), then each
/// new one as it is stored.
async fn run_checkout(checkout: SagaRuntime<CheckoutSaga>, events: PostgresEventStore) {
    let mut stored = EventSource::subscribe(&events);
    let mut position = Position::START;
    loop {
        match checkout.catch_up(&events, position).await {
            Ok(reached) => position = reached,
            Err(error) => eprintln!("checkout: {error}"),
        }
        // Wake up for new events, or after a while to retry a failure.
        let _ = tokio::time::timeout(Duration::from_secs(5), stored.changed()).await;
    }
}
