//! Corrupt rows never stop a reader: rows are decoded one at a time, a
//! page ends before a row that does not decode, and that row alone is
//! reported as `CorruptEvent` (`CR-E0018`) with its position and raw
//! content, so a follower sets it aside and reads on. An aggregate cannot
//! skip an event: loading its stream fails with the same error.
//!
//! The rows are corrupted "behind the store's back", with plain SQL on
//! the test's own schema, as a hand edit or a bad restore would.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use composable_rust_core::projection::{ProjectionConfig, ProjectionTx, ProjectionTxExt};
use composable_rust_core::{
    CodedError, ErrorClass, EventStore, EventStoreError, ExpectedVersion, InMemoryProjectionStore,
    Position, Projection, ProjectionError, ProjectionManager, ProjectionStore, StoredEvent,
    StreamId,
};
use uuid::Uuid;

use super::support::{self, TestStore, event, stream};

/// Appends events numbered 1..=4 to `id`, one append each (so each has its
/// own commit); returns their ids and positions.
async fn four_events(store: &TestStore, id: &StreamId) -> Vec<(Uuid, Position)> {
    let mut written = Vec::new();
    for n in 1..=4 {
        let event = event(n);
        let event_id = event.event_id;
        let outcome = store
            .append(id, ExpectedVersion::Any, vec![event])
            .await
            .expect("append");
        written.push((event_id, outcome.last_position));
    }
    written
}

/// Runs `UPDATE events SET <assignment> WHERE event_id = $2` in the test's
/// schema, with `value` as `$1`.
async fn corrupt(store: &TestStore, assignment: &str, value: &str, event_id: Uuid) {
    let sql = format!(
        "UPDATE \"{}\".events SET {assignment} WHERE event_id = $2",
        store.schema()
    );
    let updated = sqlx::query(&sql)
        .bind(value)
        .bind(event_id)
        .execute(store.pool())
        .await
        .expect("corrupting a row with plain SQL");
    assert_eq!(updated.rows_affected(), 1);
}

/// `[[[ ... 1 ... ]]]`, `depth` arrays deep, as JSON text.
fn nested_json(depth: usize) -> String {
    format!("{}1{}", "[".repeat(depth), "]".repeat(depth))
}

/// The page sizes the reading tests use: `read_all` reads a page of 1,000
/// or more with a binary `COPY`, a smaller one with a prepared statement,
/// and both must report a bad row the same way.
const PAGES: [usize; 2] = [100, 1_000];

