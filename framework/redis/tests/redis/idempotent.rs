//! At-least-once delivery made safe: `apply_once` markers, a batch applied
//! again after a lost EXEC reply, and a partly applied MULTI/EXEC.

use composable_rust_core::projection::{ProjectionCheckpoint, ProjectionStore, ProjectionTx};
use composable_rust_core::{CodedError, EventStore, InMemoryEventStore, Position};

use super::manager::{Leaderboard, append, manager, scored, thirty_events};
use super::support::{dump, fresh_store};

#[tokio::test]
async fn apply_once_lets_each_position_through_once_per_marker() {
    let store = fresh_store().await;
    let (p1, p2, p3) = (
        Position::new(1, 1),
        Position::new(2, 2),
        Position::new(3, 3),
    );

    let mut tx = store.begin().await.unwrap();
    assert!(tx.apply_once("m", p2).await.unwrap(), "first time");
    assert!(
        !tx.apply_once("m", p2).await.unwrap(),
        "same position again"
    );
    assert!(!tx.apply_once("m", p1).await.unwrap(), "an older position");
    assert!(
        tx.apply_once("other", p1).await.unwrap(),
        "markers are independent"
    );
    store.commit(tx).await.unwrap();
    assert_eq!(store.get("m").await.unwrap(), Some(b"2/2".to_vec()));

    let mut tx = store.begin().await.unwrap();
    assert!(
        !tx.apply_once("m", p2).await.unwrap(),
        "remembered across units of work"
    );
    assert!(tx.apply_once("m", p3).await.unwrap());
    drop(tx);
    let mut tx = store.begin().await.unwrap();
    assert!(
        tx.apply_once("m", p3).await.unwrap(),
        "a dropped unit of work recorded nothing"
    );
}

/// Simulates a lost EXEC reply: the batch committed, but the manager
/// resumes from the checkpoint before it, as if it never had.
async fn replay_from(store: &composable_rust_redis::RedisProjectionStore, position: Position) {
    let mut tx = store.begin().await.unwrap();
    store
        .save_position(&mut tx, "leaderboard", position)
        .await
        .unwrap();
    store.commit(tx).await.unwrap();
}

#[tokio::test]
async fn a_batch_applied_again_after_a_lost_exec_reply_changes_nothing() {
    let events = InMemoryEventStore::new();
    thirty_events(&events).await;
    let store = fresh_store().await;
    manager(&events, &store, Leaderboard::guarded())
        .catch_up()
        .await
        .unwrap();
    let once = dump(&store).await;
    let last = store.load_position("leaderboard").await.unwrap();

    // Every batch delivered again, from the start, by a new manager.
    replay_from(&store, Position::START).await;
    let again = manager(&events, &store, Leaderboard::guarded());
    assert_eq!(
        again.catch_up().await.unwrap(),
        30,
        "all 30 events were delivered again"
    );
    assert_eq!(
        dump(&store).await,
        once,
        "the read model is as if applied once"
    );
    assert_eq!(store.load_position("leaderboard").await.unwrap(), last);

    // Only the last batch again, with a new event after it.
    let middle = events.read_all(Position::START, 20).await.unwrap()[19].position;
    append(&events, "alice", vec![scored(1)]).await;
    replay_from(&store, middle).await;
    manager(&events, &store, Leaderboard::guarded())
        .catch_up()
        .await
        .unwrap();
    assert_eq!(store.counter("lb:events").await.unwrap(), 31);
    assert_eq!(
        store.sorted_set("lb:scores").score("alice").await.unwrap(),
        Some(56.0)
    );

    // Without the guard, the same replay counts twice: the test above
    // really delivered the events again.
    let naive = fresh_store().await;
    manager(&events, &naive, Leaderboard::naive())
        .catch_up()
        .await
        .unwrap();
    replay_from(&naive, Position::START).await;
    manager(&events, &naive, Leaderboard::naive())
        .catch_up()
        .await
        .unwrap();
    assert_eq!(naive.counter("lb:events").await.unwrap(), 62);
}

#[tokio::test]
async fn a_command_failing_inside_exec_is_reported_and_the_checkpoint_put_back() {
    let store = fresh_store().await;
    let before = Position::new(5, 5);
    let mut tx = store.begin().await.unwrap();
    store.save_position(&mut tx, "p", before).await.unwrap();
    tx.zadd("scores", "alice", 1.0).unwrap();
    store.commit(tx).await.unwrap();

    let mut tx = store.begin().await.unwrap();
    tx.save("applied", b"yes").await.unwrap();
    tx.incr_by("scores", 1).unwrap(); // WRONGTYPE: "scores" is a sorted set
    store
        .save_position(&mut tx, "p", Position::new(9, 9))
        .await
        .unwrap();
    let error = store.commit(tx).await.unwrap_err();

    assert!(error.is_transient(), "the manager retries the batch");
    assert_eq!(error.code().as_str(), "CR-E0205");
    let message = error.to_string();
    assert!(message.contains("INCRBY"), "{message}");
    assert!(message.contains("WRONGTYPE"), "{message}");
    assert!(message.contains("checkpoint was put back"), "{message}");
    assert_eq!(
        store.load_position("p").await.unwrap(),
        Some(before),
        "the batch will be applied again"
    );
    assert_eq!(
        store.get("applied").await.unwrap(),
        Some(b"yes".to_vec()),
        "Redis does not roll back the other writes"
    );

    // Without a previous checkpoint, it is removed again.
    let mut tx = store.begin().await.unwrap();
    tx.incr_by("scores", 1).unwrap();
    store
        .save_position(&mut tx, "new", Position::new(1, 1))
        .await
        .unwrap();
    store.commit(tx).await.unwrap_err();
    assert_eq!(store.load_position("new").await.unwrap(), None);
}
