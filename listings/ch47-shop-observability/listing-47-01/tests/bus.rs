//! The checkout over the bus: the publisher puts the store's events on
//! Redis Streams, the worker's consumer hands them to the checkout saga.
//! Needs `DATABASE_URL` and `REDIS_URL`; each test has a schema and a key
//! prefix of its own, deleted at the end.

use std::sync::Arc;
use std::time::Duration;

use composable_rust::postgres::{PostgresEventStore, PostgresProjectionStore};
use composable_rust::prelude::*;
use composable_rust::redis::RedisStreamsEventBus;
use composable_rust::uuid::Uuid;
use composable_rust::{EventPublisher, SagaRuntime};
use composable_rust_testing::fixtures::{TestKeyPrefix, TestSchema};
use storefront::cashier::Cashier;
use storefront::checkout::CheckoutSaga;
use storefront::order::{Line, Status};
use storefront::payment::FakeGateway;
use storefront::shop::Shop;
use storefront::worker;

const NO_WAIT: Duration = Duration::ZERO;

/// Everything both processes need, on a fresh schema and key prefix (the
/// guards come last, so they are dropped after the connections).
struct Setup {
    shop: Arc<Shop>,
    publisher: EventPublisher<PostgresProjectionStore>,
    checkout: SagaRuntime<CheckoutSaga>,
    bus: RedisStreamsEventBus,
    _prefix: TestKeyPrefix,
    _schema: TestSchema,
}

async fn setup() -> Setup {
    let schema = TestSchema::new();
    let prefix = TestKeyPrefix::new();
    let events = PostgresEventStore::connect(schema.url())
        .await
        .unwrap()
        .with_schema(schema.name())
        .unwrap();
    events.migrate().await.unwrap();
    let checkpoints = PostgresProjectionStore::connect(schema.url())
        .await
        .unwrap()
        .with_schema(schema.name())
        .unwrap();
    checkpoints.migrate().await.unwrap();
    let bus = RedisStreamsEventBus::connect(prefix.url(), prefix.as_str())
        .await
        .unwrap();

    let shop = Arc::new(Shop::new(events.clone()));
    let publisher = worker::publisher(events.clone(), bus.clone(), Arc::new(checkpoints));
    let gateway = Arc::new(FakeGateway::new(10_000));
    let cashier = Cashier::new(Arc::clone(&shop), events.clone(), gateway);
    let checkout = SagaRuntime::new(CheckoutSaga, events, cashier);
    Setup {
        shop,
        publisher,
        checkout,
        bus,
        _prefix: prefix,
        _schema: schema,
    }
}

async fn place(shop: &Shop, sku: &str, quantity: u32) -> Uuid {
    let id = Uuid::new_v4();
    let lines = vec![Line {
        sku: sku.into(),
        quantity,
    }];
    shop.place_order(id, "ada@example.com", lines)
        .await
        .unwrap();
    id
}

/// Publishes and delivers until neither has anything left: the saga's
/// commands append events, which are published and delivered in turn.
async fn run_until_idle(setup: &Setup, subscription: &mut dyn Subscription) {
    loop {
        let published = setup.publisher.publish_pending().await.unwrap();
        let handled = worker::deliver(&setup.checkout, subscription, NO_WAIT)
            .await
            .unwrap();
        if published == 0 && handled == 0 {
            return;
        }
    }
}

#[tokio::test]
async fn the_worker_checks_orders_out_from_the_bus() {
    let setup = setup().await;
    let mut subscription = worker::subscribe(&setup.bus, "checkout-1").await.unwrap();
    let cheap = place(&setup.shop, "mug", 2).await;
    let dear = place(&setup.shop, "tee", 5).await;

    run_until_idle(&setup, subscription.as_mut()).await;

    assert_eq!(setup.shop.order(cheap).await.unwrap().status, Status::Paid);
    assert_eq!(
        setup.shop.order(dear).await.unwrap().status,
        Status::Cancelled
    );
    // Every message was acknowledged: nothing is left pending in the group.
    let pending = setup.bus.pending(&worker::topic(), worker::GROUP).await;
    assert!(pending.unwrap().is_empty());
}

#[tokio::test]
async fn a_message_received_but_not_acknowledged_comes_back() {
    let setup = setup().await;
    let order = place(&setup.shop, "cap", 1).await;
    setup.publisher.publish_pending().await.unwrap();

    // A worker receives the order's event and dies before handling it.
    let mut crashed = worker::subscribe(&setup.bus, "checkout-1").await.unwrap();
    assert_eq!(crashed.receive(100, NO_WAIT).await.unwrap().len(), 1);
    drop(crashed);
    assert_eq!(
        setup.shop.order(order).await.unwrap().status,
        Status::Placed
    );

    // Restarted under the same name, it gets the message back first.
    let mut restarted = worker::subscribe(&setup.bus, "checkout-1").await.unwrap();
    run_until_idle(&setup, restarted.as_mut()).await;
    assert_eq!(setup.shop.order(order).await.unwrap().status, Status::Paid);
}
