//! Benchmark: `RedisProjectionStore` operations against the raw redis-rs
//! command doing the same work on the same connection, in one run.
//!
//! ```console
//! $ REDIS_URL=redis://127.0.0.1:6379 cargo bench -p composable-rust-redis --bench projection_store
//! ```
//!
//! Each section measures a store operation and its raw counterpart,
//! interleaved (store, raw, store, raw, ...) so drift in the machine's load
//! affects both alike, and prints p50/p99/mean latencies and the ratio of
//! the p50s. Sections:
//!
//! - `get`: `ProjectionStore::get` of existing keys vs a raw `GET`
//!   (target: p50 under 1 ms);
//! - `commit`: a unit of work with one `save` (the commit script, one
//!   `EVALSHA` running a `SET`) vs a raw `SET`: the price of the atomic
//!   commit.
//!
//! - `cached`: a `CachedProjectionStore` (PostgreSQL behind, this Redis in
//!   front, write-through) answering from the cache, vs a raw `GET` of the
//!   same cache key (target: within 1.5x). Needs `DATABASE_URL` as well
//!   (without it, the section is skipped, saying how to set it); it works
//!   in a schema of its own (a `TestSchema`), dropped at the end.
//!
//! Without `REDIS_URL` it prints how to set it and exits with status 0
//! (skipped), as every benchmark of the workspace does. Everything is
//! written under a prefix of its own (a `TestKeyPrefix` of
//! composable-rust-testing, `cr-test:<uuid>`), deleted at the end even if
//! the run panics.
//!
//! With `COMPOSABLE_BENCH_SMOKE=1` (what CI sets when it runs the book's
//! commands) it is a smoke run (`composable_rust_testing::bench`): a
//! hundredth of the keys and operations, every section and check; the
//! output says its figures are not measurements, and judges no target.

use std::time::{Duration, Instant};

use composable_rust_core::projection::{
    CacheMode, CachedProjectionStore, ProjectionStore, ProjectionTx,
};
use composable_rust_postgres::PostgresProjectionStore;
use composable_rust_redis::redis::{self, aio::ConnectionManager};
use composable_rust_redis::{RedisProjectionStore, RedisStoreOptions};
use composable_rust_testing::fixtures::{TestKeyPrefix, TestSchema};
use composable_rust_testing::{bench, services};

/// Distinct keys read (this and the operation counts are a hundredth in a
/// smoke run: [`keys`], [`gets`], [`commits`], [`warmup`]).
const KEYS: usize = 1_000;
/// Bytes per value (a small JSON document).
const VALUE_BYTES: usize = 200;
/// Measured operations per variant and section.
const GETS: usize = 10_000;
/// Measured commits per variant.
const COMMITS: usize = 2_000;
/// Unmeasured operations first.
const WARMUP: usize = 1_000;

/// Distinct keys, in this run.
fn keys() -> usize {
    bench::scaled(KEYS)
}

/// Measured gets per variant and section, in this run.
fn gets() -> usize {
    bench::scaled(GETS)
}

/// Measured commits per variant, in this run.
fn commits() -> usize {
    bench::scaled(COMMITS)
}

/// Unmeasured operations first, in this run.
fn warmup() -> usize {
    bench::scaled(WARMUP)
}

/// One line of the results table.
struct Row {
    section: &'static str,
    variant: &'static str,
    latencies: Vec<Duration>,
}

impl Row {
    fn percentile(&self, p: f64) -> Duration {
        let mut sorted = self.latencies.clone();
        sorted.sort_unstable();
        let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
        sorted.get(index).copied().unwrap_or_default()
    }

    fn mean(&self) -> Duration {
        let total: Duration = self.latencies.iter().sum();
        total / u32::try_from(self.latencies.len().max(1)).unwrap_or(u32::MAX)
    }
}

