//! `ShutdownGroup`: runners stop in registration order within one
//! deadline, and what did not finish is reported (paused tokio time, so
//! the deadlines pass instantly and exactly).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use composable_rust_core::error::CodedError;
use composable_rust_core::event_bus::{EventBus, InMemoryEventBus, Topic};
use composable_rust_core::projection::{ProjectionStoreExt, ProjectionTx, ProjectionTxExt};
use composable_rust_core::shutdown::{
    GracefulShutdown, RunnerOutcome, ShutdownError, ShutdownGroup,
};
use composable_rust_core::{
    Effect, Effects, EventPublisher, EventStore, ExpectedVersion, InMemoryEventStore,
    InMemoryProjectionStore, NewEvent, Position, Projection, ProjectionError, ProjectionManager,
    ProjectionStore, Reducer, Store, StoredEvent, StreamId,
};

/// Starts an effect that takes `secs` seconds.
#[derive(Debug, Clone)]
struct Work(u64);

struct Worker;

impl Reducer for Worker {
    type State = u64;
    type Action = Work;
    type Environment = ();

    fn reduce(&self, done: &mut u64, Work(secs): Work, _: &()) -> Effects<Work> {
        if secs == 0 {
            *done += 1;
            return Effects::new();
        }
        vec![Effect::future(async move {
            tokio::time::sleep(Duration::from_secs(secs)).await;
            Some(Work(0))
        })]
    }
}

#[tokio::test(start_paused = true)]
async fn a_store_busy_at_the_deadline_is_reported_and_the_runners_after_it_still_stop() {
    let store = Store::new(0, Worker, ());
    let _quick = store.send(Work(1));
    let _slow = store.send(Work(60));

    let mut group = ShutdownGroup::new();
    group.add("store", store.clone());
    let mut consumer_token = None;
    group.spawn("consumer", |token| {
        consumer_token = Some(token.clone());
        async move { token.cancelled().await }
    });
    let consumer_token = consumer_token.unwrap();

    let started = tokio::time::Instant::now();
    let error = group.shutdown(Duration::from_secs(5)).await.unwrap_err();
    assert_eq!(
        started.elapsed(),
        Duration::from_secs(5),
        "one deadline, not one per runner"
    );
    assert_eq!(error.code().as_str(), "CR-E0050");
    assert!(
        error.to_string().contains("store, consumer did not finish"),
        "{error}"
    );

    let report = error.report();
    assert_eq!(report.runners[0].name, "store");
    assert_eq!(
        report.runners[0].outcome,
        RunnerOutcome::Unfinished {
            left: "1 effect(s) still running".into()
        }
    );
    // The quick effect finished and fed its action back; the slow one was cancelled.
    assert_eq!(store.state(|done| *done), 1);
    // The consumer's turn came at the deadline: it was still told to stop.
    assert!(consumer_token.is_cancelled());
    assert_eq!(report.unfinished().count(), 2);
}

#[tokio::test(start_paused = true)]
async fn runners_that_finish_in_time_are_reported_finished_in_order() {
    let store = Store::new(0, Worker, ());
    let _work = store.send(Work(2));
    let mut group = ShutdownGroup::new();
    group.add("store", store.clone());
    group.spawn("consumer", |token| async move { token.cancelled().await });
    assert_eq!(group.names(), ["store", "consumer"]);

    let report = group.shutdown(Duration::from_secs(5)).await.unwrap();
    assert_eq!(report.runners.len(), 2);
    assert!(report.unfinished().next().is_none());
    assert_eq!(report.runners[0].took, Duration::from_secs(2));
    assert_eq!(
        store.state(|done| *done),
        1,
        "the effect in flight finished"
    );
    assert!(
        store.send(Work(0)).was_rejected(),
        "no intake after shutdown"
    );
}

