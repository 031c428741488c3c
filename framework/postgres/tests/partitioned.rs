//! Partitioned workers against a real PostgreSQL (`DATABASE_URL`), each
//! test in a schema of its own (`TestSchema`):
//!
//! - workers (tokio tasks with pools of their own) added and killed during
//!   catch-up end with the read model a single-process rebuild makes,
//!   every event applied exactly once, in stream order;
//! - the same with workers in separate OS processes (this test binary
//!   runs itself as the child: `child_worker`, ignored unless spawned);
//! - a worker whose lease was taken over cannot commit (fencing);
//! - a worker refuses another partition count than the recorded one, and a
//!   reset (refused while a worker runs) rebuilds and re-partitions;
//! - partitioned saga workers (`partitioned/sagas.rs`): killed and added
//!   workers end every saga as one runtime does, and a stolen lease cannot
//!   move a partition's position;
//! - `bench_partitioned_workers` (ignored): events/s for 1, 2 and 4
//!   workers, against one plain manager in the same run.

use std::collections::BTreeMap;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use composable_rust_core::projection::manager::Partition;
use composable_rust_core::projection::{
    ProjectionCheckpoint, ProjectionConfig, ProjectionStore, ProjectionTx, ProjectionTxExt,
};
use composable_rust_core::{
    Clock, CodedError, EventStore, ExpectedVersion, NewEvent, Position, Projection,
    ProjectionError, ProjectionManager, StoredEvent, StreamId, TestClock,
};
use composable_rust_postgres::partition::{
    FencedStore, PartitionError, PartitionLeases, PartitionProjection, PartitionedWorker,
    partition_checkpoint,
};
use composable_rust_postgres::{
    PostgresEventStore, PostgresProjectionStore, PostgresProjectionTx, sql_error,
};
use composable_rust_testing::fixtures::TestSchema;
use composable_rust_testing::services::database_url;
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

const PROJECTION: &str = "tallies";

/// Partitioned saga workers: `tests/partitioned/sagas.rs`.
mod partitioned {
    mod sagas;
}

/// A pool of its own (every worker gets one, as a process would).
async fn pool(connections: u32) -> PgPool {
    PgPoolOptions::new()
        .max_connections(connections)
        .connect(&database_url())
        .await
        .expect("connect to DATABASE_URL")
}

/// The stores of one schema: events, read model and leases together.
async fn stores(schema: &str, connections: u32) -> (PostgresEventStore, PostgresProjectionStore) {
    let pool = pool(connections).await;
    let events = PostgresEventStore::new(pool.clone())
        .with_schema(schema)
        .expect("valid schema");
    let store = PostgresProjectionStore::new(pool)
        .with_schema(schema)
        .expect("valid schema");
    (events, store)
}

/// Creates every table in `schema`: events, projection store, leases, and
/// the test projection's `applied` log.
async fn migrate(schema: &str) {
    let (events, store) = stores(schema, 2).await;
    events.migrate().await.expect("event store migrations");
    store.migrate().await.expect("projection store migrations");
    PartitionLeases::new(&store)
        .migrate()
        .await
        .expect("lease migrations");
    sqlx::query(&format!(
        "CREATE TABLE IF NOT EXISTS \"{schema}\".applied ( \
             seq bigserial PRIMARY KEY, event_id uuid NOT NULL, \
             stream_id text NOT NULL, stream_version bigint NOT NULL)"
    ))
    .execute(store.pool())
    .await
    .expect("create the applied table");
    store.pool().close().await;
}

