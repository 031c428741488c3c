//! Where a command's time goes: the parts of Composable Rust's command
//! path against their plainest equivalents, and what each guarantee of the
//! events table costs an INSERT. Interleaved in short bursts (which side
//! goes first alternates), so both sides of a row share the machine's
//! conditions. See README.md.
//!
//! With `COMPOSABLE_BENCH_SMOKE=1` (what CI sets when it runs the book's
//! commands) it is a smoke run: every row runs 75 ms per side in bursts of
//! 10 ms after a one-call warm-up, and the output says its figures are not
//! measurements.

// The workspace's smoke-mode helper (composable-rust-testing's `bench`
// module, which uses only std), included by path rather than as a
// dependency: this workspace then compiles nothing more for it.
#[allow(dead_code, unused_imports)] // not all of it is used here
#[path = "../../../testing/src/bench.rs"]
mod bench;
#[path = "../peers/domain.rs"]
mod domain;

use std::time::{Duration, Instant};

use composable_rust_core::{
    Aggregate, AggregateRepository, Event, EventStore, ExpectedVersion, NewEvent, StreamId,
};
use composable_rust_postgres::PostgresEventStore;
use serde::{Deserialize, Serialize};
use sqlx::Executor;
use sqlx::types::Json;
use std::sync::Arc;

use domain::{Ledger, LedgerEvent, LedgerFull, Post};

impl Event for LedgerEvent {}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(transparent)]
struct CrLedger(Ledger);

impl Aggregate for CrLedger {
    const KIND: &'static str = "ledger";
    type Event = LedgerEvent;
    type Command = Post;
    type Error = LedgerFull;
    type Environment = ();

    fn decide(&self, post: Post, _: &()) -> Result<Vec<LedgerEvent>, LedgerFull> {
        self.0.decide(post.first, post.count)
    }

    fn apply(&mut self, event: &LedgerEvent) {
        self.0.apply(event);
    }
}

/// How long each side runs (a fortieth in a smoke run).
const PER_SIDE: Duration = Duration::from_secs(3);
/// How long one side runs before the next takes over (a tenth in a smoke
/// run).
const BURST: Duration = Duration::from_millis(100);
/// Unmeasured calls of each side first (a hundredth in a smoke run).
const WARM_UP: usize = 50;