#[tokio::test(start_paused = true)]
async fn a_loop_that_ignores_its_token_is_aborted_at_the_deadline() {
    let mut group = ShutdownGroup::new();
    group.spawn("stubborn", |_token| async {
        tokio::time::sleep(Duration::from_secs(3600)).await;
    });
    let error = group.shutdown(Duration::from_secs(1)).await.unwrap_err();
    assert!(matches!(error, ShutdownError::Unfinished { .. }));
    assert!(
        matches!(&error.report().runners[0].outcome, RunnerOutcome::Unfinished { left } if left.contains("aborted"))
    );
}

#[tokio::test]
async fn a_panicking_loop_is_reported_failed() {
    let mut group = ShutdownGroup::new();
    group.spawn("broken", |token| async move {
        token.cancelled().await;
        panic!("boom");
    });
    let error = group.shutdown(Duration::from_secs(5)).await.unwrap_err();
    assert_eq!(error.code().as_str(), "CR-E0051");
    assert!(matches!(
        error.report().runners[0].outcome,
        RunnerOutcome::Failed { .. }
    ));
}

/// Counts events; each apply takes a second of (paused) time.
struct SlowCount;

#[async_trait]
impl Projection for SlowCount {
    type Store = InMemoryProjectionStore;

    fn name(&self) -> &str {
        "slow-count"
    }

    async fn apply(
        &self,
        _: &StoredEvent,
        tx: &mut <Self::Store as ProjectionStore>::Tx,
    ) -> Result<(), ProjectionError> {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let count: u64 = tx.get_json("count").await?.unwrap_or(0);
        tx.save_json("count", &(count + 1)).await
    }

    async fn reset(
        &self,
        tx: &mut <Self::Store as ProjectionStore>::Tx,
    ) -> Result<(), ProjectionError> {
        tx.delete("count").await
    }
}

/// Appends `n` events; returns the last one's position.
async fn append(events: &InMemoryEventStore, n: u64) -> Position {
    let mut last = Position::START;
    for i in 0..n {
        let stream = StreamId::new(format!("item-{i}")).unwrap();
        let event = NewEvent::new("Counted", serde_json::json!({ "i": i }));
        last = events
            .append(&stream, ExpectedVersion::NoStream, vec![event])
            .await
            .unwrap()
            .last_position;
    }
    last
}

#[tokio::test(start_paused = true)]
async fn a_projection_finishes_its_batch_and_saves_the_checkpoint_within_the_deadline() {
    let events = InMemoryEventStore::new();
    let last = append(&events, 10).await;
    let store = Arc::new(InMemoryProjectionStore::new());
    let manager = ProjectionManager::new(SlowCount, Arc::clone(&store), events.clone());
    let running = manager.start();
    // Let it start its first batch (all ten events: ten seconds).
    tokio::time::sleep(Duration::from_millis(500)).await;

    let mut group = ShutdownGroup::new();
    group.add("projection", manager.clone());
    let report = group.shutdown(Duration::from_secs(30)).await.unwrap();
    assert_eq!(report.runners[0].outcome, RunnerOutcome::Finished);
    running.await.unwrap().unwrap();
    let count: u64 = store.get_json("count").await.unwrap().unwrap();
    assert_eq!(count, 10, "the batch in progress committed");
    assert_eq!(manager.position(), last);
}

#[tokio::test(start_paused = true)]
async fn a_projection_busy_at_the_deadline_commits_nothing_of_its_batch() {
    let events = InMemoryEventStore::new();
    append(&events, 10).await;
    let store = Arc::new(InMemoryProjectionStore::new());
    let manager = ProjectionManager::new(SlowCount, Arc::clone(&store), events.clone());
    let running = manager.start();
    tokio::time::sleep(Duration::from_millis(500)).await;

    let error = manager.shutdown_within(Duration::from_secs(3)).await;
    assert!(
        matches!(error, RunnerOutcome::Unfinished { .. }),
        "{error:?}"
    );
    running.abort();
    assert!(running.await.unwrap_err().is_cancelled());
    let count: Option<u64> = store.get_json("count").await.unwrap();
    assert_eq!(
        count, None,
        "an aborted batch commits nothing, nor its checkpoint"
    );
}

