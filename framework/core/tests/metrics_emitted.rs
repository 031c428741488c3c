//! Each core component reports the metrics `composable_rust_core::metrics`
//! documents, under those names and labels: the in-memory event store, the
//! Store, the in-memory bus, the publisher and the saga runtime.
//!
//! Every test installs its own `DebuggingRecorder` as the thread's local
//! recorder (tests run on current-thread runtimes, so their spawned tasks
//! record into it too), so tests running in parallel do not see each
//! other's figures.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use composable_rust_core::event_bus::{
    EventBus, EventPublisher, InMemoryEventBus, SubscribeOptions, Topic,
};
use composable_rust_core::metrics::{self as names, CATALOG, MetricKind};
use composable_rust_core::saga::{
    CommandDispatcher, DispatchError, Reaction, Routed, Saga, SagaCommand, SagaContext, SagaError,
    SagaId, SagaRuntime,
};
use composable_rust_core::{
    Effect, Effects, Event, EventStore, EventStoreError, ExpectedVersion, InMemoryEventStore,
    InMemoryProjectionStore, NewEvent, Position, Reducer, Store, StoredEvent, StreamId, TestClock,
};
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use metrics_util::{CompositeKey, MetricKind as Kind};
use serde::{Deserialize, Serialize};

/// The recorder of one test, installed for this thread until dropped.
struct Recorded {
    snapshotter: Snapshotter,
    _guard: metrics::LocalRecorderGuard<'static>,
}

fn record() -> Recorded {
    // Leaked: the guard borrows the recorder for the rest of the test.
    let recorder: &'static DebuggingRecorder = Box::leak(Box::new(DebuggingRecorder::new()));
    Recorded {
        snapshotter: recorder.snapshotter(),
        _guard: metrics::set_default_local_recorder(recorder),
    }
}

impl Recorded {
    /// What was recorded since the last snapshot (the recorder hands each
    /// value over once: counters and gauges restart from 0, histograms
    /// empty).
    fn snapshot(&self) -> Figures {
        Figures(
            self.snapshotter
                .snapshot()
                .into_vec()
                .into_iter()
                .map(|(key, _, _, value)| (key, value))
                .collect(),
        )
    }
}

/// One snapshot of the recorder.
struct Figures(Vec<(CompositeKey, DebugValue)>);

impl Figures {
    /// The value of `name` with exactly `labels`, checked against the
    /// catalog; panics, listing what was recorded, when there is none.
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> &DebugValue {
        let found = self.0.iter().find(|(key, _)| {
            let mut got: Vec<(&str, &str)> = key
                .key()
                .labels()
                .map(|label| (label.key(), label.value()))
                .collect();
            let mut want = labels.to_vec();
            got.sort_unstable();
            want.sort_unstable();
            key.key().name() == name && got == want
        });
        let Some((key, value)) = found else {
            let keys: Vec<String> = self
                .0
                .iter()
                .map(|(key, _)| format!("{:?}", key.key()))
                .collect();
            panic!("no {name}{labels:?} among\n{}", keys.join("\n"));
        };
        check_documented(key);
        value
    }

    fn counter(&self, name: &str, labels: &[(&str, &str)]) -> u64 {
        match self.value(name, labels) {
            DebugValue::Counter(value) => *value,
            other => panic!("{name} is not a counter: {other:?}"),
        }
    }

    fn gauge(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        match self.value(name, labels) {
            DebugValue::Gauge(value) => value.into_inner(),
            other => panic!("{name} is not a gauge: {other:?}"),
        }
    }

    /// How many values the histogram received.
    fn observations(&self, name: &str, labels: &[(&str, &str)]) -> usize {
        match self.value(name, labels) {
            DebugValue::Histogram(values) => values.len(),
            other => panic!("{name} is not a histogram: {other:?}"),
        }
    }
}

/// The metric is in the catalog, with this kind and these label names.
fn check_documented(key: &CompositeKey) {
    let name = key.key().name();
    let info = CATALOG
        .iter()
        .find(|info| info.name == name)
        .unwrap_or_else(|| panic!("{name} is not in metrics::CATALOG"));
    let kind = match key.kind() {
        Kind::Counter => MetricKind::Counter,
        Kind::Gauge => MetricKind::Gauge,
        Kind::Histogram => MetricKind::Histogram,
    };
    assert_eq!(info.kind, kind, "{name}'s kind");
    let mut labels: Vec<&str> = key.key().labels().map(|label| label.key()).collect();
    let mut documented = info.labels.to_vec();
    labels.sort_unstable();
    documented.sort_unstable();
    assert_eq!(labels, documented, "{name}'s labels");
}