fn main() {
    bench::banner("the breakdown benchmark");
    // Like the workspace's benches: without a database, say how to give one
    // and skip.
    let Ok(url) = std::env::var("DATABASE_URL") else {
        eprintln!(
            "skipped: DATABASE_URL is not set. Run e.g.\n  DATABASE_URL=postgres://postgres@localhost:5432/postgres \
             cargo bench --manifest-path framework/bench-peers/Cargo.toml --bench breakdown"
        );
        return;
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(bench(url));
}

/// One side: does a unit of work per call.
type Side<'a> = Box<dyn FnMut(u64) -> std::pin::Pin<Box<dyn Future<Output = ()> + 'a>> + 'a>;

async fn bench(url: String) {
    let pool = PostgresEventStore::pool_options()
        .max_connections(2)
        .connect(&url)
        .await
        .expect("connect");
    let tag = &uuid::Uuid::new_v4().simple().to_string()[..8];
    let schema = format!("breakdown_{tag}");
    let store = PostgresEventStore::new(pool.clone())
        .with_schema(&schema)
        .expect("schema");
    store.migrate().await.expect("migrate");
    let payload = serde_json::to_value(domain::event(123_456)).expect("json");
    let (kind, content) = match &payload {
        serde_json::Value::Object(map) => map
            .iter()
            .next()
            .map(|(k, v)| (k.clone(), v.clone()))
            .expect("one"),
        _ => unreachable!(),
    };
    pool.execute(
        format!(
            "CREATE TABLE {schema}.lean (stream_id text NOT NULL, version bigint NOT NULL, \
                 payload jsonb NOT NULL, PRIMARY KEY (stream_id, version)); \
             CREATE TABLE {schema}.no_trigger (LIKE {schema}.events INCLUDING ALL); \
             CREATE TABLE {schema}.no_event_id (LIKE {schema}.events INCLUDING DEFAULTS INCLUDING CONSTRAINTS); \
             ALTER TABLE {schema}.no_event_id ADD PRIMARY KEY (stream_id, stream_version); \
             CREATE UNIQUE INDEX ON {schema}.no_event_id (transaction_id, sequence); \
             CREATE TABLE {schema}.no_position (LIKE {schema}.events INCLUDING DEFAULTS INCLUDING CONSTRAINTS); \
             ALTER TABLE {schema}.no_position ADD PRIMARY KEY (stream_id, stream_version); \
             ALTER TABLE {schema}.no_position ADD UNIQUE (event_id); \
             CREATE TABLE {schema}.bare (LIKE {schema}.events INCLUDING DEFAULTS INCLUDING CONSTRAINTS); \
             ALTER TABLE {schema}.bare ADD PRIMARY KEY (stream_id, stream_version);"
        )
        .as_str(),
    )
    .await
    .expect("tables");
    println!(
        "schema {schema}; {:?} per side in bursts of {:?}{}",
        bench::per_side(PER_SIDE),
        bench::burst(BURST),
        bench::label()
    );

    // ---- one-row INSERTs: what each part of the events table costs ----
    let insert = |table: &'static str| -> Side<'_> {
        let sql = format!(
            "INSERT INTO {schema}.{table} (event_id, stream_id, stream_version, event_type, \
             schema_version, payload, metadata) VALUES ($1, $2, 1, $3, 1, $4, '{{}}')"
        );
        let (pool, kind, content) = (pool.clone(), kind.clone(), content.clone());
        Box::new(move |n| {
            let (sql, pool, kind, content) =
                (sql.clone(), pool.clone(), kind.clone(), content.clone());
            Box::pin(async move {
                sqlx::query(&sql)
                    .bind(uuid::Uuid::new_v4())
                    .bind(format!("s-{n}"))
                    .bind(kind)
                    .bind(content)
                    .execute(&pool)
                    .await
                    .expect("insert");
            })
        })
    };
    let lean: Side<'_> = {
        let sql = format!("INSERT INTO {schema}.lean VALUES ($1, 1, $2)");
        let (pool, payload) = (pool.clone(), payload.clone());
        Box::new(move |n| {
            let (sql, pool, payload) = (sql.clone(), pool.clone(), payload.clone());
            Box::pin(async move {
                sqlx::query(&sql)
                    .bind(format!("s-{n}"))
                    .bind(payload)
                    .execute(&pool)
                    .await
                    .expect("insert");
            })
        })
    };
    let mut sides: Vec<(&str, Side<'_>)> = vec![
        ("INSERT lean table (PK only)", lean),
        ("INSERT bare events table (PK only)", insert("bare")),
        ("INSERT + position index", insert("no_event_id")),
        ("INSERT + event_id unique", insert("no_position")),
        ("INSERT + both indexes", insert("no_trigger")),
        ("INSERT events table (+ NOTIFY trigger)", insert("events")),
    ];
    // ---- the store's append, and a command ----
    let append: Side<'_> = {
        let store = store.clone();
        Box::new(move |n| {
            let store = store.clone();
            Box::pin(async move {
                let id = StreamId::new(format!("append-{n}")).expect("id");
                let event = NewEvent::from_event(&domain::event(n)).expect("encode");
                store
                    .append(&id, ExpectedVersion::NoStream, vec![event])
                    .await
                    .expect("append");
            })
        })
    };
    let returning: Side<'_> = {
        let sql = format!(
            "INSERT INTO {schema}.events (event_id, stream_id, stream_version, event_type, \
             schema_version, payload, metadata) VALUES ($1, $2, 1, $3, 1, $4, '{{}}') \
             RETURNING stream_version, sequence, transaction_id::text::int8"
        );
        let (pool, kind, content) = (pool.clone(), kind.clone(), content.clone());
        Box::new(move |n| {
            let (sql, pool, kind, content) =
                (sql.clone(), pool.clone(), kind.clone(), content.clone());
            Box::pin(async move {
                let _: (i64, i64, i64) = sqlx::query_as(&sql)
                    .bind(uuid::Uuid::now_v7())
                    .bind(format!("s-{n}"))
                    .bind(kind)
                    .bind(content)
                    .fetch_one(&pool)
                    .await
                    .expect("insert");
            })
        })
    };
    let statement: Side<'_> = {
        let sql = format!(
            "INSERT INTO {schema}.events (event_id, stream_id, stream_version, event_type, \
             schema_version, payload, metadata) \
             SELECT $3::uuid, $1, $2::int8 + 1, $4::text, $5::int4, $6::jsonb, $7::jsonb \
             WHERE COALESCE((SELECT stream_version FROM {schema}.events \
                             WHERE stream_id = $1 AND stream_version >= $2::int8 \
                             ORDER BY stream_version DESC LIMIT 1), 0) = $2::int8 \
             RETURNING stream_version, sequence, transaction_id::text::int8"
        );
        let (pool, kind, content) = (pool.clone(), kind.clone(), content.clone());
        Box::new(move |n| {
            let (sql, pool, kind, content) =
                (sql.clone(), pool.clone(), kind.clone(), content.clone());
            Box::pin(async move {
                let _: Option<(i64, i64, i64)> = sqlx::query_as(&sql)
                    .bind(format!("s-{n}"))
                    .bind(Some(0i64))
                    .bind(uuid::Uuid::now_v7())
                    .bind(kind)
                    .bind(1i32)
                    .bind(content)
                    .bind(Json(composable_rust_core::EventMetadata::default()))
                    .fetch_optional(&pool)
                    .await
                    .expect("insert");
            })
        })
    };
    sides.push(("INSERT ... RETURNING (events table)", returning));
    sides.push(("the store's statement, bound by hand", statement));
    sides.push(("store.append, one event (new stream)", append));
    let repository = Arc::new(
        AggregateRepository::<CrLedger, _>::new(store.clone(), ()).with_hot_aggregates(4_096),
    );
    let hot: Side<'_> = {
        Box::new(move |n| {
            let repository = Arc::clone(&repository);
            Box::pin(async move {
                let id = StreamId::new(format!("ledger-hot-{}", n % 1_000)).expect("id");
                repository
                    .execute(&id, Post { first: n, count: 1 })
                    .await
                    .expect("command");
            })
        })
    };
    sides.push(("repository.execute, hot (1,000 streams)", hot));
    compare(&mut sides).await;

    // ---- 100-row INSERTs (one statement) and a 100-event append ----
    let batch = |table: &'static str| -> Side<'_> {
        let sql = format!(
            "INSERT INTO {schema}.{table} (event_id, stream_id, stream_version, event_type, \
             schema_version, payload, metadata) \
             SELECT gen_random_uuid(), $1, t.ord, $2, 1, t.p, '{{}}' \
             FROM unnest($3::jsonb[]) WITH ORDINALITY AS t(p, ord)"
        );
        let (pool, kind, content) = (pool.clone(), kind.clone(), content.clone());
        Box::new(move |n| {
            let (sql, pool, kind) = (sql.clone(), pool.clone(), kind.clone());
            let payloads = vec![content.clone(); 100];
            Box::pin(async move {
                sqlx::query(&sql)
                    .bind(format!("b-{n}"))
                    .bind(kind)
                    .bind(payloads)
                    .execute(&pool)
                    .await
                    .expect("insert");
            })
        })
    };
    let lean_batch: Side<'_> = {
        let sql = format!(
            "INSERT INTO {schema}.lean SELECT $1, t.ord, t.p \
             FROM unnest($2::jsonb[]) WITH ORDINALITY AS t(p, ord)"
        );
        let (pool, payload) = (pool.clone(), payload.clone());
        Box::new(move |n| {
            let (sql, pool) = (sql.clone(), pool.clone());
            let payloads = vec![payload.clone(); 100];
            Box::pin(async move {
                sqlx::query(&sql)
                    .bind(format!("b-{n}"))
                    .bind(payloads)
                    .execute(&pool)
                    .await
                    .expect("insert");
            })
        })
    };
    let v7_batch: Side<'_> = {
        let sql = format!(
            "INSERT INTO {schema}.events (event_id, stream_id, stream_version, event_type, \
             schema_version, payload, metadata) \
             SELECT t.id, $1, t.ord, $2, 1, t.p, '{{}}' \
             FROM unnest($3::uuid[], $4::jsonb[]) WITH ORDINALITY AS t(id, p, ord)"
        );
        let (pool, kind, content) = (pool.clone(), kind.clone(), content.clone());
        Box::new(move |n| {
            let (sql, pool, kind) = (sql.clone(), pool.clone(), kind.clone());
            let payloads = vec![content.clone(); 100];
            let ids: Vec<uuid::Uuid> = (0..100).map(|_| uuid::Uuid::now_v7()).collect();
            Box::pin(async move {
                sqlx::query(&sql)
                    .bind(format!("b-{n}"))
                    .bind(kind)
                    .bind(ids)
                    .bind(payloads)
                    .execute(&pool)
                    .await
                    .expect("insert");
            })
        })
    };
    let append_batch: Side<'_> = {
        let store = store.clone();
        Box::new(move |n| {
            let store = store.clone();
            Box::pin(async move {
                let id = StreamId::new(format!("batch-{n}")).expect("id");
                let events = (0..100)
                    .map(|k| NewEvent::from_event(&domain::event(n + k)).expect("encode"))
                    .collect();
                store
                    .append(&id, ExpectedVersion::NoStream, events)
                    .await
                    .expect("append");
            })
        })
    };
    let encode_only: Side<'_> = Box::new(move |n| {
        Box::pin(async move {
            let events: Vec<NewEvent> = (0..100)
                .map(|k| NewEvent::from_event(&domain::event(n + k)).expect("encode"))
                .collect();
            composable_rust_core::event::check_all_storable(&events, 1 << 24).expect("storable");
            std::hint::black_box(events);
        })
    });
    let mut batches: Vec<(&str, Side<'_>)> = vec![
        ("100-row INSERT lean table (PK only)", lean_batch),
        ("100-row INSERT bare events table (PK only)", batch("bare")),
        ("100-row INSERT + position index", batch("no_event_id")),
        ("100-row INSERT + event_id unique", batch("no_position")),
        ("100-row INSERT + both indexes", batch("no_trigger")),
        ("100-row INSERT events table (+ trigger)", batch("events")),
        ("the same, UUIDv7 event ids", v7_batch),
        ("store.append, 100 events (new stream)", append_batch),
        ("encode + check 100 events (no I/O)", encode_only),
    ];
    compare(&mut batches).await;

    // ---- loads of a 50-event stream ----
    let id = StreamId::new("ledger-load").expect("id");
    let events = (0..50)
        .map(|n| NewEvent::from_event(&domain::event(n)).expect("encode"))
        .collect();
    store
        .append(&id, ExpectedVersion::NoStream, events)
        .await
        .expect("append");
    let lean_id = "ledger-load";
    let rows: Vec<Json<LedgerEvent>> = (0..50).map(|n| Json(domain::event(n))).collect();
    sqlx::query(&format!(
        "INSERT INTO {schema}.lean SELECT $1, t.ord, t.p FROM unnest($2::jsonb[]) WITH ORDINALITY AS t(p, ord)"
    ))
    .bind(lean_id)
    .bind(rows)
    .execute(&pool)
    .await
    .expect("lean rows");
    let raw_load: Side<'_> = {
        let sql =
            format!("SELECT payload FROM {schema}.lean WHERE stream_id = $1 ORDER BY version");
        let pool = pool.clone();
        Box::new(move |_| {
            let (sql, pool) = (sql.clone(), pool.clone());
            Box::pin(async move {
                let rows: Vec<Json<LedgerEvent>> = sqlx::query_scalar(&sql)
                    .bind(lean_id)
                    .fetch_all(&pool)
                    .await
                    .expect("select");
                let ledger = Ledger::replay(rows.iter().map(|Json(e)| e));
                assert_eq!(ledger.entries, 50);
            })
        })
    };
    let cold = Arc::new(AggregateRepository::<CrLedger, _>::new(store.clone(), ()));
    let cr_load: Side<'_> = {
        let id = id.clone();
        Box::new(move |_| {
            let (cold, id) = (Arc::clone(&cold), id.clone());
            Box::pin(async move {
                let loaded = cold.load(&id).await.expect("load");
                assert_eq!(loaded.version, 50);
            })
        })
    };
    let stream_load: Side<'_> = {
        let (store, id) = (store.clone(), id.clone());
        Box::new(move |_| {
            let (store, id) = (store.clone(), id.clone());
            Box::pin(async move {
                assert_eq!(store.load_stream(&id, 0).await.expect("load").len(), 50);
            })
        })
    };
    let ping: Side<'_> = {
        let pool = pool.clone();
        Box::new(move |_| {
            let pool = pool.clone();
            Box::pin(async move {
                sqlx::query("SELECT 1").execute(&pool).await.expect("ping");
            })
        })
    };
    // A raw command (select the 50 payloads, insert one row) on two pool
    // acquisitions (sqlx pings each connection when it goes back to the
    // pool), and on one.
    let two_acquisitions: Side<'_> = {
        let select =
            format!("SELECT payload FROM {schema}.lean WHERE stream_id = $1 ORDER BY version");
        let insert = format!("INSERT INTO {schema}.lean VALUES ($1, $2, $3)");
        let (pool, payload) = (pool.clone(), payload.clone());
        Box::new(move |n| {
            let (select, insert, pool, payload) = (
                select.clone(),
                insert.clone(),
                pool.clone(),
                payload.clone(),
            );
            Box::pin(async move {
                let rows: Vec<Json<LedgerEvent>> = sqlx::query_scalar(&select)
                    .bind(lean_id)
                    .fetch_all(&pool)
                    .await
                    .expect("select");
                assert_eq!(rows.len(), 50);
                sqlx::query(&insert)
                    .bind(format!("two-{n}"))
                    .bind(1i64)
                    .bind(payload)
                    .execute(&pool)
                    .await
                    .expect("insert");
            })
        })
    };
    let one_acquisition: Side<'_> = {
        let select =
            format!("SELECT payload FROM {schema}.lean WHERE stream_id = $1 ORDER BY version");
        let insert = format!("INSERT INTO {schema}.lean VALUES ($1, $2, $3)");
        let (pool, payload) = (pool.clone(), payload.clone());
        Box::new(move |n| {
            let (select, insert, pool, payload) = (
                select.clone(),
                insert.clone(),
                pool.clone(),
                payload.clone(),
            );
            Box::pin(async move {
                let mut connection = pool.acquire().await.expect("acquire");
                let rows: Vec<Json<LedgerEvent>> = sqlx::query_scalar(&select)
                    .bind(lean_id)
                    .fetch_all(&mut *connection)
                    .await
                    .expect("select");
                assert_eq!(rows.len(), 50);
                sqlx::query(&insert)
                    .bind(format!("one-{n}"))
                    .bind(1i64)
                    .bind(payload)
                    .execute(&mut *connection)
                    .await
                    .expect("insert");
            })
        })
    };
    // The store's one-event statement (the last version at or above the
    // expected one) against the one it replaced (head = MAX(version)) and a
    // variant that checks that the expected version exists, appending to
    // 1,000 growing streams.
    let appender = |label: &'static str, check: &str| -> Side<'_> {
        let sql = format!(
            "INSERT INTO {schema}.events (event_id, stream_id, stream_version, event_type, \
             schema_version, payload, metadata) \
             SELECT $3::uuid, $1, $2 + 1, $4::text, $5::int4, $6::jsonb, $7::jsonb \
             WHERE {check} \
             RETURNING stream_version, sequence, transaction_id::text::int8"
        );
        let (pool, kind, content) = (pool.clone(), kind.clone(), content.clone());
        let versions = std::rc::Rc::new(std::cell::RefCell::new(vec![0i64; 1_000]));
        Box::new(move |n| {
            let (sql, pool, kind, content) =
                (sql.clone(), pool.clone(), kind.clone(), content.clone());
            let versions = std::rc::Rc::clone(&versions);
            Box::pin(async move {
                let slot = (n % 1_000) as usize;
                let version = versions.borrow()[slot];
                let row: Option<(i64, i64, i64)> = sqlx::query_as(&sql)
                    .bind(format!("{label}-{slot}"))
                    .bind(version)
                    .bind(uuid::Uuid::now_v7())
                    .bind(kind)
                    .bind(1i32)
                    .bind(content)
                    .bind(Json(composable_rust_core::EventMetadata::default()))
                    .fetch_optional(&pool)
                    .await
                    .expect("insert");
                assert!(row.is_some());
                versions.borrow_mut()[slot] = version + 1;
            })
        })
    };
    let mut statements: Vec<(&str, Side<'_>)> = vec![
        (
            "append_one (last version >= expected)",
            appender(
                "bounded",
                &format!(
                    "COALESCE((SELECT stream_version FROM {schema}.events \
                     WHERE stream_id = $1 AND stream_version >= $2 \
                     ORDER BY stream_version DESC LIMIT 1), 0) = $2"
                ),
            ),
        ),
        (
            "the previous append_one (head = MAX)",
            appender(
                "max",
                &format!(
                    "(SELECT COALESCE(MAX(stream_version), 0) FROM {schema}.events \
                     WHERE stream_id = $1) = $2"
                ),
            ),
        ),
        (
            "variant: expected version exists",
            appender(
                "exists",
                &format!(
                    "($2 = 0 OR EXISTS (SELECT 1 FROM {schema}.events \
                     WHERE stream_id = $1 AND stream_version = $2))"
                ),
            ),
        ),
    ];
    compare(&mut statements).await;

    let mut acquisitions: Vec<(&str, Side<'_>)> = vec![
        ("raw command, two pool acquisitions", two_acquisitions),
        ("raw command, one acquisition", one_acquisition),
    ];
    compare(&mut acquisitions).await;

    let mut loads: Vec<(&str, Side<'_>)> = vec![
        ("raw SELECT of 50 payloads (lean), decode", raw_load),
        ("repository.load, 50 events", cr_load),
        ("store.load_stream, 50 StoredEvents", stream_load),
        ("SELECT 1 (a round trip)", ping),
    ];
    compare(&mut loads).await;
    pool.execute(format!("DROP SCHEMA {schema} CASCADE").as_str())
        .await
        .expect("drop");
}

