//! The repository's load path and hot aggregates on real PostgreSQL.
//!
//! - Loading through [`EventStore::replay`] (one statement, payloads read
//!   straight from the rows) gives the state a full replay gives, with and
//!   without snapshots, and a stream with a corrupt row still fails with
//!   `CorruptEvent`.
//! - Several OS processes, each with its own repository, pool and
//!   hot-aggregate cache, hammer one stream with `execute_with_retry`: no
//!   update is lost or doubled, the versions run 1, 2, 3... without a gap,
//!   and the final state equals a full replay. The processes are this test
//!   binary run again with `--exact hot_aggregate_writer` and the work in
//!   `CR_HOT_WRITER`. Their hot commands append after the cached version
//!   ([`EventStore::append_after`]: the primary key, not a read of the
//!   stream's version, catches a stale cache), which the writers count.
//! - A stale hot aggregate (another pool appended) conflicts with the
//!   actual version and writes nothing; the retry reloads and decides
//!   again, on the fresh state.
//!
//! Needs `DATABASE_URL`; each test works in its own schema (a
//! `TestSchema`), dropped at the end.

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use composable_rust_core::event_store::{
    KnownVersion, ReplayAndDecide, ReplayVisitor, StreamAppend,
};
use composable_rust_core::{AppendOutcome, Position, StoredEvent};
use tokio::sync::watch;

use composable_rust_core::aggregate::{AggregateRepository, RepositoryError, SnapshotPolicy};
use composable_rust_core::event::decode;
use composable_rust_core::{
    Aggregate, CodedError, Event, EventStore, EventStoreError, ExpectedVersion, NewEvent, Snapshot,
    StreamId, Upcasters,
};
use composable_rust_postgres::PostgresEventStore;
use composable_rust_testing::fixtures::TestSchema;
use composable_rust_testing::services::database_url;
use serde::{Deserialize, Serialize};
use sqlx::Executor;
use sqlx::postgres::PgPoolOptions;

/// The environment variable that turns `hot_aggregate_writer` into a
/// writer process: `schema,stream,writer,commands`.
const WRITER: &str = "CR_HOT_WRITER";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum TallyEvent {
    Added { n: u64, note: String },
}

impl Event for TallyEvent {}

#[derive(Debug, thiserror::Error)]
#[error("refused")]
struct Refused;

/// Every number added, in order: a lost, doubled or reordered event
/// shows.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Tally {
    seen: Vec<u64>,
}

impl Aggregate for Tally {
    const KIND: &'static str = "tally";
    type Event = TallyEvent;
    type Command = u64;
    type Error = Refused;
    type Environment = ();

    fn decide(&self, n: u64, _: &()) -> Result<Vec<TallyEvent>, Refused> {
        if self.seen.contains(&n) {
            return Err(Refused);
        }
        let added = |n| TallyEvent::Added {
            n,
            note: "a note \"quoted\", with unicode: é".to_owned(),
        };
        // From a million on, a command adds n and n + 1: a batch.
        if n >= 1_000_000 {
            return Ok(vec![added(n), added(n + 1)]);
        }
        Ok(vec![added(n)])
    }

    fn apply(&mut self, TallyEvent::Added { n, .. }: &TallyEvent) {
        self.seen.push(*n);
    }
}

/// A migrated store in a schema of its own, dropped with the fixture (the
/// store's field first, so its pool closes before the schema is dropped).
struct Fixture {
    store: PostgresEventStore,
    _schema: TestSchema,
}

async fn fresh() -> Fixture {
    fresh_with(PostgresEventStore::pool_options().max_connections(4)).await
}

async fn fresh_with(options: PgPoolOptions) -> Fixture {
    let schema = TestSchema::new();
    let pool = options.connect(schema.url()).await.expect("connect");
    let store = PostgresEventStore::new(pool)
        .with_schema(schema.name())
        .expect("schema name");
    store.migrate().await.expect("migrate");
    Fixture {
        store,
        _schema: schema,
    }
}

