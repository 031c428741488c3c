//! A write that Redis refuses in the middle of a batch (issue 8, case 4):
//! one event writes a counter to a key that holds a sorted set. The
//! commit fails part-way with a permanent `CR-E0205`, the manager applies
//! the batch one event per unit of work, dead-letters that event after
//! its retries and goes on; nothing is re-applied without bound, and with
//! `apply_once` nothing is applied twice or lost.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use async_trait::async_trait;
use composable_rust_core::projection::{ProjectionCheckpoint, ProjectionStore, ProjectionTx};
use composable_rust_core::{
    EventStore, ExpectedVersion, InMemoryEventStore, NewEvent, Position, Projection,
    ProjectionError, ProjectionManager, StoredEvent, StreamId,
};
use composable_rust_redis::redis as redis_rs;
use composable_rust_redis::{RedisProjectionStore, RedisTx};
use serde_json::json;
use uuid::Uuid;

use super::manager::{Leaderboard, append, config, manager, scored};
use super::support::{dump, fresh_store};

/// Events in all: three batches of 10 (`config()`), the last one short.
const EVENTS: u64 = 25;
/// The event that writes its counter to the sorted set: the fourth of the
/// second batch.
const BAD: u64 = 13;
/// The sorted set it writes to.
const BOARD: &str = "t:board";

/// Counts, per event `n`, the times its writes were applied: `t:before:<n>`
/// before the write that can fail, `t:after:<n>` after it; the write in
/// between adds 1 to `t:per-stream:<stream>`, or to [`BOARD`] for the bad
/// event. Guarded by one `apply_once` marker per stream when `guarded`.
struct Tally {
    guarded: bool,
}

#[async_trait]
impl Projection for Tally {
    type Store = RedisProjectionStore;

    fn name(&self) -> &str {
        "tally"
    }

    async fn apply(&self, event: &StoredEvent, tx: &mut RedisTx) -> Result<(), ProjectionError> {
        let stream = event.stream_id.as_str();
        let n = event.payload["n"].as_u64().expect("n");
        if self.guarded
            && !tx
                .apply_once(&format!("t:applied:{stream}"), event.position)
                .await?
        {
            return Ok(());
        }
        tx.incr_by(&format!("t:before:{n}"), 1)?;
        let counter = event.payload["counter"].as_str().expect("counter");
        tx.incr_by(counter, 1)?;
        tx.incr_by(&format!("t:after:{n}"), 1)
    }

    async fn reset(&self, tx: &mut RedisTx) -> Result<(), ProjectionError> {
        tx.delete_prefix("t:").await.map(|_| ())
    }
}

fn stream_of(n: u64) -> &'static str {
    if n.is_multiple_of(2) { "even" } else { "odd" }
}

/// Appends the 25 events, alternating between two streams; returns each
/// event's id and position, by `n`.
async fn events(store: &InMemoryEventStore) -> Vec<(Uuid, Position)> {
    let mut appended = Vec::new();
    for n in 0..EVENTS {
        let stream = stream_of(n);
        let counter = if n == BAD {
            BOARD.to_owned()
        } else {
            format!("t:per-stream:{stream}")
        };
        let event_id = Uuid::new_v4();
        let position = store
            .append(
                &StreamId::new(stream).unwrap(),
                ExpectedVersion::Any,
                vec![
                    NewEvent::new("Counted", json!({ "n": n, "counter": counter }))
                        .with_id(event_id),
                ],
            )
            .await
            .unwrap()
            .last_position;
        appended.push((event_id, position));
    }
    appended
}

/// Makes [`BOARD`] a sorted set, behind the store's back.
async fn board_is_a_sorted_set(store: &RedisProjectionStore) {
    let mut connection = store.connection();
    let _: i64 = redis_rs::cmd("ZADD")
        .arg(store.keyspace().data(BOARD))
        .arg(1)
        .arg("someone")
        .query_async(&mut connection)
        .await
        .unwrap();
}

/// Deletes [`BOARD`] (the fix), behind the store's back.
async fn delete_board(store: &RedisProjectionStore) {
    let mut connection = store.connection();
    let _: i64 = redis_rs::cmd("DEL")
        .arg(store.keyspace().data(BOARD))
        .query_async(&mut connection)
        .await
        .unwrap();
}

