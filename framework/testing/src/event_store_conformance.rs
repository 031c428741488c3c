//! One conformance suite for every [`EventStore`]: the promises of the
//! trait, checked the same way against the in-memory store and PostgreSQL.
//!
//! Generate the tests for your store with
//! [`event_store_conformance_tests!`](crate::event_store_conformance_tests),
//! passing an async function that returns a fresh, empty, isolated store:
//!
//! ```
//! use composable_rust_core::InMemoryEventStore;
//!
//! async fn fresh_store() -> InMemoryEventStore {
//!     InMemoryEventStore::new()
//! }
//!
//! composable_rust_testing::event_store_conformance_tests!(fresh_store);
//! # fn main() {}
//! ```

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use composable_rust_core::event::{DEFAULT_MAX_PAYLOAD_BYTES, MAX_PAYLOAD_DEPTH};
use composable_rust_core::event_store::StreamAppend;
use composable_rust_core::{
    CodedError, ErrorClass, EventMetadata, EventStore, EventStoreError, ExpectedVersion, NewEvent,
    Position, Snapshot, StoredEvent, StreamId,
};
use serde_json::json;
use uuid::Uuid;

/// Generates one `#[test]` per conformance check, each on a fresh store
/// from `$make` (an async fn returning an [`EventStore`]).
#[macro_export]
macro_rules! event_store_conformance_tests {
    ($make:ident) => {
        mod event_store_conformance {
            $crate::event_store_conformance_tests!(@tests $make;
                append_and_load_round_trip,
                load_from_a_version,
                streams_are_isolated,
                expected_version_conflicts_write_nothing,
                any_version_appends_anywhere,
                a_failing_batch_writes_nothing,
                an_empty_append_is_refused,
                payloads_within_the_limits_read_back,
                unstorable_payloads_are_refused_and_write_nothing,
                concurrent_appends_have_one_winner_per_version,
                multi_stream_appends_write_every_stream_in_one_commit,
                a_failing_multi_stream_append_writes_no_stream,
                concurrent_multi_stream_appends_have_one_winner_and_lose_nothing,
                read_all_pages_through_every_event_in_order,
                count_after_counts_what_a_follower_has_not_read,
                snapshots_keep_the_latest,
                subscribers_are_woken_by_appends,
            );
        }
    };
    (@tests $make:ident; $($check:ident),* $(,)?) => {
        $(
            #[test]
            fn $check() {
                $crate::event_store_conformance::run(|| async {
                    let store = super::$make().await;
                    $crate::event_store_conformance::$check(store).await;
                });
            }
        )*
    };
}

/// Runs the future `check` makes on a thread and a multi-threaded tokio
/// runtime of its own (used by the generated tests, so callers need no
/// tokio macros); a check still running after
/// [`CHECK_DEADLINE`](crate::CHECK_DEADLINE) fails instead of hanging the
/// test run.
pub fn run<F: std::future::Future<Output = ()>>(check: impl FnOnce() -> F + Send + 'static) {
    crate::check_runtime::run_check(crate::check_runtime::CHECK_DEADLINE, check);
}

fn stream(name: &str) -> StreamId {
    StreamId::new(format!("{name}-{}", Uuid::new_v4())).expect("valid stream id")
}

fn event(kind: &str, n: u64) -> NewEvent {
    NewEvent::new(kind, json!({ "n": n, "text": format!("event {n}") }))
}

fn events(n: u64) -> Vec<NewEvent> {
    (1..=n).map(|i| event("Happened", i)).collect()
}