/// The state a full replay of `load_stream` gives.
async fn full_replay(store: &PostgresEventStore, id: &StreamId) -> Tally {
    let mut tally = Tally::default();
    for stored in store.load_stream(id, 0).await.expect("load_stream") {
        let event = decode::<TallyEvent>(&stored, &Upcasters::new())
            .expect("decode")
            .expect("not discarded");
        tally.apply(&event);
    }
    tally
}

#[tokio::test]
async fn loading_through_replay_equals_a_full_replay_with_and_without_snapshots() {
    let fixture = fresh().await;
    let store = &fixture.store;
    let repository = AggregateRepository::<Tally, _>::new(store.clone(), ())
        .with_snapshots(SnapshotPolicy::every(10));
    let id = repository.stream_id("replay").expect("id");
    for n in 1..=25 {
        repository.execute(&id, n).await.expect("command");
    }
    let loaded = repository.load(&id).await.expect("load");
    assert_eq!(loaded.state, full_replay(store, &id).await);
    assert_eq!(loaded.version, 25);
    assert_eq!(loaded.snapshot_version, Some(20));
    assert_eq!(loaded.events_replayed, 5);

    // A snapshot of another state shape is ignored: every event replays.
    let mut snapshot = store.load_snapshot(&id).await.expect("load").expect("one");
    snapshot.schema_version = Tally::SNAPSHOT_VERSION + 1;
    store.save_snapshot(&snapshot).await.expect("save");
    let loaded = repository.load(&id).await.expect("load");
    assert_eq!(
        (loaded.snapshot_version, loaded.events_replayed),
        (None, 25)
    );
    assert_eq!(loaded.state, full_replay(store, &id).await);

    // So is one that no longer deserializes.
    store
        .save_snapshot(&Snapshot {
            schema_version: Tally::SNAPSHOT_VERSION,
            state: serde_json::json!({ "seen": "not a list" }),
            ..snapshot
        })
        .await
        .expect("save");
    let loaded = repository.load(&id).await.expect("load");
    assert_eq!(
        (loaded.snapshot_version, loaded.events_replayed),
        (None, 25)
    );
    assert_eq!(loaded.state, full_replay(store, &id).await);

    // A stream that does not exist is the default state at version 0.
    let none = repository
        .load(&repository.stream_id("none").expect("id"))
        .await;
    assert_eq!(none.expect("load").version, 0);
}

#[tokio::test]
async fn rows_stored_out_of_order_still_replay_in_version_order() {
    // Sequential scans only, so rows arrive in heap order.
    let fixture = fresh_with(
        PostgresEventStore::pool_options()
            .max_connections(2)
            .after_connect(|connection, _| {
                Box::pin(async move {
                    connection
                        .execute("SET enable_indexscan = off; SET enable_bitmapscan = off")
                        .await
                        .map(|_| ())
                })
            }),
    )
    .await;
    let store = &fixture.store;
    let repository = AggregateRepository::<Tally, _>::new(store.clone(), ());
    let id = repository.stream_id("shuffled").expect("id");
    for n in 1..=20 {
        repository.execute(&id, n).await.expect("command");
    }
    // An UPDATE writes a new version of the row at the end of the heap, so
    // a scan in heap order meets 1, 3, 4, ..., 20, 2, ...
    for version in [2, 7, 1] {
        sqlx::query(&format!(
            "UPDATE \"{}\".events SET payload = payload WHERE stream_id = $1 AND stream_version = $2",
            store.schema()
        ))
        .bind(id.as_str())
        .bind(version)
        .execute(store.pool())
        .await
        .expect("move a row");
    }
    let loaded = repository.load(&id).await.expect("load");
    assert_eq!(loaded.state.seen, (1..=20).collect::<Vec<_>>());
    assert_eq!(loaded.version, 20);
    // With a snapshot in the middle too.
    let snapshots = AggregateRepository::<Tally, _>::new(store.clone(), ())
        .with_snapshots(SnapshotPolicy::every(21));
    snapshots
        .execute(&id, 21)
        .await
        .expect("command and snapshot");
    for version in [22, 23] {
        snapshots.execute(&id, version).await.expect("command");
    }
    sqlx::query(&format!(
        "UPDATE \"{}\".events SET payload = payload WHERE stream_id = $1 AND stream_version = 22",
        store.schema()
    ))
    .bind(id.as_str())
    .execute(store.pool())
    .await
    .expect("move a row");
    let loaded = repository.load(&id).await.expect("load");
    assert_eq!(loaded.snapshot_version, Some(21));
    assert_eq!(loaded.state, full_replay(store, &id).await);
}

