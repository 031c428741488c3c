//! The saga runtime against the in-memory event store: routing, recording,
//! de-duplication, timeouts on the test clock, failed deliveries, resuming
//! after a crash, and concurrent runtimes.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use composable_rust_core::event::decode;
use composable_rust_core::resilience::{Backoff, RetryPolicy};
use composable_rust_core::saga::{
    CommandDispatcher, DispatchError, Handled, Reaction, Routed, Saga, SagaCommand, SagaContext,
    SagaError, SagaId, SagaInstance, SagaOutcome, SagaRuntime, SagaSteps,
};
use composable_rust_core::{
    CodedError, Event, EventStore, ExpectedVersion, InMemoryEventStore, NewEvent, Position,
    StoredEvent, StreamId, TestClock, Upcasters,
};
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

// ---- the domain: a shop whose events the saga follows --------------------

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Shop {
    Ordered { order: String, amount: u64 },
    Reserved { order: String },
    Charged { order: String },
    Declined { order: String },
}
impl Event for Shop {}

// ---- the saga -------------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
enum Input {
    Ordered { amount: u64 },
    Reserved,
    Charged,
    Declined,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Recorded {
    Started { amount: u64 },
    Reserved,
    Charged,
    PaymentFailed,
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
            Shop::Charged { order } => (order, Input::Charged),
            Shop::Declined { order } => (order, Input::Declined),
        };
        Ok(Some(Routed::new(SagaId::new(order)?, input)))
    }

    fn react(&self, state: &State, input: Input, _: &SagaContext) -> Reaction<Self> {
        let in_flight = state.steps.in_flight();
        match input {
            Input::Ordered { amount } if !state.steps.contains("inventory") => Reaction::new()
                .record(Recorded::Started { amount })
                .send(Command::Reserve)
                .start_timeout("reply", REPLY),
            Input::Reserved if in_flight == ["inventory"] => Reaction::new()
                .record(Recorded::Reserved)
                .send(Command::Charge {
                    amount: state.amount,
                })
                .start_timeout("reply", REPLY),
            Input::Charged if in_flight == ["payment"] => Reaction::new()
                .record(Recorded::Charged)
                .cancel_timeout("reply")
                .complete(),
            Input::Declined if in_flight == ["payment"] => Reaction::new()
                .record(Recorded::PaymentFailed)
                .send_all(state.steps.compensations())
                .compensated(),
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
            Recorded::Charged => state.steps.complete("payment"),
            Recorded::PaymentFailed | Recorded::TimedOut => {
                for step in ["inventory", "payment"] {
                    if state.steps.in_flight().contains(&step) {
                        state.steps.fail(step);
                    }
                }
            }
        }
    }
}

// ---- a dispatcher that records, fails or hangs on request -----------------

#[derive(Default)]
struct Outbox {
    delivered: Mutex<Vec<SagaCommand<Command>>>,
    fail_next: AtomicUsize,
    hang: Mutex<Option<Arc<Notify>>>,
}

impl Outbox {
    fn delivered(&self) -> Vec<Command> {
        self.lock().iter().map(|c| c.command.clone()).collect()
    }

