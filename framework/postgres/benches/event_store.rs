//! Benchmark: `PostgresEventStore` against the fastest plain SQL doing the
//! same work, in the same run, on the same PostgreSQL and the same table.
//!
//! ```console
//! DATABASE_URL=postgres://postgres@localhost:5432/postgres \
//!     cargo bench -p composable-rust-postgres --bench event_store
//! ```
//!
//! Without `DATABASE_URL` it prints how to set it and exits with status 0
//! (skipped), as every benchmark of the workspace does. It works in a
//! schema of its own (a `TestSchema` of composable-rust-testing,
//! `cr_test_<uuid>`), dropped at the end even if a section panics, and
//! prints one line per section with both rates and their ratio against the
//! section's target. Raw SQL writes to the store's own `events` table, so
//! both sides pay for the same indexes and the same NOTIFY trigger (whose
//! cost is within the noise); the ratio is what the store adds: the
//! version check in the database, `unnest`, `RETURNING`, and building
//! `StoredEvent`s.
//!
//! Each section compares two [`Side`]s (the store, and raw SQL) by running
//! them in alternating bursts of [`BURST`] (which goes first alternates
//! too) after a warm-up, until each has run for [`PER_SIDE`], and reports
//! each side's rate over all its bursts. Interleaving this finely makes
//! both sides share whatever else the machine is doing (checkpoints,
//! autovacuum, other processes), so the ratio stays meaningful on a busy
//! machine even when the absolute rates move. To add a section, write two
//! `Side`s and a `compare` call in [`run_sections`].
//!
//! Three sections measure the aggregate repository (`event_store/aggregate.rs`):
//! `command/repository` (load + decide + append of a one-event command,
//! against the raw single-row insert; reported, no target), `command/hot`
//! (the same with `with_hot_aggregates`, so decide + append, against the
//! same insert; target >= 0.85) and
//! `load/snapshot` (loading a 10,050-event stream from its snapshot at
//! 10,000, against loading a 100-event stream without one: "raw" in that
//! row is the 100-event load; target within 2x, i.e. a ratio >= 0.5). The
//! snapshot section first checks that the snapshot-loaded state equals the
//! fully replayed one.
//!
//! With `COMPOSABLE_BENCH_SMOKE=1` (what CI sets when it runs the book's
//! commands) it is a smoke run (`composable_rust_testing::bench`): every
//! section runs 200 ms per side in bursts of 10 ms, on a 100-event stream
//! and a snapshot at 100; the output says its figures are not measurements,
//! and judges no target.

use std::time::{Duration, Instant};

use composable_rust_core::aggregate::AggregateRepository;
use composable_rust_core::{
    EventMetadata, EventStore, ExpectedVersion, NewEvent, StoredEvent, StreamId,
};
use composable_rust_postgres::PostgresEventStore;
use composable_rust_testing::fixtures::TestSchema;
use composable_rust_testing::{bench, services};
use sqlx::PgPool;
use sqlx::types::Json;
use uuid::Uuid;

#[path = "event_store/aggregate.rs"]
mod aggregate;

/// How long each side runs in total, per section (a fortieth in a smoke
/// run).
const PER_SIDE: Duration = Duration::from_secs(8);
/// How long one side runs before the other takes over (a tenth in a smoke
/// run).
const BURST: Duration = Duration::from_millis(100);
/// Streams the single-event appends rotate over.
const SINGLE_STREAMS: usize = 100;
/// Events per batch append.
const BATCH: usize = 100;
/// Events in the stream that is loaded (a hundredth in a smoke run:
/// [`loaded`]).
const LOADED: usize = 10_000;

/// Events in the stream that is loaded, in this run.
fn loaded() -> usize {
    bench::scaled(LOADED)
}

/// One side of a comparison: does one unit of work per call.
trait Side {
    /// Does the work once; returns how many units (events) it handled.
    async fn once(&mut self) -> u64;
}

/// The result of one section.
struct Comparison {
    name: &'static str,
    unit: &'static str,
    store: f64,
    raw: f64,
    target: f64,
}

impl Comparison {
    fn ratio(&self) -> f64 {
        self.store / self.raw
    }
}

