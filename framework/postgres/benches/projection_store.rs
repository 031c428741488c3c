//! Benchmark: catching a PostgreSQL projection up through the
//! `ProjectionManager` against raw SQL doing the same upserts, and an
//! indexed JSONB query, in the same run on the same PostgreSQL.
//!
//! ```console
//! DATABASE_URL=postgres://postgres@localhost:5432/postgres \
//!     cargo bench -p composable-rust-postgres --bench projection_store
//! ```
//!
//! Without `DATABASE_URL` it prints how to set it and exits with status 0
//! (skipped), as every benchmark of the workspace does. It works in two
//! schemas of its own (`TestSchema`s of composable-rust-testing,
//! `cr_test_<uuid>`: one for the events, one for the read models), dropped
//! at the end even if a section panics.
//!
//! - **catch-up**: [`EVENTS`] events (appended in batches of
//!   [`APPEND_BATCH`]) are projected into a document table, one upsert
//!   per event, in units of work of [`BATCH`] events, each committing the
//!   checkpoint too. The manager side is a `ProjectionManager` over the
//!   `PostgresEventStore` and a `PostgresProjectionStore`; the raw side is
//!   plain sqlx doing the same work the fastest obvious way: read
//!   [`BATCH`] events, build the same documents, then one transaction
//!   with one multi-row upsert and one checkpoint upsert. Each side runs
//!   [`ROUNDS`] times into an emptied table, alternating which goes first,
//!   after one warm-up run each; the medians are compared.
//! - **query**: a containment filter (one customer of 1,000, so 100 of
//!   the 100,000 documents) ordered by a field, first 10, through
//!   `DocumentQuery`, [`QUERIES`] times after a warm-up: p50 and p99.
//!
//! With `COMPOSABLE_BENCH_SMOKE=1` (what CI sets when it runs the book's
//! commands) it is a smoke run (`composable_rust_testing::bench`): a
//! hundredth of the events, customers and queries (1,000 events over 10
//! customers, so each query still finds 100 documents), every section and
//! check; the output says its figures are not measurements, and judges no
//! target.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use composable_rust_core::projection::ProjectionConfig;
use composable_rust_core::{
    EventStore, ExpectedVersion, NewEvent, Projection, ProjectionError, ProjectionManager,
    StoredEvent, StreamId,
};
use composable_rust_postgres::{
    DocumentTable, PostgresEventStore, PostgresProjectionStore, PostgresProjectionTx, SortOrder,
};
use composable_rust_testing::fixtures::TestSchema;
use composable_rust_testing::{bench, services};
use serde_json::{Value, json};
use sqlx::postgres::PgPoolOptions;
use sqlx::{Executor, PgPool};

/// Events caught up per run (this, the queries and the customers are a
/// hundredth in a smoke run: [`event_count`], [`queries`], [`customers`]).
const EVENTS: usize = 100_000;
/// Events per append while loading.
const APPEND_BATCH: usize = 1_000;
/// Events per unit of work (the manager's batch size), on both sides.
const BATCH: usize = 500;
/// Measured runs per side.
const ROUNDS: usize = 3;
/// Measured queries.
const QUERIES: usize = 2_000;
/// Customers the orders are spread over.
const CUSTOMERS: usize = 1_000;
/// Unmeasured queries first.
const WARM_UP_QUERIES: usize = 200;

/// Events caught up per run, in this run.
fn event_count() -> usize {
    bench::scaled(EVENTS)
}

/// Measured queries, in this run.
fn queries() -> usize {
    bench::scaled(QUERIES)
}

/// Customers, in this run: as many orders per customer as in a full run.
fn customers() -> usize {
    bench::scaled(CUSTOMERS)
}