fn event(n: u32) -> NewEvent {
    NewEvent::new("Noted", serde_json::json!({ "n": n }))
}

// ---- event store -----------------------------------------------------------

#[tokio::test]
async fn the_in_memory_event_store_reports_appends_conflicts_and_reads() {
    let metrics = record();
    let store = InMemoryEventStore::new();
    let stream = StreamId::new("note-1").unwrap();
    store
        .append(&stream, ExpectedVersion::NoStream, vec![event(1), event(2)])
        .await
        .unwrap();
    let conflict = store
        .append(&stream, ExpectedVersion::NoStream, vec![event(3)])
        .await
        .unwrap_err();
    assert!(matches!(
        conflict,
        EventStoreError::WrongExpectedVersion { .. }
    ));
    store.load_stream(&stream, 0).await.unwrap();
    store.read_all(Position::START, 10).await.unwrap();

    let metrics = metrics.snapshot();
    let backend = ("backend", "in_memory");
    assert_eq!(
        metrics.counter(names::EVENT_STORE_EVENTS_APPENDED, &[backend]),
        2
    );
    assert_eq!(metrics.counter(names::EVENT_STORE_CONFLICTS, &[backend]), 1);
    for outcome in ["ok", "conflict"] {
        assert_eq!(
            metrics.observations(
                names::EVENT_STORE_APPEND_SECONDS,
                &[backend, ("outcome", outcome)]
            ),
            1,
            "{outcome}"
        );
    }
    for operation in ["load_stream", "read_all"] {
        assert_eq!(
            metrics.observations(
                names::EVENT_STORE_READ_SECONDS,
                &[backend, ("operation", operation)]
            ),
            1,
            "{operation}"
        );
    }
}

// ---- store -----------------------------------------------------------------

struct Counter;

#[derive(Debug, Clone)]
enum CounterAction {
    IncrementLater,
    Increment,
}

impl Reducer for Counter {
    type State = u32;
    type Action = CounterAction;
    type Environment = ();

    fn reduce(&self, count: &mut u32, action: CounterAction, (): &()) -> Effects<CounterAction> {
        match action {
            CounterAction::IncrementLater => {
                vec![Effect::future(async { Some(CounterAction::Increment) })]
            }
            CounterAction::Increment => {
                *count += 1;
                Effects::new()
            }
        }
    }
}

#[tokio::test]
async fn the_store_reports_actions_effects_and_effects_in_flight() {
    let metrics = record();
    let store = Store::new(0, Counter, ());
    let label = [("store", "Counter")];

    // While its effect runs, the action's effect is counted in flight.
    let running = store.send(CounterAction::IncrementLater);
    let during = metrics.snapshot();
    assert_eq!(during.counter(names::STORE_ACTIONS, &label), 1);
    assert_eq!(during.gauge(names::STORE_EFFECTS_IN_FLIGHT, &label), 1.0);

    running.await.unwrap();
    assert_eq!(store.state(|count| *count), 1);
    let after = metrics.snapshot();
    // The action the effect fed back, and the effect's duration.
    assert_eq!(after.counter(names::STORE_ACTIONS, &label), 1);
    assert_eq!(after.observations(names::STORE_EFFECT_SECONDS, &label), 1);
    // Down by one (the snapshot above reset the gauge to 0).
    assert_eq!(after.gauge(names::STORE_EFFECTS_IN_FLIGHT, &label), -1.0);
}

// ---- event bus -------------------------------------------------------------

