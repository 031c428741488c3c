//! The store methods the operations tools use, on a real Redis: every
//! checkpoint, every dead letter, and requests filed for a manager (filed
//! once, only for letters that exist, taken once, oldest first).

use composable_rust_core::projection::{
    DeadLetter, ProjectionCheckpoint, ProjectionRequest, ProjectionStore,
};
use composable_rust_core::{EventMetadata, Position, StoredEvent, StreamId};
use composable_rust_redis::RedisProjectionStore;
use composable_rust_testing::fixtures::TestKeyPrefix;
use uuid::Uuid;

fn event(sequence: u64) -> StoredEvent {
    StoredEvent {
        event_id: Uuid::now_v7(),
        stream_id: StreamId::new("s-1").unwrap(),
        stream_version: sequence,
        position: Position::new(10, sequence),
        event_type: "e".into(),
        schema_version: 1,
        payload: serde_json::json!({}),
        metadata: EventMetadata::default(),
        recorded_at: chrono::Utc::now(),
    }
}

#[tokio::test]
async fn checkpoints_letters_and_requests() {
    let prefix = TestKeyPrefix::new();
    let store = RedisProjectionStore::connect(prefix.url(), prefix.as_str())
        .await
        .unwrap();
    let (first, second) = (event(1), event(2));
    let mut tx = store.begin().await.unwrap();
    store
        .save_position(&mut tx, "q", second.position)
        .await
        .unwrap();
    store
        .save_position(&mut tx, "p", first.position)
        .await
        .unwrap();
    store
        .record_dead_letter(
            &mut tx,
            &DeadLetter {
                projection: "q".into(),
                event: second.clone(),
                error: "boom".into(),
                attempts: 2,
                failed_at: chrono::Utc::now(),
            },
        )
        .await
        .unwrap();
    store.commit(tx).await.unwrap();

    assert_eq!(
        store.checkpoints().await.unwrap(),
        [("p".into(), first.position), ("q".into(), second.position)]
    );
    let letters = store.all_dead_letters().await.unwrap();
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].event.event_id, second.event_id);

    let retry = ProjectionRequest::RetryDeadLetter(second.event_id);
    assert!(
        !store
            .request("q", ProjectionRequest::RetryDeadLetter(first.event_id))
            .await
            .unwrap()
    );
    assert!(store.request("q", retry).await.unwrap());
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    assert!(
        store
            .request("q", ProjectionRequest::Rebuild)
            .await
            .unwrap()
    );
    assert!(store.request("q", retry).await.unwrap());
    assert_eq!(
        store.pending_requests("q").await.unwrap(),
        [retry, ProjectionRequest::Rebuild]
    );
    assert_eq!(
        store.take_requests("q").await.unwrap(),
        [retry, ProjectionRequest::Rebuild]
    );
    assert!(store.take_requests("q").await.unwrap().is_empty());
    assert!(store.pending_requests("p").await.unwrap().is_empty());
}