#[tokio::test]
async fn a_publisher_stops_after_its_page_is_checkpointed() {
    let events = InMemoryEventStore::new();
    let last = append(&events, 25).await;
    let bus = InMemoryEventBus::new();
    let topic = Topic::new("items").unwrap();
    let checkpoints = Arc::new(InMemoryProjectionStore::new());
    let publisher = EventPublisher::new(
        "publisher",
        events.clone(),
        bus.clone(),
        checkpoints,
        topic.clone(),
    );
    let published = Arc::new(AtomicU64::new(0));
    let running = publisher.start();
    publisher
        .wait_for(last, Duration::from_secs(5))
        .await
        .unwrap();
    published.store(bus.topic_len(&topic).await.unwrap(), Ordering::SeqCst);

    let mut group = ShutdownGroup::new();
    group.add("publisher", publisher.clone());
    group.shutdown(Duration::from_secs(5)).await.unwrap();
    running.await.unwrap().unwrap();
    assert_eq!(published.load(Ordering::SeqCst), 25);
}

mod saga {
    //! A `SagaRuntime` in a `ShutdownGroup`: it disarms its timeouts and
    //! refuses further events.

    use super::*;
    use composable_rust_core::Event;
    use composable_rust_core::saga::{
        CommandDispatcher, DispatchError, Reaction, Routed, Saga, SagaCommand, SagaContext,
        SagaError, SagaId, SagaRuntime,
    };
    use serde::{Deserialize, Serialize};

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    enum Recorded {
        Seen,
    }
    impl Event for Recorded {}

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    enum Command {}

    /// Starts a one-hour timeout for every stream it sees.
    struct Watch;

    impl Saga for Watch {
        const KIND: &'static str = "watch";
        type State = u32;
        type Input = ();
        type Event = Recorded;
        type Command = Command;

        fn route(&self, event: &StoredEvent) -> Result<Option<Routed<()>>, SagaError> {
            Ok(Some(Routed::new(
                SagaId::new(event.stream_id.as_str())?,
                (),
            )))
        }

        fn react(&self, _: &u32, (): (), _: &SagaContext) -> Reaction<Self> {
            Reaction::new()
                .record(Recorded::Seen)
                .start_timeout("hour", Duration::from_secs(3600))
        }

        fn apply(seen: &mut u32, _: &Recorded) {
            *seen += 1;
        }
    }

    struct Nowhere;

    #[async_trait]
    impl CommandDispatcher<Command> for Nowhere {
        async fn dispatch(&self, _: &SagaCommand<Command>) -> Result<(), DispatchError> {
            Ok(())
        }
    }

    #[tokio::test]
    async fn a_saga_runtime_disarms_its_timeouts_and_refuses_events() {
        let events = InMemoryEventStore::new();
        let runtime = SagaRuntime::builder(Watch, events.clone(), Arc::new(Nowhere)).build();
        let stream = StreamId::new("door-1").unwrap();
        events
            .append(
                &stream,
                ExpectedVersion::NoStream,
                vec![NewEvent::new("Opened", serde_json::json!({}))],
            )
            .await
            .unwrap();
        let opened = events.load_stream(&stream, 0).await.unwrap();
        runtime.handle(&opened[0]).await.unwrap();
        assert_eq!(runtime.armed_timeouts(), 1);

        let mut group = ShutdownGroup::new();
        group.add("saga:watch", runtime.clone());
        let report = group.shutdown(Duration::from_secs(5)).await.unwrap();
        assert_eq!(report.runners[0].outcome, RunnerOutcome::Finished);
        assert_eq!(
            runtime.armed_timeouts(),
            0,
            "recorded, armed again by the next runtime"
        );
        let refused = runtime.handle(&opened[0]).await.unwrap_err();
        assert_eq!(refused.code().as_str(), "CR-E0034");
    }
}
