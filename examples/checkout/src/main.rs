//! Three checkouts against fake gateways, on the system clock: one that
//! succeeds, one whose payment is declined, and one whose payment never
//! answers.

use std::sync::Arc;
use std::time::Duration;

use checkout::domain::money;
use checkout::{CheckoutApp, CheckoutSaga, FakeInventory, FakePayment, LineItem};
use composable_rust::prelude::*;
use composable_rust::{InMemoryEventStore, SystemClock};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Short, so the demo does not keep you waiting; minutes in production.
    let reply_timeout = Duration::from_millis(300);
    let store: Arc<dyn EventStore> = Arc::new(InMemoryEventStore::new());
    let inventory = Arc::new(FakeInventory::with_stock([("book", 10), ("lamp", 2)]));
    let payment = Arc::new(FakePayment::new().declining("bob").not_answering("carol"));
    let app = CheckoutApp::start(
        Arc::clone(&store),
        Arc::new(SystemClock),
        CheckoutSaga::new(reply_timeout),
        inventory.clone(),
        payment.clone(),
    )
    .await?;

    println!("1. Ada orders two books and a lamp; everything succeeds.");
    let items = vec![
        LineItem::new("book", 2, 1500),
        LineItem::new("lamp", 1, 3000),
    ];
    app.place_order("1001", "ada", items).await?;
    app.deliver_events().await?;
    report(&app, "1001").await?;
    let stream = StreamId::new("saga-checkout-1001")?;
    let recorded: Vec<String> = store
        .load_stream(&stream, 0)
        .await?
        .into_iter()
        .map(|event| event.event_type)
        .collect();
    println!("   {stream}: {}", recorded.join(", "));

    println!();
    println!("2. Bob's card is declined; the lamp he reserved goes back on the shelf.");
    app.place_order("1002", "bob", vec![LineItem::new("lamp", 1, 3000)])
        .await?;
    app.deliver_events().await?;
    report(&app, "1002").await?;

    println!();
    println!("3. Carol's bank takes the money, but its answer never arrives.");
    app.place_order("1003", "carol", vec![LineItem::new("book", 1, 1500)])
        .await?;
    app.deliver_events().await?;
    let shown = print_journal(&app, "1003", 0);
    println!("   ... no answer from the payment provider for {reply_timeout:?} ...");
    tokio::time::sleep(reply_timeout + Duration::from_millis(100)).await;
    app.runtime().idle().await;
    app.deliver_events().await?;
    print_journal(&app, "1003", shown);
    print_outcome(&app, "1003").await?;

    println!();
    let stock = inventory.stats();
    let paid = payment.stats();
    println!(
        "inventory: {} reservations, {} released; in stock: book {}, lamp {}",
        stock.reservations,
        stock.releases,
        inventory.stock("book"),
        inventory.stock("lamp")
    );
    println!(
        "payment: {} charged, {} declined, {} refunded; kept {}",
        paid.charges,
        paid.declines,
        paid.refunds,
        money(paid.balance)
    );
    app.runtime().shutdown().await;
    Ok(())
}

/// What the services did for `order_id`, and where its saga and order
/// ended up.
async fn report(app: &CheckoutApp, order_id: &str) -> Result<(), Box<dyn std::error::Error>> {
    print_journal(app, order_id, 0);
    print_outcome(app, order_id).await
}

/// Prints the journal lines of `order_id` after the first `skip`; returns
/// how many lines there are.
fn print_journal(app: &CheckoutApp, order_id: &str, skip: usize) -> usize {
    let lines = app.services().journal().of(order_id);
    for line in lines.iter().skip(skip) {
        println!("   - {line}");
    }
    lines.len()
}

async fn print_outcome(
    app: &CheckoutApp,
    order_id: &str,
) -> Result<(), Box<dyn std::error::Error>> {
    let saga = app.saga(order_id).await?;
    let outcome = saga
        .outcome()
        .map_or_else(|| "still running".to_owned(), |outcome| outcome.to_string());
    let order = app.order(order_id).await?;
    println!("   saga {outcome}; order {order_id} {}", order.status);
    Ok(())
}
