//! Listing 32-1: a workload to tune and profile, on PostgreSQL.
//!
//! ```text
//! listing-32-01 seed      # (re)creates the schema perf_guide with events and a read model
//! listing-32-01 commands  # times commands on a long ledger without and with a snapshot
//! listing-32-01 rebuild   # rebuilds the read model, printing each batch's span with its times
//! listing-32-01 clean     # drops the schema perf_guide
//! ```
//!
//! Reads `DATABASE_URL`. With `COMPOSABLE_BENCH_SMOKE=1` (as CI runs the
//! book's commands) it does a hundredth of the work and says so.

use std::sync::Arc;
use std::time::{Duration, Instant};

use composable_rust::postgres::{
    DocumentTable, PostgresEventStore, PostgresProjectionStore, PostgresProjectionTx,
};
use composable_rust::prelude::*;
use composable_rust::projection::ProjectionConfig;
use composable_rust::testing::bench;
use composable_rust::{AggregateRepository, ProjectionError, ProjectionManager, SnapshotPolicy};
use listing_29_01::batching::import;
use listing_29_01::ledger::{Ledger, LedgerCommand, LedgerEvent};
use serde::{Deserialize, Serialize};
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::fmt::format::FmtSpan;

type Error = Box<dyn std::error::Error + Send + Sync>;

/// The schema every command of the guide works in: `perf_guide`, or
/// `PERF_GUIDE_SCHEMA` (the listing's test uses a schema of its own).
fn schema() -> String {
    std::env::var("PERF_GUIDE_SCHEMA").unwrap_or_else(|_| "perf_guide".to_owned())
}
/// Events in each of the two long ledgers.
const LONG: usize = 20_000;
/// Short ledgers, and events in each.
const SHORT_LEDGERS: usize = 5_000;
const SHORT: usize = 8;
/// Commands timed on each long ledger.
const COMMANDS: usize = 300;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let url = std::env::var("DATABASE_URL").map_err(|_| {
        "DATABASE_URL is not set: run `source ci/start-services` from the repository's root, \
         or set it to a PostgreSQL server"
    })?;
    let pool = PostgresEventStore::pool_options()
        .max_connections(4)
        .connect(&url)
        .await?;
    match std::env::args().nth(1).as_deref() {
        Some("seed") => seed(&pool).await,
        Some("commands") => commands(&pool).await,
        Some("rebuild") => rebuild(&pool).await,
        Some("clean") => {
            let schema = schema();
            // Validates the name before it goes into SQL.
            PostgresEventStore::new(pool.clone()).with_schema(&schema)?;
            sqlx::query(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
                .execute(&pool)
                .await?;
            println!("dropped schema {schema}");
            Ok(())
        }
        _ => Err("usage: listing-32-01 seed | commands | rebuild | clean".into()),
    }
}

/// `n` postings of 1 to 100, starting at `1 + offset % 100`.
fn postings(n: usize, offset: usize) -> Vec<LedgerEvent> {
    (offset..offset + n)
        .map(|i| LedgerEvent::Posted {
            amount: i64::try_from(i % 100).unwrap_or(0) + 1,
        })
        .collect()
}