/// Appended events load back exactly, with versions 1..n, increasing
/// positions, and their metadata.
pub async fn append_and_load_round_trip(store: impl EventStore) {
    let id = stream("round-trip");
    let mut batch = events(3);
    batch[1].metadata = EventMetadata {
        correlation_id: Some(Uuid::new_v4()),
        causation_id: Some(Uuid::new_v4()),
        headers: BTreeMap::from([("user".to_owned(), "ada".to_owned())]),
    };
    batch[2].schema_version = 4;
    batch[2].event_type = "Other".into();
    let outcome = store
        .append(&id, ExpectedVersion::NoStream, batch.clone())
        .await
        .unwrap();
    assert_eq!(outcome.stream_version, 3);
    assert!(outcome.first_position < outcome.last_position);

    let loaded = store.load_stream(&id, 0).await.unwrap();
    assert_eq!(loaded.len(), 3);
    for (i, (stored, sent)) in loaded.iter().zip(&batch).enumerate() {
        assert_eq!(stored.stream_id, id);
        assert_eq!(stored.stream_version, i as u64 + 1);
        assert_eq!(stored.event_id, sent.event_id);
        assert_eq!(stored.event_type, sent.event_type);
        assert_eq!(stored.schema_version, sent.schema_version);
        assert_eq!(stored.payload, sent.payload);
        assert_eq!(stored.metadata, sent.metadata);
    }
    assert_eq!(loaded[0].position, outcome.first_position);
    assert_eq!(loaded[2].position, outcome.last_position);
    assert!(loaded.windows(2).all(|w| w[0].position < w[1].position));
    assert_eq!(store.stream_version(&id).await.unwrap(), 3);
}

/// `load_stream(from_version)` starts at that version.
pub async fn load_from_a_version(store: impl EventStore) {
    let id = stream("from-version");
    store
        .append(&id, ExpectedVersion::NoStream, events(5))
        .await
        .unwrap();
    let tail = store.load_stream(&id, 4).await.unwrap();
    assert_eq!(
        tail.iter().map(|e| e.stream_version).collect::<Vec<_>>(),
        [4, 5]
    );
    assert!(store.load_stream(&id, 6).await.unwrap().is_empty());
    assert!(
        store
            .load_stream(&stream("missing"), 0)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.stream_version(&stream("missing")).await.unwrap(), 0);
}

/// Events of one stream never show up in another.
pub async fn streams_are_isolated(store: impl EventStore) {
    let (a, b) = (stream("a"), stream("b"));
    store
        .append(&a, ExpectedVersion::NoStream, events(2))
        .await
        .unwrap();
    store
        .append(&b, ExpectedVersion::NoStream, events(1))
        .await
        .unwrap();
    store
        .append(&a, ExpectedVersion::Exact(2), events(1))
        .await
        .unwrap();
    let loaded_a = store.load_stream(&a, 0).await.unwrap();
    assert_eq!(loaded_a.len(), 3);
    assert!(loaded_a.iter().all(|e| e.stream_id == a));
    assert_eq!(store.stream_version(&b).await.unwrap(), 1);
}

/// A wrong expected version is a typed error naming stream, expected and
/// actual version, and nothing is written.
pub async fn expected_version_conflicts_write_nothing(store: impl EventStore) {
    let id = stream("conflict");
    store
        .append(&id, ExpectedVersion::NoStream, events(1))
        .await
        .unwrap();

    let error = store
        .append(&id, ExpectedVersion::NoStream, events(2))
        .await
        .unwrap_err();
    match &error {
        EventStoreError::WrongExpectedVersion {
            stream_id,
            expected,
            actual,
        } => {
            assert_eq!(stream_id, id.as_str());
            assert_eq!(*expected, ExpectedVersion::NoStream);
            assert_eq!(*actual, 1);
        }
        other => panic!("expected WrongExpectedVersion, got {other:?}"),
    }
    assert!(error.to_string().starts_with("[CR-E0003]"), "{error}");

    for wrong in [
        ExpectedVersion::Exact(0),
        ExpectedVersion::Exact(2),
        ExpectedVersion::Exact(7),
    ] {
        let error = store.append(&id, wrong, events(1)).await.unwrap_err();
        assert!(
            matches!(
                error,
                EventStoreError::WrongExpectedVersion { actual: 1, .. }
            ),
            "{wrong:?}: {error:?}"
        );
    }
    assert_eq!(store.load_stream(&id, 0).await.unwrap().len(), 1);
    assert_eq!(store.read_all(Position::START, 100).await.unwrap().len(), 1);
}