/// Reads everything after `after` in pages of `page` (waiting out another
/// test's open transaction, which can hold a page back for a moment) until
/// a page ends with an error or nothing more is committed.
async fn read_until_error(
    store: &TestStore,
    mut after: Position,
    page: usize,
) -> (Vec<StoredEvent>, Option<EventStoreError>) {
    let mut events = Vec::new();
    loop {
        match store.read_all(after, page).await {
            Ok(page) if page.is_empty() => {
                if store.count_after(after).await.expect("count") == 0 {
                    return (events, None);
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Ok(page) => {
                after = page.last().expect("non-empty").position;
                events.extend(page);
            }
            Err(error) => return (events, Some(error)),
        }
    }
}

fn numbers(events: &[StoredEvent]) -> Vec<i64> {
    events
        .iter()
        .map(|event| event.payload["n"].as_i64().expect("n"))
        .collect()
}

#[tokio::test]
async fn read_all_returns_the_good_events_around_a_row_whose_metadata_is_not_an_object() {
    let store = support::fresh_store().await;
    let id = stream("corrupt");
    let written = four_events(&store, &id).await;
    let (bad_id, bad_position) = written[2];
    corrupt(&store, "metadata = $1::jsonb", r#""not an object""#, bad_id).await;

    // Both read paths report the row the same way.
    for page_size in PAGES {
        // The page stops before the bad row: the two good events before it.
        let page = store
            .read_all(Position::START, page_size)
            .await
            .expect("first page");
        assert_eq!(numbers(&page), [1, 2]);

        // The next read starts at the bad row: it alone is the error.
        let error = store
            .read_all(page[1].position, page_size)
            .await
            .expect_err("the bad row is reported");
        assert_eq!(error.code().as_str(), "CR-E0018");
        assert_eq!(error.class(), ErrorClass::Permanent);
        let EventStoreError::CorruptEvent {
            position,
            stream_id,
            event_id,
            raw,
            reason,
        } = &error
        else {
            panic!("expected CorruptEvent, got {error:?}");
        };
        assert_eq!(*position, bad_position);
        assert_eq!(stream_id, id.as_str());
        assert_eq!(*event_id, Some(bad_id));
        assert!(reason.contains("its metadata is not an object"), "{reason}");
        for part in [
            r#""event_type": "Happened""#,
            r#""schema_version": 1"#,
            r#""payload": {"n": 3}"#,
            r#""metadata": "not an object""#,
            r#""stream_version": 3"#,
            &format!(r#""event_id": "{bad_id}""#),
        ] {
            assert!(raw.contains(part), "raw content lacks {part}: {raw}");
        }
        // The raw content is JSON a person (or a tool) can read.
        let parsed: serde_json::Value = serde_json::from_str(raw).expect("raw is JSON");
        assert_eq!(parsed["payload"]["n"], 3);
        let message = error.to_string();
        assert!(message.starts_with("[CR-E0018] "), "{message}");
        assert!(message.contains(&bad_position.to_string()), "{message}");

        // Reading after the bad row goes on with the last good one.
        let rest = store
            .read_all(bad_position, page_size)
            .await
            .expect("after the bad row");
        assert_eq!(numbers(&rest), [4]);
    }

    // An aggregate cannot skip an event: its stream does not load.
    let load = store
        .load_stream(&id, 0)
        .await
        .expect_err("the stream is corrupt");
    assert!(
        matches!(&load, EventStoreError::CorruptEvent { position, .. } if *position == bad_position),
        "{load:?}"
    );
    // ... but from after the bad event, it does.
    let tail = store
        .load_stream(&id, 4)
        .await
        .expect("after the bad event");
    assert_eq!(numbers(&tail), [4]);
}

#[tokio::test]
async fn every_kind_of_undecodable_row_is_one_corrupt_event() {
    let store = support::fresh_store().await;
    let cases = [
        (
            "metadata = $1::jsonb",
            r#"{"correlation_id": "not-a-uuid"}"#.to_owned(),
            "its metadata is not an object",
        ),
        ("metadata = $1::jsonb", "null".to_owned(), "its metadata"),
        (
            "payload = $1::jsonb",
            nested_json(200),
            "its payload is not JSON that can be read back: recursion limit exceeded",
        ),
        (
            "stream_id = $1",
            "bad\nstream".to_owned(),
            "its stream id is invalid",
        ),
        ("sequence = $1::int8", "-5".to_owned(), "is negative"),
    ];
    for (assignment, value, expected_reason) in cases {
        let id = stream("kinds");
        let written = four_events(&store, &id).await;
        let (bad_id, bad_position) = written[2];
        corrupt(&store, assignment, &value, bad_id).await;

        for page in PAGES {
            let (good, error) = read_until_error(&store, written[1].1, page).await;
            assert!(good.is_empty(), "{assignment}, pages of {page}: {good:?}");
            let Some(EventStoreError::CorruptEvent {
                position,
                reason,
                raw,
                ..
            }) = error
            else {
                panic!("{assignment}, pages of {page}: expected CorruptEvent, got {error:?}");
            };
            assert!(reason.contains(expected_reason), "{assignment}: {reason}");
            if assignment.starts_with("sequence") {
                // A negative sequence counts as 0: reading on moves past it.
                assert_eq!(position, Position::new(bad_position.commit, 0));
            } else {
                assert_eq!(position, bad_position, "{assignment}");
            }
            assert!(raw.contains(r#""event_type": "Happened""#), "{raw}");
            let (rest, error) = read_until_error(&store, position, page).await;
            assert!(error.is_none(), "{assignment}, pages of {page}: {error:?}");
            assert_eq!(numbers(&rest), [4], "{assignment}, pages of {page}");
        }
    }
}

/// Records each event it applies under `applied:<n>`.
struct Applied;

#[async_trait]
impl Projection for Applied {
    type Store = InMemoryProjectionStore;

    fn name(&self) -> &str {
        "applied"
    }

    async fn apply(
        &self,
        event: &StoredEvent,
        tx: &mut <Self::Store as ProjectionStore>::Tx,
    ) -> Result<(), ProjectionError> {
        let n = event.payload["n"].as_i64().unwrap_or(-1);
        tx.save_json(&format!("applied:{n}"), &event.event_id).await
    }

    async fn reset(
        &self,
        tx: &mut <Self::Store as ProjectionStore>::Tx,
    ) -> Result<(), ProjectionError> {
        tx.delete_prefix("applied:").await.map(|_| ())
    }
}

#[tokio::test]
async fn a_projection_applies_the_good_events_and_dead_letters_the_corrupt_row() {
    let store = support::fresh_store().await;
    let id = stream("projected");
    let written = four_events(&store, &id).await;
    let (bad_id, bad_position) = written[2];
    corrupt(&store, "metadata = $1::jsonb", r#""not an object""#, bad_id).await;

    let read_models = Arc::new(InMemoryProjectionStore::new());
    let config = ProjectionConfig {
        batch_size: 10,
        ..ProjectionConfig::default()
    };
    let manager =
        ProjectionManager::builder(Applied, Arc::clone(&read_models), store.store.clone())
            .with_config(config)
            .build();
    let last = written[3].1;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    manager.catch_up().await.expect("catch up");
    while manager.position() < last {
        assert!(
            tokio::time::Instant::now() < deadline,
            "stuck at {}",
            manager.position()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
        manager.catch_up().await.expect("catch up");
    }

    let mut applied: Vec<String> = read_models
        .keys()
        .into_iter()
        .filter(|key| key.starts_with("applied:"))
        .collect();
    applied.sort();
    assert_eq!(applied, ["applied:1", "applied:2", "applied:4"]);

    let letters = manager.dead_letters().await.expect("dead letters");
    assert_eq!(letters.len(), 1, "{letters:?}");
    let letter = &letters[0];
    assert!(letter.is_corrupt_event(), "{letter:?}");
    assert_eq!(letter.event.position, bad_position);
    assert_eq!(letter.event.event_id, bad_id);
    let raw = letter
        .event
        .payload
        .as_str()
        .expect("the raw row as a string");
    assert!(raw.contains(r#""metadata": "not an object""#), "{raw}");
    assert!(letter.error.contains("CR-E0018"), "{}", letter.error);
}
