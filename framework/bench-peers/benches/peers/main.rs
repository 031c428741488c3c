//! Peer benchmark: the same workloads through lean raw sqlx, cqrs-es 0.5
//! with postgres-es 0.5, and Composable Rust (`AggregateRepository` over
//! `PostgresEventStore`), in one process, on the same PostgreSQL, with the
//! same ~200-byte events. See README.md for how to run it and what it
//! prints.
//!
//! Each workload runs in rounds; in every round each contender runs it once
//! on fresh aggregates. Within a round the contenders take turns in small
//! chunks (100 one-event commands, 5 batch commands, one load), in an
//! order that rotates from chunk to chunk, so all contenders share
//! whatever else the machine is doing. A figure is the median over the
//! rounds, with the range in brackets; a ratio is the median of the
//! per-round ratios (both sides from the same round), with its range.
//!
//! With `COMPOSABLE_BENCH_SMOKE=1` (what CI sets when it runs the book's
//! commands) it is a smoke run: a hundredth of each workload (and of its
//! chunks and warm-up), every contender, state check and the cqrs-es
//! snapshot check; the output says its figures are not measurements.

// The workspace's smoke-mode helper (composable-rust-testing's `bench`
// module, which uses only std), included by path rather than as a
// dependency: this workspace then compiles nothing more for it.
#[allow(dead_code, unused_imports)] // not all of it is used here
#[path = "../../../testing/src/bench.rs"]
mod bench;
mod composable;
mod cqrs;
mod domain;
mod raw;

use std::time::{Duration, Instant};

use sqlx::postgres::PgPoolOptions;
use sqlx::{Executor, PgPool};

use domain::{Ledger, Post};

/// Workload 1: one-event commands, over this many aggregates. (Every
/// count below but `BATCH_EVENTS` and `LOADS_PER_ROUND` is a hundredth in
/// a smoke run: `bench::scaled`.)
const SINGLE_COMMANDS: usize = 5_000;
const SINGLE_AGGREGATES: usize = 50;
/// Workload 1 runs in chunks of this many commands per contender, taking
/// turns, so that every contender meets the same conditions.
const CHUNK: usize = 100;
/// Workload 2: commands of this many events, each on a new aggregate.
const BATCH_COMMANDS: usize = 50;
const BATCH_EVENTS: usize = 100;
/// Workload 2 runs in chunks of this many commands per contender.
const BATCH_CHUNK: usize = 5;
/// Workload 3: the stream that is loaded and rebuilt, and loads per round.
const LOADED_EVENTS: usize = 10_000;
const LOADS_PER_ROUND: usize = 7;
/// Warm-up commands per contender before workload 1 and 2.
const WARM_UP_COMMANDS: usize = 200;
const WARM_UP_BATCHES: usize = 5;

/// One contender.
#[allow(clippy::large_enum_variant)] // four values, built once
enum Contender {
    Raw(raw::Raw),
    Cqrs(cqrs::Cqrs),
    Composable(composable::Composable),
}