/// `ExpectedVersion::Any` appends to new and existing streams.
pub async fn any_version_appends_anywhere(store: impl EventStore) {
    let id = stream("any");
    assert_eq!(
        store
            .append(&id, ExpectedVersion::Any, events(2))
            .await
            .unwrap()
            .stream_version,
        2
    );
    assert_eq!(
        store
            .append(&id, ExpectedVersion::Any, events(1))
            .await
            .unwrap()
            .stream_version,
        3
    );
}

/// A batch that cannot be written in full (a reused event id) writes
/// nothing at all.
pub async fn a_failing_batch_writes_nothing(store: impl EventStore) {
    let id = stream("atomic");
    let first = events(1);
    store
        .append(&id, ExpectedVersion::NoStream, first.clone())
        .await
        .unwrap();

    let mut batch = events(3);
    batch[2].event_id = first[0].event_id;
    let error = store
        .append(&id, ExpectedVersion::Exact(1), batch)
        .await
        .unwrap_err();
    assert!(
        matches!(error, EventStoreError::DuplicateEventId { .. }),
        "{error:?}"
    );
    assert!(error.to_string().starts_with("[CR-E0010]"), "{error}");

    let mut twice = events(2);
    twice[1].event_id = twice[0].event_id;
    let error = store
        .append(&id, ExpectedVersion::Exact(1), twice)
        .await
        .unwrap_err();
    assert!(
        matches!(error, EventStoreError::DuplicateEventId { .. }),
        "{error:?}"
    );

    assert_eq!(store.stream_version(&id).await.unwrap(), 1);
    assert_eq!(store.read_all(Position::START, 100).await.unwrap().len(), 1);
}

/// Appending no events is refused with a clear error.
pub async fn an_empty_append_is_refused(store: impl EventStore) {
    let error = store
        .append(&stream("empty"), ExpectedVersion::Any, Vec::new())
        .await
        .unwrap_err();
    assert!(
        matches!(error, EventStoreError::EmptyAppend { .. }),
        "{error:?}"
    );
}

/// `{"a": [{"a": [ ... 1 ... ]}]}`, `depth` arrays and objects deep.
fn nested(depth: usize) -> serde_json::Value {
    let mut value = json!(1);
    for level in 0..depth {
        value = if level % 2 == 0 {
            json!([value])
        } else {
            json!({ "a": value })
        };
    }
    value
}

/// Payloads at the storage limits (nested `MAX_PAYLOAD_DEPTH` levels,
/// any Unicode but NUL, escapes, extreme numbers) are stored and read back
/// exactly.
pub async fn payloads_within_the_limits_read_back(store: impl EventStore) {
    let id = stream("limits");
    let mut batch = events(3);
    batch[0].payload = nested(MAX_PAYLOAD_DEPTH);
    batch[1].payload = json!({
        "text": "tab\t quote\" backslash\\ bell\u{7} é 漢字 🦀",
        "numbers": [0, -1, 1.5, 1e300, -2.5e-300, u64::MAX, i64::MIN],
        "empty": [{}, [], ""],
    });
    batch[2].metadata.headers = BTreeMap::from([("trace\u{1}".to_owned(), "é\n".to_owned())]);
    store
        .append(&id, ExpectedVersion::NoStream, batch.clone())
        .await
        .unwrap();
    let loaded = store.load_stream(&id, 0).await.unwrap();
    assert_eq!(loaded.len(), 3);
    for (stored, sent) in loaded.iter().zip(&batch) {
        assert_eq!(stored.payload, sent.payload);
        assert_eq!(stored.metadata, sent.metadata);
    }
    let all = store.read_all(Position::START, 100).await.unwrap();
    assert_eq!(all.len(), 3);
    assert_eq!(all[0].payload, batch[0].payload);
}

