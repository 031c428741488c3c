//! The storefront's HTTP server: orders stored in PostgreSQL
//! (`DATABASE_URL`, schema `storefront`), the API on 127.0.0.1:3000.

use std::sync::Arc;

use composable_rust::postgres::PostgresEventStore;
use storefront::api;
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
    let app = api::router(Arc::new(Shop::new(events)));

    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}
