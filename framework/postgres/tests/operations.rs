//! The store methods the operations tools use, on a real PostgreSQL:
//! the schema's status, the stream listing, every checkpoint, every dead
//! letter, and requests filed for a manager (taken once, oldest first).

use composable_rust_core::projection::{
    DeadLetter, ProjectionCheckpoint, ProjectionRequest, ProjectionStore,
};
use composable_rust_core::{EventStore, ExpectedVersion, NewEvent, Position, StreamId};
use composable_rust_postgres::{PostgresEventStore, PostgresProjectionStore};
use composable_rust_testing::fixtures::TestSchema;
use composable_rust_testing::services;
use serde_json::json;

#[tokio::test]
async fn schema_status_streams_checkpoints_letters_and_requests() {
    let schema = TestSchema::new();
    let events = PostgresEventStore::connect(&services::database_url())
        .await
        .unwrap()
        .with_schema(schema.name())
        .unwrap();

    let status = events.schema_status().await.unwrap();
    assert!(!status.exists && !status.event_tables && !status.projection_tables);
    events.migrate().await.unwrap();
    let status = events.schema_status().await.unwrap();
    assert!(status.exists && status.event_tables && !status.projection_tables);
    assert!(
        !status
            .other_event_schemas
            .contains(&schema.name().to_owned())
    );

    for (stream, count) in [("b-1", 2), ("a-1", 1), ("a-2", 3)] {
        let new = (0..count)
            .map(|i| NewEvent::new("e", json!({ "i": i })))
            .collect();
        events
            .append(
                &StreamId::new(stream).unwrap(),
                ExpectedVersion::NoStream,
                new,
            )
            .await
            .unwrap();
    }
    let listed: Vec<(String, u64)> = events
        .list_streams("", 10)
        .await
        .unwrap()
        .into_iter()
        .map(|s| (s.stream_id, s.version))
        .collect();
    assert_eq!(
        listed,
        [("a-1".into(), 1), ("a-2".into(), 3), ("b-1".into(), 2)]
    );
    assert_eq!(events.list_streams("a-", 1).await.unwrap().len(), 1);
    assert_eq!(events.list_streams("a-", 10).await.unwrap().len(), 2);

    let store = PostgresProjectionStore::new(events.pool().clone())
        .with_schema(schema.name())
        .unwrap();
    store.migrate().await.unwrap();
    let status = events.schema_status().await.unwrap();
    assert!(status.projection_tables && status.request_table);

    let stored = events.read_all(Position::START, 10).await.unwrap();
    let mut tx = store.begin().await.unwrap();
    store
        .save_position(&mut tx, "p", stored[0].position)
        .await
        .unwrap();
    store
        .save_position(&mut tx, "q", stored[1].position)
        .await
        .unwrap();
    store
        .record_dead_letter(
            &mut tx,
            &DeadLetter {
                projection: "q".into(),
                event: stored[1].clone(),
                error: "boom".into(),
                attempts: 3,
                failed_at: chrono::Utc::now(),
            },
        )
        .await
        .unwrap();
    store.commit(tx).await.unwrap();

    let checkpoints: Vec<(String, Position)> = store
        .checkpoints()
        .await
        .unwrap()
        .into_iter()
        .map(|c| (c.projection, c.position))
        .collect();
    assert_eq!(
        checkpoints,
        [
            ("p".into(), stored[0].position),
            ("q".into(), stored[1].position)
        ]
    );
    let letters = store.all_dead_letters().await.unwrap();
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].event.event_id, stored[1].event_id);

    // A retry only of a letter that exists; each request once; taken once.
    let letter = ProjectionRequest::RetryDeadLetter(stored[1].event_id);
    let missing = ProjectionRequest::RetryDeadLetter(stored[0].event_id);
    assert!(!store.request("q", missing).await.unwrap());
    assert!(store.request("q", letter).await.unwrap());
    assert!(store.request("q", letter).await.unwrap());
    assert!(
        store
            .request("q", ProjectionRequest::Rebuild)
            .await
            .unwrap()
    );
    assert_eq!(
        store.pending_requests("q").await.unwrap(),
        [letter, ProjectionRequest::Rebuild]
    );
    assert!(store.pending_requests("p").await.unwrap().is_empty());
    assert_eq!(
        store.take_requests("q").await.unwrap(),
        [letter, ProjectionRequest::Rebuild]
    );
    assert!(store.take_requests("q").await.unwrap().is_empty());
}
