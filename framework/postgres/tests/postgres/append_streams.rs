//! `append_to_streams` on PostgreSQL takes an advisory lock per stream,
//! in one order for everyone, before it writes any row: two appends over
//! overlapping streams take turns instead of deadlocking (which
//! PostgreSQL breaks only after a second, holding back every reader
//! meanwhile). The conformance suite checks what every store promises;
//! this checks how PostgreSQL keeps it.

use std::time::Duration;

use composable_rust_core::event_store::StreamAppend;
use composable_rust_core::{EventStore, EventStoreError, ExpectedVersion};
use sqlx::Connection;
use sqlx::postgres::PgConnection;

use super::support::{self, database_url, event, stream};

/// How long the test waits for something that should take milliseconds.
const PATIENCE: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_multi_stream_append_locks_its_streams_before_writing_any() {
    // Its transaction waits open on purpose: no other test meanwhile.
    let store = support::exclusive_store().await;
    let (first, second) = (stream("first"), stream("second"));
    let mut other = PgConnection::connect(&database_url()).await.unwrap();
    let key: i64 = sqlx::query_scalar("SELECT hashtextextended($1 || '.' || $2, 0)")
        .bind(store.schema())
        .bind(second.as_str())
        .fetch_one(&mut other)
        .await
        .unwrap();
    // Another writer is busy with `second` (as another multi-stream
    // append would be).
    sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(key)
        .execute(&mut other)
        .await
        .unwrap();

    let multi = tokio::spawn({
        let store = store.store.clone();
        let (first, second) = (first.clone(), second.clone());
        async move {
            store
                .append_to_streams(vec![
                    StreamAppend::new(first, ExpectedVersion::NoStream, vec![event(1)]),
                    StreamAppend::new(second, ExpectedVersion::NoStream, vec![event(2)]),
                ])
                .await
        }
    });
    tokio::time::timeout(PATIENCE, async {
        loop {
            let waiting: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted",
            )
            .fetch_one(&mut other)
            .await
            .unwrap();
            if waiting > 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("the multi-stream append waits for the lock");

    // Nothing of it is written yet, not even `first`'s row (an
    // uncommitted one would make this append wait for its transaction).
    let single = tokio::time::timeout(
        PATIENCE,
        store.append(&first, ExpectedVersion::NoStream, vec![event(3)]),
    )
    .await
    .expect("the single append does not wait for the multi-stream one");
    assert_eq!(single.unwrap().stream_version, 1);

    sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(key)
        .execute(&mut other)
        .await
        .unwrap();
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
