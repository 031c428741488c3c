//! Benchmark: a blue/green rebuild of [`EVENTS`] events into a new
//! PostgreSQL version against raw `COPY` of the same rows into the same
//! table shape, in the same run on the same server.
//!
//! ```console
//! DATABASE_URL=postgres://postgres@localhost:5432/postgres \
//!     cargo bench -p composable-rust-postgres --bench blue_green
//! ```
//!
//! Without `DATABASE_URL` it prints how to set it and exits with status 0
//! (skipped). It works in a database of its own (`TestDatabase`, dropped at
//! the end), since a blue/green read model spans several schemas.
//!
//! - **rebuild**: `BlueGreen::rebuild` of a projection writing one row per
//!   event (`line:<event id>` -> the payload): create and migrate the
//!   version, read every event from the `PostgresEventStore`, apply it,
//!   commit each batch of [`BATCH`] events with its checkpoint (bulk `COPY`
//!   for the new keys), catch up, switch the views. Measured end to end.
//! - **reading alone**: every event read through the event store once, in
//!   pages of [`BATCH`], before each round: the floor of any rebuild from
//!   this store.
//! - **raw COPY**: the same rows (built in memory beforehand, not timed)
//!   sent by one binary `COPY` into an empty table of the projection
//!   store's shape (`key text COLLATE "C" PRIMARY KEY, data bytea,
//!   updated_at timestamptz DEFAULT now()`), in one transaction: the
//!   fastest way to get those rows into that table.
//!
//! - **raw pipeline**: the same job in raw code, the ceiling of any rebuild
//!   that must decode each event: the events' ids and payloads read by one
//!   binary `COPY ... TO STDOUT` (no gap-safety, no checks), each payload
//!   parsed into a `serde_json::Value` and encoded again as the projection
//!   does, the rows sent by one binary `COPY ... FROM STDIN` in one
//!   transaction, reading and writing overlapped on two connections.
//!
//! Each side runs [`ROUNDS`] times, alternating which goes first, after one
//! warm-up each; the ratio is of the median rates (rows per second). The
//! target is a ratio >= 0.8.
//!
//! With `COMPOSABLE_BENCH_SMOKE=1` it is a smoke run
//! (`composable_rust_testing::bench`): a hundredth of the events, every
//! step and check, no verdict.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use composable_rust_core::projection::ProjectionStoreExt;
use composable_rust_core::projection::blue_green::LoadOptions;
use composable_rust_core::projection::{EventSource, ProjectionTx};
use composable_rust_core::{
    EventStore, ExpectedVersion, NewEvent, Projection, ProjectionError, StoredEvent, StreamId,
};
use composable_rust_postgres::{
    BlueGreen, PostgresEventStore, PostgresProjectionStore, PostgresProjectionTx,
};
use composable_rust_testing::fixtures::TestDatabase;
use composable_rust_testing::{bench, services};
use serde_json::json;
use sqlx::postgres::PgPoolOptions;
use sqlx::{PgConnection, PgPool};

/// Events rebuilt (a hundredth in a smoke run).
const EVENTS: usize = 1_000_000;
/// Events per append while loading.
const APPEND_BATCH: usize = 1_000;
/// Events per stream (appends of this many events each).
const PER_STREAM: usize = 100;
/// Events per unit of work of the rebuild.
const BATCH: usize = 10_000;
/// Measured runs per side.
const ROUNDS: usize = 3;