// ANCHOR: seed
/// Creates `perf_guide` afresh: two long ledgers (one with a snapshot),
/// many short ones, and a document read model of every ledger's balance.
async fn seed(pool: &sqlx::PgPool) -> Result<(), Error> {
    bench::banner("listing-32-01 seed");
    let schema = schema();
    let events = PostgresEventStore::new(pool.clone()).with_schema(&schema)?;
    sqlx::query(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
        .execute(pool)
        .await?;
    events.migrate().await?;
    let long = bench::scaled(LONG);

    let slow = StreamId::for_aggregate(Ledger::KIND, "long")?;
    import(&events, &slow, &postings(long, 0), 1_000).await?;
    // The same history, and one command through a repository that
    // snapshots every 100 events: it crosses a multiple of 100 and saves one.
    let fast = StreamId::for_aggregate(Ledger::KIND, "long-snapshotted")?;
    import(&events, &fast, &postings(long - 1, 0), 1_000).await?;
    let snapshotting = AggregateRepository::<Ledger, _>::new(events.clone(), ())
        .with_snapshots(SnapshotPolicy::every(100));
    snapshotting.execute(&fast, LedgerCommand::Post(1)).await?;

    for i in 0..bench::scaled(SHORT_LEDGERS) {
        let stream = StreamId::for_aggregate(Ledger::KIND, format!("short-{i}"))?;
        import(&events, &stream, &postings(SHORT, i * 7), SHORT).await?;
    }

    let read = Arc::new(PostgresProjectionStore::new(pool.clone()).with_schema(&schema)?);
    read.migrate().await?;
    let table = DocumentTable::new(&read, "ledgers")?;
    table.ensure().await?;
    let manager = ProjectionManager::new(LedgerDocuments { table }, read, events.clone());
    let projected = manager.catch_up().await?;
    sqlx::query(&format!("ANALYZE {schema}.events, {schema}.ledgers"))
        .execute(pool)
        .await?;
    println!("seeded {schema}: {projected} events, projected into {schema}.ledgers");
    Ok(())
}
// ANCHOR_END: seed

/// A ledger's document in the read model.
#[derive(Debug, Default, Serialize, Deserialize)]
struct LedgerDocument {
    balance: i64,
    postings: u64,
}

/// Keeps one document per ledger in the table `ledgers`.
struct LedgerDocuments {
    table: DocumentTable,
}

#[async_trait]
impl Projection for LedgerDocuments {
    type Store = PostgresProjectionStore;

    fn name(&self) -> &str {
        "ledger-documents"
    }

    fn handles(&self, event: &StoredEvent) -> bool {
        event.event_type == "Posted"
    }

    async fn apply(
        &self,
        event: &StoredEvent,
        tx: &mut PostgresProjectionTx,
    ) -> Result<(), ProjectionError> {
        let amount = event.payload["amount"].as_i64().unwrap_or(0);
        let id = event.stream_id.as_str();
        let mut document: LedgerDocument = self.table.get(tx, id).await?.unwrap_or_default();
        document.balance += amount;
        document.postings += 1;
        self.table.upsert(tx, id, &document).await
    }

    async fn reset(&self, tx: &mut PostgresProjectionTx) -> Result<(), ProjectionError> {
        self.table.clear(tx).await.map(|_| ())
    }
}

// ANCHOR: commands
/// Executes commands on the long ledger without a snapshot and on the one
/// with a snapshot, taking turns in bursts of 10 so that both sides share
/// whatever else the machine is doing, and prints the ratio.
async fn commands(pool: &sqlx::PgPool) -> Result<(), Error> {
    bench::banner("listing-32-01 commands");
    let events = PostgresEventStore::new(pool.clone()).with_schema(&schema())?;
    // No snapshot policy: the long ledger stays without one (a repository
    // still reads the snapshot the other ledger has).
    let ledgers = AggregateRepository::<Ledger, _>::new(events, ());
    let slow = ledgers.stream_id("long")?;
    let fast = ledgers.stream_id("long-snapshotted")?;
    let (mut slow_time, mut fast_time) = (Duration::ZERO, Duration::ZERO);
    let total = bench::scaled(COMMANDS).max(10);
    for _ in 0..total / 10 {
        for (stream, time) in [(&slow, &mut slow_time), (&fast, &mut fast_time)] {
            let started = Instant::now();
            for _ in 0..10 {
                ledgers.execute(stream, LedgerCommand::Post(1)).await?;
            }
            *time += started.elapsed();
        }
    }
    let per_command = |time: Duration| time / u32::try_from(total).unwrap_or(u32::MAX);
    let loaded = ledgers.load(&slow).await?;
    println!(
        "without snapshot: {:>9.2?} per command (a load now replays {} events){}",
        per_command(slow_time),
        loaded.events_replayed,
        bench::label()
    );
    let loaded = ledgers.load(&fast).await?;
    println!(
        "with snapshot:    {:>9.2?} per command (a load now replays {} events){}",
        per_command(fast_time),
        loaded.events_replayed,
        bench::label()
    );
    println!(
        "ratio: {:.1}x faster with the snapshot{}",
        slow_time.as_secs_f64() / fast_time.as_secs_f64(),
        bench::label()
    );
    Ok(())
}
// ANCHOR_END: commands

// ANCHOR: rebuild
/// Rebuilds the read model with the manager's `projection.batch` spans
/// printed as they close: `time.busy` is the time the batch's future was
/// being polled (CPU in this process), `time.idle` the time it waited
/// (for PostgreSQL, mostly).
async fn rebuild(pool: &sqlx::PgPool) -> Result<(), Error> {
    tracing_subscriber::fmt()
        .with_max_level(LevelFilter::INFO)
        .with_span_events(FmtSpan::CLOSE)
        .with_writer(std::io::stdout)
        .with_target(false)
        .init();
    let events = PostgresEventStore::new(pool.clone()).with_schema(&schema())?;
    let read = Arc::new(PostgresProjectionStore::new(pool.clone()).with_schema(&schema())?);
    let table = DocumentTable::new(&read, "ledgers")?;
    let config = ProjectionConfig {
        batch_size: 20_000,
        ..ProjectionConfig::default()
    };
    let manager = ProjectionManager::builder(LedgerDocuments { table }, read, events)
        .with_config(config)
        .build();
    let started = Instant::now();
    let rebuilt = manager.rebuild().await?;
    println!(
        "rebuilt {rebuilt} events in {:.2?}{}",
        started.elapsed(),
        bench::label()
    );
    Ok(())
}
// ANCHOR_END: rebuild
