//! `append_to_streams` on PostgreSQL takes an advisory lock per stream,
//! in one order for everyone, before it writes any row: two appends over
//! overlapping streams take turns instead of deadlocking (which
//! PostgreSQL breaks only after a second, holding back every reader
//! meanwhile). The conformance suite checks what every store promises;
//! this checks how PostgreSQL keeps it.

use std::time::Duration;

use composable_rust_core::event_store::StreamAppend;
use composable_rust_core::{AppendOutcome, EventStore, EventStoreError, ExpectedVersion, StreamId};
use sqlx::Connection;
use sqlx::postgres::PgConnection;
use tokio::task::JoinHandle;

use super::support::{self, TestStore, database_url, event, stream};

/// How long the test waits for something that should take milliseconds.
const PATIENCE: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_multi_stream_append_locks_its_streams_before_writing_any() {
    // Its transaction waits open on purpose: no other test meanwhile.
    let store = support::exclusive_store().await;
    let (first, second) = (stream("first"), stream("second"));
    let mut other = PgConnection::connect(&database_url()).await.unwrap();
    // Another writer is busy with `second` (as another multi-stream
    // append would be).
    let key = hold_lock(&store, &second, &mut other).await;

    let multi = spawn_commit(
        &store,
        (&first, ExpectedVersion::NoStream),
        (&second, ExpectedVersion::NoStream),
    );
    // The multi-stream append waits for the lock.
    until_one_waits(key, &mut other).await;

    // Nothing of it is written yet, not even `first`'s row (an
    // uncommitted one would make this append wait for its transaction).
    let single = tokio::time::timeout(
        PATIENCE,
        store.append(&first, ExpectedVersion::NoStream, vec![event(3)]),
    )
    .await
    .expect("the single append does not wait for the multi-stream one");
    assert_eq!(single.unwrap().stream_version, 1);

    release_lock(key, &mut other).await;
    let error = tokio::time::timeout(PATIENCE, multi)
        .await
        .expect("the multi-stream append goes on once the lock is free")
        .unwrap()
        .unwrap_err();
    match error {
        EventStoreError::WrongExpectedVersion {
            stream_id, actual, ..
        } => {
            assert_eq!(stream_id, first.as_str());
            assert_eq!(actual, 1);
        }
        other => panic!("expected a conflict on `first`, got {other:?}"),
    }
    assert_eq!(store.stream_version(&second).await.unwrap(), 0);
}

/// Starts an `append_to_streams` of one event to each of two streams, at
/// the versions given, in a task of its own (it may wait for a lock).
fn spawn_commit(
    store: &TestStore,
    (first, first_expected): (&StreamId, ExpectedVersion),
    (second, second_expected): (&StreamId, ExpectedVersion),
) -> JoinHandle<Result<Vec<AppendOutcome>, EventStoreError>> {
    let store = store.store.clone();
    let shares = vec![
        StreamAppend::new(first.clone(), first_expected, vec![event(1)]),
        StreamAppend::new(second.clone(), second_expected, vec![event(2)]),
    ];
    tokio::spawn(async move { store.append_to_streams(shares).await })
}

/// Takes, on `connection` and until released, the advisory lock that
/// `append_to_streams` takes for `stream`; returns its key.
async fn hold_lock(store: &TestStore, stream: &StreamId, connection: &mut PgConnection) -> i64 {
    let key: i64 = sqlx::query_scalar("SELECT hashtextextended($1 || '.' || $2, 0)")
        .bind(store.schema())
        .bind(stream.as_str())
        .fetch_one(&mut *connection)
        .await
        .unwrap();
    sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(key)
        .execute(connection)
        .await
        .unwrap();
    key
}

async fn release_lock(key: i64, connection: &mut PgConnection) {
    sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(key)
        .execute(connection)
        .await
        .unwrap();
}

/// The statement of each session waiting for the advisory lock `key`
/// (only that key: tests in other processes take locks of their own).
async fn waiting_statements(key: i64, connection: &mut PgConnection) -> Vec<String> {
    // pg_locks shows a bigint key as its high and low 32 bits.
    sqlx::query_scalar(
        "SELECT a.query FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid \
         WHERE l.locktype = 'advisory' AND NOT l.granted AND l.objsubid = 1 \
           AND l.classid::int8 = ($1 >> 32) & 4294967295 \
           AND l.objid::int8 = $1 & 4294967295",
    )
    .bind(key)
    .fetch_all(connection)
    .await
    .unwrap()
}

/// Waits until some session waits for the advisory lock `key`; its
/// statement.
async fn until_one_waits(key: i64, connection: &mut PgConnection) -> String {
    tokio::time::timeout(PATIENCE, async {
        loop {
            if let Some(statement) = waiting_statements(key, connection).await.pop() {
                return statement;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("a session waits for the lock")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_that_lost_a_race_takes_its_locks_before_it_reads_again() {
    // Its locks wait open on purpose: no other test meanwhile.
    let store = support::exclusive_store().await;
    let (hot, mine) = (stream("hot"), stream("mine"));
    let mut holder = PgConnection::connect(&database_url()).await.unwrap();
    let mut watcher = PgConnection::connect(&database_url()).await.unwrap();
    let key = hold_lock(&store, &hot, &mut holder).await;

    let commit = spawn_commit(
        &store,
        (&hot, ExpectedVersion::Any),
        (&mine, ExpectedVersion::NoStream),
    );
    // The first attempt is the statement alone; its snapshot is taken.
    let first = until_one_waits(key, &mut watcher).await;
    assert!(first.starts_with("WITH locked"), "{first}");
    // A writer commits to `hot` after that snapshot (a single append takes
    // no advisory lock), and another queues for the lock behind ours.
    let single = store
        .append(&hot, ExpectedVersion::Any, vec![event(3)])
        .await
        .unwrap();
    assert_eq!(single.stream_version, 1);
    let mut next_holder = PgConnection::connect(&database_url()).await.unwrap();
    let queued = tokio::spawn(async move {
        sqlx::query("SELECT pg_advisory_lock($1)")
            .bind(key)
            .execute(&mut next_holder)
            .await
            .unwrap();
        next_holder
    });
    tokio::time::timeout(PATIENCE, async {
        while waiting_statements(key, &mut watcher).await.len() < 2 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("the second holder queues behind the commit");

    // The commit gets the lock, reads `hot` at 0 in its old snapshot and
    // collides with version 1: it lost the race. It tries again, and this
    // time waits for the lock (now the queued holder's) before any read.
    release_lock(key, &mut holder).await;
    let mut next_holder = tokio::time::timeout(PATIENCE, queued)
        .await
        .expect("the queued holder gets the lock once the commit let go")
        .unwrap();
    let retry = until_one_waits(key, &mut watcher).await;
    assert!(
        retry.starts_with("SELECT count(*) AS streams"),
        "after a lost race the commit locks first, then reads: {retry}"
    );
    // Meanwhile another writer commits: the retry must see it.
    let single = store
        .append(&hot, ExpectedVersion::Any, vec![event(4)])
        .await
        .unwrap();
    assert_eq!(single.stream_version, 2);
    release_lock(key, &mut next_holder).await;

    let outcomes = tokio::time::timeout(PATIENCE, commit)
        .await
        .expect("the commit goes on once the lock is free")
        .unwrap()
        .unwrap();
    assert_eq!(outcomes[0].stream_version, 3, "after both other writers");
    assert_eq!(outcomes[1].stream_version, 1);
    assert_eq!(
        outcomes[0].last_position.commit, outcomes[1].last_position.commit,
        "one commit"
    );
    assert_eq!(store.stream_version(&hot).await.unwrap(), 3);
}
