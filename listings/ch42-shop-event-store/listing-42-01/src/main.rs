//! Places an order on PostgreSQL (`DATABASE_URL`, schema `storefront`),
//! pays it twice and ships it, and prints what the shop answers.

use composable_rust::postgres::PostgresEventStore;
use composable_rust::uuid::Uuid;
use storefront::order::Line;
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
    let shop = Shop::new(events);

    let id = Uuid::new_v4();
    let lines = vec![Line {
        sku: "tee".into(),
        quantity: 1,
    }];
    let placed = shop.place_order(id, "ada@example.com", lines).await?;
    println!("placed: {} cents", placed.total);
    for amount in [2_500, 2_500] {
        match shop.pay(id, amount).await {
            Ok(order) => println!("paid: the order is {}", order.status),
            Err(error) => println!("refused: [{}] {error}", error.code()),
        }
    }
    shop.ship(id).await?;
    println!(
        "loaded again: the order is {}",
        shop.order(id).await?.status
    );
    Ok(())
}