#[tokio::test]
async fn a_one_connection_pool_runs_commands_conflicts_and_duplicates() {
    // A command replays and appends on one connection, failure paths
    // included: with a single connection in the pool nothing may wait for
    // a second one.
    let fixture = fresh_with(PostgresEventStore::pool_options().max_connections(1)).await;
    let store = &fixture.store;
    let hot = AggregateRepository::<Tally, _>::new(store.clone(), ()).with_hot_aggregates(4);
    let cold = AggregateRepository::<Tally, _>::new(store.clone(), ());
    let id = hot.stream_id("one-connection").expect("id");
    let run = async {
        hot.execute(&id, 1).await.expect("first");
        cold.execute(&id, 2).await.expect("second");
        let stale = hot.execute(&id, 3).await.expect_err("stale");
        assert!(stale.is_conflict(), "{stale:?}");
        hot.execute_with_retry(&id, 2, || 3).await.expect("retried");
        let taken = NewEvent::new("Added", serde_json::json!({ "n": 9, "note": "" }));
        let duplicate = taken.clone();
        store
            .append(&id, ExpectedVersion::Exact(3), vec![taken])
            .await
            .expect("append");
        let error = store
            .append(&id, ExpectedVersion::Exact(4), vec![duplicate])
            .await
            .expect_err("duplicate id");
        assert!(
            matches!(error, EventStoreError::DuplicateEventId { .. }),
            "{error:?}"
        );
    };
    tokio::time::timeout(Duration::from_secs(20), run)
        .await
        .expect("no command waits for a second connection");
    assert_eq!(full_replay(store, &id).await.seen, [1, 2, 3, 9]);
}

#[tokio::test]
async fn a_stream_with_a_corrupt_payload_fails_to_load_with_corrupt_event() {
    let fixture = fresh().await;
    let store = &fixture.store;
    let id = StreamId::for_aggregate(Tally::KIND, "corrupt").expect("id");
    let repository = AggregateRepository::<Tally, _>::new(store.clone(), ());
    for n in 1..=3 {
        repository.execute(&id, n).await.expect("command");
    }
    // Deeper than serde_json reads (128 levels), but valid jsonb.
    let deep = format!("{}1{}", "[".repeat(200), "]".repeat(200));
    sqlx::query(&format!(
        "UPDATE \"{}\".events SET payload = $1::jsonb WHERE stream_id = $2 AND stream_version = 2",
        store.schema()
    ))
    .bind(&deep)
    .bind(id.as_str())
    .execute(store.pool())
    .await
    .expect("corrupt the row");
    let error = repository.load(&id).await.expect_err("corrupt");
    assert_eq!(error.code().as_str(), "CR-E0018", "{error}");
    assert!(
        matches!(&error, EventStoreError::CorruptEvent { stream_id, .. } if stream_id == id.as_str()),
        "{error:?}"
    );
}

#[tokio::test]
async fn appended_by_hand_events_with_an_unknown_type_are_reported_as_such() {
    let fixture = fresh().await;
    let store = &fixture.store;
    let id = StreamId::for_aggregate(Tally::KIND, "unknown").expect("id");
    store
        .append(
            &id,
            ExpectedVersion::NoStream,
            vec![NewEvent::new("Vanished", serde_json::json!({}))],
        )
        .await
        .expect("append");
    let repository = AggregateRepository::<Tally, _>::new(store.clone(), ());
    let error = repository.load(&id).await.expect_err("unknown type");
    assert!(
        matches!(&error, EventStoreError::UnknownEventType { event_type, stream_version: 1, .. } if event_type == "Vanished"),
        "{error:?}"
    );
}

