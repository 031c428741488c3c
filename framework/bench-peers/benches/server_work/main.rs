//! The server's work per one-event command, for `ci/`-less profiling with
//! callgrind: each contender runs its commands on one connection of its
//! own and prints that connection's backend pid, so a PostgreSQL started
//! under `valgrind --tool=callgrind` (one output file per backend, written
//! when the connection closes) yields the instructions the server spent on
//! that contender alone. See README.md ("Counting the server's work").
//!
//! Every contender runs twice, with 20 and with 120 commands on each of 10
//! streams; the difference between the two runs, divided by 1,000, is the
//! work per command (connecting, the first statements and the loads of the
//! hot repository cancel out). Contenders:
//!
//! - `raw`: one `INSERT` into the lean table (what raw SQL keeping its state
//!   in memory does per command);
//! - `append-exact`: `PostgresEventStore::append` at `ExpectedVersion::Exact`
//!   (the version read by the statement and compared);
//! - `hot`: `AggregateRepository::execute` with hot aggregates (an append
//!   after the known version: no read of the stream's version);
//! - `cold`: `AggregateRepository::execute` without them (a replay of the
//!   stream, then the append, on one connection).
//!
//! Needs `SERVER_WORK_URL` (not `DATABASE_URL`: it is meant for a private
//! server under callgrind); exits 0 saying so when it is missing.

#[allow(dead_code)] // `Ledger::replay` is the peers bench's
#[path = "../peers/domain.rs"]
mod domain;

use composable_rust_core::{
    Aggregate, AggregateRepository, Event, EventStore, ExpectedVersion, NewEvent, StreamId,
};
use composable_rust_postgres::PostgresEventStore;
use serde::{Deserialize, Serialize};
use sqlx::types::Json;
use sqlx::{Executor, PgPool};

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

const STREAMS: u64 = 10;
const CONTENDERS: [&str; 4] = ["raw", "append-exact", "hot", "cold"];

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let Ok(url) = std::env::var("SERVER_WORK_URL") else {
        println!(
            "SERVER_WORK_URL is not set: point it at a PostgreSQL started under \
             `valgrind --tool=callgrind` (see README.md); nothing to do"
        );
        return;
    };
    let run = std::process::id();
    // One pool for the set-up only.
    let setup = PgPool::connect(&url).await.expect("connect");
    setup
        .execute(
            "CREATE SCHEMA IF NOT EXISTS server_work_raw; \
             CREATE TABLE IF NOT EXISTS server_work_raw.events (stream_id text NOT NULL, \
             version bigint NOT NULL, payload jsonb NOT NULL, PRIMARY KEY (stream_id, version))",
        )
        .await
        .expect("raw table");
    PostgresEventStore::new(setup.clone())
        .with_schema("server_work")
        .expect("schema")
        .migrate()
        .await
        .expect("migrate");
    setup.close().await;
    for contender in CONTENDERS {
        for commands in [20u64, 120] {
            let pool = PostgresEventStore::pool_options()
                .max_connections(1)
                .connect(&url)
                .await
                .expect("connect");
            let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
                .fetch_one(&pool)
                .await
                .expect("pid");
            let prefix = format!("{run}-{contender}-{commands}");
            drive(contender, &pool, &prefix, commands).await;
            pool.close().await;
            println!("{contender} {commands} {pid}");
        }
    }
}

/// `commands` one-event commands on each of the streams, round robin.
async fn drive(contender: &str, pool: &PgPool, prefix: &str, commands: u64) {
    let store = PostgresEventStore::new(pool.clone())
        .with_schema("server_work")
        .expect("schema");
    let hot = AggregateRepository::<CrLedger, _>::new(store.clone(), ()).with_hot_aggregates(64);
    let cold = AggregateRepository::<CrLedger, _>::new(store.clone(), ());
    let raw =
        "INSERT INTO server_work_raw.events (stream_id, version, payload) VALUES ($1, $2, $3)";
    for k in 0..commands {
        for s in 0..STREAMS {
            let id = StreamId::for_aggregate(CrLedger::KIND, format!("{prefix}-{s}")).expect("id");
            let post = Post {
                first: k * STREAMS + s,
                count: 1,
            };
            match contender {
                "raw" => {
                    let event = domain::event(post.first);
                    sqlx::query(raw)
                        .bind(id.as_str())
                        .bind(i64::try_from(k + 1).expect("fits"))
                        .bind(Json(&event))
                        .execute(pool)
                        .await
                        .expect("raw insert");
                }
                "append-exact" => {
                    let event = NewEvent::from_event(&domain::event(post.first)).expect("encode");
                    let expected = match k {
                        0 => ExpectedVersion::NoStream,
                        k => ExpectedVersion::Exact(k),
                    };
                    store
                        .append(&id, expected, vec![event])
                        .await
                        .expect("append");
                }
                "hot" => {
                    hot.execute(&id, post).await.expect("hot command");
                }
                _ => {
                    cold.execute(&id, post).await.expect("cold command");
                }
            }
        }
    }
}