/// Events that could not be read back once stored (nested deeper than
/// `MAX_PAYLOAD_DEPTH`, holding a NUL character, larger than the default
/// size limit) are refused with `UnstorablePayload` (`CR-E0019`,
/// permanent), alone or inside a batch, and nothing is written.
pub async fn unstorable_payloads_are_refused_and_write_nothing(store: impl EventStore) {
    let id = stream("unstorable");
    let first = events(1);
    store
        .append(&id, ExpectedVersion::NoStream, first.clone())
        .await
        .unwrap();

    let mut deep = event("Deep", 2);
    deep.payload = json!({ "tree": nested(200) });
    let mut nul = event("Nul", 2);
    nul.payload = json!({ "name": "a\u{0}b" });
    let mut nul_key = event("NulKey", 2);
    nul_key.payload = json!({ "k\u{0}": 1 });
    let mut nul_header = event("NulHeader", 2);
    nul_header
        .metadata
        .headers
        .insert("tenant".to_owned(), "x\u{0}".to_owned());
    let mut nul_type = event("Nul\u{0}Type", 2);
    nul_type.payload = json!({});
    let mut large = event("Large", 2);
    large.payload = json!({ "blob": "x".repeat(DEFAULT_MAX_PAYLOAD_BYTES) });

    let cases = [
        (deep, "levels deep"),
        (nul, "NUL"),
        (nul_key, "NUL"),
        (nul_header, "NUL"),
        (nul_type, "NUL"),
        (large, "bytes of JSON"),
    ];
    for (bad, what) in cases {
        let kind = bad.event_type.clone();
        for batch in [vec![bad.clone()], vec![event("Happened", 2), bad]] {
            for expected in [ExpectedVersion::Any, ExpectedVersion::Exact(1)] {
                let error = store
                    .append(&id, expected, batch.clone())
                    .await
                    .expect_err("an unstorable event is refused");
                assert!(
                    matches!(
                        &error,
                        EventStoreError::UnstorablePayload { event_type, .. } if *event_type == kind.replace('\0', "\\0")
                    ),
                    "{kind}: {error:?}"
                );
                assert_eq!(error.code().as_str(), "CR-E0019");
                assert_eq!(error.class(), ErrorClass::Permanent);
                let message = error.to_string();
                assert!(message.contains(what), "{kind}: {message}");
                assert!(message.contains("nothing was written"), "{message}");
            }
        }
    }

    assert_eq!(store.stream_version(&id).await.unwrap(), 1);
    let loaded = store.load_stream(&id, 0).await.unwrap();
    assert_eq!(loaded.len(), 1);
    assert_eq!(loaded[0].event_id, first[0].event_id);
    assert_eq!(store.read_all(Position::START, 100).await.unwrap().len(), 1);
    // The stream goes on as if nothing happened.
    store
        .append(&id, ExpectedVersion::Exact(1), events(1))
        .await
        .unwrap();
}

/// Eight writers race for each version of one stream: exactly one wins each
/// round, the others get the conflict error, and the stream ends with no
/// duplicate and no lost event.
pub async fn concurrent_appends_have_one_winner_per_version(store: impl EventStore) {
    let store = Arc::new(store);
    let id = stream("race");
    let rounds = 10u64;
    let mut winners = Vec::new();
    for version in 0..rounds {
        let tasks: Vec<_> = (0..8)
            .map(|writer| {
                let (store, id) = (Arc::clone(&store), id.clone());
                tokio::spawn(async move {
                    let event = event(&format!("Writer{writer}"), version);
                    let event_id = event.event_id;
                    let result = store
                        .append(&id, ExpectedVersion::Exact(version), vec![event])
                        .await;
                    (event_id, result)
                })
            })
            .collect();
        let mut won = Vec::new();
        for task in tasks {
            let (event_id, result) = task.await.unwrap();
            match result {
                Ok(outcome) => {
                    assert_eq!(outcome.stream_version, version + 1);
                    won.push(event_id);
                }
                Err(EventStoreError::WrongExpectedVersion { actual, .. }) => {
                    assert_eq!(actual, version + 1, "a loser must see the winner's version");
                }
                Err(other) => panic!("unexpected error: {other}"),
            }
        }
        assert_eq!(won.len(), 1, "round {version}: exactly one writer must win");
        winners.extend(won);
    }
    let stored = store.load_stream(&id, 0).await.unwrap();
    assert_eq!(
        stored.iter().map(|e| e.event_id).collect::<Vec<_>>(),
        winners
    );
    assert_eq!(
        stored.iter().map(|e| e.stream_version).collect::<Vec<_>>(),
        (1..=rounds).collect::<Vec<_>>()
    );
}

