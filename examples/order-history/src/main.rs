//! A short story: customers place orders, one ships, one is cancelled; the
//! order history, in the read database, follows (read-your-writes).
//!
//! Needs `DATABASE_URL` (and optionally `READ_DATABASE_URL`). Each run
//! works in schemas of its own and drops them at the end.

use std::sync::Arc;
use std::time::Duration;

use composable_rust::aggregate::RepositoryError;
use composable_rust::{AggregateRepository, ProjectionManager, TestClock};
use order_history::{Error, Line, Order, OrderCommand, OrderHistory, OrderHistoryApp};
use order_history::{OrderHistoryQueries, OrderView};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let run = uuid::Uuid::new_v4().simple();
    let app =
        OrderHistoryApp::connect(&format!("orders_{run}"), &format!("order_views_{run}")).await?;
    let result = story(&app).await;
    app.drop_schemas().await?;
    result
}

async fn story(app: &OrderHistoryApp) -> Result<(), Error> {
    // ANCHOR: setup
    // The write side: a repository of orders, with a clock we control.
    let clock = TestClock::starting_at("2025-03-01T09:00:00Z".parse()?);
    let orders = AggregateRepository::<Order, _>::new(app.events.clone(), Arc::new(clock.clone()));
    // The read side: the projection, run by a manager, and the queries.
    let projection = OrderHistory::new(app.table.clone());
    let manager =
        ProjectionManager::new(projection, Arc::clone(&app.read_models), app.events.clone());
    let running = manager.start();
    let queries = OrderHistoryQueries::new(app.table.clone());
    let timeout = Duration::from_secs(5);
    // ANCHOR_END: setup

    // ANCHOR: place
    let placed = [
        (
            1001,
            "ada",
            vec![Line::new("book", 2, 2500), Line::new("pen", 1, 350)],
        ),
        (1002, "grace", vec![Line::new("lamp", 1, 4000)]),
        (1003, "ada", vec![Line::new("notebook", 3, 400)]),
    ];
    for (number, customer, lines) in placed {
        let place = OrderCommand::Place {
            customer: customer.into(),
            lines,
        };
        let done = orders.execute(&orders.stream_id(number)?, place).await?;
        // Read your own write: wait until the projection has applied it.
        manager
            .wait_for(done.position.unwrap_or_default(), timeout)
            .await?;
        let view = queries
            .order(&format!("order-{number}"))
            .await?
            .ok_or("missing")?;
        println!(
            "{customer} placed {}, total {}",
            view.order_id,
            money(view.total)
        );
        clock.advance(Duration::from_secs(24 * 3600));
    }
    // ANCHOR_END: place

    // ANCHOR: history
    orders
        .execute(&orders.stream_id(1001)?, OrderCommand::Ship)
        .await?;
    let cancel = OrderCommand::Cancel {
        reason: "changed my mind".into(),
    };
    let done = orders.execute(&orders.stream_id(1002)?, cancel).await?;
    manager
        .wait_for(done.position.unwrap_or_default(), timeout)
        .await?;

    println!("ada's orders, newest first:");
    queries
        .orders_of("ada", 10)
        .await?
        .iter()
        .for_each(print_row);
    println!("grace's orders:");
    queries
        .orders_of("grace", 10)
        .await?
        .iter()
        .for_each(print_row);
    if let Err(RepositoryError::Rejected(error)) = orders
        .execute(&orders.stream_id(1002)?, OrderCommand::Ship)
        .await
    {
        println!("shipping order-1002: refused, {error}");
    }
    // ANCHOR_END: history

    // The read model is disposable: rebuild it from the events.
    manager.rebuild().await?;
    manager
        .wait_for(done.position.unwrap_or_default(), timeout)
        .await?;
    let ada = queries.orders_of("ada", 10).await?.len();
    println!("rebuilt from the events: ada still has {ada} orders");
    manager.shutdown();
    running.await??;
    Ok(())
}

fn print_row(view: &OrderView) {
    let (day, status) = (&view.placed_at[..10], format!("{:?}", view.status));
    let line = format!(
        "  {}  {day}  {status:<9}  {:>6}",
        view.order_id,
        money(view.total)
    );
    match &view.cancel_reason {
        Some(reason) => println!("{line}  ({reason})"),
        None => println!("{line}"),
    }
}

/// Cents as `12.34`.
fn money(cents: u64) -> String {
    format!("{}.{:02}", cents / 100, cents % 100)
}