fn main() {
    bench::banner("the blue_green benchmark (PostgreSQL)");
    if let Err(missing) = services::try_database_url() {
        eprintln!("blue_green benchmark skipped: {missing}");
        return;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    runtime.block_on(async {
        let db = TestDatabase::new().await;
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .connect_with(db.connect_options())
            .await
            .expect("connect to the benchmark database");
        // A panic (a failed check) unwinds through here: the database is
        // dropped on the way out either way.
        run(pool.clone()).await;
        pool.close().await;
        drop(db);
    });
}

/// One row per event: `line:<event id>` -> the payload.
struct Lines;

#[async_trait]
impl Projection for Lines {
    type Store = PostgresProjectionStore;

    fn name(&self) -> &str {
        "lines"
    }

    async fn apply(
        &self,
        event: &StoredEvent,
        tx: &mut PostgresProjectionTx,
    ) -> Result<(), ProjectionError> {
        let data = serde_json::to_vec(&event.payload).map_err(ProjectionError::apply)?;
        tx.save(&format!("line:{}", event.event_id), &data).await
    }

    async fn reset(&self, tx: &mut PostgresProjectionTx) -> Result<(), ProjectionError> {
        tx.delete_prefix("line:").await.map(|_| ())
    }
}

async fn run(pool: PgPool) {
    let events_count = bench::scaled(EVENTS);
    let settings: (String, String) =
        sqlx::query_as("SELECT version(), current_setting('synchronous_commit')")
            .fetch_one(&pool)
            .await
            .expect("server settings");
    println!("PostgreSQL: {}", settings.0);
    println!(
        "synchronous_commit = {}; {events_count} events, batches of {BATCH}, {ROUNDS} runs \
         per side{}",
        settings.1,
        bench::label()
    );

    let events = PostgresEventStore::new(pool.clone());
    events.migrate().await.expect("event store migrations");
    let started = Instant::now();
    load_events(&events, events_count).await;
    println!(
        "loaded {events_count} events in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    // The raw side's rows: exactly what the projection writes.
    let rows: Vec<(String, Vec<u8>)> = read_everything(&events)
        .await
        .iter()
        .map(|e| {
            (
                format!("line:{}", e.event_id),
                serde_json::to_vec(&e.payload).expect("json"),
            )
        })
        .collect();
    assert_eq!(rows.len(), events_count);

    let versions = BlueGreen::new(pool.clone(), "bench_read")
        .expect("name")
        .with_grace_period(Duration::ZERO)
        .with_load_options(LoadOptions {
            batch_size: BATCH,
            prefetch: 2,
        });
    versions.migrate().await.expect("registry");
    let source: Arc<dyn EventSource> = Arc::new(events.clone());

    // Warm-up, then alternate.
    rebuild(&versions, &source, events_count).await;
    raw_copy(&pool, &rows, 0).await;
    raw_pipeline(&pool, events_count, 0).await;
    let (mut rebuilt, mut raw, mut reads) = (Vec::new(), Vec::new(), Vec::new());
    let mut pipelines = Vec::new();
    for round in 0..ROUNDS {
        reads.push(read_alone(&events, events_count).await);
        pipelines.push(raw_pipeline(&pool, events_count, round + 1).await);
        if round % 2 == 0 {
            rebuilt.push(rebuild(&versions, &source, events_count).await);
            raw.push(raw_copy(&pool, &rows, round + 1).await);
        } else {
            raw.push(raw_copy(&pool, &rows, round + 1).await);
            rebuilt.push(rebuild(&versions, &source, events_count).await);
        }
    }
    let (rebuild_rate, raw_rate) = (median(&mut rebuilt), median(&mut raw));
    let read_rate = median(&mut reads);
    let pipeline_rate = median(&mut pipelines);
    let ratio = rebuild_rate / raw_rate;
    println!();
    println!(
        "rebuild:  {} rows/s (runs: {})",
        rate(rebuild_rate),
        rebuilt
            .iter()
            .map(|r| rate(*r))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "raw COPY: {} rows/s (runs: {})",
        rate(raw_rate),
        raw.iter().map(|r| rate(*r)).collect::<Vec<_>>().join(", ")
    );
    println!(
        "reading alone: {} events/s (runs: {}); rebuild / reading alone: {:.2}",
        rate(read_rate),
        reads
            .iter()
            .map(|r| rate(*r))
            .collect::<Vec<_>>()
            .join(", "),
        rebuild_rate / read_rate
    );
    println!(
        "raw pipeline: {} rows/s (runs: {}); raw pipeline / raw COPY: {:.2}; \
         rebuild / raw pipeline: {:.2}",
        rate(pipeline_rate),
        pipelines
            .iter()
            .map(|r| rate(*r))
            .collect::<Vec<_>>()
            .join(", "),
        pipeline_rate / raw_rate,
        rebuild_rate / pipeline_rate
    );
    println!(
        "ratio rebuild / raw COPY: {ratio:.2} (target >= 0.80) {}{}",
        bench::judged(if ratio >= 0.8 { "met" } else { "MISSED" }),
        bench::label()
    );
}

async fn load_events(events: &PostgresEventStore, count: usize) {
    let mut appended = 0;
    while appended < count {
        let n = APPEND_BATCH.min(count - appended);
        let mut by_stream: Vec<(StreamId, Vec<NewEvent>)> = Vec::new();
        for i in appended..appended + n {
            let stream = format!("order-{}", i / PER_STREAM);
            let event = NewEvent::new(
                "LineAdded",
                json!({ "order": stream, "line": i % PER_STREAM, "sku": format!("sku-{}", i % 977), "quantity": 1 + i % 5, "price_cents": 100 + i % 1000 }),
            );
            match by_stream.last_mut() {
                Some((id, batch)) if id.as_str() == stream => batch.push(event),
                _ => by_stream.push((StreamId::new(stream).expect("id"), vec![event])),
            }
        }
        for (stream, batch) in by_stream {
            events
                .append(&stream, ExpectedVersion::Any, batch)
                .await
                .expect("append");
        }
        appended += n;
    }
}

/// Reads every event once, as a rebuild does (pages of [`BATCH`]); events/s.
async fn read_alone(events: &PostgresEventStore, count: usize) -> f64 {
    let started = Instant::now();
    let read = read_everything(events).await.len();
    let elapsed = started.elapsed();
    assert_eq!(read, count);
    #[allow(clippy::cast_precision_loss)]
    let per_second = count as f64 / elapsed.as_secs_f64();
    println!(
        "  reading alone:   {:.2} s, {} events/s",
        elapsed.as_secs_f64(),
        rate(per_second)
    );
    per_second
}

async fn read_everything(events: &PostgresEventStore) -> Vec<StoredEvent> {
    let mut all = Vec::new();
    let mut after = composable_rust_core::Position::START;
    loop {
        let batch = events.read_all(after, BATCH).await.expect("read");
        let Some(last) = batch.last() else {
            return all;
        };
        after = last.position;
        all.extend(batch);
    }
}

/// One rebuild into a new version, then the old version dropped; rows/s.
async fn rebuild(versions: &BlueGreen, source: &Arc<dyn EventSource>, count: usize) -> f64 {
    let started = Instant::now();
    let switched = versions
        .rebuild(&Lines, Arc::clone(source))
        .await
        .expect("rebuild");
    let elapsed = started.elapsed();
    assert_eq!(switched.progress.events_applied as usize, count);
    // Correctness: readers see every row of the new version.
    let reader = versions.reader();
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM bench_read.projection_data")
        .fetch_one(reader.pool())
        .await
        .expect("count");
    assert_eq!(rows as usize, count, "one row per event in the new version");
    assert!(
        reader
            .get_json::<serde_json::Value>("line:missing")
            .await
            .expect("get")
            .is_none()
    );
    versions.drop_retired().await.expect("drop the old version");
    #[allow(clippy::cast_precision_loss)]
    let per_second = count as f64 / elapsed.as_secs_f64();
    println!(
        "  rebuild into v{}: {:.2} s, {} rows/s",
        switched.to,
        elapsed.as_secs_f64(),
        rate(per_second)
    );
    per_second
}

/// One binary COPY of `rows` into a fresh table of the store's shape, in
/// one transaction; rows/s.
async fn raw_copy(pool: &PgPool, rows: &[(String, Vec<u8>)], round: usize) -> f64 {
    let table = empty_table(pool, &format!("data_{round}")).await;
    let started = Instant::now();
    let mut tx = pool.begin().await.expect("begin");
    let copied = copy_all(&mut tx, &table, rows).await;
    tx.commit().await.expect("commit");
    let elapsed = started.elapsed();
    assert_eq!(copied as usize, rows.len());
    sqlx::query(&format!("DROP TABLE {table}"))
        .execute(pool)
        .await
        .expect("drop");
    #[allow(clippy::cast_precision_loss)]
    let per_second = rows.len() as f64 / elapsed.as_secs_f64();
    println!(
        "  raw COPY:        {:.2} s, {} rows/s",
        elapsed.as_secs_f64(),
        rate(per_second)
    );
    per_second
}

/// A new, empty table `raw_copy.<name>` of the projection store's shape
/// (the raw sides' target); its qualified name.
async fn empty_table(pool: &PgPool, name: &str) -> String {
    let table = format!("raw_copy.{name}");
    for statement in [
        "CREATE SCHEMA IF NOT EXISTS raw_copy".to_owned(),
        format!("DROP TABLE IF EXISTS {table}"),
        format!(
            "CREATE TABLE {table} (key text COLLATE \"C\" PRIMARY KEY, data bytea NOT NULL, \
             updated_at timestamptz NOT NULL DEFAULT now())"
        ),
    ] {
        sqlx::query(&statement).execute(pool).await.expect("set up");
    }
    table
}

/// The raw pipeline (see the module documentation); rows/s.
async fn raw_pipeline(pool: &PgPool, count: usize, round: usize) -> f64 {
    let table = empty_table(pool, &format!("pipeline_{round}")).await;
    let started = Instant::now();
    let (batches, mut incoming) = tokio::sync::mpsc::channel::<Vec<(String, Vec<u8>)>>(2);
    let reader = tokio::spawn(read_rows_by_copy(pool.clone(), batches));
    let mut tx = pool.begin().await.expect("begin");
    let statement = format!("COPY {table} (key, data) FROM STDIN (FORMAT binary)");
    let mut copy = tx.copy_in_raw(&statement).await.expect("copy");
    copy.send(encode_header()).await.expect("send");
    while let Some(batch) = incoming.recv().await {
        copy.send(encode_rows(&batch)).await.expect("send");
    }
    copy.send((-1_i16).to_be_bytes().to_vec())
        .await
        .expect("send");
    let copied = copy.finish().await.expect("finish");
    tx.commit().await.expect("commit");
    reader.await.expect("the reader");
    let elapsed = started.elapsed();
    assert_eq!(copied as usize, count);
    sqlx::query(&format!("DROP TABLE {table}"))
        .execute(pool)
        .await
        .expect("drop");
    #[allow(clippy::cast_precision_loss)]
    let per_second = count as f64 / elapsed.as_secs_f64();
    println!(
        "  raw pipeline:    {:.2} s, {} rows/s",
        elapsed.as_secs_f64(),
        rate(per_second)
    );
    per_second
}

/// The raw pipeline's reader: every event's id and payload by one binary
/// COPY, as rows of [`BATCH`] (`line:<event id>`, the payload re-encoded).
async fn read_rows_by_copy(
    pool: PgPool,
    batches: tokio::sync::mpsc::Sender<Vec<(String, Vec<u8>)>>,
) {
    use futures_util::StreamExt;
    use sqlx::postgres::PgPoolCopyExt;
    let mut chunks = pool
        .copy_out_raw(
            "COPY (SELECT event_id, payload FROM composable_rust.events \
             ORDER BY transaction_id, sequence) TO STDOUT (FORMAT binary)",
        )
        .await
        .expect("copy out");
    let mut buffer: Vec<u8> = Vec::new();
    let mut at = 19; // the header: signature, flags, extension length 0
    let mut batch = Vec::with_capacity(BATCH);
    while let Some(chunk) = chunks.next().await {
        buffer.extend_from_slice(&chunk.expect("a chunk"));
        // A row: 2 (field count) + 4 + 16 (the id) + 4 + 1 + n (the jsonb).
        while buffer.len() >= at + 2 && buffer[at..at + 2] != [0xff, 0xff] {
            let Some(length) = buffer.get(at + 22..at + 26) else {
                break;
            };
            let length = usize::try_from(i32::from_be_bytes(length.try_into().expect("4")))
                .expect("not NULL");
            if buffer.len() < at + 26 + length {
                break;
            }
            let id = uuid::Uuid::from_slice(&buffer[at + 6..at + 22]).expect("a uuid");
            let json = std::str::from_utf8(&buffer[at + 27..at + 26 + length]).expect("UTF-8");
            let payload: serde_json::Value = serde_json::from_str(json).expect("JSON");
            batch.push((
                format!("line:{id}"),
                serde_json::to_vec(&payload).expect("json"),
            ));
            at += 26 + length;
            if batch.len() == BATCH {
                let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH));
                batches.send(full).await.expect("the writer");
            }
        }
        let consumed = at.min(buffer.len());
        buffer.drain(..consumed);
        at -= consumed;
    }
    if !batch.is_empty() {
        batches.send(batch).await.expect("the writer");
    }
}

