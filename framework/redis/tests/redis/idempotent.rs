//! At-least-once delivery made safe: `apply_once` markers, a batch applied
//! again after a lost commit reply, and a commit that fails part-way.

use std::time::Duration;

use composable_rust_core::projection::{ProjectionCheckpoint, ProjectionStore, ProjectionTx};
use composable_rust_core::{
    CodedError, ErrorClass, EventStore, InMemoryEventStore, Position, ProjectionError,
};
use composable_rust_redis::{RedisConnectionSettings, RedisStoreError, RedisStoreOptions};

use super::manager::{Leaderboard, append, manager, scored, thirty_events};
use super::support::{dump, fresh_store, redis_url};

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

/// Simulates a lost commit reply: the batch committed, but the manager
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
async fn a_batch_applied_again_after_a_lost_commit_reply_changes_nothing() {
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
async fn a_command_failing_in_a_commit_stops_it_there_and_the_checkpoint_does_not_move() {
    let store = fresh_store().await;
    let before = Position::new(5, 5);
    let mut tx = store.begin().await.unwrap();
    store.save_position(&mut tx, "p", before).await.unwrap();
    tx.zadd("scores", "alice", 1.0).unwrap();
    store.commit(tx).await.unwrap();

    let mut tx = store.begin().await.unwrap();
    tx.save("applied", b"yes").await.unwrap();
    tx.incr_by("scores", 1).unwrap(); // WRONGTYPE: "scores" is a sorted set
    tx.save("after", b"no").await.unwrap();
    store
        .save_position(&mut tx, "p", Position::new(9, 9))
        .await
        .unwrap();
    let error = store.commit(tx).await.unwrap_err();

    assert!(
        !error.is_transient(),
        "retrying the same writes cannot help: the manager isolates the event"
    );
    assert_eq!(error.class(), ErrorClass::Permanent);
    assert_eq!(error.code().as_str(), "CR-E0205");
    let message = error.to_string();
    for expected in [
        "command #1 of a unit of work of 4 commands failed",
        "INCRBY",
        "WRONGTYPE",
        "the command before it stays applied (Redis does not roll back)",
        "the commands after it did not run",
        "the checkpoint did not move",
    ] {
        assert!(message.contains(expected), "{expected:?} in {message}");
    }
    let ProjectionError::Backend(backend) = &error else {
        panic!("{error:?}");
    };
    assert!(matches!(
        backend.downcast_ref::<RedisStoreError>(),
        Some(RedisStoreError::PartialCommit {
            index: 1,
            checkpoint: true,
            markers: 0,
            ..
        })
    ));
    assert_eq!(
        store.load_position("p").await.unwrap(),
        Some(before),
        "the batch will be applied again"
    );
    assert_eq!(
        store.get("applied").await.unwrap(),
        Some(b"yes".to_vec()),
        "Redis does not roll back the writes before the failure"
    );
    assert_eq!(
        store.get("after").await.unwrap(),
        None,
        "nothing after the failure runs"
    );

    // Without a previous checkpoint, none is created.
    let mut tx = store.begin().await.unwrap();
    tx.incr_by("scores", 1).unwrap();
    store
        .save_position(&mut tx, "new", Position::new(1, 1))
        .await
        .unwrap();
    store.commit(tx).await.unwrap_err();
    assert_eq!(store.load_position("new").await.unwrap(), None);
}

#[tokio::test]
async fn a_failed_write_puts_its_events_marker_back_and_records_it_as_not_applied() {
    let store = fresh_store().await;
    let (p1, p2, p3) = (
        Position::new(1, 1),
        Position::new(2, 2),
        Position::new(3, 3),
    );
    let mut tx = store.begin().await.unwrap();
    assert!(tx.apply_once("m", p1).await.unwrap());
    assert!(tx.apply_once("with-ttl", p1).await.unwrap());
    tx.expire("with-ttl", Duration::from_secs(100)).unwrap();
    tx.zadd("board", "x", 1.0).unwrap();
    store.commit(tx).await.unwrap();

    // One unit of work, two events: p2 applied in full, p3 fails half-way.
    let mut tx = store.begin().await.unwrap();
    assert!(tx.apply_once("m", p2).await.unwrap());
    tx.incr_by("p2", 1).unwrap();
    assert!(tx.apply_once("m", p3).await.unwrap());
    assert!(tx.apply_once("with-ttl", p3).await.unwrap());
    tx.incr_by("p3-before", 1).unwrap();
    tx.incr_by("board", 1).unwrap(); // WRONGTYPE
    tx.incr_by("p3-after", 1).unwrap();
    store.save_position(&mut tx, "proj", p3).await.unwrap();
    let error = store.commit(tx).await.unwrap_err();
    let message = error.to_string();
    assert!(
        message.contains(
            "2 apply_once markers of events whose writes did not all apply were put back"
        ),
        "{message}"
    );

    assert_eq!(store.counter("p2").await.unwrap(), 1);
    assert_eq!(
        store.get("m").await.unwrap(),
        Some(b"2/2 3/3".to_vec()),
        "p2 stays applied; p3 is recorded as not applied"
    );
    assert_eq!(
        store.get("with-ttl").await.unwrap(),
        Some(b"1/1 3/3".to_vec())
    );
    let ttl = store
        .ttl("with-ttl")
        .await
        .unwrap()
        .expect("its TTL is put back too");
    assert!(ttl > Duration::from_secs(90), "{ttl:?}");
    assert_eq!(store.counter("p3-before").await.unwrap(), 1, "no rollback");
    assert_eq!(store.counter("p3-after").await.unwrap(), 0);
    assert_eq!(store.load_position("proj").await.unwrap(), None);

    // Delivered again: p2 is skipped, p3 goes through (even once the
    // marker has moved past it), and then counts as applied.
    let mut tx = store.begin().await.unwrap();
    assert!(!tx.apply_once("m", p2).await.unwrap());
    assert!(tx.apply_once("m", Position::new(4, 4)).await.unwrap());
    store.commit(tx).await.unwrap();
    assert_eq!(store.get("m").await.unwrap(), Some(b"4/4 3/3".to_vec()));
    let mut tx = store.begin().await.unwrap();
    assert!(tx.apply_once("m", p3).await.unwrap(), "not applied yet");
    assert!(
        !tx.apply_once("m", p3).await.unwrap(),
        "but now, in this unit of work"
    );
    tx.incr_by("p3-after", 1).unwrap();
    store.commit(tx).await.unwrap();
    assert_eq!(store.get("m").await.unwrap(), Some(b"4/4".to_vec()));
    let mut tx = store.begin().await.unwrap();
    assert!(!tx.apply_once("m", p3).await.unwrap());
}

/// The repair runs inside the commit script, on the server: a client that
/// gives up on a commit (here: a response timeout far shorter than the
/// script takes, about 60 ms) changes nothing.
#[tokio::test]
async fn a_client_that_gives_up_during_a_failing_commit_leaves_nothing_to_repair() {
    let store = fresh_store().await;
    let mut tx = store.begin().await.unwrap();
    store
        .save_position(&mut tx, "proj", Position::new(1, 1))
        .await
        .unwrap();
    tx.zadd("board", "x", 1.0).unwrap();
    store.commit(tx).await.unwrap(); // also loads the script

    // redis-rs does not send a command whose caller gave up before it was
    // written out: then nothing ran, and the next, more patient, attempt
    // is the test.
    let position = Position::new(7, 7);
    for timeout in [20, 50, 200] {
        let impatient = RedisStoreOptions::new(store.prefix.as_str())
            .unwrap()
            .with_connection(
                RedisConnectionSettings::default()
                    .with_response_timeout(Duration::from_millis(timeout)),
            )
            .connect(&redis_url())
            .await
            .unwrap();
        let mut tx = store.begin().await.unwrap();
        assert!(tx.apply_once("m", position).await.unwrap());
        for _ in 0..30_000 {
            tx.incr_by("n", 1).unwrap();
        }
        tx.incr_by("board", 1).unwrap(); // WRONGTYPE, after a long script
        store
            .save_position(&mut tx, "proj", position)
            .await
            .unwrap();
        let seen = impatient.commit(tx).await.unwrap_err();
        eprintln!("with a {timeout} ms timeout, the client saw: {seen}");

        // The script is atomic: another client sees none of its effects, or
        // all of them.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
        while store.counter("n").await.unwrap() == 0 && tokio::time::Instant::now() < deadline {
            assert_eq!(store.get("m").await.unwrap(), None, "not run yet");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        match store.counter("n").await.unwrap() {
            0 => continue,
            n => assert_eq!(n, 30_000, "the writes before the failure, all at once"),
        }
        assert_eq!(store.get("m").await.unwrap(), Some(b"0/0 7/7".to_vec()));
        assert_eq!(
            store.load_position("proj").await.unwrap(),
            Some(Position::new(1, 1))
        );
        return;
    }
    panic!("no attempt reached the server");
}
