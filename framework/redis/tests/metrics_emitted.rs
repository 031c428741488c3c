//! The Redis Streams bus reports the event bus metrics of
//! `composable_rust_core::metrics` with `backend="redis"`: published,
//! consumed, acknowledged, redelivered and dead-lettered messages, the
//! group's pending messages and its lag.

use std::time::Duration;

use composable_rust_core::StoredEvent;
use composable_rust_core::event_bus::{EventBus, SubscribeOptions, Topic};
use composable_rust_core::metrics::{BUS_DEAD_LETTERED, BUS_REDELIVERED};
use composable_rust_redis::RedisBusOptions;
use composable_rust_testing::fixtures::TestKeyPrefix;
use composable_rust_testing::metrics::{RecordedMetrics, assert_bus_reports_its_metrics};

async fn fresh_bus(prefix: &TestKeyPrefix) -> composable_rust_redis::RedisStreamsEventBus {
    RedisBusOptions::new(prefix.as_str())
        .unwrap()
        .connect(prefix.url())
        .await
        .unwrap_or_else(|error| panic!("cannot connect to REDIS_URL={}: {error}", prefix.url()))
}

#[tokio::test]
async fn the_redis_bus_counts_its_messages() {
    let prefix = TestKeyPrefix::new();
    let bus = fresh_bus(&prefix).await;
    assert_bus_reports_its_metrics(&bus, "redis").await;
}

#[tokio::test]
async fn the_redis_bus_counts_redeliveries_and_dead_letters() {
    let metrics = RecordedMetrics::install();
    let prefix = TestKeyPrefix::new();
    let bus = fresh_bus(&prefix).await;
    let topic = Topic::new("meters").unwrap();
    // Visibility is server time: a short timeout, and receives that wait
    // for the message to come back (no sleeps).
    let options = SubscribeOptions::new(topic.clone(), "billing", "billing-1")
        .unwrap()
        .with_visibility_timeout(Duration::from_millis(100))
        .with_max_deliveries(2);
    let mut subscription = bus.subscribe(options).await.unwrap();
    let event = StoredEvent::builder("Read", serde_json::json!({ "n": 1 })).build();
    bus.publish(&topic, &event).await.unwrap();
    let first = subscription
        .receive(1, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(first[0].deliveries, 1);
    let again = subscription
        .receive(1, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(again[0].deliveries, 2, "delivered again after the timeout");
    // Not acknowledged again: at the limit, it goes to the dead letters.
    let mut dead = 0;
    while dead == 0 {
        assert!(
            subscription
                .receive(1, Duration::from_millis(500))
                .await
                .unwrap()
                .is_empty()
        );
        dead = bus.topic_len(&topic.dead_letter()).await.unwrap();
    }

    let figures = metrics.snapshot();
    let in_group = "backend=redis,group=billing,topic=meters";
    assert_eq!(
        figures.counter(&format!("{BUS_REDELIVERED}{{{in_group}}}")),
        1
    );
    assert_eq!(
        figures.counter(&format!("{BUS_DEAD_LETTERED}{{{in_group}}}")),
        1
    );
}
