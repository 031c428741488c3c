//! The inventory scenario, start to finish, printed step by step: products
//! registered, stock received, reservations (one refused, one shipped, one
//! expiring), low stock raising an alert and a purchase order, the goods
//! received, and the final stock table.
//!
//! Runs on PostgreSQL (`DATABASE_URL`, schema `inventory`) and Redis
//! (`REDIS_URL`, key prefix `inventory`), both reset at the start so every
//! run prints the same. Time is a simulated clock (`TestClock`): the
//! reservation time-to-live of 15 minutes passes in an instant, and the
//! output stays the same from run to run. A real deployment passes
//! `SystemClock` instead; nothing else changes.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use composable_rust::TestClock;
use composable_rust::postgres::{PostgresEventStore, PostgresProjectionStore};
use composable_rust::redis::{RedisProjectionStore, RedisStreamsEventBus};
use inventory::errors::InventoryError;
use inventory::{AlertStatus, FakeSupplier, Inventory, Parts, ReserveRequest};

/// The schema and key prefix the demo owns (and resets).
const SCHEMA: &str = "inventory";
const PREFIX: &str = "inventory";
const TTL: Duration = Duration::from_secs(15 * 60);

type Error = Box<dyn std::error::Error>;

#[tokio::main]
async fn main() -> ExitCode {
    // Errors are printed with their message (code, cause, what to do),
    // not their debug form.
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("inventory: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), Error> {
    let database_url = setting(
        "DATABASE_URL",
        "postgres://postgres@localhost:5432/postgres",
    )?;
    let redis_url = setting("REDIS_URL", "redis://127.0.0.1:6379")?;
    reset(&database_url, &redis_url).await?;

    let clock = TestClock::new();
    let supplier = Arc::new(FakeSupplier::new());
    let inventory = Inventory::start(Parts {
        events: PostgresEventStore::connect(&database_url)
            .await?
            .with_schema(SCHEMA)?,
        read_store: PostgresProjectionStore::connect(&database_url)
            .await?
            .with_schema(SCHEMA)?,
        bus: Arc::new(RedisStreamsEventBus::connect(&redis_url, PREFIX).await?),
        clock: Arc::new(clock.clone()),
        supplier: supplier.clone(),
        reservation_ttl: TTL,
        bus_wait: Duration::from_millis(100),
    })
    .await?;

    println!("1. Register two products.");
    inventory.register("WIDGET", "Widget", 10, 50).await?;
    inventory.register("GADGET", "Gadget", 5, 20).await?;
    println!("   WIDGET (reorder below 10, order 50), GADGET (reorder below 5, order 20)");

    println!("2. Receive stock.");
    for (sku, warehouse, quantity) in [
        ("WIDGET", "east", 40),
        ("WIDGET", "west", 15),
        ("GADGET", "east", 30),
    ] {
        let stock = inventory.receive(sku, warehouse, quantity).await?;
        println!(
            "   {quantity} x {sku} into {warehouse}: on hand {}",
            stock.on_hand
        );
    }

    println!(
        "3. Reserve stock for orders (each holds for {} minutes).",
        TTL.as_secs() / 60
    );
    reserve(&inventory, "r-1", "order-1", "WIDGET", "east", 5).await?;
    reserve(&inventory, "r-2", "order-2", "GADGET", "east", 10).await?;
    reserve(&inventory, "r-3", "order-3", "WIDGET", "west", 20).await?;
    reserve(&inventory, "r-4", "order-4", "SPROCKET", "east", 1).await?;
    inventory.process().await?;

    println!("4. Order 1 ships: its reservation is committed.");
    inventory.commit("WIDGET", "r-1").await?;
    inventory.process().await?;
    println!(
        "   5 x WIDGET leave east; r-1's expiry is cancelled ({} reservation timeout left)",
        inventory.expiry().armed_timeouts()
    );

    println!("5. Order 2 never ships; 16 minutes pass.");
    clock.advance(Duration::from_secs(16 * 60));
    inventory.process().await?;
    print_journal(&inventory);
    if let Some(level) = inventory
        .read_models()
        .stock_level("GADGET", "east")
        .await?
    {
        println!("   GADGET in east: available {} again", level.available);
    }

    println!("6. A big order takes WIDGET in east below its reorder point.");
    reserve(&inventory, "r-5", "order-5", "WIDGET", "east", 30).await?;
    inventory.process().await?;
    print_journal(&inventory);
    print_alerts(&inventory, "   open alerts:", Some(AlertStatus::Open)).await?;
    reserve(&inventory, "r-6", "order-6", "WIDGET", "east", 2).await?;
    inventory.process().await?;
    println!(
        "   still low, but a purchase order is open: the supplier has {} order(s)",
        supplier.orders().len()
    );

    println!("7. The supplier's delivery arrives at the east dock.");
    let delivery = supplier
        .ship("PO-WIDGET-east-1")
        .ok_or("the supplier never received PO-WIDGET-east-1")?;
    let stock = inventory.receive_delivery(&delivery).await?;
    println!(
        "   {} x {} booked against {}: available {}",
        delivery.quantity,
        delivery.sku,
        delivery.purchase_order,
        stock.available()
    );
    let again = inventory.receive_delivery(&delivery).await?;
    println!(
        "   the same delivery note booked again: available still {}",
        again.available()
    );
    inventory.process().await?;
    let saga = inventory
        .replenishment()
        .instance(&composable_rust::saga::SagaId::new("PO-WIDGET-east-1")?)
        .await?;
    let outcome = saga
        .outcome()
        .map_or_else(|| "still running".to_owned(), |outcome| outcome.to_string());
    println!("   replenishment PO-WIDGET-east-1: {outcome}");
    print_alerts(&inventory, "   alerts:", None).await?;

    println!("8. Stock by warehouse.");
    println!(
        "   {:<8} {:<6} {:>7} {:>8} {:>9} {:>8} {:>7}",
        "sku", "where", "on hand", "reserved", "available", "on order", "shipped"
    );
    for level in inventory.read_models().all_stock().await? {
        println!(
            "   {:<8} {:<6} {:>7} {:>8} {:>9} {:>8} {:>7}",
            level.sku,
            level.warehouse,
            level.on_hand,
            level.reserved,
            level.available,
            level.on_order,
            level.shipped
        );
    }
    let east = inventory.read_models().stock_in_warehouse("east").await?;
    let widget = inventory.read_models().stock_of_sku("WIDGET").await?;
    println!(
        "   east holds {} sku(s); WIDGET is in {} warehouse(s)",
        east.len(),
        widget.len()
    );

    inventory.shutdown().await;
    Ok(())
}

/// Reserves, and prints the outcome: the stock left, or the refusal (its
/// message starts with its code).
async fn reserve(
    inventory: &Inventory,
    reservation_id: &str,
    order_id: &str,
    sku: &str,
    warehouse: &str,
    quantity: u32,
) -> Result<(), Error> {
    let request = ReserveRequest {
        reservation_id: reservation_id.into(),
        order_id: order_id.into(),
        sku: sku.into(),
        warehouse: warehouse.into(),
        quantity,
    };
    match inventory.reserve(&request).await {
        Ok(stock) => println!(
            "   {order_id}: {quantity} x {sku} from {warehouse} reserved ({reservation_id}); \
             available {}",
            stock.available()
        ),
        // A refusal is part of the story; anything else stops the demo.
        Err(InventoryError::Rejected(rejection)) => {
            println!("   {order_id}: refused: {rejection}");
        }
        Err(error) => return Err(error.into()),
    }
    Ok(())
}

/// Prints what the sagas' commands did since the last call.
fn print_journal(inventory: &Inventory) {
    for line in inventory.journal().drain() {
        println!("   - {line}");
    }
}

/// Prints the alerts with `status` (all with `None`).
async fn print_alerts(
    inventory: &Inventory,
    title: &str,
    status: Option<AlertStatus>,
) -> Result<(), Error> {
    let alerts = inventory.read_models().alerts(status).await?;
    if alerts.is_empty() {
        println!("{title} none");
    } else {
        println!("{title}");
    }
    for alert in alerts {
        println!(
            "     {} {:?}: available {} (reorder point {})",
            alert.id, alert.status, alert.available, alert.reorder_point
        );
    }
    Ok(())
}

/// Drops the demo's schema and deletes its Redis keys, so every run starts
/// from nothing and prints the same. The schema name is a constant; it is
/// quoted all the same.
async fn reset(database_url: &str, redis_url: &str) -> Result<(), Error> {
    let pool = sqlx::PgPool::connect(database_url).await?;
    sqlx::query(&format!("DROP SCHEMA IF EXISTS \"{SCHEMA}\" CASCADE"))
        .execute(&pool)
        .await?;
    pool.close().await;
    RedisProjectionStore::connect(redis_url, PREFIX)
        .await?
        .clear()
        .await?;
    Ok(())
}

/// The environment variable `name`, or an error saying how to set it.
fn setting(name: &'static str, example: &'static str) -> Result<String, InventoryError> {
    std::env::var(name)
        .ok()
        .filter(|value| !value.is_empty())
        .ok_or(InventoryError::MissingSetting { name, example })
}
