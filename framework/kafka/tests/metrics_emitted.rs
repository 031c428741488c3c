//! The Kafka-protocol bus reports the event bus metrics of
//! `composable_rust_core::metrics` with `backend="kafka"`, against the
//! broker at `KAFKA_BOOTSTRAP` (`source ci/start-services` starts tansu).

use std::collections::HashMap;
use std::time::Duration;

use composable_rust_core::StoredEvent;
use composable_rust_core::event_bus::{EventBus, SubscribeOptions, Topic};
use composable_rust_core::metrics::{
    BUS_ACKED, BUS_CONSUMED, BUS_CONSUMER_LAG, BUS_PENDING, BUS_PUBLISHED,
};
use composable_rust_kafka::KafkaBusOptions;
use composable_rust_testing::services;
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

#[tokio::test]
async fn the_kafka_bus_counts_its_messages() {
    // A topic and group prefix of its own; topics are kept (see the
    // crate's other tests for why).
    let unique = uuid::Uuid::new_v4().simple().to_string();
    let bus = KafkaBusOptions::new(services::kafka_bootstrap())
        .with_prefix(format!("cr-metrics-{}.", &unique[..12]))
        .with_partitions(1)
        .with_fetch_wait(Duration::from_millis(20))
        .with_session_timeout(Duration::from_secs(6))
        .with_heartbeat_interval(Duration::from_millis(200))
        .with_max_poll_interval(Duration::from_secs(6))
        .connect()
        .await
        .expect("connect to KAFKA_BOOTSTRAP");
    check_bus_metrics(&bus, "kafka").await;
}
