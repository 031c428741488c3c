//! Blue/green rebuilds on a real PostgreSQL: a new version is bulk-loaded
//! beside the live one while the live one serves and keeps following new
//! events; readers switch in one transaction; the old version is dropped
//! after the grace period (by a `TestClock`); a rebuild that fails (a
//! poison event) or is killed (its task aborted) leaves readers on the live
//! version, untouched.
//!
//! Each test works in a database of its own (`TestDatabase`), since a
//! blue/green read model spans several schemas. They need `DATABASE_URL`.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use composable_rust_core::clock::TestClock;
use composable_rust_core::projection::blue_green::LoadOptions;
use composable_rust_core::projection::{
    EventSource, ProjectionCheckpoint, ProjectionConfig, ProjectionStoreExt, ProjectionTxExt,
};
use composable_rust_core::{
    CodedError, EventStore, ExpectedVersion, NewEvent, Position, Projection, ProjectionError,
    ProjectionManager, StoredEvent, StreamId,
};
use composable_rust_postgres::{
    BlueGreen, BlueGreenError, PostgresEventStore, PostgresProjectionStore, PostgresProjectionTx,
    VersionState,
};
use composable_rust_testing::fixtures::TestDatabase;
use serde_json::json;
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use tokio::sync::Notify;

/// Per stream, the sum of the events' `n` times `factor` (`total:<stream>`,
/// rewritten by many batches: the upsert path), and one key per event
/// (`seen:<event id>`, new every time: the COPY path). Fails on the event
/// whose `n` is `poison`; waits on `stall` at the event whose `n` is 20.
struct Totals {
    factor: u64,
    poison: Option<u64>,
    stall: Option<Arc<Notify>>,
}

impl Totals {
    fn times(factor: u64) -> Self {
        Self {
            factor,
            poison: None,
            stall: None,
        }
    }
}

#[async_trait]
impl Projection for Totals {
    type Store = PostgresProjectionStore;

    fn name(&self) -> &str {
        "totals"
    }

    async fn apply(
        &self,
        event: &StoredEvent,
        tx: &mut PostgresProjectionTx,
    ) -> Result<(), ProjectionError> {
        let n = event.payload["n"].as_u64().unwrap_or_default();
        if self.poison == Some(n) {
            return Err(ProjectionError::apply(format!("cannot handle n = {n}")));
        }
        if let Some(stall) = &self.stall
            && n == 20
        {
            stall.notified().await;
        }
        let key = format!("total:{}", event.stream_id);
        let total: u64 = tx.get_json(&key).await?.unwrap_or(0);
        tx.save_json(&key, &(total + n * self.factor)).await?;
        tx.save_json(&format!("seen:{}", event.event_id), &n).await
    }

    async fn reset(&self, tx: &mut PostgresProjectionTx) -> Result<(), ProjectionError> {
        use composable_rust_core::projection::ProjectionTx;
        tx.delete_prefix("total:").await?;
        tx.delete_prefix("seen:").await.map(|_| ())
    }
}

struct Fixture {
    pool: PgPool,
    events: PostgresEventStore,
    // Dropped last: the pools above close first.
    _db: TestDatabase,
}

async fn fixture() -> Fixture {
    let db = TestDatabase::new().await;
    let pool = PgPoolOptions::new()
        .max_connections(12)
        .connect_with(db.connect_options())
        .await
        .expect("connect to the test database");
    let events = PostgresEventStore::new(pool.clone());
    events.migrate().await.expect("event store migrations");
    Fixture {
        pool,
        events,
        _db: db,
    }
}

/// Appends one event with `n` to each of streams `s-0`..`s-2`, for `n` in
/// `ns`; returns the last position.
async fn append(events: &PostgresEventStore, ns: std::ops::Range<u64>) -> Position {
    let mut last = Position::START;
    for n in ns {
        let stream = StreamId::new(format!("s-{}", n % 3)).unwrap();
        let outcome = events
            .append(
                &stream,
                ExpectedVersion::Any,
                vec![NewEvent::new("Added", json!({ "n": n }))],
            )
            .await
            .expect("append");
        last = outcome.last_position;
    }
    last
}

fn small_batches() -> LoadOptions {
    LoadOptions {
        batch_size: 7,
        prefetch: 2,
    }
}

fn blue_green(fixture: &Fixture, clock: &TestClock) -> BlueGreen {
    BlueGreen::new(fixture.pool.clone(), "orders_read")
        .expect("valid name")
        .with_clock(Arc::new(clock.clone()))
        .with_grace_period(Duration::from_secs(600))
        .with_load_options(small_batches())
}

fn source(fixture: &Fixture) -> Arc<dyn EventSource> {
    Arc::new(fixture.events.clone())
}

/// Sum of n for stream s-k, over n in 0..count.
fn expected_total(stream: u64, count: u64) -> u64 {
    (0..count).filter(|n| n % 3 == stream).sum()
}

