//! The PostgreSQL event store reports the event store metrics of
//! `composable_rust_core::metrics` with `backend="postgres"`: appends and
//! their duration, conflicts, and the duration of each kind of read.

use composable_rust_core::metrics::{
    EVENT_STORE_APPEND_SECONDS, EVENT_STORE_CONFLICTS, EVENT_STORE_EVENTS_APPENDED,
    EVENT_STORE_READ_SECONDS,
};
use composable_rust_core::{
    EventStore, EventStoreError, ExpectedVersion, NewEvent, Position, StreamId,
};
use composable_rust_postgres::PostgresEventStore;
use composable_rust_testing::fixtures::TestSchema;
use composable_rust_testing::metrics::RecordedMetrics;

#[tokio::test]
async fn appends_conflicts_and_reads_are_measured() {
    let metrics = RecordedMetrics::install();
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
        figures.counter(&format!(
            "{EVENT_STORE_EVENTS_APPENDED}{{backend=postgres}}"
        )),
        2
    );
    assert_eq!(
        figures.counter(&format!("{EVENT_STORE_CONFLICTS}{{backend=postgres}}")),
        1
    );
    for outcome in ["ok", "conflict"] {
        let series = format!("{EVENT_STORE_APPEND_SECONDS}{{backend=postgres,outcome={outcome}}}");
        assert_eq!(figures.observations(&series), 1, "{series}");
    }
    for operation in ["load_stream", "read_all"] {
        let series =
            format!("{EVENT_STORE_READ_SECONDS}{{backend=postgres,operation={operation}}}");
        assert_eq!(figures.observations(&series), 1, "{series}");
    }
    drop(store);
}