/// Writer processes and their command count.
const PROCESSES: u64 = 3;
const COMMANDS: u64 = 100;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_processes_with_hot_aggregates_lose_no_update_on_one_stream() {
    let fixture = fresh().await;
    let store = &fixture.store;
    let id = StreamId::for_aggregate(Tally::KIND, "shared").expect("id");
    let exe = std::env::current_exe().expect("the test binary");
    // The writers start together, once all of them are up.
    let start_at = epoch_millis() + 1_500;
    let children: Vec<_> = (0..PROCESSES)
        .map(|writer| {
            let mut command = Command::new(&exe);
            command
                .args([
                    "--exact",
                    "hot_aggregate_writer",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env(
                    WRITER,
                    format!(
                        "{},{},{writer},{COMMANDS},{start_at}",
                        store.schema(),
                        id.as_str()
                    ),
                );
            tokio::task::spawn_blocking(move || command.output().expect("run a writer process"))
        })
        .collect();
    let mut conflicts = 0;
    let mut appends_after = 0;
    for child in children {
        let output = child.await.expect("join");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "a writer process failed: {}\n{stdout}\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        println!("{stdout}");
        conflicts += stdout
            .lines()
            .find_map(|line| line.split("writer done; conflicts: ").nth(1))
            .and_then(|count| count.split_whitespace().next()?.parse::<u64>().ok())
            .expect("the writer reports its conflicts");
        appends_after += stdout
            .lines()
            .find_map(|line| line.split("appends after a known version: ").nth(1))
            .and_then(|count| count.split_whitespace().next()?.parse::<u64>().ok())
            .expect("the writer reports its appends after a known version");
    }
    // Hot commands appended after their cached version.
    assert!(
        appends_after > 0,
        "no append went after a known version; the test proves nothing"
    );
    // Stale cached aggregates were met and recovered from.
    assert!(
        conflicts > 0,
        "the writers never raced; the test proves nothing"
    );

    let stored = full_replay(store, &id).await;
    assert_eq!(
        stored.seen.len() as u64,
        PROCESSES * COMMANDS,
        "every command landed exactly once"
    );
    for writer in 0..PROCESSES {
        for parity in [0, 1] {
            let own: Vec<u64> = stored
                .seen
                .iter()
                .copied()
                .filter(|n| n / 1_000 == writer && n % 2 == parity)
                .collect();
            let expected: Vec<u64> = (1..=COMMANDS)
                .filter(|k| k % 2 == parity)
                .map(|k| writer * 1_000 + k)
                .collect();
            assert_eq!(
                own, expected,
                "writer {writer}'s task {parity}, in its order"
            );
        }
    }
    let loaded = AggregateRepository::<Tally, _>::new(store.clone(), ())
        .load(&id)
        .await
        .expect("load");
    assert_eq!(loaded.state, stored, "a load equals the full replay");
    assert_eq!(loaded.version, PROCESSES * COMMANDS);
    // No gap, no version twice.
    let expected: Vec<i64> = (1..=i64::try_from(PROCESSES * COMMANDS).expect("fits")).collect();
    assert_eq!(versions(store, &id).await, expected);
}

/// A writer process (only when `CR_HOT_WRITER` is set; otherwise it does
/// nothing): its own pool and repository with a hot-aggregate cache, two
/// tasks sharing it, each running its half of the commands and retrying
/// conflicts as `execute_with_retry` does. Prints `writer done; conflicts:
/// N` at the end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hot_aggregate_writer() {
    let Ok(work) = std::env::var(WRITER) else {
        return;
    };
    let parts: Vec<&str> = work.split(',').collect();
    let [schema, stream, writer, commands, start_at] = parts[..] else {
        panic!("{WRITER}={work}: expected schema,stream,writer,commands,start_at");
    };
    let (writer, commands): (u64, u64) = (writer.parse().unwrap(), commands.parse().unwrap());
    let start_at: u64 = start_at.parse().unwrap();
    let pool = PostgresEventStore::pool_options()
        .max_connections(2)
        .connect(&database_url())
        .await
        .expect("connect");
    let store = PostgresEventStore::new(pool)
        .with_schema(schema)
        .expect("schema");
    let counted = Counted::new(store);
    let repository = std::sync::Arc::new(
        AggregateRepository::<Tally, _>::new(counted.clone(), ()).with_hot_aggregates(16),
    );
    let id = StreamId::new(stream).expect("id");
    // Warm the pool, then wait for the others.
    repository.load(&id).await.expect("load");
    tokio::time::sleep(Duration::from_millis(
        start_at.saturating_sub(epoch_millis()),
    ))
    .await;
    let conflicts = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    // Two tasks share the repository: odd and even commands, each in order.
    let tasks: Vec<_> = [1, 0]
        .into_iter()
        .map(|parity| {
            let repository = std::sync::Arc::clone(&repository);
            let conflicts = std::sync::Arc::clone(&conflicts);
            let id = id.clone();
            tokio::spawn(async move {
                for k in (1..=commands).filter(|k| k % 2 == parity) {
                    let n = writer * 1_000 + k;
                    // execute_with_retry, counting the conflicts.
                    let mut attempt = 0;
                    loop {
                        attempt += 1;
                        match repository.execute(&id, n).await {
                            Ok(_) => break,
                            Err(error) if error.is_conflict() && attempt < 1_000 => {
                                conflicts.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                                if attempt % 10 == 0 {
                                    tokio::time::sleep(Duration::from_millis(1)).await;
                                }
                            }
                            Err(error) => panic!("command {n}: {error}"),
                        }
                    }
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("task");
    }
    assert!(repository.hot_aggregates() <= 1);
    println!(
        "writer done; conflicts: {} ; appends after a known version: {}",
        conflicts.load(std::sync::atomic::Ordering::Relaxed),
        counted.counts().1
    );
}

fn epoch_millis() -> u64 {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970");
    u64::try_from(since.as_millis()).expect("fits")
}

/// The versions stored for `id`, in order.
async fn versions(store: &PostgresEventStore, id: &StreamId) -> Vec<i64> {
    sqlx::query_scalar(&format!(
        "SELECT stream_version::int8 FROM \"{}\".events WHERE stream_id = $1 \
         ORDER BY stream_version",
        store.schema()
    ))
    .bind(id.as_str())
    .fetch_all(store.pool())
    .await
    .expect("versions")
}

/// A [`PostgresEventStore`] that counts the appends that go after a known
/// version ([`EventStore::append_after`]) and the ordinary ones; every
/// call goes to the store.
#[derive(Debug, Clone)]
struct Counted {
    store: PostgresEventStore,
    appends: Arc<AtomicU64>,
    appends_after: Arc<AtomicU64>,
}

impl Counted {
    fn new(store: PostgresEventStore) -> Self {
        Self {
            store,
            appends: Arc::default(),
            appends_after: Arc::default(),
        }
    }

    /// `(ordinary appends, appends after a known version)` so far.
    fn counts(&self) -> (u64, u64) {
        (
            self.appends.load(Ordering::Relaxed),
            self.appends_after.load(Ordering::Relaxed),
        )
    }
}

#[async_trait]
impl EventStore for Counted {
    async fn append(
        &self,
        stream_id: &StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendOutcome, EventStoreError> {
        self.appends.fetch_add(1, Ordering::Relaxed);
        self.store.append(stream_id, expected, events).await
    }

    async fn append_after(
        &self,
        stream_id: &StreamId,
        version: KnownVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendOutcome, EventStoreError> {
        self.appends_after.fetch_add(1, Ordering::Relaxed);
        self.store.append_after(stream_id, version, events).await
    }

    async fn append_to_streams(
        &self,
        appends: Vec<StreamAppend>,
    ) -> Result<Vec<AppendOutcome>, EventStoreError> {
        self.appends.fetch_add(1, Ordering::Relaxed);
        self.store.append_to_streams(appends).await
    }

    async fn load_stream(
        &self,
        stream_id: &StreamId,
        from_version: u64,
    ) -> Result<Vec<StoredEvent>, EventStoreError> {
        self.store.load_stream(stream_id, from_version).await
    }

    async fn stream_version(&self, stream_id: &StreamId) -> Result<u64, EventStoreError> {
        self.store.stream_version(stream_id).await
    }

    async fn replay(
        &self,
        stream_id: &StreamId,
        snapshot_schema: Option<u32>,
        visit: &mut ReplayVisitor<'_>,
    ) -> Result<(), EventStoreError> {
        self.store.replay(stream_id, snapshot_schema, visit).await
    }

    async fn replay_and_append(
        &self,
        stream_id: &StreamId,
        snapshot_schema: Option<u32>,
        command: &mut (dyn ReplayAndDecide + '_),
    ) -> Result<Option<AppendOutcome>, EventStoreError> {
        self.store
            .replay_and_append(stream_id, snapshot_schema, command)
            .await
    }

    async fn read_all(
        &self,
        after: Position,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, EventStoreError> {
        self.store.read_all(after, limit).await
    }

    async fn save_snapshot(&self, snapshot: &Snapshot) -> Result<(), EventStoreError> {
        self.store.save_snapshot(snapshot).await
    }

    async fn load_snapshot(
        &self,
        stream_id: &StreamId,
    ) -> Result<Option<Snapshot>, EventStoreError> {
        self.store.load_snapshot(stream_id).await
    }

    fn subscribe(&self) -> watch::Receiver<u64> {
        self.store.subscribe()
    }
}

#[tokio::test]
async fn a_stale_hot_aggregate_conflicts_on_the_primary_key_writes_nothing_and_decides_again() {
    let fixture = fresh().await;
    let store = &fixture.store;
    // Another writer with a pool of its own, as another process would.
    let other_pool = PostgresEventStore::pool_options()
        .max_connections(1)
        .connect(&database_url())
        .await
        .expect("connect");
    let other_store = PostgresEventStore::new(other_pool)
        .with_schema(store.schema())
        .expect("schema");
    let counted = Counted::new(store.clone());
    let hot = AggregateRepository::<Tally, _>::new(counted.clone(), ()).with_hot_aggregates(4);
    let other = AggregateRepository::<Tally, _>::new(other_store.clone(), ());
    let id = hot.stream_id("stale").expect("id");

    // One event, then a batch of two, both after the known version.
    hot.execute(&id, 1).await.expect("first");
    hot.execute(&id, 1_000_000).await.expect("a batch");
    hot.execute(&id, 2).await.expect("one more");
    assert_eq!(counted.counts(), (0, 2), "hot commands append after");
    assert_eq!(versions(store, &id).await, [1, 2, 3, 4]);

    // The other writer moves the stream on: the cached version 4 is stale.
    other.execute(&id, 7).await.expect("other");
    let stale = hot.execute(&id, 7).await.expect_err("stale");
    assert!(
        matches!(
            &stale,
            RepositoryError::Store(EventStoreError::WrongExpectedVersion {
                expected: ExpectedVersion::Exact(4),
                actual: 5,
                ..
            })
        ),
        "{stale:?}"
    );
    assert_eq!(hot.hot_aggregates(), 0, "the stale entry is dropped");
    // A stale batch is refused whole.
    other.execute(&id, 8).await.expect("other");
    hot.execute(&id, 9).await.expect("reloaded: lands at 7");
    other.execute(&id, 10).await.expect("other");
    let stale = hot.execute(&id, 2_000_000).await.expect_err("stale batch");
    assert!(stale.is_conflict(), "{stale:?}");
    assert_eq!(versions(store, &id).await, (1..=8).collect::<Vec<i64>>());

    // The retry reloads and decides on the fresh state: 10 is there now,
    // so the command is refused, not written twice.
    other.execute(&id, 11).await.expect("other");
    let refused = hot
        .execute_with_retry(&id, 3, || 11)
        .await
        .expect_err("refused on the fresh state");
    assert!(
        matches!(refused, RepositoryError::Rejected(Refused)),
        "{refused:?}"
    );
    let stored = full_replay(store, &id).await;
    assert_eq!(
        stored.seen,
        [1, 1_000_000, 1_000_001, 2, 7, 8, 9, 10, 11],
        "nothing stale was written"
    );
    assert_eq!(versions(store, &id).await, (1..=9).collect::<Vec<i64>>());
    drop(other);
    other_store.pool().close().await;
}