/// An `append_to_streams` writes each share at its stream's next
/// versions, reports one outcome per share in the order given, and its
/// events follow each other in the global order, in the order given.
pub async fn multi_stream_appends_write_every_stream_in_one_commit(store: impl EventStore) {
    let (order, cart, audit) = (stream("order"), stream("cart"), stream("audit"));
    store
        .append(&cart, ExpectedVersion::NoStream, events(1))
        .await
        .unwrap();
    let before = last_position(&store).await;

    let shares = vec![
        StreamAppend::new(order.clone(), ExpectedVersion::NoStream, events(2)),
        StreamAppend::new(cart.clone(), ExpectedVersion::Exact(1), events(1)),
        StreamAppend::new(audit.clone(), ExpectedVersion::Any, events(1)),
    ];
    let sent: Vec<Uuid> = shares
        .iter()
        .flat_map(|share| share.events.iter().map(|event| event.event_id))
        .collect();
    let outcomes = store.append_to_streams(shares).await.unwrap();
    assert_eq!(
        outcomes
            .iter()
            .map(|outcome| outcome.stream_version)
            .collect::<Vec<_>>(),
        [2, 2, 1]
    );

    let read = store.read_all(before, 100).await.unwrap();
    assert_eq!(
        read.iter().map(|event| event.event_id).collect::<Vec<_>>(),
        sent,
        "the commit's events, next to each other, in the order given"
    );
    assert_eq!(read[0].position, outcomes[0].first_position);
    assert_eq!(read[1].position, outcomes[0].last_position);
    assert_eq!(read[2].position, outcomes[1].last_position);
    assert_eq!(read[3].position, outcomes[2].last_position);
    assert_eq!(
        store
            .load_stream(&cart, 0)
            .await
            .unwrap()
            .iter()
            .map(|event| event.stream_version)
            .collect::<Vec<_>>(),
        [1, 2]
    );
}

/// The position of the last event in the store (START when empty).
async fn last_position(store: &impl EventStore) -> Position {
    all_events(store)
        .await
        .last()
        .map_or(Position::START, |last| last.position)
}