impl Contender {
    fn name(&self) -> &'static str {
        match self {
            Self::Raw(raw) if raw.is_cached() => "raw, cached state",
            Self::Raw(_) => "raw sqlx",
            Self::Cqrs(_) => "cqrs-es 0.5",
            Self::Composable(cr) if cr.is_hot() => "composable, hot",
            Self::Composable(_) => "composable",
        }
    }

    async fn command(&mut self, id: &str, post: Post) {
        match self {
            Self::Raw(raw) => raw.command(id, post).await,
            Self::Cqrs(cqrs) => cqrs.command(id, post).await,
            Self::Composable(cr) => cr.command(id, post).await,
        }
    }

    async fn load(&self, id: &str) -> (Ledger, u64) {
        match self {
            Self::Raw(raw) => raw.load(id).await,
            Self::Cqrs(cqrs) => cqrs.load(id).await,
            Self::Composable(cr) => cr.load(id).await,
        }
    }

    async fn replay(&self, id: &str) -> Ledger {
        match self {
            Self::Raw(raw) => raw.replay(id).await,
            Self::Cqrs(cqrs) => cqrs.replay(id).await,
            Self::Composable(cr) => cr.replay(id).await,
        }
    }

    /// Whether it takes part in `workload` (the cached-state raw side only
    /// makes sense for repeated commands on the same aggregates).
    fn runs(&self, workload: Workload) -> bool {
        match self {
            Self::Raw(raw) if raw.is_cached() => workload == Workload::Single,
            Self::Composable(cr) if cr.is_hot() => workload == Workload::Single,
            _ => true,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Workload {
    Single,
    Batch,
    Load,
}

fn main() {
    bench::banner("the peer benchmark");
    let Ok(url) = std::env::var("DATABASE_URL") else {
        eprintln!(
            "skipped: DATABASE_URL is not set. Run e.g.\n  DATABASE_URL=postgres://postgres@localhost:5432/postgres \
             cargo bench --manifest-path framework/bench-peers/Cargo.toml"
        );
        return;
    };
    let rounds = std::env::var("PEERS_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(3usize);
    let pool_kind = std::env::var("PEERS_POOL").unwrap_or_else(|_| "recommended".to_owned());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    runtime.block_on(bench(url, rounds, pool_kind));
}

/// The pool every contender gets (each its own, all alike).
fn pool_options(kind: &str) -> PgPoolOptions {
    let options = PgPoolOptions::new().max_connections(4);
    match kind {
        "sqlx-default" => options,
        "recommended" => {
            composable_rust_postgres::PostgresEventStore::pool_options().max_connections(4)
        }
        other => panic!("PEERS_POOL={other}: use `recommended` or `sqlx-default`"),
    }
}

async fn bench(url: String, rounds: usize, pool_kind: String) {
    let admin = PgPool::connect(&url)
        .await
        .unwrap_or_else(|error| panic!("cannot connect to {url}: {error}"));
    let settings: (String, String) =
        sqlx::query_as("SELECT version(), current_setting('synchronous_commit')")
            .fetch_one(&admin)
            .await
            .expect("server settings");
    let tag = uuid::Uuid::new_v4().simple().to_string()[..8].to_owned();
    let schemas = [
        format!("peers_raw_{tag}"),
        format!("peers_rawc_{tag}"),
        format!("peers_cqrs_{tag}"),
        format!("peers_cr_{tag}"),
        format!("peers_crhot_{tag}"),
    ];
    println!("PostgreSQL: {}", settings.0);
    println!(
        "synchronous_commit = {}; pools: {pool_kind} (each contender its own); {rounds} rounds; \
         payload {} bytes of JSON{}",
        settings.1,
        domain::payload_bytes(),
        bench::label()
    );
    let pool = || async {
        pool_options(&pool_kind)
            .connect(&url)
            .await
            .expect("contender pool")
    };
    let mut contenders = vec![
        Contender::Raw(raw::Raw::new(pool().await, &schemas[0], false).await),
        Contender::Cqrs(cqrs::Cqrs::new(pool().await, &schemas[2]).await),
        Contender::Composable(composable::Composable::new(pool().await, &schemas[3], 0).await),
        Contender::Composable(composable::Composable::new(pool().await, &schemas[4], 1_024).await),
        Contender::Raw(raw::Raw::new(pool().await, &schemas[1], true).await),
    ];
    let result = tokio::spawn(async move {
        let mut failures = 0;
        failures += single(&mut contenders, rounds).await;
        failures += batch(&mut contenders, rounds).await;
        failures += load(&mut contenders, rounds).await;
        failures += cqrs_snapshots(&contenders).await;
        failures
    })
    .await;
    for schema in &schemas {
        admin
            .execute(format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE").as_str())
            .await
            .expect("drop a benchmark schema");
    }
    match result {
        Ok(0) => {}
        Ok(failures) => {
            println!("\n{failures} state check(s) FAILED (see above)");
            std::process::exit(1);
        }
        Err(error) => {
            eprintln!("benchmark failed: {error}");
            std::process::exit(1);
        }
    }
}

/// The contenders of `workload`, in the order of `round` (rotated).
fn order(contenders: &[Contender], workload: Workload, round: usize) -> Vec<usize> {
    let taking: Vec<usize> = (0..contenders.len())
        .filter(|&i| contenders[i].runs(workload))
        .collect();
    let n = taking.len();
    (0..n).map(|k| taking[(k + round) % n]).collect()
}

/// One figure per round, per contender (index into `contenders`).
struct Measured {
    per_round: Vec<Vec<Option<f64>>>,
}

impl Measured {
    fn new(contenders: usize, rounds: usize) -> Self {
        Self {
            per_round: vec![vec![None; rounds]; contenders],
        }
    }
}

async fn single(contenders: &mut [Contender], rounds: usize) -> usize {
    let (commands, aggregates, chunk_len) = (
        bench::scaled(SINGLE_COMMANDS),
        bench::scaled(SINGLE_AGGREGATES),
        bench::scaled(CHUNK),
    );
    println!(
        "\n== {commands} one-event commands over {aggregates} aggregates \
         (load, decide, append) =="
    );
    // Warm-up: connections, prepared statements, caches.
    for i in order(contenders, Workload::Single, 0) {
        for n in 0..bench::scaled(WARM_UP_COMMANDS) as u64 {
            let id = format!("warm-{}", n % 10);
            contenders[i]
                .command(&id, Post { first: n, count: 1 })
                .await;
        }
    }
    let mut measured = Measured::new(contenders.len(), rounds);
    for round in 0..rounds {
        let mut elapsed = vec![Duration::ZERO; contenders.len()];
        for chunk in 0..commands / chunk_len {
            for i in order(contenders, Workload::Single, round + chunk) {
                let start = Instant::now();
                for n in chunk * chunk_len..(chunk + 1) * chunk_len {
                    let id = format!("single-{round}-{}", n % aggregates);
                    let post = Post {
                        first: n as u64,
                        count: 1,
                    };
                    contenders[i].command(&id, post).await;
                }
                elapsed[i] += start.elapsed();
            }
        }
        for i in order(contenders, Workload::Single, 0) {
            measured.per_round[i][round] = Some(commands as f64 / elapsed[i].as_secs_f64());
        }
    }
    report(contenders, &measured, "ev/s", true);
    let ids: Vec<String> = (0..aggregates)
        .map(|a| format!("single-{}-{a}", rounds - 1))
        .collect();
    check(
        contenders,
        Workload::Single,
        &ids,
        (commands / aggregates) as u64,
    )
    .await
}

async fn batch(contenders: &mut [Contender], rounds: usize) -> usize {
    let (commands, chunk_len) = (bench::scaled(BATCH_COMMANDS), bench::scaled(BATCH_CHUNK));
    println!("\n== {commands} commands of {BATCH_EVENTS} events (each on a new aggregate) ==");
    for i in order(contenders, Workload::Batch, 0) {
        for n in 0..bench::scaled(WARM_UP_BATCHES) {
            let post = Post {
                first: 0,
                count: BATCH_EVENTS,
            };
            contenders[i]
                .command(&format!("warm-batch-{n}"), post)
                .await;
        }
    }
    let mut measured = Measured::new(contenders.len(), rounds);
    for round in 0..rounds {
        let mut elapsed = vec![Duration::ZERO; contenders.len()];
        for chunk in 0..commands / chunk_len {
            for i in order(contenders, Workload::Batch, round + chunk) {
                let start = Instant::now();
                for n in chunk * chunk_len..(chunk + 1) * chunk_len {
                    let post = Post {
                        first: (n * BATCH_EVENTS) as u64,
                        count: BATCH_EVENTS,
                    };
                    contenders[i]
                        .command(&format!("batch-{round}-{n}"), post)
                        .await;
                }
                elapsed[i] += start.elapsed();
            }
        }
        let events = (commands * BATCH_EVENTS) as f64;
        for i in order(contenders, Workload::Batch, 0) {
            measured.per_round[i][round] = Some(events / elapsed[i].as_secs_f64());
        }
    }
    report(contenders, &measured, "ev/s", true);
    let ids: Vec<String> = (0..commands)
        .map(|n| format!("batch-{}-{n}", rounds - 1))
        .collect();
    check(contenders, Workload::Batch, &ids, BATCH_EVENTS as u64).await
}

async fn load(contenders: &mut [Contender], rounds: usize) -> usize {
    let loaded = bench::scaled(LOADED_EVENTS);
    println!("\n== load + rebuild a {loaded}-event stream ==");
    let id = "loaded";
    for i in order(contenders, Workload::Load, 0) {
        for first in (0..loaded).step_by(1_000) {
            let post = Post {
                first: first as u64,
                count: 1_000.min(loaded - first),
            };
            contenders[i].command(id, post).await;
        }
        for _ in 0..2 {
            contenders[i].load(id).await;
        }
    }
    let mut measured = Measured::new(contenders.len(), rounds);
    for round in 0..rounds {
        let mut times = vec![Vec::with_capacity(LOADS_PER_ROUND); contenders.len()];
        for load in 0..LOADS_PER_ROUND {
            for i in order(contenders, Workload::Load, round + load) {
                let start = Instant::now();
                let (_, version) = contenders[i].load(id).await;
                times[i].push(start.elapsed());
                assert_eq!(version, loaded as u64, "{}", contenders[i].name());
            }
        }
        for i in order(contenders, Workload::Load, 0) {
            times[i].sort();
            measured.per_round[i][round] = Some(ms(times[i][times[i].len() / 2]));
        }
    }
    report(contenders, &measured, "ms", false);
    check(contenders, Workload::Load, &[id.to_owned()], loaded as u64).await
}

/// cqrs-es's snapshot store, checked against a full replay.
async fn cqrs_snapshots(contenders: &[Contender]) -> usize {
    let Some(cqrs) = contenders.iter().find_map(|c| match c {
        Contender::Cqrs(cqrs) => Some(cqrs),
        _ => None,
    }) else {
        return 0;
    };
    println!("\n== cqrs-es snapshot store (new_snapshot_store(repo, 100)) vs full replay ==");
    let cases = [
        ("10 commands of 100 events", vec![(100, 10)]),
        ("250 one-event commands", vec![(1, 250)]),
    ];
    for (label, plan) in cases {
        let posts: Vec<Post> = plan
            .iter()
            .flat_map(|&(count, times)| {
                (0..times).map(move |n| Post {
                    first: (n * count) as u64,
                    count,
                })
            })
            .collect();
        let id = format!("snapshot-{}", label.replace(' ', "-"));
        let (loaded, replayed) = cqrs.snapshot_check(&id, &posts).await;
        println!(
            "  {label}: snapshot-loaded state has {} entries (total {}), a full replay {} \
             (total {}){}",
            loaded.entries,
            loaded.total_cents,
            replayed.entries,
            replayed.total_cents,
            if loaded == replayed {
                "; equal".to_owned()
            } else {
                format!(
                    "; NOT EQUAL ({:.2}x the true entry count): cqrs-es 0.5 applies a \
                     command's events to the aggregate in EventSink::write and again when it \
                     builds the snapshot",
                    loaded.entries as f64 / replayed.entries as f64
                )
            }
        );
    }
    // A peer's defect is reported, not counted as this benchmark failing.
    0
}

/// Checks that each contender's loaded state equals a full replay of what
/// it stored, and has `entries` entries; returns the number of failures.
async fn check(
    contenders: &[Contender],
    workload: Workload,
    ids: &[String],
    entries: u64,
) -> usize {
    let mut failures = 0;
    for contender in contenders.iter().filter(|c| c.runs(workload)) {
        let mut bad = Vec::new();
        for id in ids {
            let (loaded, version) = contender.load(id).await;
            let replayed = contender.replay(id).await;
            if loaded != replayed || loaded.entries != entries || version != entries {
                bad.push(format!(
                    "{id}: loaded {loaded:?} at version {version}, replay {replayed:?}"
                ));
            }
        }
        if bad.is_empty() {
            println!(
                "  state check {}: {} aggregate(s) loaded = full replay",
                contender.name(),
                ids.len()
            );
        } else {
            println!("  state check {}: FAILED {bad:?}", contender.name());
            failures += 1;
        }
    }
    failures
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1_000.0
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// Prints one line per contender: median [min-max] and the ratios to raw
/// and to cqrs-es (higher is better for rates; for times, the ratio is
/// inverted so that above 1 still means faster).
fn report(contenders: &[Contender], measured: &Measured, unit: &str, rate: bool) {
    let index_of = |name: &str| contenders.iter().position(|c| c.name() == name);
    let (raw, cqrs) = (index_of("raw sqlx"), index_of("cqrs-es 0.5"));
    println!(
        "  {:<18} {:>26}   {:>22}   {:>22}{}",
        "contender",
        format!("{unit} median [range]"),
        "vs raw [range]",
        "vs cqrs-es [range]",
        bench::label()
    );
    let ratios = |i: usize, base: Option<usize>| -> String {
        let Some(base) = base else {
            return "-".to_owned();
        };
        let values: Vec<f64> = measured.per_round[i]
            .iter()
            .zip(&measured.per_round[base])
            .filter_map(|(&a, &b)| Some(if rate { a? / b? } else { b? / a? }))
            .collect();
        if values.is_empty() {
            return "-".to_owned();
        }
        let (lo, hi) = range(&values);
        format!("{:.2} [{lo:.2}-{hi:.2}]", median(values))
    };
    for (i, contender) in contenders.iter().enumerate() {
        let values: Vec<f64> = measured.per_round[i].iter().flatten().copied().collect();
        if values.is_empty() {
            continue;
        }
        let (lo, hi) = range(&values);
        let figure = if rate {
            format!("{:.0} [{lo:.0}-{hi:.0}]", median(values))
        } else {
            format!("{:.1} [{lo:.1}-{hi:.1}]", median(values))
        };
        println!(
            "  {:<18} {:>26}   {:>22}   {:>22}{}",
            contender.name(),
            figure,
            ratios(i, raw),
            ratios(i, cqrs),
            bench::label()
        );
    }
    // Issue 11's hot-aggregates target, as a same-round ratio of its own.
    if let (Some(hot), Some(cached)) = (index_of("composable, hot"), index_of("raw, cached state"))
    {
        println!(
            "  composable, hot vs raw, cached state: {} (target >= 0.85){}",
            ratios(hot, Some(cached)),
            bench::label()
        );
    }
}

fn range(values: &[f64]) -> (f64, f64) {
    values
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
            (lo.min(v), hi.max(v))
        })
}
