//! Metrics in tests (feature `metrics`): a recorder of one test's own, and
//! the check every event bus backend runs on the bus metrics it reports.
//!
//! [`RecordedMetrics::install`] makes a `metrics-util` debugging recorder
//! the current thread's recorder until it is dropped. A `#[tokio::test]`
//! runs on a current-thread runtime, so everything the test awaits records
//! into it, and tests running side by side do not see each other's figures
//! (a global recorder would mix them).
//!
//! Figures are read as series, `name{label=value,...}` with the labels
//! sorted, the way Prometheus writes them:
//!
//! ```
//! use composable_rust_testing::metrics::RecordedMetrics;
//!
//! let recorded = RecordedMetrics::install();
//! metrics::counter!("composable_example_total", "backend" => "memory", "topic" => "t").increment(2);
//! let figures = recorded.snapshot();
//! assert_eq!(figures.counter("composable_example_total{backend=memory,topic=t}"), 2);
//! ```

use std::collections::HashMap;
use std::time::Duration;

use composable_rust_core::StoredEvent;
use composable_rust_core::event_bus::{EventBus, SubscribeOptions, Topic};
use composable_rust_core::metrics::{
    BUS_ACKED, BUS_CONSUMED, BUS_CONSUMER_LAG, BUS_PENDING, BUS_PUBLISHED,
};
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};

/// One test's metrics recorder, installed for the current thread until
/// dropped (see the module documentation).
pub struct RecordedMetrics {
    snapshotter: Snapshotter,
    _guard: metrics::LocalRecorderGuard<'static>,
}

impl std::fmt::Debug for RecordedMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordedMetrics").finish_non_exhaustive()
    }
}

impl RecordedMetrics {
    /// Installs a fresh recorder as this thread's.
    pub fn install() -> Self {
        // Leaked (a few bytes per test): the guard borrows the recorder for
        // as long as the test runs.
        let recorder: &'static DebuggingRecorder = Box::leak(Box::new(DebuggingRecorder::new()));
        Self {
            snapshotter: recorder.snapshotter(),
            _guard: metrics::set_default_local_recorder(recorder),
        }
    }

    /// Every figure recorded so far. Taking a snapshot resets counters and
    /// histograms, as the recorder does.
    pub fn snapshot(&self) -> MetricsSnapshot {
        let figures = self
            .snapshotter
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
            .collect();
        MetricsSnapshot { figures }
    }
}

/// The figures of a [`RecordedMetrics`], by series.
#[derive(Debug)]
pub struct MetricsSnapshot {
    figures: HashMap<String, DebugValue>,
}

impl MetricsSnapshot {
    /// The counter `series` (`name{label=value,...}`, labels sorted).
    ///
    /// # Panics
    ///
    /// When there is no such counter; the message lists the series there are.
    pub fn counter(&self, series: &str) -> u64 {
        match self.figures.get(series) {
            Some(DebugValue::Counter(value)) => *value,
            other => panic!("{series}: {other:?} in {:?}", self.series()),
        }
    }

    /// The gauge `series`.
    ///
    /// # Panics
    ///
    /// When there is no such gauge.
    pub fn gauge(&self, series: &str) -> f64 {
        match self.figures.get(series) {
            Some(DebugValue::Gauge(value)) => value.into_inner(),
            other => panic!("{series}: {other:?} in {:?}", self.series()),
        }
    }

    /// How many values the histogram `series` holds.
    ///
    /// # Panics
    ///
    /// When there is no such histogram.
    pub fn observations(&self, series: &str) -> usize {
        match self.figures.get(series) {
            Some(DebugValue::Histogram(values)) => values.len(),
            other => panic!("{series}: {other:?} in {:?}", self.series()),
        }
    }

    /// Every series recorded, sorted.
    pub fn series(&self) -> Vec<&str> {
        let mut series: Vec<&str> = self.figures.keys().map(String::as_str).collect();
        series.sort_unstable();
        series
    }
}

/// The check every bus backend runs on its metrics: publishes three
/// messages on a topic `meters`; a consumer of group `billing` takes them,
/// acknowledges two and holds the third; the group's pending list and lag
/// are read. Each step must be counted under `backend`'s label, as
/// `composable_rust_core::metrics` documents. Call it on a fresh bus (its
/// own key prefix or topic prefix) from a `#[tokio::test]`.
///
/// # Panics
///
/// When the bus fails or a figure is missing or wrong.
pub async fn assert_bus_reports_its_metrics(bus: &dyn EventBus, backend: &str) {
    let metrics = RecordedMetrics::install();
    let topic = Topic::new("meters").expect("a valid topic name");
    let options = SubscribeOptions::new(topic.clone(), "billing", "billing-1")
        .expect("valid subscription names");
    let mut subscription = bus.subscribe(options).await.expect("subscribe");
    let events: Vec<StoredEvent> = (1..=3)
        .map(|n| StoredEvent::builder("Read", serde_json::json!({ "n": n })).build())
        .collect();
    bus.publish_batch(&topic, &events).await.expect("publish");

    let mut received = Vec::new();
    while received.len() < 3 {
        let batch = subscription
            .receive(3 - received.len(), Duration::from_secs(10))
            .await
            .expect("receive");
        assert!(!batch.is_empty(), "the messages did not arrive");
        received.extend(batch);
    }
    subscription
        .ack_many(&received[..2])
        .await
        .expect("acknowledge");
    assert_eq!(
        bus.pending(&topic, "billing").await.expect("pending").len(),
        1
    );
    assert_eq!(subscription.backlog().await.expect("backlog"), Some(0));

    let figures = metrics.snapshot();
    let in_group = format!("backend={backend},group=billing,topic=meters");
    assert_eq!(
        figures.counter(&format!(
            "{BUS_PUBLISHED}{{backend={backend},topic=meters}}"
        )),
        3
    );
    assert_eq!(figures.counter(&format!("{BUS_CONSUMED}{{{in_group}}}")), 3);
    assert_eq!(figures.counter(&format!("{BUS_ACKED}{{{in_group}}}")), 2);
    assert_eq!(figures.gauge(&format!("{BUS_PENDING}{{{in_group}}}")), 1.0);
    assert_eq!(
        figures.gauge(&format!(
            "{BUS_CONSUMER_LAG}{{backend={backend},group=billing}}"
        )),
        0.0
    );
}
