//! The checkout saga fed by an event bus instead of the event store: an
//! `EventPublisher` publishes the store to a topic, and a consumer calls
//! `SagaRuntime::handle` for each message, acknowledging it only once
//! handled. A consumer that dies before acknowledging gets its messages
//! again; the saga recognises them and nothing runs twice.
//!
//! Every test runs on the in-memory bus and on Redis Streams (`REDIS_URL`).

use std::sync::Arc;
use std::time::Duration;

use checkout::{CheckoutApp, CheckoutSaga, FakeInventory, FakePayment, LineItem, OrderStatus};
use composable_rust::event_bus::{EventPublisher, Subscription};
use composable_rust::prelude::*;
use composable_rust::redis::{RedisProjectionStore, RedisStreamsEventBus};
use composable_rust::saga::Handled;
use composable_rust::testing::services;
use composable_rust::{EventBus, InMemoryEventBus, SubscribeOptions, Topic};
use composable_rust::{InMemoryEventStore, InMemoryProjectionStore, TestClock};

struct World<B> {
    store: Arc<dyn EventStore>,
    bus: B,
    publisher: EventPublisher<InMemoryProjectionStore>,
    topic: Topic,
    inventory: Arc<FakeInventory>,
    payment: Arc<FakePayment>,
}

impl<B: EventBus + Clone> World<B> {
    fn new(bus: B) -> Self {
        let store: Arc<dyn EventStore> = Arc::new(InMemoryEventStore::new());
        let topic = Topic::new("checkout").unwrap();
        let publisher = EventPublisher::new(
            "bus-publisher",
            Arc::clone(&store),
            bus.clone(),
            Arc::new(InMemoryProjectionStore::new()),
            topic.clone(),
        );
        Self {
            store,
            bus,
            publisher,
            topic,
            inventory: Arc::new(FakeInventory::with_stock([("book", 5)])),
            payment: Arc::new(FakePayment::new()),
        }
    }

    async fn start(&self) -> CheckoutApp {
        CheckoutApp::start(
            Arc::clone(&self.store),
            Arc::new(TestClock::new()),
            CheckoutSaga::new(Duration::from_secs(30)),
            self.inventory.clone(),
            self.payment.clone(),
        )
        .await
        .unwrap()
    }

    async fn subscribe(&self) -> Box<dyn Subscription> {
        self.bus
            .subscribe(
                SubscribeOptions::new(self.topic.clone(), "checkout-saga", "saga-1").unwrap(),
            )
            .await
            .unwrap()
    }
}

/// Publishes what is new, and hands every message to the saga, until
/// nothing new happens; acknowledges each message once handled.
async fn deliver<B: EventBus + Clone>(
    world: &World<B>,
    app: &CheckoutApp,
    consumer: &mut Box<dyn Subscription>,
) {
    loop {
        world.publisher.publish_pending().await.unwrap();
        let messages = consumer.receive(16, Duration::ZERO).await.unwrap();
        if messages.is_empty() {
            return;
        }
        for message in messages {
            app.runtime().handle(&message.event).await.unwrap();
            consumer.ack(&message).await.unwrap();
        }
    }
}

async fn a_checkout_runs_over_the_bus<B: EventBus + Clone>(bus: B) {
    let world = World::new(bus);
    let app = world.start().await;
    let mut consumer = world.subscribe().await;
    app.place_order("1001", "ada", vec![LineItem::new("book", 2, 1500)])
        .await
        .unwrap();
    deliver(&world, &app, &mut consumer).await;

    assert_eq!(
        app.order("1001").await.unwrap().status,
        OrderStatus::Confirmed
    );
    assert_eq!(world.payment.stats().charges, 1);
}

async fn a_consumer_that_dies_before_acknowledging_changes_nothing_twice<B: EventBus + Clone>(
    bus: B,
) {
    let world = World::new(bus);
    let app = world.start().await;
    let mut consumer = world.subscribe().await;
    app.place_order("1001", "ada", vec![LineItem::new("book", 2, 1500)])
        .await
        .unwrap();
    world.publisher.publish_pending().await.unwrap();

    // The consumer handles `order.placed` (the inventory is reserved) and
    // dies before acknowledging it.
    let messages = consumer.receive(16, Duration::ZERO).await.unwrap();
    assert_eq!(messages.len(), 1);
    app.runtime().handle(&messages[0].event).await.unwrap();
    drop(consumer);

    // It comes back under the same name and gets the message again: the
    // saga has handled it already.
    let mut consumer = world.subscribe().await;
    let again = consumer.receive(16, Duration::ZERO).await.unwrap();
    assert_eq!(again[0].event.event_id, messages[0].event.event_id);
    assert!(matches!(
        app.runtime().handle(&again[0].event).await.unwrap(),
        Handled::Duplicate(_)
    ));
    consumer.ack(&again[0]).await.unwrap();
    deliver(&world, &app, &mut consumer).await;

    assert_eq!(
        app.order("1001").await.unwrap().status,
        OrderStatus::Confirmed
    );
    assert_eq!(world.inventory.stats().calls, 1);
    assert_eq!(world.payment.stats().calls, 1);
}

#[tokio::test]
async fn a_checkout_runs_over_the_in_memory_bus() {
    a_checkout_runs_over_the_bus(InMemoryEventBus::new()).await;
}

#[tokio::test]
async fn a_dying_consumer_changes_nothing_twice_on_the_in_memory_bus() {
    a_consumer_that_dies_before_acknowledging_changes_nothing_twice(InMemoryEventBus::new()).await;
}

#[tokio::test]
async fn a_checkout_runs_over_redis_streams() {
    let (bus, prefix) = redis_bus().await;
    a_checkout_runs_over_the_bus(bus).await;
    clean_up(&prefix).await;
}

#[tokio::test]
async fn a_dying_consumer_changes_nothing_twice_on_redis_streams() {
    let (bus, prefix) = redis_bus().await;
    a_consumer_that_dies_before_acknowledging_changes_nothing_twice(bus).await;
    clean_up(&prefix).await;
}

/// A Redis Streams bus under a prefix of its own.
async fn redis_bus() -> (RedisStreamsEventBus, String) {
    let prefix = format!(
        "checkout-test:{}",
        composable_rust::uuid::Uuid::new_v4().simple()
    );
    let bus = RedisStreamsEventBus::connect(&services::redis_url(), &prefix)
        .await
        .unwrap();
    (bus, prefix)
}

/// Deletes every key under `prefix`.
async fn clean_up(prefix: &str) {
    let keys = RedisProjectionStore::connect(&services::redis_url(), prefix)
        .await
        .unwrap();
    keys.clear().await.unwrap();
}
