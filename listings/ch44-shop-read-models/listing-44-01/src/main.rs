//! The storefront's HTTP server: orders stored in PostgreSQL
//! (`DATABASE_URL`, schema `storefront`), the order history kept up to date
//! in the same schema, the API on 127.0.0.1:3000.

use std::sync::Arc;

use composable_rust::ProjectionManager;
use composable_rust::postgres::{PostgresEventStore, PostgresProjectionStore};
use storefront::api;
use storefront::history::OrderHistory;
use storefront::shop::Shop;

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

    let app = api::router(Arc::new(Shop::new(events))).merge(api::history_router(read_model));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}
