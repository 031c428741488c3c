//! The PostgreSQL event store reports the event store metrics of
//! `composable_rust_core::metrics` with `backend="postgres"`: appends and
//! their duration, conflicts, and the duration of each kind of read.

use std::collections::HashMap;

use composable_rust_core::metrics::{
    EVENT_STORE_APPEND_SECONDS, EVENT_STORE_CONFLICTS, EVENT_STORE_EVENTS_APPENDED,
    EVENT_STORE_READ_SECONDS,
};
use composable_rust_core::{
    EventStore, EventStoreError, ExpectedVersion, NewEvent, Position, StreamId,
};
use composable_rust_postgres::PostgresEventStore;
use composable_rust_testing::fixtures::TestSchema;
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

fn observations(figures: &HashMap<String, DebugValue>, series: &str) -> usize {
    match figures.get(series) {
        Some(DebugValue::Histogram(values)) => values.len(),
        other => panic!("{series}: {other:?} in {:?}", figures.keys()),
    }
}

#[tokio::test]
async fn appends_conflicts_and_reads_are_measured() {
    let metrics = record();
    let schema = TestSchema::new();
    let store = PostgresEventStore::connect(schema.url())
        .await
        .unwrap()
        .with_schema(schema.name())
        .unwrap();
    store.migrate().await.unwrap();
    let stream = StreamId::new("meter-1").unwrap();
    let event = |n: u32| NewEvent::new("Read", serde_json::json!({ "n": n }));
    store
        .append(&stream, ExpectedVersion::NoStream, vec![event(1), event(2)])
        .await
        .unwrap();
    let conflict = store
        .append(&stream, ExpectedVersion::NoStream, vec![event(3)])
        .await
        .unwrap_err();
    assert!(matches!(
        conflict,
        EventStoreError::WrongExpectedVersion { .. }
    ));
    store.load_stream(&stream, 0).await.unwrap();
    store.read_all(Position::START, 10).await.unwrap();

    let figures = metrics.snapshot();
    assert_eq!(
        counter(
            &figures,
            &format!("{EVENT_STORE_EVENTS_APPENDED}{{backend=postgres}}")
        ),
        2
    );
    assert_eq!(
        counter(
            &figures,
            &format!("{EVENT_STORE_CONFLICTS}{{backend=postgres}}")
        ),
        1
    );
    for outcome in ["ok", "conflict"] {
        let series = format!("{EVENT_STORE_APPEND_SECONDS}{{backend=postgres,outcome={outcome}}}");
        assert_eq!(observations(&figures, &series), 1, "{series}");
    }
    for operation in ["load_stream", "read_all"] {
        let series =
            format!("{EVENT_STORE_READ_SECONDS}{{backend=postgres,operation={operation}}}");
        assert_eq!(observations(&figures, &series), 1, "{series}");
    }
    drop(store);
}