#[tokio::test]
async fn the_in_memory_bus_reports_its_messages_pending_and_lag() {
    let metrics = record();
    let clock = TestClock::new();
    let bus = InMemoryEventBus::builder()
        .with_clock(Arc::new(clock.clone()))
        .build();
    let topic = Topic::new("notes").unwrap();
    let options = SubscribeOptions::new(topic.clone(), "billing", "billing-1")
        .unwrap()
        .with_visibility_timeout(Duration::from_secs(10))
        .with_max_deliveries(2);
    let mut subscription = bus.subscribe(options).await.unwrap();
    for n in 1..=3 {
        let stored = StoredEvent::builder("Noted", serde_json::json!({ "n": n })).build();
        bus.publish(&topic, &stored).await.unwrap();
    }
    assert_eq!(subscription.backlog().await.unwrap(), Some(3));

    let first = subscription.receive(2, Duration::ZERO).await.unwrap();
    assert_eq!(first.len(), 2);
    subscription.ack(&first[0]).await.unwrap();
    assert_eq!(bus.pending(&topic, "billing").await.unwrap().len(), 1);
    // The second message is not acknowledged in time: delivered again,
    // then dead-lettered at the delivery limit.
    clock.advance(Duration::from_secs(10));
    let again = subscription.receive(1, Duration::ZERO).await.unwrap();
    assert_eq!(again[0].deliveries, 2);
    clock.advance(Duration::from_secs(10));
    let last = subscription.receive(10, Duration::ZERO).await.unwrap();
    assert_eq!(last.len(), 1, "the third message; the second is dead");
    assert_eq!(subscription.backlog().await.unwrap(), Some(0));

    let metrics = metrics.snapshot();
    let backend = ("backend", "in_memory");
    let on_topic = [backend, ("topic", "notes")];
    let in_group = [backend, ("topic", "notes"), ("group", "billing")];
    assert_eq!(metrics.counter(names::BUS_PUBLISHED, &on_topic), 3);
    assert_eq!(metrics.counter(names::BUS_CONSUMED, &in_group), 4);
    assert_eq!(metrics.counter(names::BUS_REDELIVERED, &in_group), 1);
    assert_eq!(metrics.counter(names::BUS_ACKED, &in_group), 1);
    assert_eq!(metrics.counter(names::BUS_DEAD_LETTERED, &in_group), 1);
    assert_eq!(metrics.gauge(names::BUS_PENDING, &in_group), 1.0);
    assert_eq!(
        metrics.gauge(names::BUS_CONSUMER_LAG, &[backend, ("group", "billing")]),
        0.0
    );
}

// ---- publisher -------------------------------------------------------------

#[tokio::test]
async fn the_publisher_reports_how_far_it_is_behind() {
    let metrics = record();
    let events = InMemoryEventStore::new();
    let bus = InMemoryEventBus::new();
    let checkpoints = Arc::new(InMemoryProjectionStore::new());
    let topic = Topic::new("notes").unwrap();
    let publisher = EventPublisher::new("notes-out", events.clone(), bus, checkpoints, topic);
    events
        .append(
            &StreamId::new("note-1").unwrap(),
            ExpectedVersion::NoStream,
            vec![event(1), event(2)],
        )
        .await
        .unwrap();
    assert_eq!(publisher.publish_pending().await.unwrap(), 2);
    let metrics = metrics.snapshot();
    assert_eq!(
        metrics.gauge(
            names::PUBLISHER_EVENTS_BEHIND,
            &[("publisher", "notes-out")]
        ),
        0.0
    );
}

// ---- sagas -----------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Step {
    Started,
    Finished,
    TimedOut,
}
impl Event for Step {}

/// A saga that sends `Ask` when an order is opened, completes when the
/// order is closed, and compensates (`Cancel`) after a minute.
struct Follow;

impl Saga for Follow {
    const KIND: &'static str = "follow";
    type State = ();
    type Input = bool;
    type Event = Step;
    type Command = String;

    fn route(&self, event: &StoredEvent) -> Result<Option<Routed<bool>>, SagaError> {
        let id = SagaId::new(event.stream_id.as_str())?;
        Ok(Some(Routed::new(id, event.event_type == "Opened")))
    }

    fn react(&self, (): &(), opened: bool, _: &SagaContext) -> Reaction<Self> {
        if opened {
            Reaction::new()
                .record(Step::Started)
                .send("Ask".to_owned())
                .start_timeout("reply", Duration::from_secs(60))
        } else {
            Reaction::new()
                .record(Step::Finished)
                .cancel_timeout("reply")
                .complete()
        }
    }

    fn on_timeout(&self, (): &(), _: &str, _: &SagaContext) -> Reaction<Self> {
        Reaction::new()
            .record(Step::TimedOut)
            .send("Cancel".to_owned())
            .compensated()
    }