fn main() {
    bench::banner("the projection_store benchmark (Redis)");
    let url = match services::try_redis_url() {
        Ok(url) => url,
        Err(missing) => {
            eprintln!("projection_store benchmark skipped: {missing}");
            return;
        }
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    runtime.block_on(run(&url));
}

async fn run(url: &str) {
    let prefix = TestKeyPrefix::from_url(url);
    let store = RedisStoreOptions::new(prefix.as_str())
        .expect("valid prefix")
        .connect(url)
        .await
        .unwrap_or_else(|error| panic!("{error}"));
    println!(
        "RedisProjectionStore vs raw redis-rs on the same ConnectionManager, Redis at {}",
        store.address()
    );
    println!(
        "{} keys of {VALUE_BYTES} bytes; {} gets and {} commits per variant, \
         interleaved, after {} warm-up operations{}\n",
        keys(),
        gets(),
        commits(),
        warmup(),
        bench::label()
    );

    seed(&store).await;
    let mut rows = Vec::new();
    rows.extend(get_section(&store).await);
    rows.extend(commit_section(&store).await);
    rows.extend(cached_section(&store).await);
    print_table(&rows);

    let removed = store.clear().await.expect("clean up");
    println!("\n(removed the {removed} benchmark keys)");
}

async fn seed(store: &RedisProjectionStore) {
    let value = vec![b'x'; VALUE_BYTES];
    for chunk in (0..keys()).collect::<Vec<_>>().chunks(200) {
        let mut tx = store.begin().await.expect("begin");
        for i in chunk {
            tx.save(&key(*i), &value).await.expect("save");
        }
        store.commit(tx).await.expect("seed");
    }
}

fn key(i: usize) -> String {
    format!("bench:item:{i}")
}

/// `ProjectionStore::get` vs a raw `GET` of the same Redis key.
async fn get_section(store: &RedisProjectionStore) -> Vec<Row> {
    let mut raw: ConnectionManager = store.connection();
    let keys = keys();
    let redis_keys: Vec<String> = (0..keys).map(|i| store.keyspace().data(&key(i))).collect();
    for i in 0..warmup() {
        store.get(&key(i % keys)).await.expect("get");
        raw_get(&mut raw, &redis_keys[i % keys]).await;
    }
    let mut ours = Vec::with_capacity(gets());
    let mut theirs = Vec::with_capacity(gets());
    for i in 0..gets() {
        let k = key(i % keys);
        let started = Instant::now();
        let value = store.get(&k).await.expect("get");
        ours.push(started.elapsed());
        assert_eq!(value.map(|v| v.len()), Some(VALUE_BYTES));

        let started = Instant::now();
        let value = raw_get(&mut raw, &redis_keys[i % keys]).await;
        theirs.push(started.elapsed());
        assert_eq!(value.map(|v| v.len()), Some(VALUE_BYTES));
    }
    vec![
        Row {
            section: "get",
            variant: "RedisProjectionStore::get",
            latencies: ours,
        },
        Row {
            section: "get",
            variant: "raw GET",
            latencies: theirs,
        },
    ]
}

async fn raw_get(connection: &mut ConnectionManager, redis_key: &str) -> Option<Vec<u8>> {
    redis::cmd("GET")
        .arg(redis_key)
        .query_async(connection)
        .await
        .expect("GET")
}

/// A one-`save` unit of work (one `EVALSHA` of the commit script) vs a raw
/// `SET`.
async fn commit_section(store: &RedisProjectionStore) -> Vec<Row> {
    let mut raw: ConnectionManager = store.connection();
    let value = vec![b'y'; VALUE_BYTES];
    let keys = keys();
    let commit_once = |i: usize| {
        let value = value.clone();
        async move {
            let mut tx = store.begin().await.expect("begin");
            tx.save(&key(i % keys), &value).await.expect("save");
            store.commit(tx).await.expect("commit");
        }
    };
    for i in 0..warmup() {
        commit_once(i).await;
    }
    let mut ours = Vec::with_capacity(commits());
    let mut theirs = Vec::with_capacity(commits());
    for i in 0..commits() {
        let started = Instant::now();
        commit_once(i).await;
        ours.push(started.elapsed());

        let redis_key = store.keyspace().data(&key(i % keys));
        let started = Instant::now();
        let () = redis::cmd("SET")
            .arg(&redis_key)
            .arg(value.as_slice())
            .query_async(&mut raw)
            .await
            .expect("SET");
        theirs.push(started.elapsed());
    }
    vec![
        Row {
            section: "commit",
            variant: "begin + save + commit",
            latencies: ours,
        },
        Row {
            section: "commit",
            variant: "raw SET",
            latencies: theirs,
        },
    ]
}

fn micros(duration: Duration) -> String {
    format!("{:.1} µs", duration.as_secs_f64() * 1e6)
}

/// Rows come in pairs per section: the store's operation, then the raw one.
fn print_table(rows: &[Row]) {
    println!(
        "| {:<8} | {:<27} | {:>6} | {:>10} | {:>10} | {:>10} | {:>14} |{}",
        "section",
        "variant",
        "n",
        "p50",
        "p99",
        "mean",
        "p50 vs raw",
        bench::label()
    );
    println!(
        "|{:-<10}|{:-<29}|{:-<8}|{:-<12}|{:-<12}|{:-<12}|{:-<16}|",
        "", "", "", "", "", "", ""
    );
    for pair in rows.chunks(2) {
        let raw_p50 = pair.last().map(|raw| raw.percentile(0.5));
        for row in pair {
            let ratio = match raw_p50 {
                Some(raw) if !raw.is_zero() => format!(
                    "{:.2}x",
                    row.percentile(0.5).as_secs_f64() / raw.as_secs_f64()
                ),
                _ => "-".to_owned(),
            };
            println!(
                "| {:<8} | {:<27} | {:>6} | {:>10} | {:>10} | {:>10} | {:>14} |{}",
                row.section,
                row.variant,
                row.latencies.len(),
                micros(row.percentile(0.5)),
                micros(row.percentile(0.99)),
                micros(row.mean()),
                ratio,
                bench::label()
            );
        }
    }
    let cached: Vec<&Row> = rows.iter().filter(|row| row.section == "cached").collect();
    if let [hit, raw] = cached[..] {
        let ratio = hit.percentile(0.5).as_secs_f64() / raw.percentile(0.5).as_secs_f64();
        let verdict = bench::judged(if ratio <= 1.5 { "met" } else { "MISSED" });
        println!(
            "\ntarget: cached-store hit p50 within 1.5x of a raw GET: {verdict} ({ratio:.2}x){}",
            bench::label()
        );
    }
    if let Some(get) = rows.iter().find(|row| row.section == "get") {
        let p50 = get.percentile(0.5);
        let verdict = bench::judged(if p50 < Duration::from_millis(1) {
            "met"
        } else {
            "MISSED"
        });
        println!(
            "\ntarget: RedisProjectionStore::get p50 under 1 ms: {verdict} ({}){}",
            micros(p50),
            bench::label()
        );
    }
}

/// A `CachedProjectionStore` hit (PostgreSQL behind, Redis in front) vs a
/// raw `GET` of the same cache entry.
async fn cached_section(store: &RedisProjectionStore) -> Vec<Row> {
    let database_url = match services::try_database_url() {
        Ok(url) => url,
        Err(missing) => {
            println!("(cached section skipped: {missing})");
            return Vec::new();
        }
    };
    let pool = sqlx::PgPool::connect(&database_url)
        .await
        .expect("PostgreSQL");
    // Dropped at the end of the section, after the stores (declared later).
    let schema = TestSchema::from_url(database_url);
    let primary = PostgresProjectionStore::new(pool.clone())
        .with_schema(schema.name())
        .expect("schema");
    primary.migrate().await.expect("migrate");
    let cached = CachedProjectionStore::new(primary, store.clone(), CacheMode::WriteThrough);
    let value = vec![b'x'; VALUE_BYTES];
    let keys = keys();
    for chunk in (0..keys).collect::<Vec<_>>().chunks(200) {
        let mut tx = cached.begin().await.expect("begin");
        for i in chunk {
            tx.save(&key(*i), &value).await.expect("save");
        }
        cached.commit(tx).await.expect("seed through the cache");
    }

    let mut raw: ConnectionManager = store.connection();
    let cache_keys: Vec<String> = (0..keys).map(|i| store.keyspace().cache(&key(i))).collect();
    for i in 0..warmup() {
        cached.get(&key(i % keys)).await.expect("get");
        raw_get(&mut raw, &cache_keys[i % keys]).await;
    }
    let mut ours = Vec::with_capacity(gets());
    let mut theirs = Vec::with_capacity(gets());
    for i in 0..gets() {
        let started = Instant::now();
        let value = cached.get(&key(i % keys)).await.expect("get");
        ours.push(started.elapsed());
        assert_eq!(value.map(|v| v.len()), Some(VALUE_BYTES));

        let started = Instant::now();
        let value = raw_get(&mut raw, &cache_keys[i % keys]).await;
        theirs.push(started.elapsed());
        assert_eq!(value.map(|v| v.len()), Some(VALUE_BYTES));
    }
    let stats = cached.stats();
    assert_eq!(stats.misses, 0, "every measured read must be a cache hit");
    vec![
        Row {
            section: "cached",
            variant: "CachedProjectionStore hit",
            latencies: ours,
        },
        Row {
            section: "cached",
            variant: "raw GET",
            latencies: theirs,
        },
    ]
}
