//! The replenishment saga, on PostgreSQL: low stock → purchase order →
//! goods received → done; and the idempotency that keeps it to one
//! purchase order: one open order per sku and warehouse, redelivered
//! events ignored, commands repeated to the supplier ordering once.

mod common;

use common::{event_types, harness, reservation};
use composable_rust::CodedError;
use composable_rust::prelude::*;
use composable_rust::saga::{Handled, SagaId, SagaOutcome};
use inventory::replenishment::Stage;

const PO: &str = "PO-LAMP-east-1";

/// A lamp with reorder point 10 and reorder quantity 25, 12 in east.
async fn lamp(h: &common::Harness) {
    h.inventory.register("LAMP", "Lamp", 10, 25).await.unwrap();
    h.inventory.receive("LAMP", "east", 12).await.unwrap();
}

#[tokio::test]
async fn low_stock_orders_from_the_supplier_and_the_goods_restock_the_warehouse() {
    let h = harness().await;
    let inv = &h.inventory;
    lamp(&h).await;
    inv.process().await.unwrap();
    assert!(h.supplier.orders().is_empty(), "12 is not below 10");

    // 12 - 5 = 7 < 10: low, and a reorder.
    inv.reserve(&reservation("r1", "LAMP", "east", 5))
        .await
        .unwrap();
    inv.process().await.unwrap();
    let orders = h.supplier.orders();
    assert_eq!(orders.len(), 1);
    assert_eq!(
        (
            orders[0].purchase_order.as_str(),
            orders[0].sku.as_str(),
            orders[0].quantity
        ),
        (PO, "LAMP", 25)
    );
    let product = inv.product("LAMP").await.unwrap();
    let open = product.warehouse("east").open_purchase_order.unwrap();
    assert_eq!(open.supplier_reference.as_deref(), Some("SUP-0001"));
    let saga = inv
        .replenishment()
        .instance(&SagaId::new(PO).unwrap())
        .await
        .unwrap();
    assert_eq!(saga.state().stage, Stage::Ordered);
    let level = inv
        .read_models()
        .stock_level("LAMP", "east")
        .await
        .unwrap()
        .unwrap();
    assert_eq!((level.available, level.on_order), (7, 25));

    // The goods arrive: booked against the order, which closes.
    let delivery = h.supplier.ship(PO).unwrap();
    let stock = inv.receive_delivery(&delivery).await.unwrap();
    assert_eq!(stock.available(), 32);
    assert!(stock.open_purchase_order.is_none());
    inv.process().await.unwrap();
    let saga = inv
        .replenishment()
        .instance(&SagaId::new(PO).unwrap())
        .await
        .unwrap();
    assert_eq!(saga.outcome(), Some(SagaOutcome::Completed));
    let level = inv
        .read_models()
        .stock_level("LAMP", "east")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (level.on_hand, level.available, level.on_order),
        (37, 32, 0)
    );
}

#[tokio::test]
async fn one_open_purchase_order_per_sku_and_warehouse() {
    let h = harness().await;
    let inv = &h.inventory;
    lamp(&h).await;
    inv.reserve(&reservation("r1", "LAMP", "east", 5))
        .await
        .unwrap();
    inv.process().await.unwrap();
    // Back above the reorder point, then low again: a second alert, but
    // the purchase order is still open, so no second one.
    inv.release("LAMP", "r1").await.unwrap();
    inv.reserve(&reservation("r2", "LAMP", "east", 6))
        .await
        .unwrap();
    inv.process().await.unwrap();
    let types = event_types(inv, "LAMP").await;
    let count = |name: &str| types.iter().filter(|t| *t == name).count();
    assert_eq!(count("inventory.low_stock"), 2);
    assert_eq!(count("inventory.reorder_requested"), 1);
    assert_eq!(h.supplier.orders().len(), 1);

    // Once received, the next low stock orders again, under a new number.
    let delivery = h.supplier.ship(PO).unwrap();
    inv.receive_delivery(&delivery).await.unwrap();
    // The same delivery note booked twice counts once.
    let again = inv.receive_delivery(&delivery).await.unwrap();
    assert_eq!(again.on_hand, 12 + 25);
    inv.reserve(&reservation("r3", "LAMP", "east", 25))
        .await
        .unwrap();
    inv.process().await.unwrap();
    let numbers: Vec<String> = h
        .supplier
        .orders()
        .into_iter()
        .map(|o| o.purchase_order)
        .collect();
    assert_eq!(numbers, [PO, "PO-LAMP-east-2"]);
}

#[tokio::test]
async fn a_redelivered_event_does_not_order_twice() {
    let h = harness().await;
    let inv = &h.inventory;
    lamp(&h).await;
    inv.reserve(&reservation("r1", "LAMP", "east", 5))
        .await
        .unwrap();
    inv.process().await.unwrap();
    assert_eq!(h.supplier.calls(), 1);

    // The bus (or a catch-up from an old position) delivers the reorder
    // request again: the runtime knows the event's id.
    let stream = StreamId::new("product-LAMP").unwrap();
    let events = inv.store().load_stream(&stream, 0).await.unwrap();
    let request = events
        .iter()
        .find(|event| event.event_type == "inventory.reorder_requested")
        .unwrap();
    let handled = inv.replenishment().handle(request).await.unwrap();
    assert!(matches!(handled, Handled::Duplicate(_)), "{handled:?}");
    assert_eq!(h.supplier.calls(), 1);
    assert_eq!(h.supplier.orders().len(), 1);
}

#[tokio::test]
async fn a_supplier_outage_is_retried_with_the_same_number() {
    let h = harness().await;
    let inv = &h.inventory;
    lamp(&h).await;
    h.supplier.unavailable_for(1);
    inv.reserve(&reservation("r1", "LAMP", "east", 5))
        .await
        .unwrap();

    // The step is recorded, its command pending; the error says so and
    // that retrying helps.
    let error = inv.process().await.unwrap_err();
    assert!(error.is_transient(), "{error}");
    assert!(h.supplier.orders().is_empty());

    // The next round sends it again, under the same number: one order.
    inv.process().await.unwrap();
    assert_eq!(h.supplier.calls(), 2);
    assert_eq!(h.supplier.orders().len(), 1);
    let product = inv.product("LAMP").await.unwrap();
    let open = product.warehouse("east").open_purchase_order.unwrap();
    assert_eq!(
        (open.number.as_str(), open.supplier_reference.is_some()),
        (PO, true)
    );
}