/// Appends `events` events round-robin over `streams` streams (in appends
/// of up to 20 events per stream); returns the last position.
async fn append(schema: &str, events: usize, streams: usize) -> Position {
    let (store, _) = stores(schema, 4).await;
    let per_stream = events.div_ceil(streams);
    let mut last = Position::START;
    let mut written = 0;
    let mut round = 0;
    while written < events {
        for stream in 0..streams {
            let take = 20
                .min(per_stream.saturating_sub(round * 20))
                .min(events - written);
            if take == 0 {
                continue;
            }
            let batch = (0..take)
                .map(|n| {
                    NewEvent::new(
                        "Added",
                        serde_json::json!({ "amount": (round * 20 + n) % 7 + 1 }),
                    )
                })
                .collect();
            let id = StreamId::new(format!("account-{stream}")).expect("valid stream id");
            let outcome = store
                .append(&id, ExpectedVersion::Any, batch)
                .await
                .expect("append");
            last = last.max(outcome.last_position);
            written += take;
        }
        round += 1;
    }
    store.pool().close().await;
    last
}

/// One stream's line of the read model.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Tally {
    events: u64,
    last_version: u64,
    sum: u64,
}

/// Keeps a [`Tally`] per stream (`tally:<stream>`) and logs every
/// application in `applied`, in the same transaction: a committed row per
/// applied event, in commit order within a partition.
struct Tallies {
    /// Stalls the first time it applies this stream version, until woken.
    stall: Option<(u64, Arc<Notify>, Arc<Notify>)>,
}

#[async_trait]
impl Projection for Tallies {
    type Store = PostgresProjectionStore;

    fn name(&self) -> &str {
        PROJECTION
    }

    async fn apply(
        &self,
        event: &StoredEvent,
        tx: &mut PostgresProjectionTx,
    ) -> Result<(), ProjectionError> {
        let key = format!("tally:{}", event.stream_id);
        let mut tally: Tally = tx.get_json(&key).await?.unwrap_or_default();
        tally.events += 1;
        tally.last_version = event.stream_version;
        tally.sum += event.payload["amount"].as_u64().unwrap_or(0);
        tx.save_json(&key, &tally).await?;
        let applied = format!("\"{}\".applied", tx.schema());
        sqlx::query(&format!(
            "INSERT INTO {applied} (event_id, stream_id, stream_version) VALUES ($1, $2, $3)"
        ))
        .bind(event.event_id)
        .bind(event.stream_id.as_str())
        .bind(i64::try_from(event.stream_version).unwrap_or(i64::MAX))
        .execute(tx.connection().await?)
        .await
        .map_err(sql_error)?;
        if let Some((version, stalled, resume)) = &self.stall
            && event.stream_version == *version
        {
            stalled.notify_one();
            resume.notified().await;
        }
        Ok(())
    }

    async fn reset(&self, tx: &mut PostgresProjectionTx) -> Result<(), ProjectionError> {
        tx.delete_prefix("tally:").await.map(|_| ())
    }
}

fn manager_config() -> ProjectionConfig {
    ProjectionConfig {
        batch_size: 50,
        idle_poll_interval: Duration::from_millis(50),
        failure_backoff: Duration::from_millis(20),
        ..ProjectionConfig::default()
    }
}

/// A running worker: its task (abort it to kill the worker) and handle.
struct Running {
    worker: PartitionedWorker<Tallies>,
    task: JoinHandle<Result<(), PartitionError>>,
}

/// Starts worker `id` on a pool of its own.
async fn start_worker(schema: &str, id: &str, partitions: u32) -> Running {
    let (events, store) = stores(schema, 6).await;
    let worker = PartitionedWorker::builder(Tallies { stall: None }, store, events, partitions)
        .with_worker_id(id)
        .with_lease_duration(Duration::from_millis(1200))
        .with_heartbeat(Duration::from_millis(100))
        .with_config(manager_config())
        .build()
        .expect("valid settings");
    let task = tokio::spawn({
        let worker = worker.clone();
        async move { worker.run().await }
    });
    Running { worker, task }
}

/// Every partition's checkpoint.
async fn checkpoints(store: &PostgresProjectionStore, partitions: u32) -> Vec<Position> {
    let mut positions = Vec::new();
    for partition in Partition::all(NonZeroU32::new(partitions).unwrap()) {
        let name = partition_checkpoint(PROJECTION, partition);
        positions.push(
            store
                .load_position(&name)
                .await
                .expect("load a checkpoint")
                .unwrap_or(Position::START),
        );
    }
    positions
}

