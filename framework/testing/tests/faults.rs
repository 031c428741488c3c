//! The fault-injection suite: every error class, injected into real
//! in-memory backends with `composable_rust_testing::faults`, against the
//! three runners that act on error classes: the projection manager, the
//! event publisher and the saga runtime.
//!
//! Runners retry transient failures with backoff and report them,
//! dead-letter (or skip) what is permanently wrong with one event, and stop
//! on configuration failures. Backoff waits run on tokio's paused clock
//! (`start_paused`) or a `TestClock`, so no test sleeps for real.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use composable_rust_core::event::decode;
use composable_rust_core::event_bus::{
    EventBus, EventPublisher, InMemoryEventBus, PublisherConfig, SubscribeOptions, Subscription,
    Topic,
};
use composable_rust_core::projection::{
    ProjectionCheckpoint, ProjectionConfig, ProjectionHealth, ProjectionStoreExt, ProjectionTx,
    ProjectionTxExt, RetryPolicy,
};
use composable_rust_core::saga::{
    Handled, Reaction, Routed, Saga, SagaContext, SagaError, SagaId, SagaOutcome, SagaRuntime,
    SagaSteps,
};
use composable_rust_core::{
    BackendError, CodedError, ErrorClass, Event, EventStore, EventStoreError, ExpectedVersion,
    InMemoryEventStore, InMemoryProjectionStore, NewEvent, Position, Projection, ProjectionError,
    ProjectionManager, ProjectionStore, StoredEvent, StreamId, TestClock, Upcasters,
};
use composable_rust_testing::codes::FAULT_INJECTED;
use composable_rust_testing::faults::{
    BusOperation, EventStoreOperation, FaultyDispatcher, FaultyEventBus, FaultyEventStore,
    FaultyProjectionStore, InjectedFault, Operation,
};
use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;

type Events = FaultyEventStore<InMemoryEventStore>;
type Store = FaultyProjectionStore<InMemoryProjectionStore>;

const LONG: Duration = Duration::from_secs(600);

fn new_event(n: i64, poison: bool) -> NewEvent {
    NewEvent::new("Added", json!({ "n": n, "poison": poison }))
}

/// Appends events `0..count` (one append each, so each is its own commit),
/// `poison` ones marked as such; returns them as stored.
async fn append(events: &Events, count: i64, poison: &[i64]) -> Vec<StoredEvent> {
    let stream = StreamId::new("numbers").unwrap();
    for n in 0..count {
        events
            .inner()
            .append(
                &stream,
                ExpectedVersion::Any,
                vec![new_event(n, poison.contains(&n))],
            )
            .await
            .unwrap();
    }
    events
        .inner()
        .read_all(Position::START, 1_000)
        .await
        .unwrap()
}

fn assert_injected(error: &dyn CodedError, class: ErrorClass) {
    assert_eq!(error.code(), FAULT_INJECTED, "{error}");
    assert_eq!(error.class(), class, "{error}");
    assert!(
        error.to_string().contains("injected by the test"),
        "{error}"
    );
}

// ---- the toolkit itself -------------------------------------------------------

#[tokio::test]
async fn schedules_fail_the_calls_they_name_with_the_class_asked_for() {
    let store = Store::default();
    store.fail_next(Operation::Get, ErrorClass::Transient, 2);
    store.fail_next_after(Operation::Get, 1, ErrorClass::Permanent, 1);
    let mut classes = Vec::new();
    for _ in 0..5 {
        classes.push(store.get("k").await.err().map(|e| e.class()));
    }
    assert_eq!(
        classes,
        [
            Some(ErrorClass::Transient),
            Some(ErrorClass::Transient),
            None,
            Some(ErrorClass::Permanent),
            None
        ]
    );
    assert_eq!(store.calls(Operation::Get), 5);
    assert_eq!(store.injected(Operation::Get), 3);

    store.fail_while(Operation::Begin, ErrorClass::Configuration);
    for _ in 0..3 {
        let error = store.begin().await.unwrap_err();
        assert_injected(&error, ErrorClass::Configuration);
        assert!(error.to_string().contains("`begin`"), "{error}");
        let ProjectionError::Backend(backend) = &error else {
            panic!("{error:?}");
        };
        assert!(backend.is::<InjectedFault>());
    }
    store.heal();
    store.begin().await.unwrap();
}

#[tokio::test]
async fn an_injected_commit_failure_writes_nothing() {
    let store = Store::default();
    store.fail_next(Operation::Commit, ErrorClass::Transient, 1);
    let mut tx = store.begin().await.unwrap();
    tx.save("k", b"v").await.unwrap();
    store
        .save_position(&mut tx, "p", Position::new(1, 1))
        .await
        .unwrap();
    assert_injected(&store.commit(tx).await.unwrap_err(), ErrorClass::Transient);
    assert_eq!(store.inner().get("k").await.unwrap(), None);
    assert_eq!(store.inner().load_position("p").await.unwrap(), None);
}

#[tokio::test]
async fn a_corrupt_event_ends_a_read_before_it_and_fails_a_read_that_starts_with_it() {
    let events = Events::default();
    let stored = append(&events, 5, &[]).await;
    events.corrupt(stored[2].position);

    let page = events.read_all(Position::START, 10).await.unwrap();
    assert_eq!(page, stored[..2]);
    let error = events.read_all(stored[1].position, 10).await.unwrap_err();
    let EventStoreError::CorruptEvent {
        position, event_id, ..
    } = &error
    else {
        panic!("{error:?}");
    };
    assert_eq!(*position, stored[2].position);
    assert_eq!(*event_id, Some(stored[2].event_id));
    assert_eq!(error.code().as_str(), "CR-E0018");
    assert!(events.load_stream(&stored[0].stream_id, 0).await.is_err());

    events.repair(stored[2].position);
    assert_eq!(events.read_all(Position::START, 10).await.unwrap(), stored);
}

