//! The Redis Streams bus reports the event bus metrics of
//! `composable_rust_core::metrics` with `backend="redis"`: published,
//! consumed, acknowledged, redelivered and dead-lettered messages, the
//! group's pending messages and its lag.

use std::collections::HashMap;
use std::time::Duration;

use composable_rust_core::StoredEvent;
use composable_rust_core::event_bus::{EventBus, SubscribeOptions, Topic};
use composable_rust_core::metrics::{
    BUS_ACKED, BUS_CONSUMED, BUS_CONSUMER_LAG, BUS_DEAD_LETTERED, BUS_PENDING, BUS_PUBLISHED,
    BUS_REDELIVERED,
};
use composable_rust_redis::RedisBusOptions;
use composable_rust_testing::fixtures::TestKeyPrefix;
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};

/// The recorder of one test, installed as this thread's recorder (the test
/// runs on a current-thread runtime, so everything it awaits records into
/// it) until dropped.
struct Recorded {
    snapshotter: Snapshotter,
    _guard: metrics::LocalRecorderGuard<'static>,
}

fn record() -> Recorded {
    // Leaked: the guard borrows the recorder for the rest of the test.
    let recorder: &'static DebuggingRecorder = Box::leak(Box::new(DebuggingRecorder::new()));
    Recorded {
        snapshotter: recorder.snapshotter(),
        _guard: metrics::set_default_local_recorder(recorder),
    }
}

impl Recorded {
    /// Every value recorded, as `name{label=value,...}` (labels sorted).
    /// Taking it resets the recorder's values.
    fn snapshot(&self) -> HashMap<String, DebugValue> {
        self.snapshotter
            .snapshot()
            .into_vec()
            .into_iter()
            .map(|(key, _, _, value)| {
                let mut labels: Vec<String> = key
                    .key()
                    .labels()
                    .map(|label| format!("{}={}", label.key(), label.value()))
                    .collect();
                labels.sort();
                (
                    format!("{}{{{}}}", key.key().name(), labels.join(",")),
                    value,
                )
            })
            .collect()
    }
}

fn counter(figures: &HashMap<String, DebugValue>, series: &str) -> u64 {
    match figures.get(series) {
        Some(DebugValue::Counter(value)) => *value,
        other => panic!("{series}: {other:?} in {:?}", figures.keys()),
    }
}

fn gauge(figures: &HashMap<String, DebugValue>, series: &str) -> f64 {
    match figures.get(series) {
        Some(DebugValue::Gauge(value)) => value.into_inner(),
        other => panic!("{series}: {other:?} in {:?}", figures.keys()),
    }
}

/// Publishes three messages; a consumer takes them, acknowledges the
/// first two and holds the third; the group's pending list and lag are
/// read. Every step is counted under this backend's label.
async fn check_bus_metrics(bus: &dyn EventBus, backend: &str) {
    let metrics = record();
    let topic = Topic::new("meters").unwrap();
    let options = SubscribeOptions::new(topic.clone(), "billing", "billing-1").unwrap();
    let mut subscription = bus.subscribe(options).await.unwrap();
    let events: Vec<StoredEvent> = (1..=3)
        .map(|n| StoredEvent::builder("Read", serde_json::json!({ "n": n })).build())
        .collect();
    bus.publish_batch(&topic, &events).await.unwrap();

    let mut received = Vec::new();
    while received.len() < 3 {
        let batch = subscription
            .receive(3 - received.len(), Duration::from_secs(10))
            .await
            .unwrap();
        assert!(!batch.is_empty(), "the messages did not arrive");
        received.extend(batch);
    }
    subscription.ack_many(&received[..2]).await.unwrap();
    assert_eq!(bus.pending(&topic, "billing").await.unwrap().len(), 1);
    assert_eq!(subscription.backlog().await.unwrap(), Some(0));

    let figures = metrics.snapshot();
    let in_group = format!("backend={backend},group=billing,topic=meters");
    assert_eq!(
        counter(
            &figures,
            &format!("{BUS_PUBLISHED}{{backend={backend},topic=meters}}")
        ),
        3
    );
    assert_eq!(
        counter(&figures, &format!("{BUS_CONSUMED}{{{in_group}}}")),
        3
    );
    assert_eq!(counter(&figures, &format!("{BUS_ACKED}{{{in_group}}}")), 2);
    assert_eq!(
        gauge(&figures, &format!("{BUS_PENDING}{{{in_group}}}")),
        1.0
    );
    assert_eq!(
        gauge(
            &figures,
            &format!("{BUS_CONSUMER_LAG}{{backend={backend},group=billing}}")
        ),
        0.0
    );
}

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
    check_bus_metrics(&bus, "redis").await;
}

#[tokio::test]
async fn the_redis_bus_counts_redeliveries_and_dead_letters() {
    let metrics = record();
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
        counter(&figures, &format!("{BUS_REDELIVERED}{{{in_group}}}")),
        1
    );
    assert_eq!(
        counter(&figures, &format!("{BUS_DEAD_LETTERED}{{{in_group}}}")),
        1
    );
}
