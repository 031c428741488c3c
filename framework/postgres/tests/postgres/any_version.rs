//! `ExpectedVersion::Any` always appends, however many writers race for
//! the same stream: a lost race for the next version is retried, never
//! reported as a conflict (`CR-E0003`).

use std::time::Instant;

use composable_rust_core::{EventStore, ExpectedVersion};
use composable_rust_postgres::PostgresEventStore;
use sqlx::postgres::PgPoolOptions;

use super::support::{self, database_url, event, stream};

const WRITERS: u64 = 16;
const APPENDS_PER_WRITER: u64 = 40;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixteen_writers_appending_at_any_version_to_one_stream_all_succeed_without_gaps() {
    let test_store = support::fresh_store().await;
    // A pool with a connection per writer, so that every writer really
    // races (the shared test pool has 10).
    let pool = PgPoolOptions::new()
        .max_connections(WRITERS as u32)
        .connect(&database_url())
        .await
        .expect("connect");
    let store = PostgresEventStore::new(pool)
        .with_schema(test_store.schema())
        .expect("schema");
    let id = stream("contended");
    let started = Instant::now();
    let writers: Vec<_> = (0..WRITERS)
        .map(|writer| {
            let (store, id) = (store.clone(), id.clone());
            tokio::spawn(async move {
                let mut written = 0;
                for n in 0..APPENDS_PER_WRITER {
                    // Batches of 1 to 3 events, so batches race too.
                    let size = 1 + (writer + n) % 3;
                    let batch: Vec<_> = (0..size)
                        .map(|i| event(writer * 1_000 + n * 10 + i))
                        .collect();
                    store
                        .append(&id, ExpectedVersion::Any, batch)
                        .await
                        .unwrap_or_else(|error| {
                            panic!("writer {writer}, append {n} at any version failed: {error}")
                        });
                    written += size;
                }
                written
            })
        })
        .collect();
    let mut total = 0;
    for writer in writers {
        total += writer.await.expect("writer task");
    }
    let elapsed = started.elapsed();

    let events = store.load_stream(&id, 0).await.expect("load");
    let versions: Vec<u64> = events.iter().map(|event| event.stream_version).collect();
    assert_eq!(
        versions,
        (1..=total).collect::<Vec<_>>(),
        "versions 1..={total} without gaps or duplicates"
    );
    // Each writer's events are in its own order within the stream.
    for writer in 0..WRITERS {
        let mine: Vec<i64> = events
            .iter()
            .filter_map(|event| event.payload["n"].as_i64())
            .filter(|n| *n / 1_000 == writer as i64)
            .collect();
        assert!(
            mine.is_sorted(),
            "writer {writer}'s events out of order: {mine:?}"
        );
    }
    assert_eq!(store.stream_version(&id).await.expect("version"), total);
    eprintln!(
        "{WRITERS} writers appended {} batches ({total} events) at any version to one stream in \
         {elapsed:?}",
        WRITERS * APPENDS_PER_WRITER
    );
}