// ---- projection manager ---------------------------------------------------------

/// Counts how often each number was applied, under `item:<n>`; fails to
/// apply poison events while `poison` is set.
struct Items {
    poison: AtomicBool,
    applied: AtomicU32,
    poison_attempts: AtomicU32,
}

impl Items {
    fn new() -> Self {
        Self {
            poison: AtomicBool::new(true),
            applied: AtomicU32::new(0),
            poison_attempts: AtomicU32::new(0),
        }
    }
}

#[async_trait]
impl Projection for Items {
    type Store = Store;

    fn name(&self) -> &str {
        "items"
    }

    async fn apply(
        &self,
        event: &StoredEvent,
        tx: &mut <Self::Store as ProjectionStore>::Tx,
    ) -> Result<(), ProjectionError> {
        self.applied.fetch_add(1, Ordering::SeqCst);
        if event.payload["poison"] == json!(true) {
            self.poison_attempts.fetch_add(1, Ordering::SeqCst);
            if self.poison.load(Ordering::SeqCst) {
                return Err(ProjectionError::apply("cannot handle poison"));
            }
        }
        let key = format!("item:{}", event.payload["n"]);
        let count: u32 = tx.get_json(&key).await?.unwrap_or(0);
        tx.save_json(&key, &(count + 1)).await
    }

    async fn reset(
        &self,
        tx: &mut <Self::Store as ProjectionStore>::Tx,
    ) -> Result<(), ProjectionError> {
        tx.delete_prefix("item:").await.map(|_| ())
    }
}

const MAX_ATTEMPTS: u32 = 3;

fn config() -> ProjectionConfig {
    ProjectionConfig {
        batch_size: 4,
        retry: RetryPolicy {
            max_attempts: MAX_ATTEMPTS,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(1),
        },
        failure_backoff: Duration::from_secs(1),
        max_failure_backoff: Duration::from_secs(8),
        idle_poll_interval: Duration::from_secs(5),
        ..ProjectionConfig::default()
    }
}

struct World {
    events: Events,
    store: Arc<Store>,
    manager: ProjectionManager<Items>,
}

impl World {
    fn new() -> Self {
        let events = Events::default();
        let store = Arc::new(Store::default());
        let manager = ProjectionManager::builder(Items::new(), Arc::clone(&store), events.clone())
            .with_config(config())
            .build();
        Self {
            events,
            store,
            manager,
        }
    }

    /// How many times `n` was applied, per the committed read model.
    async fn count(&self, n: i64) -> Option<u32> {
        self.store
            .inner()
            .get_json(&format!("item:{n}"))
            .await
            .unwrap()
    }

    /// Asserts that every number of `0..count` but `missing` was applied
    /// exactly once, and `missing` not at all.
    async fn assert_applied_once(&self, count: i64, missing: &[i64]) {
        for n in 0..count {
            let expected = if missing.contains(&n) { None } else { Some(1) };
            assert_eq!(self.count(n).await, expected, "item {n}");
        }
    }

    async fn stop(&self, running: tokio::task::JoinHandle<Result<(), ProjectionError>>) {
        self.manager.shutdown();
        running.await.unwrap().unwrap();
    }
}