    fn apply((): &mut (), _: &Step) {}
}

/// Refuses commands for the stream `order-down`.
struct Outbox;

#[async_trait]
impl CommandDispatcher<String> for Outbox {
    async fn dispatch(&self, command: &SagaCommand<String>) -> Result<(), DispatchError> {
        if command.saga_id.as_str() == "order-down" {
            return Err(DispatchError::new("connection refused"));
        }
        Ok(())
    }
}

#[tokio::test]
async fn the_saga_runtime_reports_starts_outcomes_timeouts_and_pending_commands() {
    let metrics = record();
    let clock = TestClock::new();
    let store = InMemoryEventStore::new().with_clock(Arc::new(clock.clone()));
    let runtime = SagaRuntime::builder(Follow, store.clone(), Arc::new(Outbox))
        .with_clock(Arc::new(clock.clone()))
        .build();
    let happen = |stream: &'static str, kind: &'static str| {
        let store = store.clone();
        async move {
            let stream = StreamId::new(stream).unwrap();
            let written = NewEvent::new(kind, serde_json::json!({}));
            store
                .append(&stream, ExpectedVersion::Any, vec![written])
                .await
                .unwrap();
            store.load_stream(&stream, 0).await.unwrap().pop().unwrap()
        }
    };

    // Completed.
    runtime
        .handle(&happen("order-1", "Opened").await)
        .await
        .unwrap();
    runtime
        .handle(&happen("order-1", "Closed").await)
        .await
        .unwrap();
    // Timed out, compensated.
    runtime
        .handle(&happen("order-2", "Opened").await)
        .await
        .unwrap();
    clock.advance(Duration::from_secs(60));
    runtime.idle().await;
    // Its command cannot be delivered: it stays pending.
    let refused = runtime.handle(&happen("order-down", "Opened").await).await;
    assert!(matches!(refused, Err(SagaError::Dispatch { .. })));

    let metrics = metrics.snapshot();
    let saga = [("saga", "follow")];
    assert_eq!(metrics.counter(names::SAGA_STARTED, &saga), 3);
    assert_eq!(metrics.counter(names::SAGA_COMPLETED, &saga), 1);
    assert_eq!(metrics.counter(names::SAGA_COMPENSATED, &saga), 1);
    assert_eq!(metrics.counter(names::SAGA_TIMED_OUT, &saga), 1);
    assert_eq!(metrics.gauge(names::SAGA_PENDING_COMMANDS, &saga), 1.0);
}

// ---- the catalog -------------------------------------------------------------

#[test]
fn every_name_follows_the_scheme_and_is_listed_once() {
    let mut seen = std::collections::HashSet::new();
    for info in CATALOG {
        assert!(seen.insert(info.name), "{} listed twice", info.name);
        assert!(info.name.starts_with("composable_"), "{}", info.name);
        match info.kind {
            MetricKind::Counter => assert!(info.name.ends_with("_total"), "{}", info.name),
            MetricKind::Histogram => assert!(info.name.ends_with("_seconds"), "{}", info.name),
            // `_total` is Prometheus's suffix for counters only.
            MetricKind::Gauge => assert!(!info.name.ends_with("_total"), "{}", info.name),
        }
    }
}

/// `describe` starts every counter without labels at zero, so a dashboard
/// ratio such as hits / (hits + misses) has data before the first miss.
#[test]
fn describe_starts_every_counter_without_labels_at_zero() {
    let recorded = record();
    names::describe();
    let figures = recorded.snapshot();
    let unlabelled: Vec<_> = CATALOG
        .iter()
        .filter(|info| info.kind == MetricKind::Counter && info.labels.is_empty())
        .collect();
    assert!(
        unlabelled
            .iter()
            .any(|info| info.name == names::CACHE_MISSES),
        "the cache's counters have no labels"
    );
    for info in unlabelled {
        assert_eq!(figures.counter(info.name, &[]), 0, "{}", info.name);
    }
    // Counters with labels are not invented: their label values are unknown.
    assert!(
        !figures
            .0
            .iter()
            .any(|(key, _)| key.key().name() == names::SAGA_STARTED),
        "a labelled counter was registered"
    );
}