/// One binary COPY of every row, sent in chunks of [`BATCH`] rows.
async fn copy_all(conn: &mut PgConnection, table: &str, rows: &[(String, Vec<u8>)]) -> u64 {
    let statement = format!("COPY {table} (key, data) FROM STDIN (FORMAT binary)");
    let mut copy = conn.copy_in_raw(&statement).await.expect("copy");
    copy.send(encode_header()).await.expect("send");
    for chunk in rows.chunks(BATCH) {
        copy.send(encode_rows(chunk)).await.expect("send");
    }
    copy.send((-1_i16).to_be_bytes().to_vec())
        .await
        .expect("send");
    copy.finish().await.expect("finish")
}

fn encode_header() -> Vec<u8> {
    let mut out = b"PGCOPY\n\xff\r\n\0".to_vec();
    out.extend_from_slice(&0_i32.to_be_bytes());
    out.extend_from_slice(&0_i32.to_be_bytes());
    out
}

fn encode_rows(rows: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (key, value) in rows {
        out.extend_from_slice(&2_i16.to_be_bytes());
        for field in [key.as_bytes(), value.as_slice()] {
            out.extend_from_slice(&i32::try_from(field.len()).expect("small").to_be_bytes());
            out.extend_from_slice(field);
        }
    }
    out
}

fn median(rates: &mut [f64]) -> f64 {
    rates.sort_by(f64::total_cmp);
    rates[rates.len() / 2]
}

fn rate(per_second: f64) -> String {
    format!("{:.0}", per_second)
}