    fn delivered_ids(&self) -> Vec<String> {
        self.lock().iter().map(|c| c.id.to_string()).collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<SagaCommand<Command>>> {
        self.delivered
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

#[async_trait]
impl CommandDispatcher<Command> for Outbox {
    async fn dispatch(&self, command: &SagaCommand<Command>) -> Result<(), DispatchError> {
        if self
            .fail_next
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Err(DispatchError::new("connection refused"));
        }
        self.lock().push(command.clone());
        let hang = self.hang.lock().unwrap().clone();
        if let Some(delivered) = hang {
            // The receiver has the command; the process "dies" before the
            // runtime records the delivery.
            delivered.notify_one();
            std::future::pending::<()>().await;
        }
        Ok(())
    }
}

// ---- helpers --------------------------------------------------------------

struct World {
    clock: TestClock,
    store: InMemoryEventStore,
}

impl World {
    fn new() -> Self {
        let clock = TestClock::new();
        let store = InMemoryEventStore::new().with_clock(Arc::new(clock.clone()));
        Self { clock, store }
    }

    fn runtime(&self, outbox: &Arc<Outbox>) -> SagaRuntime<Checkout> {
        SagaRuntime::builder(Checkout, self.store.clone(), Arc::clone(outbox))
            .with_clock(Arc::new(self.clock.clone()))
            .build()
    }

    async fn record(&self, event: Shop) -> StoredEvent {
        let order = match &event {
            Shop::Ordered { order, .. }
            | Shop::Reserved { order }
            | Shop::Charged { order }
            | Shop::Declined { order } => order.clone(),
        };
        let stream = StreamId::new(format!("shop-{order}")).unwrap();
        self.store
            .append(
                &stream,
                ExpectedVersion::Any,
                vec![NewEvent::from_event(&event).unwrap()],
            )
            .await
            .unwrap();
        self.store
            .load_stream(&stream, 0)
            .await
            .unwrap()
            .pop()
            .unwrap()
    }

    async fn saga_stream_types(&self, order: &str) -> Vec<String> {
        let stream = StreamId::new(format!("saga-checkout-{order}")).unwrap();
        self.store
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

fn id(order: &str) -> SagaId {
    SagaId::new(order).unwrap()
}

fn stepped(order: &str, outcome: Option<SagaOutcome>) -> Handled {
    Handled::Stepped {
        saga_id: id(order),
        outcome,
    }
}

// ---- tests ----------------------------------------------------------------

#[tokio::test]
async fn the_happy_path_is_recorded_step_by_step() {
    let world = World::new();
    let outbox = Arc::new(Outbox::default());
    let runtime = world.runtime(&outbox);

    let e = world.record(ordered("o1")).await;
    assert_eq!(runtime.handle(&e).await.unwrap(), stepped("o1", None));
    let e = world.record(Shop::Reserved { order: "o1".into() }).await;
    assert_eq!(runtime.handle(&e).await.unwrap(), stepped("o1", None));
    let e = world.record(Shop::Charged { order: "o1".into() }).await;
    assert_eq!(
        runtime.handle(&e).await.unwrap(),
        stepped("o1", Some(SagaOutcome::Completed))
    );

    assert_eq!(
        outbox.delivered(),
        vec![Command::Reserve, Command::Charge { amount: 40 }]
    );
    assert_eq!(
        outbox.delivered_ids(),
        vec!["saga-checkout-o1#1", "saga-checkout-o1#2"]
    );
    assert_eq!(
        world.saga_stream_types("o1").await,
        vec![
            "Started",
            "$saga.step",
            "$saga.dispatched",
            "Reserved",
            "$saga.step",
            "$saga.dispatched",
            "Charged",
            "$saga.step",
        ]
    );
    assert_eq!(runtime.armed_timeouts(), 0);
    let saga = runtime.instance(&id("o1")).await.unwrap();
    assert_eq!(saga.outcome(), Some(SagaOutcome::Completed));
    assert!(saga.is_settled());
    // Ended sagas are closed in the catalog: nothing to resume.
    assert_eq!(runtime.resume().await.unwrap().sagas, 0);
}

#[tokio::test]
async fn a_redelivered_event_is_ignored() {
    let world = World::new();
    let outbox = Arc::new(Outbox::default());
    let runtime = world.runtime(&outbox);

    let e = world.record(ordered("o1")).await;
    runtime.handle(&e).await.unwrap();
    assert_eq!(
        runtime.handle(&e).await.unwrap(),
        Handled::Duplicate(id("o1"))
    );
    assert_eq!(outbox.delivered(), vec![Command::Reserve]);

    // The same fact recorded twice (another event id) is ignored by the
    // saga's own guard: nothing recorded, nothing sent.
    let again = world.record(ordered("o1")).await;
    assert_eq!(
        runtime.handle(&again).await.unwrap(),
        Handled::NoReaction(id("o1"))
    );
    assert_eq!(outbox.delivered(), vec![Command::Reserve]);
}

#[tokio::test]
async fn a_declined_payment_releases_the_inventory_and_ends_the_saga() {
    let world = World::new();
    let outbox = Arc::new(Outbox::default());
    let runtime = world.runtime(&outbox);

    for event in [
        ordered("o1"),
        Shop::Reserved { order: "o1".into() },
        Shop::Declined { order: "o1".into() },
    ] {
        let e = world.record(event).await;
        runtime.handle(&e).await.unwrap();
    }
    assert_eq!(
        outbox.delivered(),
        vec![
            Command::Reserve,
            Command::Charge { amount: 40 },
            Command::Release
        ]
    );
    assert_eq!(runtime.armed_timeouts(), 0);

    // Later events for an ended saga are ignored.
    let late = world.record(Shop::Charged { order: "o1".into() }).await;
    assert_eq!(
        runtime.handle(&late).await.unwrap(),
        Handled::Ended(id("o1"))
    );
}

#[tokio::test]
async fn a_timeout_on_the_test_clock_compensates() {
    let world = World::new();
    let outbox = Arc::new(Outbox::default());
    let runtime = world.runtime(&outbox);

    runtime
        .handle(&world.record(ordered("o1")).await)
        .await
        .unwrap();
    let reserved = world.record(Shop::Reserved { order: "o1".into() }).await;
    runtime.handle(&reserved).await.unwrap();
    assert_eq!(runtime.armed_timeouts(), 1);

    world.clock.advance(Duration::from_secs(29));
    runtime.idle().await;
    assert_eq!(outbox.delivered().len(), 2, "not due yet");

    world.clock.advance(Duration::from_secs(1));
    runtime.idle().await;
    assert_eq!(
        outbox.delivered(),
        vec![
            Command::Reserve,
            Command::Charge { amount: 40 },
            Command::Release
        ]
    );
    let saga = runtime.instance(&id("o1")).await.unwrap();
    assert_eq!(saga.outcome(), Some(SagaOutcome::Compensated));
    assert_eq!(runtime.armed_timeouts(), 0);
}

#[tokio::test]
async fn a_restarted_timeout_fires_only_once_at_its_new_deadline() {
    let world = World::new();
    let outbox = Arc::new(Outbox::default());
    let runtime = world.runtime(&outbox);

    runtime
        .handle(&world.record(ordered("o1")).await)
        .await
        .unwrap();
    world.clock.advance(Duration::from_secs(20));
    runtime.idle().await;
    // Reserved restarts the "reply" timeout: 30 s from now.
    let reserved = world.record(Shop::Reserved { order: "o1".into() }).await;
    runtime.handle(&reserved).await.unwrap();
    world.clock.advance(Duration::from_secs(15));
    runtime.idle().await;
    assert_eq!(outbox.delivered().len(), 2, "the first deadline is stale");
    world.clock.advance(Duration::from_secs(15));
    runtime.idle().await;
    assert_eq!(outbox.delivered().last(), Some(&Command::Release));
}

#[tokio::test]
async fn a_failed_delivery_stays_pending_until_the_event_comes_again() {
    let world = World::new();
    let outbox = Arc::new(Outbox::default());
    let runtime = world.runtime(&outbox);
    outbox.fail_next.store(1, Ordering::SeqCst);

    let e = world.record(ordered("o1")).await;
    let error = runtime.handle(&e).await.unwrap_err();
    assert!(matches!(error, SagaError::Dispatch { .. }), "{error:?}");
    assert_eq!(error.code().as_str(), "CR-E0031");
    assert!(outbox.delivered().is_empty());
    let saga = runtime.instance(&id("o1")).await.unwrap();
    assert_eq!(
        saga.pending().len(),
        1,
        "the step is recorded, the command pending"
    );

    // The bus delivers the unacknowledged event again.
    assert_eq!(
        runtime.handle(&e).await.unwrap(),
        Handled::Duplicate(id("o1"))
    );
    assert_eq!(outbox.delivered(), vec![Command::Reserve]);
    assert!(
        runtime
            .instance(&id("o1"))
            .await
            .unwrap()
            .pending()
            .is_empty()
    );
}

#[tokio::test]
async fn with_dispatch_retry_a_transient_delivery_failure_is_retried_within_the_step() {
    let world = World::new();
    let outbox = Arc::new(Outbox::default());
    let policy = RetryPolicy::new(Backoff::new(
        Duration::from_millis(100),
        Duration::from_secs(1),
    ))
    .with_max_attempts(3);
    let runtime = SagaRuntime::builder(Checkout, world.store.clone(), Arc::clone(&outbox))
        .with_dispatch_retry(policy)
        .with_clock(Arc::new(world.clock.clone()))
        .build();
    outbox.fail_next.store(2, Ordering::SeqCst);

    let e = world.record(ordered("o1")).await;
    let step = tokio::spawn(async move { runtime.handle(&e).await.map(|h| (h, runtime)) });
    // Two failures, two waits on the runtime's (test) clock, 100 ms and
    // 200 ms: moved on in 50 ms steps until the step is done, far below
    // the saga's 30 s reply timeout (whose timer sleeps on the clock too).
    let mut waited = Duration::ZERO;
    while !step.is_finished() {
        for _ in 0..100 {
            tokio::task::yield_now().await;
        }
        if !step.is_finished() {
            world.clock.advance(Duration::from_millis(50));
            waited += Duration::from_millis(50);
            assert!(waited < Duration::from_secs(5), "the step never finished");
        }
    }
    assert!(
        waited >= Duration::from_millis(300),
        "it waited {waited:?} in all"
    );
    let (handled, runtime) = step.await.unwrap().unwrap();
    assert_eq!(handled, stepped("o1", None));
    assert_eq!(outbox.delivered(), vec![Command::Reserve]);
    assert!(
        runtime
            .instance(&id("o1"))
            .await
            .unwrap()
            .pending()
            .is_empty()
    );
}

#[tokio::test]
async fn retry_pending_delivers_what_failed() {
    let world = World::new();
    let outbox = Arc::new(Outbox::default());
    let runtime = world.runtime(&outbox);
    outbox.fail_next.store(1, Ordering::SeqCst);
    let _ = runtime.handle(&world.record(ordered("o1")).await).await;
    assert_eq!(runtime.retry_pending().await.unwrap(), 1);
    assert_eq!(outbox.delivered(), vec![Command::Reserve]);
    assert_eq!(runtime.retry_pending().await.unwrap(), 0);
}

#[tokio::test]
async fn a_restarted_process_arms_the_running_timeouts_again() {
    let world = World::new();
    let first_outbox = Arc::new(Outbox::default());
    let first = world.runtime(&first_outbox);
    first
        .handle(&world.record(ordered("o1")).await)
        .await
        .unwrap();
    let reserved = world.record(Shop::Reserved { order: "o1".into() }).await;
    first.handle(&reserved).await.unwrap();
    world.clock.advance(Duration::from_secs(10));
    // The process dies.
    drop(first);

    let outbox = Arc::new(Outbox::default());
    let second = world.runtime(&outbox);
    let report = second.resume().await.unwrap();
    assert_eq!(
        (report.sagas, report.timeouts, report.redispatched),
        (1, 1, 0)
    );

    // 20 s were left of the 30 s timeout.
    world.clock.advance(Duration::from_secs(19));
    second.idle().await;
    assert!(outbox.delivered().is_empty());
    world.clock.advance(Duration::from_secs(1));
    second.idle().await;
    assert_eq!(outbox.delivered(), vec![Command::Release]);
    assert_eq!(
        first_outbox.delivered().len(),
        2,
        "the dead runtime did nothing more"
    );
}

#[tokio::test]
async fn a_step_recorded_before_a_crash_is_sent_on_resume() {
    let world = World::new();
    let dead_outbox = Arc::new(Outbox::default());
    dead_outbox.fail_next.store(1, Ordering::SeqCst);
    let first = world.runtime(&dead_outbox);
    let _ = first.handle(&world.record(ordered("o1")).await).await;
    drop(first);

    let outbox = Arc::new(Outbox::default());
    let second = world.runtime(&outbox);
    let report = second.resume().await.unwrap();
    assert_eq!(report.redispatched, 1);
    assert_eq!(outbox.delivered(), vec![Command::Reserve]);
    // Resuming again sends nothing more.
    assert_eq!(second.resume().await.unwrap().redispatched, 0);
}

#[tokio::test]
async fn a_command_delivered_just_before_a_crash_is_sent_again_with_the_same_id() {
    let world = World::new();
    let outbox = Arc::new(Outbox::default());
    let delivered = Arc::new(Notify::new());
    *outbox.hang.lock().unwrap() = Some(Arc::clone(&delivered));
    let first = world.runtime(&outbox);
    let event = world.record(ordered("o1")).await;
    let handling = tokio::spawn({
        let first = first.clone();
        async move { first.handle(&event).await }
    });
    delivered.notified().await;
    // The process dies after the receiver got the command, before the
    // runtime recorded the delivery.
    handling.abort();
    let _ = handling.await;
    drop(first);
    *outbox.hang.lock().unwrap() = None;

    let second = world.runtime(&outbox);
    assert_eq!(second.resume().await.unwrap().redispatched, 1);
    // Delivered twice, with one id: the receiver's idempotency key.
    assert_eq!(
        outbox.delivered_ids(),
        vec!["saga-checkout-o1#1", "saga-checkout-o1#1"]
    );
}

#[tokio::test]
async fn two_runtimes_on_one_saga_never_record_a_step_twice() {
    let world = World::new();
    let a_outbox = Arc::new(Outbox::default());
    let b_outbox = Arc::new(Outbox::default());
    let a = world.runtime(&a_outbox);
    let b = world.runtime(&b_outbox);

    let e = world.record(ordered("o1")).await;
    a.handle(&e).await.unwrap();
    // b loads (and caches) the saga at this version.
    assert_eq!(b.handle(&e).await.unwrap(), Handled::Duplicate(id("o1")));

    let reserved = world.record(Shop::Reserved { order: "o1".into() }).await;
    a.handle(&reserved).await.unwrap();
    // b's copy is stale: its append conflicts, it reloads, and finds the
    // event handled.
    assert_eq!(
        b.handle(&reserved).await.unwrap(),
        Handled::Duplicate(id("o1"))
    );
    assert_eq!(
        a_outbox.delivered(),
        vec![Command::Reserve, Command::Charge { amount: 40 }]
    );
    assert!(b_outbox.delivered().is_empty());
    let charged: Vec<_> = world
        .saga_stream_types("o1")
        .await
        .into_iter()
        .filter(|t| t == "Reserved")
        .collect();
    assert_eq!(charged.len(), 1);
}

#[tokio::test]
async fn catch_up_follows_the_store_and_starting_over_is_harmless() {
    let world = World::new();
    let outbox = Arc::new(Outbox::default());
    let runtime = world.runtime(&outbox);
    world.record(ordered("o1")).await;
    world.record(ordered("o2")).await;
    world.record(Shop::Reserved { order: "o1".into() }).await;

    let position = runtime
        .catch_up(&world.store, Position::START)
        .await
        .unwrap();
    assert_eq!(
        outbox.delivered(),
        vec![
            Command::Reserve,
            Command::Reserve,
            Command::Charge { amount: 40 }
        ]
    );
    assert!(position > Position::START);

    // The saga's own streams show up in the global stream too; they are
    // skipped. Starting over from the beginning sends nothing again.
    runtime
        .catch_up(&world.store, Position::START)
        .await
        .unwrap();
    assert_eq!(outbox.delivered().len(), 3);
}

#[tokio::test]
async fn a_stream_with_a_step_cut_in_half_is_reported() {
    let world = World::new();
    let stream = StreamId::new("saga-checkout-o1").unwrap();
    world
        .store
        .append(
            &stream,
            ExpectedVersion::NoStream,
            vec![NewEvent::from_event(&Recorded::Reserved).unwrap()],
        )
        .await
        .unwrap();
    let runtime = world.runtime(&Arc::new(Outbox::default()));
    let error = runtime.instance(&id("o1")).await.unwrap_err();
    assert_eq!(error.code().as_str(), "CR-E0033", "{error}");
}

#[tokio::test]
async fn a_shut_down_runtime_refuses_events() {
    let world = World::new();
    let runtime = world.runtime(&Arc::new(Outbox::default()));
    runtime
        .handle(&world.record(ordered("o1")).await)
        .await
        .unwrap();
    runtime.shutdown().await;
    assert_eq!(runtime.armed_timeouts(), 0);
    let error = runtime
        .handle(&world.record(ordered("o2")).await)
        .await
        .unwrap_err();
    assert_eq!(error.code().as_str(), "CR-E0034");
}

#[test]
fn a_replayed_instance_equals_the_live_one() {
    let saga = Checkout;
    let clock = TestClock::new();
    let mut live = SagaInstance::<Checkout>::new(id("o1")).unwrap();
    let mut stored = Vec::new();
    let inputs = [
        Input::Ordered { amount: 5 },
        Input::Reserved,
        Input::Declined,
    ];
    for (n, input) in inputs.into_iter().enumerate() {
        let message = composable_rust_core::__private::SagaMessage::Input {
            id: uuid::Uuid::from_u128(n as u128 + 1),
            input,
        };
        let composable_rust_core::__private::Decision::Step(step) =
            live.decide(&saga, message, clock_now(&clock))
        else {
            panic!("expected a step");
        };
        for new in step.to_new_events(live.id()).unwrap() {
            stored.push(
                StoredEvent::builder(new.event_type, new.payload)
                    .with_id(new.event_id)
                    .with_stream(live.stream_id().clone(), stored.len() as u64 + 1)
                    .with_position(Position::new(
                        stored.len() as u64 + 1,
                        stored.len() as u64 + 1,
                    ))
                    .with_schema_version(new.schema_version)
                    .with_metadata(new.metadata)
                    .with_recorded_at(clock_now(&clock))
                    .build(),
            );
        }
        live.commit(step, stored.len() as u64);
    }
    let replayed = SagaInstance::<Checkout>::replay(id("o1"), &stored, &Upcasters::new()).unwrap();
    assert_eq!(replayed.state(), live.state());
    assert_eq!(replayed.pending(), live.pending());
    assert_eq!(replayed.outcome(), Some(SagaOutcome::Compensated));
    assert!(replayed.has_handled(uuid::Uuid::from_u128(2)));
}

fn clock_now(clock: &TestClock) -> chrono::DateTime<chrono::Utc> {
    use composable_rust_core::Clock;
    clock.now()
}

#[tokio::test]
async fn resume_reads_the_catalog_from_a_snapshot_once_it_is_long() {
    let world = World::new();
    let catalog = StreamId::new("sagas-checkout").unwrap();
    // 600 sagas that started and ended long ago.
    let mut old = Vec::new();
    for n in 0..600 {
        for (kind, _) in [("$saga.started", ()), ("$saga.closed", ())] {
            old.push(NewEvent::new(
                kind,
                serde_json::json!({ "saga_id": format!("old-{n}") }),
            ));
        }
    }
    world
        .store
        .append(&catalog, ExpectedVersion::NoStream, old)
        .await
        .unwrap();
    let outbox = Arc::new(Outbox::default());
    let runtime = world.runtime(&outbox);
    runtime
        .handle(&world.record(ordered("o1")).await)
        .await
        .unwrap();
    assert_eq!(runtime.resume().await.unwrap().sagas, 1);
    let snapshot = world.store.load_snapshot(&catalog).await.unwrap();
    assert_eq!(snapshot.map(|s| s.stream_version), Some(1201));

    // The next resume starts from the snapshot and still finds o1.
    drop(runtime);
    let runtime = world.runtime(&outbox);
    let report = runtime.resume().await.unwrap();
    assert_eq!((report.sagas, report.timeouts), (1, 1));
}

#[tokio::test]
async fn runtimes_on_partitions_split_the_sagas_and_together_do_the_work_once() {
    use std::num::NonZeroU32;

    use composable_rust_core::projection::manager::Partition;

    let world = World::new();
    let orders: Vec<String> = (0..12).map(|n| format!("o{n}")).collect();
    for order in &orders {
        world.record(ordered(order)).await;
        world
            .record(Shop::Reserved {
                order: order.clone(),
            })
            .await;
    }
    // Two workers, one partition each (by saga id), on the same store.
    let two = NonZeroU32::new(2).unwrap();
    let mut delivered = 0;
    for partition in Partition::all(two) {
        let outbox = Arc::new(Outbox::default());
        let runtime = world.runtime(&outbox);
        runtime
            .catch_up_partition(&world.store, Position::START, partition)
            .await
            .unwrap();
        let mine = orders
            .iter()
            .filter(|order| partition.contains(order))
            .count();
        assert!(
            mine > 0 && mine < orders.len(),
            "both partitions have sagas"
        );
        // Each of its sagas reserved and charged; nothing of the others'.
        assert_eq!(outbox.delivered().len(), 2 * mine);
        delivered += outbox.delivered().len();
        let ordered_elsewhere = world.store.read_all(Position::START, 1000).await.unwrap();
        let other = ordered_elsewhere
            .iter()
            .find(|event| {
                event.event_type == "Ordered"
                    && !partition.contains(event.stream_id.as_str().trim_start_matches("shop-"))
            })
            .expect("an order of the other partition");
        assert_eq!(
            runtime.handle_partition(other, partition).await.unwrap(),
            Handled::NotRouted
        );
    }
    assert_eq!(delivered, 2 * orders.len(), "every saga stepped once");
}

#[tokio::test]
async fn resume_partition_picks_up_only_its_partitions_sagas_and_their_timeouts() {
    use std::num::NonZeroU32;

    use composable_rust_core::projection::manager::Partition;

    let world = World::new();
    let orders: Vec<String> = (0..12).map(|n| format!("o{n}")).collect();
    // A first runtime starts every saga (each arms its payment timeout),
    // then goes away with its timers, as a killed worker does.
    let first = world.runtime(&Arc::new(Outbox::default()));
    for order in &orders {
        first
            .handle(&world.record(ordered(order)).await)
            .await
            .unwrap();
    }
    assert_eq!(first.armed_timeouts(), orders.len());
    drop(first);

    // Each partition's new runtime takes over its own sagas only.
    let two = NonZeroU32::new(2).unwrap();
    let mut resumed = 0;
    for partition in Partition::all(two) {
        let runtime = world.runtime(&Arc::new(Outbox::default()));
        let report = runtime.resume_partition(partition).await.unwrap();
        let mine = orders
            .iter()
            .filter(|order| partition.contains(order))
            .count();
        assert!(
            mine > 0 && mine < orders.len(),
            "both partitions have sagas"
        );
        assert_eq!((report.sagas, report.timeouts), (mine, mine));
        assert_eq!(runtime.armed_timeouts(), mine);
        resumed += report.sagas;
    }
    assert_eq!(
        resumed,
        orders.len(),
        "every saga resumed by exactly one partition"
    );
}