async fn schema_exists(pool: &PgPool, schema: &str) -> bool {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)")
        .bind(schema)
        .fetch_one(pool)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rebuild_switches_readers_to_the_new_version_while_the_live_one_keeps_serving() {
    let fixture = fixture().await;
    let clock = TestClock::new();
    let versions = blue_green(&fixture, &clock);
    versions.migrate().await.unwrap();
    assert!(matches!(
        versions.live_store().await,
        Err(BlueGreenError::NoLiveVersion { .. })
    ));
    append(&fixture.events, 0..100).await;

    // Version 1, and its manager following new events.
    let first = versions
        .rebuild(&Totals::times(1), source(&fixture))
        .await
        .unwrap();
    assert_eq!((first.from, first.to), (None, 1));
    assert_eq!(first.progress.events_applied, 100);
    let reader = versions.reader();
    assert_eq!(
        reader.get_json::<u64>("total:s-1").await.unwrap(),
        Some(expected_total(1, 100))
    );
    let live = ProjectionManager::builder(
        Totals::times(1),
        Arc::new(versions.live_store().await.unwrap()),
        fixture.events.clone(),
    )
    .with_config(ProjectionConfig {
        batch_size: 5,
        idle_poll_interval: Duration::from_millis(50),
        ..ProjectionConfig::default()
    })
    .build();
    let running = live.start();

    // The code changed (factor 10): rebuild while events keep arriving and
    // version 1 keeps applying them.
    let writer = {
        let events = fixture.events.clone();
        tokio::spawn(async move { append(&events, 100..160).await })
    };
    let second = versions
        .rebuild(&Totals::times(10), source(&fixture))
        .await
        .unwrap();
    let last = writer.await.unwrap();
    assert_eq!((second.from, second.to), (Some(1), 2));

    let seen_by_readers = reader.load_position("totals").await.unwrap().unwrap();
    assert!(
        seen_by_readers >= second.position,
        "readers see version 2's checkpoint"
    );

    // Readers see version 2 through the base schema's views: totals times
    // ten, for every event up to its checkpoint.
    let total: u64 = reader.get_json("total:s-2").await.unwrap().unwrap();
    let applied = reader.load_position("totals").await.unwrap().unwrap();
    assert_eq!(total % 10, 0, "version 2's model: {total}");
    assert!(total >= expected_total(2, 100) * 10);
    let states: Vec<_> = versions
        .versions()
        .await
        .unwrap()
        .iter()
        .map(|v| (v.number, v.state))
        .collect();
    assert_eq!(
        states,
        [(1, VersionState::Retired), (2, VersionState::Live)]
    );

    // Version 2 follows the rest with a manager of its own; version 1's stops.
    live.shutdown();
    running.await.unwrap().unwrap();
    let green = ProjectionManager::new(
        Totals::times(10),
        Arc::new(versions.live_store().await.unwrap()),
        fixture.events.clone(),
    );
    green.catch_up().await.unwrap();
    assert!(green.position() >= last && applied <= last);
    assert_eq!(
        reader.get_json::<u64>("total:s-2").await.unwrap(),
        Some(expected_total(2, 160) * 10),
        "every event exactly once: COPY for new keys, upserts for the rest"
    );

    // The old version stays for the grace period, by the clock.
    clock.advance(Duration::from_secs(599));
    assert!(versions.drop_retired().await.unwrap().is_empty());
    assert!(schema_exists(&fixture.pool, "orders_read_v1").await);
    clock.advance(Duration::from_secs(1));
    let dropped = versions.drop_retired().await.unwrap();
    assert_eq!(dropped.iter().map(|v| v.number).collect::<Vec<_>>(), [1]);
    assert!(!schema_exists(&fixture.pool, "orders_read_v1").await);
    assert_eq!(
        reader.get_json::<u64>("total:s-2").await.unwrap(),
        Some(expected_total(2, 160) * 10),
        "readers are unaffected by the drop"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_event_fails_the_rebuild_and_leaves_the_live_version_untouched() {
    let fixture = fixture().await;
    let clock = TestClock::new();
    let versions = blue_green(&fixture, &clock);
    versions.migrate().await.unwrap();
    append(&fixture.events, 0..50).await;
    versions
        .rebuild(&Totals::times(1), source(&fixture))
        .await
        .unwrap();
    let reader = versions.reader();
    let before = reader.get_json::<u64>("total:s-0").await.unwrap();

    let poisoned = Totals {
        poison: Some(31),
        ..Totals::times(10)
    };
    let error = versions
        .rebuild(&poisoned, source(&fixture))
        .await
        .unwrap_err();
    let poison_event = fixture
        .events
        .read_all(Position::START, 100)
        .await
        .unwrap()
        .into_iter()
        .find(|e| e.payload["n"] == 31)
        .unwrap();
    match &error {
        BlueGreenError::RebuildFailed {
            version, event_id, ..
        } => {
            assert_eq!(*version, 2);
            assert_eq!(*event_id, Some(poison_event.event_id));
        }
        other => panic!("expected RebuildFailed, got {other}"),
    }
    assert_eq!(error.code().as_str(), "CR-E0131");
    assert!(
        error.to_string().contains("live version still serves"),
        "{error}"
    );

    // Readers still see version 1, which is still the only version.
    assert_eq!(reader.get_json::<u64>("total:s-0").await.unwrap(), before);
    let states: Vec<_> = versions
        .versions()
        .await
        .unwrap()
        .iter()
        .map(|v| (v.number, v.state))
        .collect();
    assert_eq!(states, [(1, VersionState::Live)]);
    assert!(!schema_exists(&fixture.pool, "orders_read_v2").await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_rebuild_leaves_the_live_version_untouched_and_the_next_one_succeeds() {
    let fixture = fixture().await;
    let clock = TestClock::new();
    let versions = Arc::new(blue_green(&fixture, &clock));
    versions.migrate().await.unwrap();
    append(&fixture.events, 0..40).await;
    versions
        .rebuild(&Totals::times(1), source(&fixture))
        .await
        .unwrap();
    let reader = versions.reader();
    let before = reader.get_json::<u64>("total:s-0").await.unwrap();

    // A rebuild that stalls at n = 20 (two batches have committed by then).
    let stall = Arc::new(Notify::new());
    let mut progress = versions.progress();
    let task = {
        let (versions, source) = (Arc::clone(&versions), source(&fixture));
        let stalling = Totals {
            stall: Some(Arc::clone(&stall)),
            ..Totals::times(10)
        };
        tokio::spawn(async move { versions.rebuild(&stalling, source).await })
    };
    progress
        .wait_for(|p| !p.done && p.events_applied > 0)
        .await
        .expect("the load reports progress");
    assert!(progress.borrow().events_total >= 40);

    // Meanwhile a second rebuild is refused: the first holds the lock.
    let refused = versions
        .rebuild(&Totals::times(10), source(&fixture))
        .await
        .unwrap_err();
    assert_eq!(refused.code().as_str(), "CR-E0133", "{refused}");

    task.abort();
    assert!(task.await.unwrap_err().is_cancelled());
    assert_eq!(reader.get_json::<u64>("total:s-0").await.unwrap(), before);
    let states: Vec<_> = versions
        .versions()
        .await
        .unwrap()
        .iter()
        .map(|v| (v.number, v.state))
        .collect();
    assert_eq!(
        states,
        [(1, VersionState::Live), (2, VersionState::Building)],
        "the half-built version is left, unread"
    );

    // The next rebuild drops it and switches, once the server has seen the
    // killed task's connection close (which releases its lock).
    wait_until_unlocked(&fixture.pool).await;
    let switched = versions
        .rebuild(&Totals::times(10), source(&fixture))
        .await
        .unwrap();
    assert_eq!((switched.from, switched.to), (Some(1), 3));
    assert!(!schema_exists(&fixture.pool, "orders_read_v2").await);
    assert_eq!(
        reader.get_json::<u64>("total:s-0").await.unwrap(),
        Some(expected_total(0, 40) * 10)
    );
}

/// Waits (up to 10 s) until no session holds an advisory lock in the test
/// database.
async fn wait_until_unlocked(pool: &PgPool) {
    for _ in 0..1_000 {
        let held: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' \
             AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
        )
        .fetch_one(pool)
        .await
        .unwrap();
        if held == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the killed rebuild's advisory lock was never released");
}

#[tokio::test]
async fn names_that_leave_no_room_for_versions_are_refused() {
    let pool = PgPoolOptions::new()
        .connect_lazy("postgres://localhost/x")
        .unwrap();
    for name in ["Orders", "pg_orders", "", &"a".repeat(49), "a-b"] {
        let error = BlueGreen::new(pool.clone(), name).unwrap_err();
        assert_eq!(error.code().as_str(), "CR-E0130", "{name}: {error}");
    }
    assert!(BlueGreen::new(pool, &"a".repeat(48)).is_ok());
}

/// `rebuild` can run on a spawned task from inside other async functions
/// (a compile-time check).
#[allow(dead_code)]
fn rebuild_futures_are_send(versions: &'static BlueGreen, source: &'static Arc<dyn EventSource>) {
    fn is_send<T: Send>(_: T) {}
    async fn nested(versions: &BlueGreen, source: &Arc<dyn EventSource>) {
        let _ = versions
            .rebuild(&Totals::times(1), Arc::clone(source))
            .await;
        let _ = versions.drop_retired().await;
        let _ = versions.versions().await;
        let _ = versions.live_store().await;
    }
    is_send(nested(versions, source));
}

#[allow(dead_code)]
fn append_futures_are_send(events: &'static PostgresEventStore) {
    fn is_send<T: Send>(_: T) {}
    is_send(append(events, 0..1));
}