/// Runs the sides in rotating bursts until each ran for `PER_SIDE` (both
/// shortened in a smoke run); prints each side's rate and its ratio to the
/// first.
async fn compare(sides: &mut [(&str, Side<'_>)]) {
    let (per_side, burst) = (bench::per_side(PER_SIDE), bench::burst(BURST));
    let mut n = 1_000_000u64 * (1 + sides.len() as u64);
    for (_, side) in sides.iter_mut() {
        for _ in 0..bench::scaled(WARM_UP) {
            n += 1;
            side(n).await;
        }
    }
    let mut totals = vec![(0u64, Duration::ZERO); sides.len()];
    let mut round = 0;
    while totals.iter().any(|(_, time)| *time < per_side) {
        for k in 0..sides.len() {
            let i = (k + round) % sides.len();
            let start = Instant::now();
            let mut units = 0;
            while start.elapsed() < burst {
                n += 1;
                (sides[i].1)(n).await;
                units += 1;
            }
            totals[i].0 += units;
            totals[i].1 += start.elapsed();
        }
        round += 1;
    }
    let rate = |(units, time): (u64, Duration)| units as f64 / time.as_secs_f64();
    let first = rate(totals[0]);
    for ((name, _), total) in sides.iter().zip(&totals) {
        let r = rate(*total);
        println!(
            "  {name:<44} {r:>8.0}/s  {:>7.1} µs  {:.2}x{}",
            1e6 / r,
            r / first,
            bench::label()
        );
    }
    println!();
}