fn tally(
    events: &InMemoryEventStore,
    store: &RedisProjectionStore,
    guarded: bool,
) -> ProjectionManager<Tally> {
    ProjectionManager::builder(Tally { guarded }, Arc::new(store.clone()), events.clone())
        .with_config(config())
        .build()
}

/// `(before, after)` counts of event `n`.
async fn counts(store: &RedisProjectionStore, n: u64) -> (i64, i64) {
    (
        store.counter(&format!("t:before:{n}")).await.unwrap(),
        store.counter(&format!("t:after:{n}")).await.unwrap(),
    )
}

/// The bad event is in the dead letters, with the WRONGTYPE message, after
/// `max_attempts` attempts; the checkpoint is past it, at the last event.
async fn assert_dead_lettered(
    manager: &ProjectionManager<Tally>,
    store: &RedisProjectionStore,
    appended: &[(Uuid, Position)],
) {
    let letters = manager.dead_letters().await.unwrap();
    assert_eq!(letters.len(), 1, "{letters:?}");
    let letter = &letters[0];
    assert_eq!(letter.event.event_id, appended[BAD as usize].0);
    assert_eq!(letter.attempts, config().retry.max_attempts);
    for expected in ["CR-E0205", "WRONGTYPE", "INCRBY", BOARD] {
        assert!(
            letter.error.contains(expected),
            "{expected:?} in {}",
            letter.error
        );
    }
    assert_eq!(manager.stats().dead_letters, 1);
    let checkpoint = store.load_position("tally").await.unwrap().unwrap();
    assert_eq!(checkpoint, appended.last().unwrap().1);
    assert!(checkpoint > appended[BAD as usize].1);
}

#[tokio::test]
async fn a_write_to_a_key_of_the_wrong_type_is_dead_lettered_and_the_batch_is_reapplied_a_bounded_number_of_times()
 {
    let source = InMemoryEventStore::new();
    let appended = events(&source).await;
    let store = fresh_store().await;
    board_is_a_sorted_set(&store).await;
    let manager = tally(&source, &store, false);

    assert_eq!(
        manager.catch_up().await.unwrap(),
        EVENTS,
        "every event passed"
    );
    assert_dead_lettered(&manager, &store, &appended).await;

    // Without apply_once, the failed batch (events 10..20) is applied
    // again one event per unit of work. The commit stops at the failing
    // command, so: the events before the bad one in that batch are applied
    // twice (the failed batch, then on their own); the ones after it once
    // (the failed batch never reached them); the bad event's write before
    // its failing one once per attempt; nothing after it.
    let max_attempts = i64::from(config().retry.max_attempts);
    for n in 0..EVENTS {
        let expected = match n {
            BAD => (1 + max_attempts, 0),
            10..BAD => (2, 2),
            _ => (1, 1),
        };
        let counted = counts(&store, n).await;
        assert_eq!(counted, expected, "event {n}");
        assert!(counted.0 <= 1 + max_attempts && counted.1 <= 1 + max_attempts);
    }
    let per_stream = |stream: &str| {
        (0..EVENTS)
            .filter(|n| *n != BAD && stream_of(*n) == stream)
            .map(|n| if (10..BAD).contains(&n) { 2 } else { 1 })
            .sum::<i64>()
    };
    for stream in ["even", "odd"] {
        assert_eq!(
            store
                .counter(&format!("t:per-stream:{stream}"))
                .await
                .unwrap(),
            per_stream(stream),
            "{stream}"
        );
    }
    assert_eq!(
        store.sorted_set(BOARD).score("someone").await.unwrap(),
        Some(1.0),
        "the sorted set is untouched"
    );

    // Fixed: the retried dead letter is applied, once.
    delete_board(&store).await;
    manager
        .retry_dead_letter(appended[BAD as usize].0)
        .await
        .unwrap();
    assert_eq!(counts(&store, BAD).await, (2 + max_attempts, 1));
    assert_eq!(store.counter(BOARD).await.unwrap(), 1);
    assert!(manager.dead_letters().await.unwrap().is_empty());
}