/// An `append_to_streams` that cannot be written in full writes no
/// stream: a share's stream at another version (the error names that
/// share), an event id already stored, or a malformed request (no share,
/// a stream twice, a share without events).
pub async fn a_failing_multi_stream_append_writes_no_stream(store: impl EventStore) {
    let (order, cart) = (stream("order"), stream("cart"));
    let stored = events(1);
    store
        .append(&cart, ExpectedVersion::NoStream, stored.clone())
        .await
        .unwrap();
    let total = store.count_after(Position::START).await.unwrap();

    let conflict = store
        .append_to_streams(vec![
            StreamAppend::new(order.clone(), ExpectedVersion::NoStream, events(1)),
            StreamAppend::new(cart.clone(), ExpectedVersion::NoStream, events(1)),
        ])
        .await
        .unwrap_err();
    match &conflict {
        EventStoreError::WrongExpectedVersion {
            stream_id,
            expected: ExpectedVersion::NoStream,
            actual: 1,
        } => assert_eq!(stream_id, cart.as_str()),
        other => panic!("expected the cart's conflict, got {other:?}"),
    }
    assert_eq!(store.stream_version(&order).await.unwrap(), 0);

    let mut reused = events(1);
    reused[0].event_id = stored[0].event_id;
    let duplicate = store
        .append_to_streams(vec![
            StreamAppend::new(order.clone(), ExpectedVersion::NoStream, events(1)),
            StreamAppend::new(cart.clone(), ExpectedVersion::Exact(1), reused),
        ])
        .await
        .unwrap_err();
    assert!(
        matches!(duplicate, EventStoreError::DuplicateEventId { event_id } if event_id == stored[0].event_id),
        "{duplicate:?}"
    );

    let malformed = [
        (Vec::new(), "CR-E0024"),
        (
            vec![
                StreamAppend::new(order.clone(), ExpectedVersion::Any, events(1)),
                StreamAppend::new(order.clone(), ExpectedVersion::Any, events(1)),
            ],
            "CR-E0024",
        ),
        (
            vec![
                StreamAppend::new(order.clone(), ExpectedVersion::Any, events(1)),
                StreamAppend::new(cart.clone(), ExpectedVersion::Any, Vec::new()),
            ],
            "CR-E0009",
        ),
    ];
    for (shares, code) in malformed {
        let error = store.append_to_streams(shares).await.unwrap_err();
        assert_eq!(error.code().as_str(), code, "{error}");
        assert_eq!(error.class(), ErrorClass::Permanent, "{error}");
    }

    assert_eq!(store.stream_version(&order).await.unwrap(), 0);
    assert_eq!(store.stream_version(&cart).await.unwrap(), 1);
    assert_eq!(store.count_after(Position::START).await.unwrap(), total);
}