/// Polls `health` until it reports `attempts` transient failures in a row;
/// returns the attempt counts seen, each with when it was first seen.
async fn watch_retries(manager: &ProjectionManager<Items>, attempts: u32) -> Vec<(u32, Duration)> {
    let started = tokio::time::Instant::now();
    let mut seen: Vec<(u32, Duration)> = Vec::new();
    loop {
        tokio::time::sleep(Duration::from_millis(50)).await;
        if let ProjectionHealth::Retrying {
            attempts: now,
            code,
            ..
        } = manager.health()
        {
            assert_eq!(code, FAULT_INJECTED);
            if seen.last().map(|(a, _)| *a) != Some(now) {
                seen.push((now, started.elapsed()));
            }
            if now >= attempts {
                return seen;
            }
        }
        assert!(
            started.elapsed() < LONG,
            "health never reached {attempts} attempts: {seen:?}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn transient_commit_failures_are_retried_with_doubling_backoff_and_reported() {
    let world = World::new();
    let stored = append(&world.events, 10, &[]).await;
    let last = stored.last().unwrap().position;
    world
        .store
        .fail_while(Operation::Commit, ErrorClass::Transient);
    let running = world.manager.start();

    let seen = watch_retries(&world.manager, 5).await;
    let attempts: Vec<u32> = seen.iter().map(|(a, _)| *a).collect();
    assert_eq!(attempts, [1, 2, 3, 4, 5], "one more attempt each time");
    // Waits of 1 s, 2 s, 4 s, 8 s: attempt k comes 2^(k-1) - 1 s after the first.
    for (attempt, at) in &seen {
        let expected = Duration::from_secs((1 << (attempt - 1)) - 1);
        assert!(
            *at >= expected && *at < expected + Duration::from_secs(1),
            "attempt {attempt} at {at:?}, expected about {expected:?}"
        );
    }
    assert_eq!(
        world.manager.position(),
        Position::START,
        "nothing committed"
    );
    assert!(world.count(0).await.is_none());

    world.store.heal();
    world.manager.wait_for(last, LONG).await.unwrap();
    assert_eq!(world.manager.health(), ProjectionHealth::Running);
    world.assert_applied_once(10, &[]).await;
    assert!(world.manager.dead_letters().await.unwrap().is_empty());
    assert_eq!(world.manager.stats().dead_letters, 0);
    assert_eq!(world.manager.stats().apply_errors, 0);
    world.stop(running).await;
}

#[tokio::test(start_paused = true)]
async fn transient_failures_of_any_store_operation_lose_and_repeat_nothing() {
    for operation in [
        Operation::LoadPosition,
        Operation::Begin,
        Operation::TxGet,
        Operation::TxWrite,
        Operation::SavePosition,
        Operation::Commit,
    ] {
        let world = World::new();
        let stored = append(&world.events, 10, &[]).await;
        // The checkpoint is loaded at start and after each failure: fail
        // the first load; of the rest, let the first call through.
        let skip = u32::from(operation != Operation::LoadPosition);
        world
            .store
            .fail_next_after(operation, skip, ErrorClass::Transient, 3);
        let running = world.manager.start();
        world
            .manager
            .wait_for(stored.last().unwrap().position, LONG)
            .await
            .unwrap();
        assert_eq!(world.store.injected(operation), 3, "{operation}");
        world.assert_applied_once(10, &[]).await;
        assert!(
            world.manager.dead_letters().await.unwrap().is_empty(),
            "{operation}"
        );
        assert_eq!(
            world.manager.health(),
            ProjectionHealth::Running,
            "{operation}"
        );
        world.stop(running).await;
    }
}

#[tokio::test(start_paused = true)]
async fn transient_source_failures_are_retried_and_reported() {
    let world = World::new();
    let stored = append(&world.events, 10, &[]).await;
    world
        .events
        .fail_while(EventStoreOperation::ReadAll, ErrorClass::Transient);
    let running = world.manager.start();
    let seen = watch_retries(&world.manager, 3).await;
    assert_eq!(seen.iter().map(|(a, _)| *a).collect::<Vec<_>>(), [1, 2, 3]);

    world.events.heal();
    world
        .manager
        .wait_for(stored.last().unwrap().position, LONG)
        .await
        .unwrap();
    assert_eq!(world.manager.health(), ProjectionHealth::Running);
    world.assert_applied_once(10, &[]).await;
    assert!(world.manager.dead_letters().await.unwrap().is_empty());
    world.stop(running).await;
}

#[tokio::test(start_paused = true)]
async fn a_unit_of_work_the_store_refuses_is_dead_lettered_and_the_rest_applied() {
    let world = World::new();
    let stored = append(&world.events, 10, &[]).await;
    let last = stored.last().unwrap().position;
    world.store.refuse_key("item:5");
    let running = world.manager.start();
    world.manager.wait_for(last, LONG).await.unwrap();

    let letters = world.manager.dead_letters().await.unwrap();
    assert_eq!(letters.len(), 1, "{letters:?}");
    assert_eq!(letters[0].event, stored[5]);
    assert_eq!(letters[0].attempts, MAX_ATTEMPTS);
    assert!(
        letters[0].error.contains("CR-E0099"),
        "{}",
        letters[0].error
    );
    assert!(letters[0].error.contains("item:5"), "{}", letters[0].error);
    assert!(!letters[0].is_corrupt_event());
    world.assert_applied_once(10, &[5]).await;
    assert_eq!(
        world.manager.position(),
        last,
        "the checkpoint moved past it"
    );
    assert_eq!(
        world.store.inner().load_position("items").await.unwrap(),
        Some(last)
    );
    // The batch that held it, then each attempt of its own unit of work.
    assert_eq!(
        world.store.injected(Operation::Commit),
        1 + u64::from(MAX_ATTEMPTS)
    );
    let stats = world.manager.stats();
    assert_eq!(
        (stats.dead_letters, stats.apply_errors),
        (1, u64::from(MAX_ATTEMPTS))
    );
    assert_eq!(world.manager.health(), ProjectionHealth::Running);

    // The store accepts the key again: retrying applies it once.
    world.store.heal();
    world
        .manager
        .retry_dead_letter(stored[5].event_id)
        .await
        .unwrap();
    world.assert_applied_once(10, &[]).await;
    assert!(world.manager.dead_letters().await.unwrap().is_empty());
    world.stop(running).await;
}

#[tokio::test(start_paused = true)]
async fn a_refused_event_is_dead_lettered_and_its_retry_refused_until_healed() {
    let world = World::new();
    let stored = append(&world.events, 10, &[]).await;
    world.store.refuse_event(&stored[6]);
    let running = world.manager.start();
    world
        .manager
        .wait_for(stored.last().unwrap().position, LONG)
        .await
        .unwrap();

    let letters = world.manager.dead_letters().await.unwrap();
    assert_eq!(letters.len(), 1, "{letters:?}");
    assert_eq!(letters[0].event.event_id, stored[6].event_id);
    assert_eq!(letters[0].attempts, MAX_ATTEMPTS);
    world.assert_applied_once(10, &[6]).await;

    let error = world
        .manager
        .retry_dead_letter(stored[6].event_id)
        .await
        .unwrap_err();
    assert_injected(&error, ErrorClass::Permanent);
    assert_eq!(world.manager.dead_letters().await.unwrap().len(), 1);

    world.store.heal();
    world
        .manager
        .retry_dead_letter(stored[6].event_id)
        .await
        .unwrap();
    world.assert_applied_once(10, &[]).await;
    world.stop(running).await;
}

#[tokio::test(start_paused = true)]
async fn a_permanent_apply_error_is_dead_lettered_after_max_attempts_and_the_rest_applied() {
    let world = World::new();
    let stored = append(&world.events, 10, &[3]).await;
    let last = stored.last().unwrap().position;
    let running = world.manager.start();
    world.manager.wait_for(last, LONG).await.unwrap();

    let letters = world.manager.dead_letters().await.unwrap();
    assert_eq!(letters.len(), 1, "{letters:?}");
    assert_eq!(letters[0].event, stored[3]);
    assert_eq!(letters[0].attempts, MAX_ATTEMPTS);
    assert!(
        letters[0].error.contains("CR-E0011"),
        "{}",
        letters[0].error
    );
    // Once in the batch, then MAX_ATTEMPTS times on its own.
    assert_eq!(
        world
            .manager
            .projection()
            .poison_attempts
            .load(Ordering::SeqCst),
        1 + MAX_ATTEMPTS
    );
    world.assert_applied_once(10, &[3]).await;
    assert_eq!(world.manager.position(), last);
    assert_eq!(world.manager.health(), ProjectionHealth::Running);

    // Fixed: the retry applies it.
    world
        .manager
        .projection()
        .poison
        .store(false, Ordering::SeqCst);
    world
        .manager
        .retry_dead_letter(stored[3].event_id)
        .await
        .unwrap();
    world.assert_applied_once(10, &[]).await;
    assert!(world.manager.dead_letters().await.unwrap().is_empty());
    world.stop(running).await;
}

#[tokio::test(start_paused = true)]
async fn a_transient_failure_recording_a_dead_letter_records_it_once_later() {
    let world = World::new();
    let stored = append(&world.events, 10, &[3]).await;
    world
        .store
        .fail_next(Operation::RecordDeadLetter, ErrorClass::Transient, 2);
    let running = world.manager.start();
    world
        .manager
        .wait_for(stored.last().unwrap().position, LONG)
        .await
        .unwrap();
    assert_eq!(world.store.injected(Operation::RecordDeadLetter), 2);
    let letters = world.manager.dead_letters().await.unwrap();
    assert_eq!(letters.len(), 1, "{letters:?}");
    assert_eq!(letters[0].event, stored[3]);
    world.assert_applied_once(10, &[3]).await;
    assert_eq!(world.manager.health(), ProjectionHealth::Running);
    world.stop(running).await;
}

#[tokio::test(start_paused = true)]
async fn a_corrupt_stored_event_becomes_a_dead_letter_and_is_applied_once_repaired() {
    let world = World::new();
    let stored = append(&world.events, 10, &[]).await;
    let last = stored.last().unwrap().position;
    // In the middle of the first batch of 4: the batch stops before it.
    world.events.corrupt(stored[2].position);
    let running = world.manager.start();
    world.manager.wait_for(last, LONG).await.unwrap();

    let letters = world.manager.dead_letters().await.unwrap();
    assert_eq!(letters.len(), 1, "{letters:?}");
    let letter = &letters[0];
    assert!(letter.is_corrupt_event(), "{letter:?}");
    assert_eq!(letter.event.position, stored[2].position);
    assert_eq!(letter.event.event_id, stored[2].event_id);
    assert!(letter.error.contains("CR-E0018"), "{}", letter.error);
    world.assert_applied_once(10, &[2]).await;
    assert_eq!(world.manager.position(), last);
    assert_eq!(world.manager.health(), ProjectionHealth::Running);

    // Still corrupt: retrying fails and keeps the letter.
    let error = world
        .manager
        .retry_dead_letter(letter.event.event_id)
        .await
        .unwrap_err();
    assert_eq!(error.code().as_str(), "CR-E0018", "{error}");
    assert_eq!(world.manager.dead_letters().await.unwrap().len(), 1);

    // The row is fixed: the retry reads and applies the real event.
    world.events.repair(stored[2].position);
    world
        .manager
        .retry_dead_letter(letter.event.event_id)
        .await
        .unwrap();
    world.assert_applied_once(10, &[]).await;
    assert!(world.manager.dead_letters().await.unwrap().is_empty());
    world.stop(running).await;
}

/// Runs the manager until it stops on its own; its error.
async fn run_until_stopped(world: &World) -> ProjectionError {
    tokio::time::timeout(LONG, world.manager.run())
        .await
        .expect("run() kept retrying a failure it should stop on")
        .unwrap_err()
}

fn assert_stopped(world: &World, error: &ProjectionError) {
    match world.manager.health() {
        ProjectionHealth::Stopped {
            code,
            error: message,
        } => {
            assert_eq!(code, FAULT_INJECTED);
            assert_eq!(message, error.to_string());
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn a_configuration_failure_stops_the_manager_without_retrying() {
    for operation in [
        Operation::LoadPosition,
        Operation::Begin,
        Operation::SavePosition,
        Operation::Commit,
    ] {
        let world = World::new();
        append(&world.events, 10, &[]).await;
        world.store.fail_while(operation, ErrorClass::Configuration);
        let error = run_until_stopped(&world).await;
        assert_injected(&error, ErrorClass::Configuration);
        assert!(error.to_string().contains(operation.as_str()), "{error}");
        assert_eq!(
            world.store.injected(operation),
            1,
            "{operation}: not retried"
        );
        assert_stopped(&world, &error);
        assert!(world.count(0).await.is_none());
        assert!(
            world
                .store
                .inner()
                .dead_letters("items")
                .await
                .unwrap()
                .is_empty()
        );
    }
}

#[tokio::test(start_paused = true)]
async fn a_configuration_failure_of_the_source_stops_the_manager() {
    let world = World::new();
    append(&world.events, 10, &[]).await;
    world
        .events
        .fail_while(EventStoreOperation::ReadAll, ErrorClass::Configuration);
    let error = run_until_stopped(&world).await;
    assert_injected(&error, ErrorClass::Configuration);
    // Once for the batch, once for the lag metric: not retried.
    assert!(world.events.injected(EventStoreOperation::ReadAll) <= 2);
    assert_stopped(&world, &error);
}

#[tokio::test(start_paused = true)]
async fn a_permanent_failure_no_event_explains_stops_the_manager_and_blames_no_event() {
    for operation in [
        Operation::LoadPosition,
        Operation::Begin,
        Operation::SavePosition,
    ] {
        let world = World::new();
        append(&world.events, 10, &[]).await;
        world.store.fail_while(operation, ErrorClass::Permanent);
        let error = run_until_stopped(&world).await;
        assert_injected(&error, ErrorClass::Permanent);
        assert_stopped(&world, &error);
        assert!(
            world
                .store
                .inner()
                .dead_letters("items")
                .await
                .unwrap()
                .is_empty(),
            "{operation}"
        );
        assert_eq!(world.manager.stats().apply_errors, 0, "{operation}");
    }

    // A permanent begin failure that outlasts an event's retries is still
    // not that event's fault.
    let world = World::new();
    append(&world.events, 10, &[]).await;
    world
        .store
        .fail_next(Operation::Begin, ErrorClass::Permanent, 1 + MAX_ATTEMPTS);
    let error = run_until_stopped(&world).await;
    assert_injected(&error, ErrorClass::Permanent);
    assert!(
        world
            .store
            .inner()
            .dead_letters("items")
            .await
            .unwrap()
            .is_empty()
    );
}

// ---- event publisher ------------------------------------------------------------

fn topic() -> Topic {
    Topic::new("numbers").unwrap()
}

type Checkpoints = FaultyProjectionStore<InMemoryProjectionStore>;

fn publisher(
    events: &Events,
    bus: &FaultyEventBus<InMemoryEventBus>,
    checkpoints: &Arc<Checkpoints>,
) -> EventPublisher<Checkpoints> {
    let topic = topic();
    EventPublisher::builder(
        "bus-publisher",
        events.clone(),
        bus.clone(),
        Arc::clone(checkpoints),
        move |_: &StoredEvent| Some(topic.clone()),
    )
    .with_config(PublisherConfig {
        batch_size: 4,
        failure_backoff: Duration::from_secs(1),
        idle_poll_interval: Duration::from_secs(5),
        ..PublisherConfig::default()
    })
    .build()
}

struct Wire {
    events: Events,
    bus: FaultyEventBus<InMemoryEventBus>,
    checkpoints: Arc<Checkpoints>,
    publisher: EventPublisher<Checkpoints>,
    subscriber: Box<dyn Subscription>,
}

impl Wire {
    async fn new() -> Self {
        let events = Events::default();
        let bus = FaultyEventBus::new(InMemoryEventBus::new());
        let checkpoints = Arc::new(Checkpoints::default());
        let publisher = publisher(&events, &bus, &checkpoints);
        let subscriber = bus
            .inner()
            .subscribe(SubscribeOptions::new(topic(), "readers", "reader-1").unwrap())
            .await
            .unwrap();
        Self {
            events,
            bus,
            checkpoints,
            publisher,
            subscriber,
        }
    }

    /// The event ids the subscriber receives, in order, duplicates included.
    async fn received(&mut self) -> Vec<Uuid> {
        let mut ids = Vec::new();
        loop {
            let messages = self.subscriber.receive(100, Duration::ZERO).await.unwrap();
            if messages.is_empty() {
                return ids;
            }
            self.subscriber.ack_many(&messages).await.unwrap();
            ids.extend(messages.iter().map(|m| m.event.event_id));
        }
    }
}

fn first_copies(ids: &[Uuid]) -> Vec<Uuid> {
    let mut seen = HashSet::new();
    ids.iter().copied().filter(|id| seen.insert(*id)).collect()
}

fn ids(events: &[StoredEvent]) -> Vec<Uuid> {
    events.iter().map(|e| e.event_id).collect()
}

#[tokio::test(start_paused = true)]
async fn a_transient_bus_failure_is_retried_and_nothing_is_lost_or_repeated() {
    let mut wire = Wire::new().await;
    let stored = append(&wire.events, 10, &[]).await;
    wire.bus
        .fail_next_after(BusOperation::Publish, 1, ErrorClass::Transient, 3);
    let running = wire.publisher.start();
    wire.publisher
        .wait_for(stored.last().unwrap().position, LONG)
        .await
        .unwrap();
    assert_eq!(wire.bus.injected(BusOperation::Publish), 3);
    // A failed publish publishes nothing, so each event arrives once.
    assert_eq!(wire.received().await, ids(&stored));
    assert!(wire.publisher.dead_letters().await.unwrap().is_empty());
    wire.publisher.shutdown();
    running.await.unwrap().unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_transient_checkpoint_failure_republishes_the_page_and_skips_nothing() {
    let mut wire = Wire::new().await;
    let stored = append(&wire.events, 10, &[]).await;
    wire.checkpoints
        .fail_next(Operation::LoadPosition, ErrorClass::Transient, 1);
    wire.checkpoints
        .fail_next(Operation::Commit, ErrorClass::Transient, 2);
    let running = wire.publisher.start();
    wire.publisher
        .wait_for(stored.last().unwrap().position, LONG)
        .await
        .unwrap();
    let received = wire.received().await;
    // The first page (4 events) was published, then its checkpoint failed,
    // twice: at least once means those 4 arrive three times.
    assert_eq!(first_copies(&received), ids(&stored));
    assert_eq!(received.len(), stored.len() + 2 * 4);
    assert_eq!(
        wire.checkpoints
            .inner()
            .load_position("bus-publisher")
            .await
            .unwrap(),
        Some(stored.last().unwrap().position)
    );
    wire.publisher.shutdown();
    running.await.unwrap().unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_corrupt_event_is_set_aside_under_the_publishers_name_and_later_ones_published() {
    let mut wire = Wire::new().await;
    let stored = append(&wire.events, 10, &[]).await;
    wire.events.corrupt(stored[5].position);
    let running = wire.publisher.start();
    wire.publisher
        .wait_for(stored.last().unwrap().position, LONG)
        .await
        .unwrap();

    let mut expected = ids(&stored);
    expected.remove(5);
    assert_eq!(wire.received().await, expected);
    let letters = wire.publisher.dead_letters().await.unwrap();
    assert_eq!(letters.len(), 1, "{letters:?}");
    assert!(letters[0].is_corrupt_event());
    assert_eq!(letters[0].projection, "bus-publisher");
    assert_eq!(letters[0].event.position, stored[5].position);
    assert_eq!(letters[0].event.event_id, stored[5].event_id);
    assert_eq!(
        wire.checkpoints
            .inner()
            .dead_letters("bus-publisher")
            .await
            .unwrap(),
        letters
    );
    wire.publisher.shutdown();
    running.await.unwrap().unwrap();
}

#[tokio::test(start_paused = true)]
async fn failures_retrying_cannot_fix_stop_the_publisher() {
    enum Fault {
        Bus(ErrorClass),
        Checkpoint(Operation),
        Source,
    }
    for fault in [
        Fault::Bus(ErrorClass::Configuration),
        Fault::Bus(ErrorClass::Permanent),
        Fault::Checkpoint(Operation::LoadPosition),
        Fault::Checkpoint(Operation::Commit),
        Fault::Source,
    ] {
        let mut wire = Wire::new().await;
        let stored = append(&wire.events, 10, &[]).await;
        let expected_class = match &fault {
            Fault::Bus(class) => {
                wire.bus.fail_while(BusOperation::Publish, *class);
                *class
            }
            Fault::Checkpoint(operation) => {
                wire.checkpoints
                    .fail_while(*operation, ErrorClass::Configuration);
                ErrorClass::Configuration
            }
            Fault::Source => {
                wire.events
                    .fail_while(EventStoreOperation::ReadAll, ErrorClass::Configuration);
                ErrorClass::Configuration
            }
        };
        let error = tokio::time::timeout(LONG, wire.publisher.run())
            .await
            .expect("run() kept retrying a failure it should stop on")
            .unwrap_err();
        assert_injected(&error, expected_class);
        assert_eq!(wire.publisher.position(), Position::START);
        let injected = match &fault {
            Fault::Bus(_) => wire.bus.injected(BusOperation::Publish),
            Fault::Checkpoint(operation) => wire.checkpoints.injected(*operation),
            Fault::Source => wire.events.injected(EventStoreOperation::ReadAll),
        };
        assert_eq!(injected, 1, "{error}: not retried");
        let received = wire.received().await;
        if matches!(fault, Fault::Checkpoint(Operation::Commit)) {
            // Published, not checkpointed: published again on restart.
            assert_eq!(received, ids(&stored[..4]));
        } else {
            assert!(received.is_empty(), "{received:?}");
        }
    }
}

// ---- saga runtime ---------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Shop {
    Ordered { order: String, amount: u64 },
    Reserved { order: String },
}
impl Event for Shop {}

#[derive(Debug, Clone, PartialEq)]
enum Input {
    Ordered { amount: u64 },
    Reserved,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Recorded {
    Started { amount: u64 },
    Reserved,
    TimedOut,
}
impl Event for Recorded {}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Command {
    Reserve,
    Release,
    Charge { amount: u64 },
}

#[derive(Debug, Clone, Default, PartialEq)]
struct State {
    amount: u64,
    steps: SagaSteps<Command>,
}

const REPLY: Duration = Duration::from_secs(30);
const RETRY_AFTER: Duration = Duration::from_secs(5);

/// Reserve, then charge; no reply within 30 s releases the reservation.
struct Checkout;

impl Saga for Checkout {
    const KIND: &'static str = "checkout";
    type State = State;
    type Input = Input;
    type Event = Recorded;
    type Command = Command;

    fn route(&self, event: &StoredEvent) -> Result<Option<Routed<Input>>, SagaError> {
        if !event.stream_id.as_str().starts_with("shop-") {
            return Ok(None);
        }
        let Some(shop) = decode::<Shop>(event, &Upcasters::new())? else {
            return Ok(None);
        };
        let (order, input) = match shop {
            Shop::Ordered { order, amount } => (order, Input::Ordered { amount }),
            Shop::Reserved { order } => (order, Input::Reserved),
        };
        Ok(Some(Routed::new(SagaId::new(order)?, input)))
    }

    fn react(&self, state: &State, input: Input, _: &SagaContext) -> Reaction<Self> {
        match input {
            Input::Ordered { amount } if !state.steps.contains("inventory") => Reaction::new()
                .record(Recorded::Started { amount })
                .send(Command::Reserve)
                .start_timeout("reply", REPLY),
            Input::Reserved if state.steps.in_flight() == ["inventory"] => Reaction::new()
                .record(Recorded::Reserved)
                .send(Command::Charge {
                    amount: state.amount,
                })
                .start_timeout("reply", REPLY),
            _ => Reaction::new(),
        }
    }

    fn on_timeout(&self, state: &State, _: &str, _: &SagaContext) -> Reaction<Self> {
        Reaction::new()
            .record(Recorded::TimedOut)
            .send_all(state.steps.compensations())
            .compensated()
    }

    fn apply(state: &mut State, event: &Recorded) {
        match event {
            Recorded::Started { amount } => {
                state.amount = *amount;
                state.steps.start("inventory", Some(Command::Release));
            }
            Recorded::Reserved => {
                state.steps.complete("inventory");
                state.steps.start("payment", None);
            }
            Recorded::TimedOut => {
                for step in ["inventory", "payment"] {
                    if state.steps.in_flight().contains(&step) {
                        state.steps.fail(step);
                    }
                }
            }
        }
    }
}

struct Sagas {
    clock: TestClock,
    events: Events,
    dispatcher: Arc<FaultyDispatcher<Command>>,
    runtime: SagaRuntime<Checkout>,
}

impl Sagas {
    fn new() -> Self {
        let clock = TestClock::new();
        let events =
            FaultyEventStore::new(InMemoryEventStore::new().with_clock(Arc::new(clock.clone())));
        let dispatcher = Arc::new(FaultyDispatcher::new());
        let runtime = SagaRuntime::builder(Checkout, events.clone(), Arc::clone(&dispatcher))
            .with_clock(Arc::new(clock.clone()))
            .with_retry_after(RETRY_AFTER)
            .build();
        Self {
            clock,
            events,
            dispatcher,
            runtime,
        }
    }

    /// Records a shop event (without faults) and returns it as stored.
    async fn record(&self, event: Shop) -> StoredEvent {
        let order = match &event {
            Shop::Ordered { order, .. } | Shop::Reserved { order } => order.clone(),
        };
        let stream = StreamId::new(format!("shop-{order}")).unwrap();
        self.events
            .inner()
            .append(
                &stream,
                ExpectedVersion::Any,
                vec![NewEvent::from_event(&event).unwrap()],
            )
            .await
            .unwrap();
        self.events
            .inner()
            .load_stream(&stream, 0)
            .await
            .unwrap()
            .pop()
            .unwrap()
    }

    async fn saga_stream(&self, order: &str) -> Vec<String> {
        let stream = StreamId::new(format!("saga-checkout-{order}")).unwrap();
        self.events
            .inner()
            .load_stream(&stream, 0)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.event_type)
            .collect()
    }
}

fn ordered(order: &str) -> Shop {
    Shop::Ordered {
        order: order.into(),
        amount: 40,
    }
}

fn reserved(order: &str) -> Shop {
    Shop::Reserved {
        order: order.into(),
    }
}

fn saga(order: &str) -> SagaId {
    SagaId::new(order).unwrap()
}

fn assert_store_failure(error: &SagaError, class: ErrorClass) {
    assert!(matches!(error, SagaError::Store(_)), "{error:?}");
    assert_injected(error, class);
}

#[tokio::test]
async fn a_transient_store_failure_fails_handle_and_redelivery_sends_the_command_once() {
    let sagas = Sagas::new();
    let order = sagas.record(ordered("o1")).await;

    // The first append of a new saga (its catalog entry) fails.
    sagas
        .events
        .fail_next(EventStoreOperation::Append, ErrorClass::Transient, 1);
    let error = sagas.runtime.handle(&order).await.unwrap_err();
    assert_store_failure(&error, ErrorClass::Transient);
    assert!(sagas.dispatcher.commands().is_empty());
    assert_eq!(
        sagas.runtime.handle(&order).await.unwrap(),
        Handled::Stepped {
            saga_id: saga("o1"),
            outcome: None
        }
    );
    assert_eq!(sagas.dispatcher.commands(), [Command::Reserve]);

    // The append of the next step fails: nothing recorded, nothing sent.
    let reply = sagas.record(reserved("o1")).await;
    sagas
        .events
        .fail_next(EventStoreOperation::Append, ErrorClass::Transient, 1);
    let error = sagas.runtime.handle(&reply).await.unwrap_err();
    assert_store_failure(&error, ErrorClass::Transient);
    assert_eq!(sagas.dispatcher.commands(), [Command::Reserve]);
    assert_eq!(
        sagas.saga_stream("o1").await,
        ["Started", "$saga.step", "$saga.dispatched"]
    );

    // Redelivered: recorded and sent once; redelivered again: a duplicate.
    assert_eq!(
        sagas.runtime.handle(&reply).await.unwrap(),
        Handled::Stepped {
            saga_id: saga("o1"),
            outcome: None
        }
    );
    assert_eq!(
        sagas.runtime.handle(&reply).await.unwrap(),
        Handled::Duplicate(saga("o1"))
    );
    assert_eq!(
        sagas.dispatcher.commands(),
        [Command::Reserve, Command::Charge { amount: 40 }]
    );
    assert_eq!(
        sagas.saga_stream("o1").await,
        [
            "Started",
            "$saga.step",
            "$saga.dispatched",
            "Reserved",
            "$saga.step",
            "$saga.dispatched"
        ]
    );
}

#[tokio::test]
async fn a_failure_to_load_a_saga_keeps_its_class() {
    for class in [
        ErrorClass::Transient,
        ErrorClass::Permanent,
        ErrorClass::Configuration,
    ] {
        let sagas = Sagas::new();
        let order = sagas.record(ordered("o1")).await;
        sagas
            .events
            .fail_next(EventStoreOperation::LoadStream, class, 1);
        let error = sagas.runtime.handle(&order).await.unwrap_err();
        assert_store_failure(&error, class);
        assert!(sagas.dispatcher.commands().is_empty());
        sagas.runtime.handle(&order).await.unwrap();
        assert_eq!(sagas.dispatcher.commands(), [Command::Reserve]);
    }
}

#[tokio::test]
async fn a_failure_to_record_a_delivery_resends_the_command_with_the_same_id() {
    let sagas = Sagas::new();
    sagas
        .runtime
        .handle(&sagas.record(ordered("o1")).await)
        .await
        .unwrap();
    let reply = sagas.record(reserved("o1")).await;
    // The step is appended, the command delivered, and recording the
    // delivery fails.
    sagas
        .events
        .fail_next_after(EventStoreOperation::Append, 1, ErrorClass::Transient, 1);
    let error = sagas.runtime.handle(&reply).await.unwrap_err();
    assert_store_failure(&error, ErrorClass::Transient);

    assert_eq!(
        sagas.runtime.handle(&reply).await.unwrap(),
        Handled::Duplicate(saga("o1"))
    );
    let charges: Vec<_> = sagas
        .dispatcher
        .delivered()
        .into_iter()
        .filter(|c| matches!(c.command, Command::Charge { .. }))
        .collect();
    assert_eq!(charges.len(), 2, "at least once: sent again");
    assert_eq!(
        charges[0].id, charges[1].id,
        "with the same id, for the receiver to drop"
    );
    assert_eq!(
        sagas.runtime.handle(&reply).await.unwrap(),
        Handled::Duplicate(saga("o1"))
    );
    assert_eq!(
        sagas.dispatcher.delivered().len(),
        3,
        "recorded now: not sent again"
    );
}

#[tokio::test]
async fn a_failed_dispatch_reports_its_class_and_the_step_stays_recorded() {
    for class in [ErrorClass::Transient, ErrorClass::Permanent] {
        let sagas = Sagas::new();
        sagas.dispatcher.fail_next(class, 1);
        let error = sagas
            .runtime
            .handle(&sagas.record(ordered("o1")).await)
            .await
            .unwrap_err();
        let SagaError::Dispatch { source, .. } = &error else {
            panic!("{error:?}");
        };
        assert_eq!(error.code().as_str(), "CR-E0031");
        assert_eq!(error.class(), class);
        assert_eq!(source.class(), class);
        assert!(error.to_string().contains("CR-E0099"), "{error}");

        assert!(sagas.dispatcher.commands().is_empty());
        assert_eq!(sagas.saga_stream("o1").await, ["Started", "$saga.step"]);
        let instance = sagas.runtime.instance(&saga("o1")).await.unwrap();
        assert_eq!(instance.pending().len(), 1, "the command stays pending");
        assert_eq!(instance.pending()[0].command, Command::Reserve);

        assert_eq!(sagas.runtime.retry_pending().await.unwrap(), 1);
        assert_eq!(sagas.dispatcher.commands(), [Command::Reserve]);
        assert_eq!(
            sagas.saga_stream("o1").await,
            ["Started", "$saga.step", "$saga.dispatched"]
        );
    }
}

#[tokio::test]
async fn catch_up_skips_a_corrupt_event_and_handles_the_ones_after_it() {
    let sagas = Sagas::new();
    sagas.record(ordered("o1")).await;
    let corrupt = sagas.record(ordered("o2")).await;
    let last = sagas.record(ordered("o3")).await;
    sagas.events.corrupt(corrupt.position);

    let reached = sagas
        .runtime
        .catch_up(&sagas.events, Position::START)
        .await
        .unwrap();
    assert!(reached >= last.position);
    let sent_to: Vec<String> = sagas
        .dispatcher
        .delivered()
        .iter()
        .map(|c| c.saga_id.to_string())
        .collect();
    assert_eq!(sent_to, ["o1", "o3"]);
    assert!(sagas.saga_stream("o2").await.is_empty());

    // A transient read failure is returned, with its class.
    sagas
        .events
        .fail_next(EventStoreOperation::ReadAll, ErrorClass::Transient, 1);
    let error = sagas
        .runtime
        .catch_up(&sagas.events, Position::START)
        .await
        .unwrap_err();
    assert_store_failure(&error, ErrorClass::Transient);
}

#[tokio::test]
async fn a_timeout_whose_step_fails_transiently_is_tried_again() {
    let sagas = Sagas::new();
    for event in [ordered("o1"), reserved("o1")] {
        sagas
            .runtime
            .handle(&sagas.record(event).await)
            .await
            .unwrap();
    }
    let sent = [Command::Reserve, Command::Charge { amount: 40 }];
    sagas
        .events
        .fail_next(EventStoreOperation::Append, ErrorClass::Transient, 1);
    sagas.clock.advance(REPLY);
    sagas.runtime.idle().await;
    assert_eq!(sagas.events.injected(EventStoreOperation::Append), 1);
    assert_eq!(sagas.dispatcher.commands(), sent, "not recorded yet");
    assert_eq!(sagas.runtime.armed_timeouts(), 1, "armed again");

    sagas.clock.advance(RETRY_AFTER);
    sagas.runtime.idle().await;
    assert_eq!(
        sagas.dispatcher.commands(),
        [&sent[..], &[Command::Release]].concat()
    );
    let instance = sagas.runtime.instance(&saga("o1")).await.unwrap();
    assert_eq!(instance.outcome(), Some(SagaOutcome::Compensated));
    assert_eq!(sagas.runtime.armed_timeouts(), 0);
}

#[tokio::test]
async fn a_timeout_whose_step_fails_permanently_waits_for_resume() {
    let sagas = Sagas::new();
    for event in [ordered("o1"), reserved("o1")] {
        sagas
            .runtime
            .handle(&sagas.record(event).await)
            .await
            .unwrap();
    }
    let sent = [Command::Reserve, Command::Charge { amount: 40 }];
    sagas
        .events
        .fail_next(EventStoreOperation::Append, ErrorClass::Permanent, 1);
    sagas.clock.advance(REPLY);
    sagas.runtime.idle().await;
    assert_eq!(sagas.runtime.armed_timeouts(), 0, "not armed again");
    sagas.clock.advance(RETRY_AFTER * 10);
    sagas.runtime.idle().await;
    assert_eq!(sagas.dispatcher.commands(), sent);
    let instance = sagas.runtime.instance(&saga("o1")).await.unwrap();
    assert_eq!(instance.outcome(), None);

    // Once the cause is fixed, resume arms it again; it is overdue.
    let report = sagas.runtime.resume().await.unwrap();
    assert_eq!(report.timeouts, 1);
    sagas.runtime.idle().await;
    assert_eq!(
        sagas.dispatcher.commands(),
        [&sent[..], &[Command::Release]].concat()
    );
}

#[test]
fn injected_faults_are_backend_errors_with_the_test_code() {
    let error: BackendError = InjectedFault::new("event store `append`", ErrorClass::Permanent)
        .with_detail("a test")
        .into_backend();
    assert_eq!(error.code(), FAULT_INJECTED);
    assert_eq!(error.class(), ErrorClass::Permanent);
    let message = error.to_string();
    assert!(message.starts_with("[CR-E0099] fault injected by the test: event store `append` failed with a permanent error (a test)"), "{message}");
    assert!(FAULT_INJECTED.is_well_formed());
    assert_eq!(composable_rust_testing::codes::ALL, [FAULT_INJECTED]);
}
