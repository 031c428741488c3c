//! The shop on PostgreSQL. Needs `DATABASE_URL`; each test works in a
//! schema of its own (`TestSchema`), dropped when the test ends.

use composable_rust::postgres::PostgresEventStore;
use composable_rust::uuid::Uuid;
use composable_rust_testing::fixtures::TestSchema;
use storefront::order::{Line, OrderError, Status};
use storefront::shop::{Shop, ShopError};

/// A shop in a fresh schema. The guard comes last so that it is dropped
/// after the shop's connections.
async fn shop() -> (Shop, TestSchema) {
    let schema = TestSchema::new();
    let events = PostgresEventStore::connect(schema.url())
        .await
        .unwrap()
        .with_schema(schema.name())
        .unwrap();
    events.migrate().await.unwrap();
    (Shop::new(events), schema)
}

fn mugs(quantity: u32) -> Vec<Line> {
    vec![Line {
        sku: "mug".into(),
        quantity,
    }]
}

#[tokio::test]
async fn an_order_is_stored_and_loaded_from_its_events() {
    let (shop, _schema) = shop().await;
    let id = Uuid::new_v4();
    shop.place_order(id, "ada@example.com", mugs(3))
        .await
        .unwrap();
    shop.pay(id, 3_600).await.unwrap();

    let order = shop.order(id).await.unwrap();
    assert_eq!(order.status, Status::Paid);
    assert_eq!(order.total, 3_600);
}

#[tokio::test]
async fn refusals_and_unknown_orders_keep_their_codes() {
    let (shop, _schema) = shop().await;
    let id = Uuid::new_v4();
    let missing = shop.pay(id, 100).await.unwrap_err();
    assert!(matches!(missing, ShopError::NotFound(unknown) if unknown == id));
    assert_eq!(missing.code(), "STORE-E0007");

    shop.place_order(id, "ada@example.com", mugs(1))
        .await
        .unwrap();
    let twice = shop.place_order(id, "ada@example.com", mugs(1)).await;
    assert!(matches!(
        twice,
        Err(ShopError::Rejected(OrderError::AlreadyPlaced))
    ));
}

#[tokio::test]
async fn two_payments_at_once_record_one() {
    let (shop, _schema) = shop().await;
    let id = Uuid::new_v4();
    shop.place_order(id, "ada@example.com", mugs(1))
        .await
        .unwrap();

    // Both load version 1; one append wins, the other is refused, reloads,
    // and is decided again on the paid order.
    let (first, second) = tokio::join!(shop.pay(id, 1_200), shop.pay(id, 1_200));
    let results = [first, second];
    assert_eq!(results.iter().filter(|paid| paid.is_ok()).count(), 1);
    assert!(results.iter().any(|paid| matches!(
        paid,
        Err(ShopError::Rejected(OrderError::NotAllowed {
            status: Status::Paid,
            ..
        }))
    )));
}