fn main() {
    bench::banner("the event_store benchmark");
    let url = match services::try_database_url() {
        Ok(url) => url,
        Err(missing) => {
            eprintln!("event_store benchmark skipped: {missing}");
            return;
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let ok = runtime.block_on(bench(url));
    if !ok {
        std::process::exit(1);
    }
}

/// Sets up the schema, runs every section, drops the schema; returns
/// whether the sections completed.
async fn bench(url: String) -> bool {
    // The pool the store recommends (no ping before every statement), for
    // both sides.
    let pool = PostgresEventStore::pool_options()
        .max_connections(2)
        .connect(&url)
        .await
        .unwrap_or_else(|error| panic!("cannot connect to {url}: {error}"));
    let schema = TestSchema::from_url(&url);
    let store = PostgresEventStore::new(pool.clone())
        .with_schema(schema.name())
        .expect("valid schema");
    store.migrate().await.expect("migrations");
    let settings: (String, String) =
        sqlx::query_as("SELECT version(), current_setting('synchronous_commit')")
            .fetch_one(&pool)
            .await
            .expect("server settings");
    println!("PostgreSQL: {}", settings.0);
    println!(
        "synchronous_commit = {}; schema {schema}; {:?} per side in bursts of {:?}{}",
        settings.1,
        bench::per_side(PER_SIDE),
        bench::burst(BURST),
        bench::label()
    );
    println!();

    // Run the sections in a task, so a panic is reported; the schema is
    // dropped either way (with its guard, at the end of this function).
    let result = tokio::spawn(run_sections(store.clone(), pool.clone())).await;
    match result {
        Ok(results) => {
            report(&results);
            true
        }
        Err(error) => {
            eprintln!("benchmark failed: {error}");
            false
        }
    }
}

/// Every section, in order.
async fn run_sections(store: PostgresEventStore, pool: PgPool) -> Vec<Comparison> {
    let events = format!("\"{}\".events", store.schema());
    let mut results = Vec::new();

    results.push(
        compare(
            "append/single",
            "events",
            0.8,
            &mut StoreSingle::new(store.clone(), "store-single"),
            &mut RawSingle::new(pool.clone(), &events, "raw-single"),
        )
        .await,
    );

    results.push(
        compare(
            "append/batch100",
            "events",
            0.7,
            &mut StoreBatch {
                store: store.clone(),
            },
            &mut RawBatch::new(pool.clone(), &events),
        )
        .await,
    );

    let loaded = loaded_stream(&store).await;
    results.push(
        compare(
            "load/10k",
            "events",
            0.9,
            &mut StoreLoad {
                store: store.clone(),
                stream: loaded.clone(),
            },
            &mut RawLoad::new(pool.clone(), &events, loaded),
        )
        .await,
    );

    results.push(
        compare(
            "command/repository",
            "commands",
            0.0,
            &mut aggregate::RepositoryCommand::new(store.clone(), SINGLE_STREAMS, 0),
            &mut RawSingle::new(pool.clone(), &events, "raw-command"),
        )
        .await,
    );

    results.push(
        compare(
            "command/hot",
            "commands",
            0.85,
            &mut aggregate::RepositoryCommand::new(store.clone(), SINGLE_STREAMS, SINGLE_STREAMS),
            &mut RawSingle::new(pool.clone(), &events, "raw-hot"),
        )
        .await,
    );

    let (snapshotted, short) = aggregate::snapshotted_streams(&store).await;
    results.push(
        compare(
            "load/snapshot",
            "loads",
            0.5,
            &mut aggregate::RepositoryLoad {
                repository: AggregateRepository::new(store.clone(), ()),
                stream: snapshotted,
                expected_version: aggregate::snapshotted(),
            },
            &mut aggregate::RepositoryLoad {
                repository: AggregateRepository::new(store.clone(), ()),
                stream: short,
                expected_version: 100,
            },
        )
        .await,
    );

    results
}

/// Runs both sides in short alternating bursts of [`BURST`] until each
/// has run for [`PER_SIDE`] (both shortened in a smoke run); returns each
/// side's rate over all its bursts.
async fn compare(
    name: &'static str,
    unit: &'static str,
    target: f64,
    store: &mut impl Side,
    raw: &mut impl Side,
) -> Comparison {
    let (per_side, length) = (bench::per_side(PER_SIDE), bench::burst(BURST));
    // Warm up: connections, prepared statements, caches.
    burst(store, per_side / 10).await;
    burst(raw, per_side / 10).await;
    let (mut store_total, mut raw_total) = (Tally::default(), Tally::default());
    let mut pair_ratios = Vec::new();
    let mut pair = 0;
    while store_total.time < per_side || raw_total.time < per_side {
        let (s, r) = if pair % 2 == 0 {
            let s = burst(store, length).await;
            (s, burst(raw, length).await)
        } else {
            let r = burst(raw, length).await;
            (burst(store, length).await, r)
        };
        pair_ratios.push(s.rate() / r.rate());
        store_total.add(s);
        raw_total.add(r);
        pair += 1;
    }
    let comparison = Comparison {
        name,
        unit,
        store: store_total.rate(),
        raw: raw_total.rate(),
        target,
    };
    eprintln!(
        "  measured {name}: ratio {:.2} ({} burst pairs; median pair ratio {:.2}){}",
        comparison.ratio(),
        pair_ratios.len(),
        median(pair_ratios),
        bench::label()
    );
    comparison
}

/// Units handled over some time.
#[derive(Clone, Copy, Default)]
struct Tally {
    units: u64,
    time: Duration,
}

impl Tally {
    fn rate(self) -> f64 {
        self.units as f64 / self.time.as_secs_f64()
    }

    fn add(&mut self, other: Tally) {
        self.units += other.units;
        self.time += other.time;
    }
}

/// Runs `side` for about `length` (at least once).
async fn burst(side: &mut impl Side, length: Duration) -> Tally {
    let start = Instant::now();
    let mut units = 0;
    loop {
        units += side.once().await;
        let time = start.elapsed();
        if time >= length {
            return Tally { units, time };
        }
    }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn report(results: &[Comparison]) {
    println!();
    println!(
        "{:<16} {:>14} {:>14} {:>7} {:>8}{}",
        "section",
        "store",
        "raw SQL",
        "ratio",
        "target",
        bench::label()
    );
    for c in results {
        println!(
            "{:<16} {:>9.0} {}/s {:>9.0} {}/s {:>7.2} {:>5}{:.2} {}{}",
            c.name,
            c.store,
            short(c.unit),
            c.raw,
            short(c.unit),
            c.ratio(),
            ">= ",
            c.target,
            if c.target == 0.0 {
                "(reported, no target)"
            } else if c.ratio() >= c.target {
                bench::judged("ok")
            } else {
                bench::judged("MISSED")
            },
            bench::label()
        );
    }
    println!();
    for c in results {
        println!(
            "{}  store {:.0} {}/s  raw {:.0} {}/s  ratio {:.2} (target >= {:.2}){}",
            c.name,
            c.store,
            c.unit,
            c.raw,
            c.unit,
            c.ratio(),
            c.target,
            bench::label()
        );
    }
}

fn short(unit: &str) -> &str {
    match unit {
        "events" => "ev",
        "commands" => "cmd",
        "loads" => "load",
        other => other,
    }
}

/// A realistic small event (about 150 bytes of JSON).
fn new_event(n: u64) -> NewEvent {
    NewEvent::new(
        "order.line_added",
        serde_json::json!({
            "line": n,
            "sku": format!("SKU-{:05}", n % 10_000),
            "quantity": n % 7 + 1,
            "unit_price_cents": 1250 + n % 100,
            "note": "gift wrap, deliver after 5pm",
        }),
    )
    .with_metadata(EventMetadata {
        correlation_id: Some(Uuid::new_v4()),
        ..EventMetadata::default()
    })
}

// ---- append/single ----

/// `PostgresEventStore::append` of one event, at the exact expected
/// version, rotating over [`SINGLE_STREAMS`] streams.
struct StoreSingle {
    store: PostgresEventStore,
    streams: Vec<(StreamId, u64)>,
    next: usize,
}

impl StoreSingle {
    fn new(store: PostgresEventStore, prefix: &str) -> Self {
        let streams = (0..SINGLE_STREAMS)
            .map(|i| {
                let id = StreamId::new(format!("{prefix}-{i}")).expect("stream id");
                (id, 0)
            })
            .collect();
        Self {
            store,
            streams,
            next: 0,
        }
    }
}

impl Side for StoreSingle {
    async fn once(&mut self) -> u64 {
        let (id, version) = &mut self.streams[self.next % SINGLE_STREAMS];
        self.next += 1;
        let outcome = self
            .store
            .append(
                id,
                ExpectedVersion::Exact(*version),
                vec![new_event(*version)],
            )
            .await
            .expect("append");
        *version = outcome.stream_version;
        1
    }
}

/// The same row with one autocommitted `INSERT ... VALUES`, the version
/// known in advance (so no check at all).
struct RawSingle {
    pool: PgPool,
    /// Stream ids are `{prefix}-{slot}`; each section needs its own.
    prefix: &'static str,
    sql: String,
    versions: Vec<i64>,
    next: usize,
}

impl RawSingle {
    fn new(pool: PgPool, events: &str, prefix: &'static str) -> Self {
        Self {
            pool,
            prefix,
            sql: format!(
                "INSERT INTO {events} (event_id, stream_id, stream_version, event_type, \
                 schema_version, payload, metadata) VALUES ($1, $2, $3, $4, $5, $6, $7)"
            ),
            versions: vec![0; SINGLE_STREAMS],
            next: 0,
        }
    }
}

impl Side for RawSingle {
    async fn once(&mut self) -> u64 {
        let slot = self.next % SINGLE_STREAMS;
        self.next += 1;
        let version = &mut self.versions[slot];
        let event = new_event(*version as u64);
        *version += 1;
        sqlx::query(&self.sql)
            .bind(event.event_id)
            .bind(format!("{}-{slot}", self.prefix))
            .bind(*version)
            .bind(&event.event_type)
            .bind(event.schema_version as i32)
            .bind(&event.payload)
            .bind(Json(&event.metadata))
            .execute(&self.pool)
            .await
            .expect("raw insert");
        1
    }
}

// ---- append/batch100 ----

/// `PostgresEventStore::append` of [`BATCH`] events to a new stream.
struct StoreBatch {
    store: PostgresEventStore,
}

impl Side for StoreBatch {
    async fn once(&mut self) -> u64 {
        let id = StreamId::new(format!("store-batch-{}", Uuid::new_v4().simple())).expect("id");
        let events = (0..BATCH as u64).map(new_event).collect();
        self.store
            .append(&id, ExpectedVersion::NoStream, events)
            .await
            .expect("batch append");
        BATCH as u64
    }
}

/// The same rows with one multi-row `INSERT ... VALUES (...), (...), ...`
/// (700 parameters) per autocommitted statement.
struct RawBatch {
    pool: PgPool,
    sql: String,
}

impl RawBatch {
    fn new(pool: PgPool, events: &str) -> Self {
        let rows: Vec<String> = (0..BATCH)
            .map(|row| {
                let p = row * 7;
                format!(
                    "(${}, ${}, ${}, ${}, ${}, ${}, ${})",
                    p + 1,
                    p + 2,
                    p + 3,
                    p + 4,
                    p + 5,
                    p + 6,
                    p + 7
                )
            })
            .collect();
        Self {
            pool,
            sql: format!(
                "INSERT INTO {events} (event_id, stream_id, stream_version, event_type, \
                 schema_version, payload, metadata) VALUES {}",
                rows.join(", ")
            ),
        }
    }
}

impl Side for RawBatch {
    async fn once(&mut self) -> u64 {
        let id = format!("raw-batch-{}", Uuid::new_v4().simple());
        let events: Vec<_> = (0..BATCH as u64).map(new_event).collect();
        let mut query = sqlx::query(&self.sql);
        for (i, event) in events.iter().enumerate() {
            query = query
                .bind(event.event_id)
                .bind(&id)
                .bind(i as i64 + 1)
                .bind(&event.event_type)
                .bind(event.schema_version as i32)
                .bind(&event.payload)
                .bind(Json(&event.metadata));
        }
        query.execute(&self.pool).await.expect("raw batch insert");
        BATCH as u64
    }
}

// ---- load/10k ----

/// Appends a [`loaded`]-event stream (in batches of up to 1,000) to load.
async fn loaded_stream(store: &PostgresEventStore) -> StreamId {
    let id = StreamId::new("loaded-10k").expect("id");
    let loaded = loaded() as u64;
    for start in (0..loaded).step_by(1_000) {
        let events = (start..(start + 1_000).min(loaded))
            .map(new_event)
            .collect();
        store
            .append(&id, ExpectedVersion::Exact(start), events)
            .await
            .expect("append the loaded stream");
    }
    id
}

/// `PostgresEventStore::load_stream` of the whole stream.
struct StoreLoad {
    store: PostgresEventStore,
    stream: StreamId,
}

impl Side for StoreLoad {
    async fn once(&mut self) -> u64 {
        let events: Vec<StoredEvent> = self.store.load_stream(&self.stream, 0).await.expect("load");
        assert_eq!(events.len(), loaded());
        events.len() as u64
    }
}

/// The same rows and columns with a plain SELECT, payload and metadata
/// decoded into `serde_json::Value`.
struct RawLoad {
    pool: PgPool,
    sql: String,
    stream: StreamId,
}

type RawRow = (
    Uuid,
    i64,
    i64,
    i64,
    String,
    i32,
    serde_json::Value,
    serde_json::Value,
    chrono::DateTime<chrono::Utc>,
);

impl RawLoad {
    fn new(pool: PgPool, events: &str, stream: StreamId) -> Self {
        Self {
            pool,
            sql: format!(
                "SELECT event_id, stream_version, transaction_id::text::int8, sequence, \
                 event_type, schema_version, payload, metadata, recorded_at \
                 FROM {events} WHERE stream_id = $1 ORDER BY stream_version"
            ),
            stream,
        }
    }
}

impl Side for RawLoad {
    async fn once(&mut self) -> u64 {
        let rows: Vec<RawRow> = sqlx::query_as(&self.sql)
            .bind(self.stream.as_str())
            .fetch_all(&self.pool)
            .await
            .expect("raw select");
        assert_eq!(rows.len(), loaded());
        rows.len() as u64
    }
}