#[tokio::test]
async fn with_apply_once_the_failed_event_is_not_marked_applied_and_no_other_write_is_lost_or_doubled()
 {
    let source = InMemoryEventStore::new();
    let appended = events(&source).await;
    let store = fresh_store().await;
    board_is_a_sorted_set(&store).await;
    let manager = tally(&source, &store, true);

    assert_eq!(manager.catch_up().await.unwrap(), EVENTS);
    assert_dead_lettered(&manager, &store, &appended).await;

    // Every other event's writes: applied exactly once. The bad event's
    // write before the failing one is in its own section, so it is
    // applied once per attempt (Redis does not roll back); nothing after.
    let max_attempts = i64::from(config().retry.max_attempts);
    for n in 0..EVENTS {
        let expected = if n == BAD {
            (1 + max_attempts, 0)
        } else {
            (1, 1)
        };
        assert_eq!(counts(&store, n).await, expected, "event {n}");
    }
    for stream in ["even", "odd"] {
        let events = (0..EVENTS)
            .filter(|n| *n != BAD && stream_of(*n) == stream)
            .count();
        assert_eq!(
            store
                .counter(&format!("t:per-stream:{stream}"))
                .await
                .unwrap(),
            i64::try_from(events).unwrap(),
            "{stream}"
        );
    }

    // The bad event is NOT marked applied, although later events of its
    // stream moved the marker past it.
    let last_odd = appended[EVENTS as usize - 2].1;
    let bad = appended[BAD as usize].1;
    assert_eq!(
        store.get("t:applied:odd").await.unwrap(),
        Some(format!("{last_odd} {bad}").into_bytes())
    );
    let mut tx = store.begin().await.unwrap();
    assert!(tx.apply_once("t:applied:odd", bad).await.unwrap());
    drop(tx);

    // Fixed (the key deleted): retrying the dead letter applies its writes
    // exactly once, and marks it applied.
    delete_board(&store).await;
    manager
        .retry_dead_letter(appended[BAD as usize].0)
        .await
        .unwrap();
    assert_eq!(counts(&store, BAD).await, (2 + max_attempts, 1));
    assert_eq!(store.counter(BOARD).await.unwrap(), 1);
    assert!(manager.dead_letters().await.unwrap().is_empty());
    assert_eq!(
        store.get("t:applied:odd").await.unwrap(),
        Some(last_odd.to_string().into_bytes())
    );

    // Every event delivered again (as after a lost reply): nothing changes.
    let before = dump(&store).await;
    let mut tx = store.begin().await.unwrap();
    store
        .save_position(&mut tx, "tally", Position::START)
        .await
        .unwrap();
    store.commit(tx).await.unwrap();
    assert_eq!(
        tally(&source, &store, true).catch_up().await.unwrap(),
        EVENTS
    );
    assert_eq!(dump(&store).await, before);
    let again = manager
        .retry_dead_letter(appended[BAD as usize].0)
        .await
        .unwrap_err();
    assert!(
        matches!(again, ProjectionError::DeadLetterNotFound { .. }),
        "{again:?}"
    );
}

fn poison() -> NewEvent {
    NewEvent::new("Scored", json!({ "points": 1000, "poison": true }))
}

/// An event that failed in the projection's own code never reached its
/// marker; once later events moved the marker past it, `apply_once` would
/// skip it on retry. The store refuses to drop the dead letter silently.
#[tokio::test]
async fn retrying_a_dead_letter_that_apply_once_skips_keeps_the_letter_and_says_why() {
    let source = InMemoryEventStore::new();
    append(&source, "alice", vec![scored(1), poison(), scored(2)]).await;
    let store = fresh_store().await;
    let running = manager(&source, &store, Leaderboard::guarded());
    assert_eq!(running.catch_up().await.unwrap(), 3);
    let letters = running.dead_letters().await.unwrap();
    assert_eq!(letters.len(), 1);

    running
        .projection()
        .poison_fails
        .store(false, Ordering::SeqCst);
    let error = running
        .retry_dead_letter(letters[0].event.event_id)
        .await
        .unwrap_err();
    let message = error.to_string();
    for expected in [
        "was kept",
        "apply_once skipped the event",
        "lb:applied:alice",
        "Rebuild the projection",
    ] {
        assert!(message.contains(expected), "{expected:?} in {message}");
    }
    assert_eq!(running.dead_letters().await.unwrap().len(), 1);
    assert_eq!(
        store.sorted_set("lb:scores").score("alice").await.unwrap(),
        Some(3.0)
    );

    // A rebuild applies it (and drops the old letter).
    assert_eq!(running.rebuild().await.unwrap(), 3);
    assert_eq!(
        store.sorted_set("lb:scores").score("alice").await.unwrap(),
        Some(1003.0)
    );
    assert!(running.dead_letters().await.unwrap().is_empty());
}
