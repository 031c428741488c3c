//! The shop on an event bus. The HTTP process publishes every event of the
//! store to the topic `storefront` (Redis Streams); the checkout worker
//! reads the topic as the consumer group `checkout` and hands each event to
//! the checkout saga.

use std::sync::Arc;
use std::time::Duration;

use composable_rust::postgres::{PostgresEventStore, PostgresProjectionStore};
use composable_rust::prelude::*;
use composable_rust::redis::RedisStreamsEventBus;
use composable_rust::{EventBusError, EventPublisher, SagaRuntime, SubscribeOptions, Topic};

use crate::checkout::CheckoutSaga;

// ANCHOR: publish
/// The topic every event of the shop is published to.
pub const TOPIC: &str = "storefront";

/// The consumer group of the checkout workers.
pub const GROUP: &str = "checkout";

/// The topic, as a `Topic`.
pub fn topic() -> Topic {
    Topic::new(TOPIC).expect("`storefront` is a valid topic name")
}

/// A publisher of every event of `events` to the topic. Its checkpoint
/// (how far it has published) is kept in `checkpoints`, under the name
/// `bus-publisher`.
pub fn publisher(
    events: PostgresEventStore,
    bus: RedisStreamsEventBus,
    checkpoints: Arc<PostgresProjectionStore>,
) -> EventPublisher<PostgresProjectionStore> {
    EventPublisher::new("bus-publisher", events, bus, checkpoints, topic())
}
// ANCHOR_END: publish

// ANCHOR: consume
/// Joins the group `checkout` as `consumer`. Keep a consumer's name across
/// restarts: messages it received and did not acknowledge come back to it
/// first.
pub async fn subscribe(
    bus: &RedisStreamsEventBus,
    consumer: &str,
) -> Result<Box<dyn Subscription>, EventBusError> {
    bus.subscribe(SubscribeOptions::new(topic(), GROUP, consumer)?)
        .await
}

/// Receives up to 100 messages (waiting up to `wait` for the first),
/// hands each to the checkout saga, and acknowledges those it handled.
/// Returns how many it handled.
///
/// A message the saga could not handle (the event store is down) is not
/// acknowledged: the bus delivers it again after the visibility timeout
/// (30 s), and moves it to the dead-letter topic after five deliveries.
pub async fn deliver(
    checkout: &SagaRuntime<CheckoutSaga>,
    subscription: &mut dyn Subscription,
    wait: Duration,
) -> Result<usize, EventBusError> {
    let messages = subscription.receive(100, wait).await?;
    let mut handled = 0;
    for message in &messages {
        match checkout.handle(&message.event).await {
            Ok(_) => {
                subscription.ack(message).await?;
                handled += 1;
            }
            Err(error) => eprintln!(
                "event {} (delivery {}) not handled, it will come back: {error}",
                message.event.event_id, message.deliveries
            ),
        }
    }
    Ok(handled)
}
// ANCHOR_END: consume