/// Waits (up to a minute) until every partition's checkpoint is at `head`.
async fn wait_for_head(schema: &str, partitions: u32, head: Position) {
    let (_, store) = stores(schema, 1).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let positions = checkpoints(&store, partitions).await;
        if positions.iter().all(|position| *position >= head) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "partitions did not reach {head} within a minute: {positions:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    store.pool().close().await;
}

/// The read model: every tally.
async fn read_model(store: &PostgresProjectionStore) -> BTreeMap<String, Tally> {
    store
        .scan_prefix("tally:")
        .await
        .expect("scan the read model")
        .into_iter()
        .map(|(key, value)| (key, serde_json::from_slice(&value).expect("a tally")))
        .collect()
}

/// Builds the read model in a fresh schema with one plain manager reading
/// `events_schema`'s events; returns it.
async fn single_process_rebuild(events_schema: &str) -> BTreeMap<String, Tally> {
    let reference = TestSchema::new();
    migrate(reference.name()).await;
    let (events, _) = stores(events_schema, 2).await;
    let (_, store) = stores(reference.name(), 2).await;
    let manager =
        ProjectionManager::builder(Tallies { stall: None }, Arc::new(store.clone()), events)
            .with_config(manager_config())
            .build();
    manager.rebuild().await.expect("single-process rebuild");
    let model = read_model(&store).await;
    store.pool().close().await;
    model
}

/// Asserts that every lease of `work` is free or held by `owner`: the
/// workers that stopped gave theirs back.
async fn assert_leases_given_back(store: &PostgresProjectionStore, work: &str, owner: &str) {
    let leases = PartitionLeases::new(store).leases(work).await.unwrap();
    assert!(
        leases
            .iter()
            .all(|lease| lease.owner.is_none() || lease.owner.as_deref() == Some(owner)),
        "stopped workers gave their leases back: {leases:?}"
    );
}