fn main() {
    bench::banner("the projection_store benchmark (PostgreSQL)");
    let url = match services::try_database_url() {
        Ok(url) => url,
        Err(missing) => {
            eprintln!("projection_store benchmark skipped: {missing}");
            return;
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    if !runtime.block_on(bench(url)) {
        std::process::exit(1);
    }
}

/// Sets up the schemas, runs the sections, drops the schemas; returns
/// whether the sections completed.
async fn bench(url: String) -> bool {
    let pool = PgPoolOptions::new()
        .max_connections(4)
        .connect(&url)
        .await
        .unwrap_or_else(|error| panic!("cannot connect to {url}: {error}"));
    let (events_schema, read_schema) = (TestSchema::from_url(&url), TestSchema::from_url(&url));
    let settings: (String, String) =
        sqlx::query_as("SELECT version(), current_setting('synchronous_commit')")
            .fetch_one(&pool)
            .await
            .expect("server settings");
    println!("PostgreSQL: {}", settings.0);
    println!(
        "synchronous_commit = {}; schemas {events_schema}, {read_schema}; {} events, \
         batches of {BATCH}, {ROUNDS} runs per side{}",
        settings.1,
        event_count(),
        bench::label()
    );
    println!();

    let events = PostgresEventStore::new(pool.clone())
        .with_schema(events_schema.name())
        .expect("schema");
    events.migrate().await.expect("event store migrations");
    let store = PostgresProjectionStore::new(pool.clone())
        .with_schema(read_schema.name())
        .expect("schema");
    store.migrate().await.expect("projection store migrations");

    // Run the sections in a task, so a panic is reported; the schemas are
    // dropped either way (with their guards, at the end of this function).
    let result = tokio::spawn(run_sections(pool.clone(), events, Arc::new(store))).await;
    match result {
        Ok(()) => true,
        Err(error) => {
            eprintln!("benchmark failed: {error}");
            false
        }
    }
}

async fn run_sections(
    pool: PgPool,
    events: PostgresEventStore,
    store: Arc<PostgresProjectionStore>,
) {
    let orders = DocumentTable::new(&store, "orders").expect("table name");
    orders.ensure().await.expect("document table");
    let raw = Raw::new(pool.clone(), events.schema(), store.schema()).await;

    let started = Instant::now();
    load_events(&events).await;
    println!(
        "loaded {} events in {:.1} s (appends of {APPEND_BATCH})",
        event_count(),
        started.elapsed().as_secs_f64()
    );

    // Warm-up: connections, prepared statements, caches.
    manager_catch_up(
        events.clone(),
        Arc::clone(&store),
        orders.clone(),
        pool.clone(),
        "warm-up".into(),
    )
    .await;
    raw.catch_up().await;

    let (mut manager_rates, mut raw_rates) = (Vec::new(), Vec::new());
    for round in 0..ROUNDS {
        let name = format!("orders-{round}");
        if round % 2 == 0 {
            manager_rates.push(
                manager_catch_up(
                    events.clone(),
                    Arc::clone(&store),
                    orders.clone(),
                    pool.clone(),
                    name.clone(),
                )
                .await,
            );
            raw_rates.push(raw.catch_up().await);
        } else {
            raw_rates.push(raw.catch_up().await);
            manager_rates.push(
                manager_catch_up(
                    events.clone(),
                    Arc::clone(&store),
                    orders.clone(),
                    pool.clone(),
                    name.clone(),
                )
                .await,
            );
        }
    }
    raw.assert_same_documents(&orders).await;
    let (manager, raw_rate) = (median(&manager_rates), median(&raw_rates));
    let ratio = manager / raw_rate;
    println!(
        "catch-up  manager {manager:.0} ev/s  raw {raw_rate:.0} ev/s  ratio {ratio:.2} (target >= 0.50) {}{}",
        verdict(ratio >= 0.5),
        bench::label()
    );
    println!(
        "          runs: manager {}; raw {}",
        rates(&manager_rates),
        rates(&raw_rates)
    );

    query_latency(&orders, &pool).await;
}

/// 100 streams of orders (1 in a smoke run), appended [`APPEND_BATCH`] at
/// a time.
async fn load_events(events: &PostgresEventStore) {
    let (total, customers) = (event_count(), customers());
    for batch in 0..total.div_ceil(APPEND_BATCH) {
        let stream = StreamId::new(format!("orders-{batch}")).expect("stream id");
        let new_events = (batch * APPEND_BATCH..((batch + 1) * APPEND_BATCH).min(total))
            .map(|order| {
                NewEvent::new("OrderPlaced", json!({
                        "order": order,
                        "customer": format!("c-{}", order % customers),
                        "total": (order * 7919) % 100_000,
                        "items": [{ "sku": format!("sku-{}", order % 50), "quantity": 1 + order % 3 }],
                    }))
            })
            .collect();
        events
            .append(&stream, ExpectedVersion::NoStream, new_events)
            .await
            .expect("append");
    }
}

/// The read-model document of an `OrderPlaced` event: both sides build it
/// with this function.
fn order_document(stream_id: &str, stream_version: u64, payload: &Value) -> (String, Value) {
    let id = format!("order-{}", payload["order"]);
    let document = json!({
        "order": payload["order"],
        "customer": payload["customer"],
        "total": payload["total"],
        "items": payload["items"],
        "stream": stream_id,
        "version": stream_version,
    });
    (id, document)
}

/// The projection the manager runs: one document upsert per event.
struct Orders {
    name: String,
    table: DocumentTable,
}

#[async_trait]
impl Projection for Orders {
    type Store = PostgresProjectionStore;

    fn name(&self) -> &str {
        &self.name
    }

    async fn apply(
        &self,
        event: &StoredEvent,
        tx: &mut PostgresProjectionTx,
    ) -> Result<(), ProjectionError> {
        let (id, document) = order_document(
            event.stream_id.as_str(),
            event.stream_version,
            &event.payload,
        );
        self.table.upsert(tx, &id, &document).await
    }

    async fn reset(&self, tx: &mut PostgresProjectionTx) -> Result<(), ProjectionError> {
        self.table.clear(tx).await.map(|_| ())
    }
}

/// Empties the table (outside the timing), then times a manager catching
/// up from scratch under a new projection name; returns events/s.
///
/// (Owned arguments: futures borrowing them trip rust-lang/rust#102211 when
/// spawned.)
async fn manager_catch_up(
    events: PostgresEventStore,
    store: Arc<PostgresProjectionStore>,
    orders: DocumentTable,
    pool: PgPool,
    name: String,
) -> f64 {
    truncate(&pool, orders.qualified_name()).await;
    let projection = Orders {
        name,
        table: orders,
    };
    let config = ProjectionConfig {
        batch_size: BATCH,
        ..ProjectionConfig::default()
    };
    let manager = ProjectionManager::builder(projection, store, events)
        .with_config(config)
        .build();
    let started = Instant::now();
    let applied = manager.catch_up().await.expect("catch up");
    let elapsed = started.elapsed();
    assert_eq!(applied, event_count() as u64);
    event_count() as f64 / elapsed.as_secs_f64()
}

/// The raw side: plain sqlx.
struct Raw {
    pool: PgPool,
    read_events: String,
    upsert: String,
    checkpoint: String,
    table: String,
    checkpoints: String,
}

impl Raw {
    async fn new(pool: PgPool, events_schema: &str, read_schema: &str) -> Self {
        let table = format!("\"{read_schema}\".raw_orders");
        let checkpoints = format!("\"{read_schema}\".raw_checkpoints");
        for ddl in [
            format!(
                "CREATE TABLE {table} (id text PRIMARY KEY, data jsonb NOT NULL, \
                 updated_at timestamptz NOT NULL DEFAULT now())"
            ),
            format!("CREATE INDEX ON {table} USING gin (data jsonb_path_ops)"),
            format!(
                "CREATE TABLE {checkpoints} (projection text PRIMARY KEY, \
                 commit_position bigint NOT NULL, sequence bigint NOT NULL, \
                 updated_at timestamptz NOT NULL DEFAULT now())"
            ),
        ] {
            pool.execute(ddl.as_str()).await.expect("raw tables");
        }
        Self {
            read_events: format!(
                // `e.` in ORDER BY: a bare `transaction_id` would name the
                // int8 output column and sort instead of walking the index.
                "SELECT e.transaction_id::text::int8, e.sequence, e.stream_id, e.stream_version, \
                        e.payload \
                 FROM \"{events_schema}\".events AS e \
                 WHERE (e.transaction_id, e.sequence) > ($1::int8::text::xid8, $2::int8) \
                 ORDER BY e.transaction_id, e.sequence LIMIT $3"
            ),
            upsert: format!(
                "INSERT INTO {table} (id, data, updated_at) \
                 SELECT u.id, u.data, now() FROM unnest($1::text[], $2::jsonb[]) AS u(id, data) \
                 ON CONFLICT (id) DO UPDATE SET data = EXCLUDED.data, updated_at = EXCLUDED.updated_at"
            ),
            checkpoint: format!(
                "INSERT INTO {checkpoints} (projection, commit_position, sequence, updated_at) \
                 VALUES ('raw', $1, $2, now()) \
                 ON CONFLICT (projection) DO UPDATE SET commit_position = EXCLUDED.commit_position, \
                 sequence = EXCLUDED.sequence, updated_at = EXCLUDED.updated_at"
            ),
            pool,
            table,
            checkpoints,
        }
    }

    /// Empties the table and the checkpoint (outside the timing), then
    /// times a catch-up from scratch; returns events/s.
    async fn catch_up(&self) -> f64 {
        truncate(&self.pool, &self.table).await;
        truncate(&self.pool, &self.checkpoints).await;
        let started = Instant::now();
        let (mut commit, mut sequence) = (0_i64, 0_i64);
        let mut applied = 0;
        loop {
            let rows: Vec<(i64, i64, String, i64, Value)> = sqlx::query_as(&self.read_events)
                .bind(commit)
                .bind(sequence)
                .bind(BATCH as i64)
                .fetch_all(&self.pool)
                .await
                .expect("read events");
            let Some(last) = rows.last() else { break };
            (commit, sequence) = (last.0, last.1);
            let (ids, documents): (Vec<String>, Vec<Value>) = rows
                .iter()
                .map(|(_, _, stream, version, payload)| {
                    order_document(stream, u64::try_from(*version).unwrap_or(0), payload)
                })
                .unzip();
            let mut tx = self.pool.begin().await.expect("begin");
            sqlx::query(&self.upsert)
                .bind(ids)
                .bind(documents)
                .execute(&mut *tx)
                .await
                .expect("upsert");
            sqlx::query(&self.checkpoint)
                .bind(commit)
                .bind(sequence)
                .execute(&mut *tx)
                .await
                .expect("checkpoint");
            tx.commit().await.expect("commit");
            applied += rows.len();
        }
        let elapsed = started.elapsed();
        assert_eq!(applied, event_count());
        event_count() as f64 / elapsed.as_secs_f64()
    }

    /// Both sides wrote exactly the same documents.
    async fn assert_same_documents(&self, orders: &DocumentTable) {
        let same: i64 = sqlx::query_scalar(&format!(
            "SELECT count(*) FROM {} m JOIN {} r USING (id) WHERE m.data = r.data",
            orders.qualified_name(),
            self.table
        ))
        .fetch_one(&self.pool)
        .await
        .expect("compare");
        assert_eq!(
            same,
            event_count() as i64,
            "both sides wrote the same documents"
        );
    }
}

/// p50 and p99 of an indexed containment query on the manager's table.
async fn query_latency(orders: &DocumentTable, pool: &PgPool) {
    pool.execute(format!("ANALYZE {}", orders.qualified_name()).as_str())
        .await
        .expect("analyze");
    let (queries, customers) = (queries(), customers());
    let query = |k: usize| {
        orders
            .query()
            .contains(json!({ "customer": format!("c-{}", (k * 7) % customers) }))
            .order_by("total", SortOrder::Descending)
            .limit(10)
    };
    for k in 0..bench::scaled(WARM_UP_QUERIES) {
        assert_eq!(query(k).fetch_all().await.expect("query").len(), 10);
    }
    let mut latencies = Vec::with_capacity(queries);
    for k in 0..queries {
        let started = Instant::now();
        let found = query(k).fetch_all().await.expect("query");
        latencies.push(started.elapsed());
        assert_eq!(found.len(), 10);
    }
    latencies.sort();
    let percentile = |p: usize| latencies[(latencies.len() * p / 100).min(latencies.len() - 1)];
    let (p50, p99) = (percentile(50), percentile(99));
    println!(
        "query     p50 {:.2} ms  p99 {:.2} ms over {queries} queries of {} documents \
         (target < 10 ms) {}{}",
        millis(p50),
        millis(p99),
        event_count(),
        verdict(p99 < Duration::from_millis(10)),
        bench::label()
    );
    let plan = query(0).explain().await.expect("explain");
    let scan = plan
        .lines()
        .find(|line| line.contains("Index Scan"))
        .unwrap_or("no index scan in the plan")
        .trim();
    println!("          plan: {scan}");
}

async fn truncate(pool: &PgPool, table: &str) {
    pool.execute(format!("TRUNCATE {table}").as_str())
        .await
        .expect("truncate");
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted[sorted.len() / 2]
}

fn rates(values: &[f64]) -> String {
    values
        .iter()
        .map(|rate| format!("{rate:.0}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// The verdict on a target (none in a smoke run).
fn verdict(ok: bool) -> &'static str {
    bench::judged(if ok { "ok" } else { "MISSED" })
}