/// Writers race with `append_to_streams` over the same two streams, half
/// of them naming the streams in the opposite order: at each expected
/// version exactly one wins and the others get the conflict; with `Any`
/// every append is written. No event is lost or duplicated, and each
/// commit's two events stay next to each other in the global order.
pub async fn concurrent_multi_stream_appends_have_one_winner_and_lose_nothing(
    store: impl EventStore,
) {
    let store = Arc::new(store);
    let (left, right) = (stream("left"), stream("right"));
    let shares = |writer: usize, expected: ExpectedVersion, n: u64| {
        let mut shares = vec![
            StreamAppend::new(left.clone(), expected, vec![event("Left", n)]),
            StreamAppend::new(right.clone(), expected, vec![event("Right", n)]),
        ];
        if writer % 2 == 1 {
            shares.reverse();
        }
        shares
    };
    let rounds = 4u64;
    for version in 0..rounds {
        let tasks: Vec<_> = (0..6)
            .map(|writer| {
                let store = Arc::clone(&store);
                let shares = shares(writer, ExpectedVersion::Exact(version), version);
                tokio::spawn(async move { store.append_to_streams(shares).await })
            })
            .collect();
        let mut won = 0;
        for task in tasks {
            match task.await.unwrap() {
                Ok(outcomes) => {
                    assert!(outcomes.iter().all(|o| o.stream_version == version + 1));
                    won += 1;
                }
                Err(EventStoreError::WrongExpectedVersion { actual, .. }) => {
                    assert_eq!(actual, version + 1, "a loser must see the winner's version");
                }
                Err(other) => panic!("unexpected error: {other}"),
            }
        }
        assert_eq!(won, 1, "round {version}: exactly one writer must win");
    }

    let tasks: Vec<_> = (0..6)
        .map(|writer| {
            let store = Arc::clone(&store);
            let shares = shares(writer, ExpectedVersion::Any, 100);
            tokio::spawn(async move { store.append_to_streams(shares).await })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }

    let expected: Vec<u64> = (1..=rounds + 6).collect();
    for id in [&left, &right] {
        let loaded = store.load_stream(id, 0).await.unwrap();
        assert_eq!(
            loaded
                .iter()
                .map(|event| event.stream_version)
                .collect::<Vec<_>>(),
            expected,
            "{id}"
        );
    }
    let ours: Vec<_> = all_events(&*store)
        .await
        .into_iter()
        .filter(|event| event.stream_id == left || event.stream_id == right)
        .collect();
    assert_eq!(ours.len() as u64, 2 * (rounds + 6));
    for pair in ours.chunks(2) {
        assert_ne!(pair[0].stream_id, pair[1].stream_id, "a commit was split");
        assert_eq!(
            pair[0].position.commit, pair[1].position.commit,
            "a commit was split"
        );
    }
}

/// Every event of the store, in global order.
async fn all_events(store: &impl EventStore) -> Vec<StoredEvent> {
    let mut all = Vec::new();
    let mut cursor = Position::START;
    loop {
        let page = store.read_all(cursor, 1_000).await.unwrap();
        let Some(last) = page.last() else {
            return all;
        };
        cursor = last.position;
        all.extend(page);
    }
}

/// Paging through `read_all` returns every event once, in position order.
pub async fn read_all_pages_through_every_event_in_order(store: impl EventStore) {
    let streams: Vec<_> = (0..3).map(|i| stream(&format!("page{i}"))).collect();
    let mut appended = Vec::new();
    for round in 0..3 {
        for id in &streams {
            let batch = events(2);
            appended.extend(batch.iter().map(|e| e.event_id));
            let expected = if round == 0 {
                ExpectedVersion::NoStream
            } else {
                ExpectedVersion::Exact(round * 2)
            };
            store.append(id, expected, batch).await.unwrap();
        }
    }
    let mut seen = Vec::new();
    let mut after = Position::START;
    loop {
        let page = store.read_all(after, 4).await.unwrap();
        if page.is_empty() {
            break;
        }
        assert!(page.len() <= 4);
        for event in page {
            assert!(event.position > after, "positions must increase");
            after = event.position;
            seen.push(event.event_id);
        }
    }
    assert_eq!(seen, appended, "every event once, in append order");
}

/// `count_after` counts the events a follower at a position has not read.
pub async fn count_after_counts_what_a_follower_has_not_read(store: impl EventStore) {
    assert_eq!(store.count_after(Position::START).await.unwrap(), 0);
    store
        .append(&stream("count"), ExpectedVersion::NoStream, events(5))
        .await
        .unwrap();
    assert_eq!(store.count_after(Position::START).await.unwrap(), 5);
    let first_two = store.read_all(Position::START, 2).await.unwrap();
    assert_eq!(store.count_after(first_two[1].position).await.unwrap(), 3);
    let all = store.read_all(Position::START, 10).await.unwrap();
    assert_eq!(store.count_after(all[4].position).await.unwrap(), 0);
}

/// Saving a snapshot replaces the previous one; streams without one have none.
pub async fn snapshots_keep_the_latest(store: impl EventStore) {
    let id = stream("snap");
    assert!(store.load_snapshot(&id).await.unwrap().is_none());
    for version in [10, 20] {
        let snapshot = Snapshot {
            stream_id: id.clone(),
            stream_version: version,
            schema_version: 1,
            state: json!({ "count": version }),
            taken_at: chrono::Utc::now(),
        };
        store.save_snapshot(&snapshot).await.unwrap();
    }
    let latest = store.load_snapshot(&id).await.unwrap().unwrap();
    assert_eq!(latest.stream_version, 20);
    assert_eq!(latest.state, json!({ "count": 20 }));
    assert!(
        store
            .load_snapshot(&stream("other"))
            .await
            .unwrap()
            .is_none()
    );
}

/// A subscriber is woken after an append.
pub async fn subscribers_are_woken_by_appends(store: impl EventStore) {
    let mut changes = store.subscribe();
    changes.borrow_and_update();
    store
        .append(&stream("wake"), ExpectedVersion::NoStream, events(1))
        .await
        .unwrap();
    tokio::time::timeout(Duration::from_secs(5), changes.changed())
        .await
        .expect("a subscriber must be woken within 5 s of an append")
        .expect("the store must keep its notifier alive");
}