/// Asserts every event was applied exactly once (committed), and each
/// stream's events in version order.
async fn assert_exactly_once_in_order(schema: &str, expected: usize) {
    let (_, store) = stores(schema, 1).await;
    let (rows, distinct): (i64, i64) = sqlx::query_as(&format!(
        "SELECT count(*), count(DISTINCT event_id) FROM \"{schema}\".applied"
    ))
    .fetch_one(store.pool())
    .await
    .expect("count applications");
    assert_eq!(distinct, expected as i64, "every event applied");
    assert_eq!(rows, expected as i64, "no event applied twice");
    let log: Vec<(String, i64)> = sqlx::query_as(&format!(
        "SELECT stream_id, stream_version FROM \"{schema}\".applied ORDER BY seq"
    ))
    .fetch_all(store.pool())
    .await
    .expect("read the log");
    let mut last: BTreeMap<String, i64> = BTreeMap::new();
    for (stream, version) in log {
        let previous = last.insert(stream.clone(), version).unwrap_or(0);
        assert_eq!(version, previous + 1, "{stream} applied out of order");
    }
    store.pool().close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn workers_added_and_killed_during_catch_up_apply_each_event_once() {
    let schema = TestSchema::new();
    let name = schema.name().to_owned();
    migrate(&name).await;
    const EVENTS: usize = 3000;
    let head = append(&name, EVENTS, 40).await;

    let a = start_worker(&name, "a", 8).await;
    let b = start_worker(&name, "b", 8).await;
    // Wait until both work, then add a third and kill the first mid-way.
    let mut owned = a.worker.subscribe_owned();
    owned.wait_for(|owned| !owned.is_empty()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let c = start_worker(&name, "c", 8).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    a.task.abort();
    let d = start_worker(&name, "d", 8).await;

    wait_for_head(&name, 8, head).await;
    for running in [&b, &c, &d] {
        running.worker.shutdown();
    }
    for running in [b, c, d] {
        running.task.await.unwrap().expect("worker stopped cleanly");
    }

    assert_exactly_once_in_order(&name, EVENTS).await;
    let (_, store) = stores(&name, 1).await;
    let partitioned = read_model(&store).await;
    assert_eq!(partitioned.len(), 40);
    assert_eq!(partitioned, single_process_rebuild(&name).await);
    assert_leases_given_back(&store, PROJECTION, "a").await;
    store.pool().close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_joining_worker_gets_a_fair_share_and_a_leaving_one_hands_over() {
    let schema = TestSchema::new();
    let name = schema.name().to_owned();
    migrate(&name).await;
    let a = start_worker(&name, "a", 6).await;
    let mut a_owned = a.worker.subscribe_owned();
    a_owned.wait_for(|owned| owned.len() == 6).await.unwrap();
    let b = start_worker(&name, "b", 6).await;
    let mut b_owned = b.worker.subscribe_owned();
    b_owned.wait_for(|owned| owned.len() == 3).await.unwrap();
    a_owned.wait_for(|owned| owned.len() == 3).await.unwrap();
    assert!(
        a.worker
            .owned()
            .iter()
            .all(|p| !b.worker.owned().contains(p))
    );

    a.worker.shutdown();
    a.task.await.unwrap().unwrap();
    // A left (gave its leases back and its row in the live workers): B
    // takes everything at its next heartbeat, without waiting for expiry.
    tokio::time::timeout(
        Duration::from_secs(1),
        b_owned.wait_for(|owned| owned.len() == 6),
    )
    .await
    .expect("B took over within a second")
    .unwrap();
    b.worker.shutdown();
    b.task.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_whose_lease_was_taken_cannot_commit() {
    let schema = TestSchema::new();
    let name = schema.name().to_owned();
    migrate(&name).await;
    append(&name, 10, 1).await;
    let (events, store) = stores(&name, 4).await;
    let leases = PartitionLeases::new(&store);
    let count = NonZeroU32::new(1).unwrap();
    leases.register(PROJECTION, count).await.unwrap();
    let clock = TestClock::new();
    let lease_for = chrono::Duration::seconds(10);
    let mine = leases
        .claim(
            PROJECTION,
            count,
            "slow",
            1,
            clock.now(),
            clock.now() + lease_for,
        )
        .await
        .unwrap()
        .pop()
        .expect("a free partition");

    // The slow worker's manager stalls inside its first batch (event 3).
    let (stalled, resume) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
    let projection = Tallies {
        stall: Some((3, Arc::clone(&stalled), Arc::clone(&resume))),
    };
    let partition = mine.partition;
    let manager = ProjectionManager::builder(
        PartitionProjection::new(Arc::new(projection), partition),
        Arc::new(FencedStore::new(
            store.clone(),
            leases.clone(),
            mine.clone(),
        )),
        events,
    )
    .with_config(manager_config())
    .build();
    let catch_up = tokio::spawn({
        let manager = manager.clone();
        async move { manager.catch_up().await }
    });
    stalled.notified().await;

    // Its lease runs out; another worker takes the partition.
    clock.advance(Duration::from_secs(11));
    let theirs = leases
        .claim(
            PROJECTION,
            count,
            "fast",
            1,
            clock.now(),
            clock.now() + lease_for,
        )
        .await
        .unwrap()
        .pop()
        .expect("the expired partition");
    assert_eq!(theirs.token, mine.token + 1);
    // Renewing is too late for the slow worker: the token moved on.
    assert!(
        leases
            .renew(std::slice::from_ref(&mine), clock.now() + lease_for)
            .await
            .unwrap()
            .is_empty()
    );

    resume.notify_one();
    let error = catch_up
        .await
        .unwrap()
        .expect_err("the commit is fenced off");
    assert_eq!(error.code().as_str(), "CR-E0121", "{error}");
    assert!(!error.is_transient());
    let ProjectionError::Backend(backend) = &error else {
        panic!("a backend error: {error}");
    };
    assert!(backend.downcast_ref::<PartitionError>().is_some());

    // Nothing of the slow worker's batch was written.
    assert_eq!(store.get("tally:account-0").await.unwrap(), None);
    let name_of = partition_checkpoint(PROJECTION, partition);
    assert_eq!(store.load_position(&name_of).await.unwrap(), None);
    let applied: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM \"{name}\".applied"))
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(applied, 0);

    // The new owner commits.
    let mut tx = store.begin().await.unwrap();
    tx.save("tally:x", b"{}").await.unwrap();
    let fenced = FencedStore::new(store.clone(), leases.clone(), theirs);
    fenced
        .save_position(&mut tx, &name_of, Position::new(1, 1))
        .await
        .unwrap();
    fenced.commit(tx).await.unwrap();
    store.pool().close().await;
}

#[tokio::test]
async fn a_takeover_waits_for_a_commit_in_progress_then_fences_the_old_owner() {
    let schema = TestSchema::new();
    let name = schema.name().to_owned();
    migrate(&name).await;
    let (_, store) = stores(&name, 4).await;
    let leases = PartitionLeases::new(&store);
    let count = NonZeroU32::new(2).unwrap();
    leases.register(PROJECTION, count).await.unwrap();
    let clock = TestClock::new();
    let lease_for = chrono::Duration::seconds(1);
    let mine = leases
        .claim(
            PROJECTION,
            count,
            "old",
            1,
            clock.now(),
            clock.now() + lease_for,
        )
        .await
        .unwrap()
        .pop()
        .unwrap();
    let fenced = FencedStore::new(store.clone(), leases.clone(), mine.clone());
    let checkpoint = partition_checkpoint(PROJECTION, mine.partition);

    // A commit in progress holds the lease row: a takeover skips it...
    let mut tx = store.begin().await.unwrap();
    tx.save("tally:a", b"1").await.unwrap();
    fenced
        .save_position(&mut tx, &checkpoint, Position::new(1, 1))
        .await
        .unwrap();
    clock.advance(Duration::from_secs(5));
    let taken = leases
        .claim(
            PROJECTION,
            count,
            "new",
            2,
            clock.now(),
            clock.now() + lease_for,
        )
        .await
        .unwrap();
    assert_eq!(
        taken
            .iter()
            .map(|l| l.partition.index())
            .collect::<Vec<_>>(),
        vec![1 - mine.partition.index()],
        "the partition being committed is skipped, not waited for"
    );
    fenced.commit(tx).await.unwrap();

    // ...and takes it once the commit is done; the old owner is fenced.
    let taken = leases
        .claim(
            PROJECTION,
            count,
            "new",
            1,
            clock.now(),
            clock.now() + lease_for,
        )
        .await
        .unwrap();
    assert_eq!(taken.len(), 1);
    let mut tx = store.begin().await.unwrap();
    tx.save("tally:a", b"2").await.unwrap();
    let error = fenced
        .save_position(&mut tx, &checkpoint, Position::new(1, 2))
        .await
        .expect_err("fenced");
    assert_eq!(error.code().as_str(), "CR-E0121");
    drop(tx);
    assert_eq!(store.get("tally:a").await.unwrap(), Some(b"1".to_vec()));
    store.pool().close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_lets_the_workers_rebuild_and_is_refused_while_one_runs() {
    let schema = TestSchema::new();
    let name = schema.name().to_owned();
    migrate(&name).await;
    let head = append(&name, 500, 10).await;
    let a = start_worker(&name, "a", 8).await;
    wait_for_head(&name, 8, head).await;

    let (events, store) = stores(&name, 2).await;
    let resetter = PartitionedWorker::builder(Tallies { stall: None }, store.clone(), events, 8)
        .build()
        .unwrap();
    let error = resetter
        .reset()
        .await
        .expect_err("a running worker holds leases");
    assert_eq!(error.code().as_str(), "CR-E0123");
    assert_eq!(read_model(&store).await.len(), 10, "nothing was reset");

    a.worker.shutdown();
    a.task.await.unwrap().unwrap();
    resetter.reset().await.expect("every worker stopped");
    assert!(read_model(&store).await.is_empty());
    assert!(
        checkpoints(&store, 8)
            .await
            .iter()
            .all(|p| *p == Position::START)
    );

    // A reset also changes the partition count: from 8 to 3.
    let (events, _) = stores(&name, 2).await;
    let resetter = PartitionedWorker::builder(Tallies { stall: None }, store.clone(), events, 3)
        .build()
        .unwrap();
    resetter.reset().await.expect("a new count");
    let leases = PartitionLeases::new(&store)
        .leases(PROJECTION)
        .await
        .unwrap();
    assert_eq!(leases.len(), 3);
    let b = start_worker(&name, "b", 3).await;
    wait_for_head(&name, 3, head).await;
    b.worker.shutdown();
    b.task.await.unwrap().unwrap();
    assert_eq!(
        read_model(&store).await,
        single_process_rebuild(&name).await
    );
    store.pool().close().await;
}

#[tokio::test]
async fn a_worker_refuses_another_partition_count() {
    let schema = TestSchema::new();
    let name = schema.name().to_owned();
    migrate(&name).await;
    let (_, store) = stores(&name, 2).await;
    let leases = PartitionLeases::new(&store);
    leases
        .register(PROJECTION, NonZeroU32::new(4).unwrap())
        .await
        .unwrap();
    let error = leases
        .register(PROJECTION, NonZeroU32::new(8).unwrap())
        .await
        .expect_err("another count");
    assert_eq!(error.code().as_str(), "CR-E0122");
    assert!(
        error.to_string().contains("split into 4 partitions"),
        "{error}"
    );

    let (events, store) = stores(&name, 2).await;
    let error = PartitionedWorker::builder(Tallies { stall: None }, store, events, 4)
        .with_lease_duration(Duration::from_secs(1))
        .with_heartbeat(Duration::from_secs(1))
        .build()
        .expect_err("a lease shorter than three heartbeats");
    assert_eq!(error.code().as_str(), "CR-E0123");
}

#[tokio::test]
async fn lease_queries_before_migrate_say_what_to_call() {
    let schema = TestSchema::new();
    let (_, store) = stores(schema.name(), 1).await;
    store.migrate().await.unwrap();
    let error = PartitionLeases::new(&store)
        .leases(PROJECTION)
        .await
        .expect_err("no tables");
    assert_eq!(error.code().as_str(), "CR-E0120");
    assert!(error.to_string().contains("PartitionLeases::migrate()"));
    store.pool().close().await;
}

/// The environment variables a spawned child worker reads.
const CHILD_SCHEMA: &str = "PARTITIONED_CHILD_SCHEMA";
const CHILD_ID: &str = "PARTITIONED_CHILD_ID";

/// Spawns this test binary as a worker process running `child_worker`.
fn spawn_child(schema: &str, id: &str) -> std::process::Child {
    std::process::Command::new(std::env::current_exe().expect("the test binary"))
        .args(["child_worker", "--exact", "--ignored", "--nocapture"])
        .env(CHILD_SCHEMA, schema)
        .env(CHILD_ID, id)
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("spawn a worker process")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_processes_killed_and_added_apply_each_event_once() {
    let schema = TestSchema::new();
    let name = schema.name().to_owned();
    migrate(&name).await;
    const EVENTS: usize = 2000;
    let head = append(&name, EVENTS, 30).await;

    let mut first = spawn_child(&name, "p1");
    let mut second = spawn_child(&name, "p2");
    // Kill the first (SIGKILL: no clean-up at all) once it committed work.
    let (_, store) = stores(&name, 1).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while checkpoints(&store, 8)
        .await
        .iter()
        .all(|p| *p == Position::START)
    {
        assert!(Instant::now() < deadline, "no worker process made progress");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    first.kill().expect("kill a worker process");
    first.wait().unwrap();
    let mut third = spawn_child(&name, "p3");

    wait_for_head(&name, 8, head).await;
    for child in [&mut second, &mut third] {
        child.kill().unwrap();
        child.wait().unwrap();
    }
    assert_exactly_once_in_order(&name, EVENTS).await;
    assert_eq!(
        read_model(&store).await,
        single_process_rebuild(&name).await
    );
    store.pool().close().await;
}

/// A worker process for `worker_processes_killed_and_added_apply_each_event_once`:
/// does nothing unless that test spawned it; then runs until killed (or
/// for two minutes at most).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a worker process spawned by worker_processes_killed_and_added_apply_each_event_once"]
async fn child_worker() {
    let (Ok(schema), Ok(id)) = (std::env::var(CHILD_SCHEMA), std::env::var(CHILD_ID)) else {
        return;
    };
    let running = start_worker(&schema, &id, 8).await;
    // Killed by the parent; the time limit only keeps an orphan (its
    // parent panicked) from running for ever.
    if let Ok(outcome) = tokio::time::timeout(Duration::from_secs(120), running.task).await {
        outcome.unwrap().expect("the worker runs until killed");
    }
}

/// Events/s of 1, 2 and 4 workers (tokio tasks, a pool each, 8
/// partitions) catching up on the same events, against one plain
/// manager in the same run. `COMPOSABLE_BENCH_SMOKE=1` for a quick run.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "a benchmark: cargo test -p composable-rust-postgres --test partitioned --release -- --ignored bench --nocapture"]
async fn bench_partitioned_workers() {
    use composable_rust_testing::bench;
    bench::banner("partitioned workers");
    let events = bench::scaled(20_000).max(400);
    let schema = TestSchema::new();
    let name = schema.name().to_owned();
    migrate(&name).await;
    let head = append(&name, events, 100).await;
    let config = ProjectionConfig {
        batch_size: 500,
        ..manager_config()
    };

    // Baseline: one manager, no partitions.
    let baseline = {
        let target = TestSchema::new();
        migrate(target.name()).await;
        let (source, _) = stores(&name, 2).await;
        let (_, store) = stores(target.name(), 4).await;
        let manager =
            ProjectionManager::builder(Tallies { stall: None }, Arc::new(store.clone()), source)
                .with_config(config.clone())
                .build();
        let started = Instant::now();
        manager.catch_up().await.unwrap();
        let rate = events as f64 / started.elapsed().as_secs_f64();
        store.pool().close().await;
        rate
    };
    println!(
        "one plain manager: {baseline:>9.0} events/s (baseline){}",
        bench::label()
    );

    for workers in [1, 2, 4] {
        let target = TestSchema::new();
        migrate(target.name()).await;
        let mut running = Vec::new();
        let started = Instant::now();
        for n in 0..workers {
            let (source, _) = stores(&name, 2).await;
            let (_, store) = stores(target.name(), 6).await;
            let worker = PartitionedWorker::builder(Tallies { stall: None }, store, source, 8)
                .with_worker_id(format!("w{n}"))
                .with_lease_duration(Duration::from_secs(2))
                .with_heartbeat(Duration::from_millis(100))
                .with_config(config.clone())
                .build()
                .unwrap();
            let task = tokio::spawn({
                let worker = worker.clone();
                async move { worker.run().await }
            });
            running.push(Running { worker, task });
        }
        wait_for_head(target.name(), 8, head).await;
        let rate = events as f64 / started.elapsed().as_secs_f64();
        for r in &running {
            r.worker.shutdown();
        }
        for r in running {
            r.task.await.unwrap().unwrap();
        }
        println!(
            "{workers} worker(s), 8 partitions: {rate:>9.0} events/s, {:.2}x the baseline{}",
            rate / baseline,
            bench::label()
        );
    }
}
