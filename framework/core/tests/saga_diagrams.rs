//! Saga diagrams: a declared `SagaMap` drawn as a mermaid flowchart and
//! checked against the saga's code (`verify`), and one instance's history,
//! recorded by a real `SagaRuntime` on the in-memory store, drawn as a
//! mermaid sequence diagram.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use composable_rust_core::event::decode;
use composable_rust_core::saga::{
    CommandDispatcher, DispatchError, HistoryEntry, Reaction, Routed, Saga, SagaCommand,
    SagaContext, SagaError, SagaHistory, SagaId, SagaMap, SagaMapStep, SagaOutcome, SagaRuntime,
    SagaSteps, StepCause,
};
use composable_rust_core::{
    CodedError, Event, EventStore, ExpectedVersion, InMemoryEventStore, NewEvent, StoredEvent,
    StreamId, TestClock, Upcasters,
};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Shop {
    Ordered { order: String, amount: u64 },
    Reserved { order: String },
    Charged { order: String },
    Declined { order: String },
}
impl Event for Shop {}

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
    Failed,
}
impl Event for Recorded {}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Command {
    Reserve,
    Release,
    Charge { amount: u64 },
    Refund,
}

#[derive(Debug, Clone, Default, PartialEq)]
struct State {
    amount: u64,
    steps: SagaSteps<Command>,
}

const REPLY: Duration = Duration::from_secs(30);

/// Reserve, then charge; a declined charge releases the reservation; no
/// answer in time undoes the step in flight too.
struct Checkout;

impl Saga for Checkout {
    const KIND: &'static str = "checkout";
    type State = State;
    type Input = Input;
    type Event = Recorded;
    type Command = Command;

    fn route(&self, event: &StoredEvent) -> Result<Option<Routed<Input>>, SagaError> {
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
                .record(Recorded::Failed)
                .send_all(state.steps.compensations())
                .compensated(),
            _ => Reaction::new(),
        }
    }

    fn on_timeout(&self, state: &State, _: &str, _: &SagaContext) -> Reaction<Self> {
        Reaction::new()
            .record(Recorded::Failed)
            .send_all(state.steps.compensations_with_in_flight())
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
                state.steps.start("payment", Some(Command::Refund));
            }
            Recorded::Charged => state.steps.complete("payment"),
            Recorded::Failed => {
                if state.steps.in_flight() == ["payment"] {
                    state.steps.fail("payment");
                }
            }
        }
    }
}

/// The map of [`Checkout`], as it should be.
fn map() -> SagaMap {
    SagaMap::builder(Checkout::KIND, "Ordered")
        .with_step(
            SagaMapStep::new("inventory", "Reserve")
                .with_success("Reserved")
                .with_timeout("reply")
                .with_compensation("Release"),
        )
        .with_step(
            SagaMapStep::new("payment", "Charge")
                .with_success("Charged")
                .with_failure("Declined")
                .with_timeout("reply")
                .with_compensation("Refund"),
        )
        .build()
        .unwrap()
}

fn sample(name: &str) -> Input {
    match name {
        "Ordered" => Input::Ordered { amount: 40 },
        "Reserved" => Input::Reserved,
        "Charged" => Input::Charged,
        "Declined" => Input::Declined,
        other => panic!("no input {other}"),
    }
}

#[test]
fn the_map_draws_steps_failures_timeouts_and_the_compensation_chain() {
    let expected = r#"flowchart TD
    start(["Ordered"])
    s1["inventory<br/>Reserve"]
    s2["payment<br/>Charge"]
    completed(["completed"])
    u2["undo payment<br/>Refund"]
    u1["undo inventory<br/>Release"]
    compensated(["compensated"])
    start --> s1
    s1 -->|"Reserved"| s2
    s1 -.->|"timeout reply"| u1
    s2 -->|"Charged"| completed
    s2 -.->|"Declined"| u1
    s2 -.->|"timeout reply"| u2
    u2 --> u1
    u1 --> compensated
"#;
    assert_eq!(map().to_mermaid(), expected);
}

#[test]
fn names_cannot_break_the_diagram() {
    let map = SagaMap::builder("odd", "say \"hi\"; #1 <b>")
        .with_step(SagaMapStep::new("a|b", "Do").with_success("ok"))
        .with_completion("Confirm")
        .with_completion("Notify")
        .build()
        .unwrap();
    let chart = map.to_mermaid();
    assert!(
        chart.contains("start([\"say #quot;hi#quot;#59; #35;1 #lt;b#gt;\"])"),
        "{chart}"
    );
    assert!(chart.contains("s1[\"a#124;b<br/>Do\"]"), "{chart}");
    assert!(chart.contains("completed([\"completed<br/>Confirm, Notify\"])"));
    // Nothing can fail: no compensation part.
    assert!(!chart.contains("compensated"), "{chart}");
}

#[test]
fn invalid_maps_are_refused_with_a_code() {
    let empty = SagaMap::builder("checkout", "Ordered").build().unwrap_err();
    assert_eq!(empty.code().as_str(), "CR-E0035");
    assert!(empty.to_string().contains("it declares no step"), "{empty}");
    let twice = SagaMap::builder("checkout", "Ordered")
        .with_step(SagaMapStep::new("a", "A").with_success("ok"))
        .with_step(SagaMapStep::new("a", "B").with_success("ok"))
        .build()
        .unwrap_err();
    assert!(twice.to_string().contains("step `a` twice"), "{twice}");
    let stuck = SagaMap::builder("checkout", "Ordered")
        .with_step(SagaMapStep::new("a", "A"))
        .build()
        .unwrap_err();
    assert!(
        stuck.to_string().contains("step `a` declares no input"),
        "{stuck}"
    );
}

#[test]
fn verify_accepts_the_map_the_code_follows() {
    map().verify(&Checkout, sample).unwrap();
}

#[test]
fn verify_names_the_path_where_map_and_code_part() {
    // The map forgets that a timed-out reservation is released.
    let wrong = SagaMap::builder(Checkout::KIND, "Ordered")
        .with_step(
            SagaMapStep::new("inventory", "Reserve")
                .with_success("Reserved")
                .with_timeout("reply"),
        )
        .with_step(
            SagaMapStep::new("payment", "Charge")
                .with_success("Charged")
                .with_failure("Declined")
                .with_compensation("Refund"),
        )
        .build()
        .unwrap();
    let error = wrong.verify(&Checkout, sample).unwrap_err();
    assert_eq!(error.code().as_str(), "CR-E0037");
    let message = error.to_string();
    assert!(
        message.contains(
            "when step `inventory` times out (Ordered, timeout reply): the map expects the \
             commands [\"Reserve\"], then compensated, but the saga sent \
             [\"Reserve\", \"Release\"], then compensated"
        ),
        "{message}"
    );
    // A completion command the saga never sends.
    let confirming = SagaMap::builder(Checkout::KIND, "Ordered")
        .with_step(SagaMapStep::new("inventory", "Reserve").with_success("Reserved"))
        .with_step(SagaMapStep::new("payment", "Charge").with_success("Charged"))
        .with_completion("Confirm")
        .build()
        .unwrap();
    let error = confirming.verify(&Checkout, sample).unwrap_err();
    assert!(error.to_string().contains("every step succeeds"), "{error}");
}

// ---- one instance's history ------------------------------------------------

#[derive(Default)]
struct Outbox(Mutex<Vec<Command>>);

/// A fulfillment: placed, it sends nothing and waits for the payment (or
/// its timeout); paid, it ships; cancelled elsewhere, it just ends.
/// `cancel_when_stopped` makes it disagree with its map.
struct Fulfil {
    cancel_when_stopped: bool,
}

#[derive(Debug, Clone, PartialEq)]
enum FulfilInput {
    Placed,
    Paid,
    Cancelled,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum FulfilEvent {
    Started,
    Ended,
}
impl Event for FulfilEvent {}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum FulfilCommand {
    Ship,
    Cancel { reason: String },
}

impl Saga for Fulfil {
    const KIND: &'static str = "fulfillment";
    type State = bool;
    type Input = FulfilInput;
    type Event = FulfilEvent;
    type Command = FulfilCommand;

    fn route(&self, _: &StoredEvent) -> Result<Option<Routed<FulfilInput>>, SagaError> {
        Ok(None)
    }

    fn react(&self, waiting: &bool, input: FulfilInput, _: &SagaContext) -> Reaction<Self> {
        match (waiting, input) {
            (false, FulfilInput::Placed) => Reaction::new()
                .record(FulfilEvent::Started)
                .start_timeout("payment-due", REPLY),
            (true, FulfilInput::Paid) => Reaction::new()
                .record(FulfilEvent::Ended)
                .send(FulfilCommand::Ship)
                .complete(),
            (true, FulfilInput::Cancelled) if self.cancel_when_stopped => Reaction::new()
                .record(FulfilEvent::Ended)
                .send(FulfilCommand::Cancel {
                    reason: "again".into(),
                })
                .complete(),
            (true, FulfilInput::Cancelled) => Reaction::new().record(FulfilEvent::Ended).complete(),
            _ => Reaction::new(),
        }
    }

    fn on_timeout(&self, _: &bool, _: &str, _: &SagaContext) -> Reaction<Self> {
        Reaction::new()
            .record(FulfilEvent::Ended)
            .send(FulfilCommand::Cancel {
                reason: "not paid in time".into(),
            })
            .compensated()
    }

    fn apply(waiting: &mut bool, event: &FulfilEvent) {
        *waiting = *event == FulfilEvent::Started;
    }
}

fn fulfil_sample(name: &str) -> FulfilInput {
    match name {
        "Placed" => FulfilInput::Placed,
        "Paid" => FulfilInput::Paid,
        "Cancelled" => FulfilInput::Cancelled,
        other => panic!("no input {other}"),
    }
}

/// The map of [`Fulfil`]: one wait step.
fn fulfil_map() -> SagaMap {
    SagaMap::builder(Fulfil::KIND, "Placed")
        .with_step(
            SagaMapStep::wait("payment")
                .with_success("Paid")
                .with_stop("Cancelled")
                .with_timeout("payment-due"),
        )
        .with_completion("Ship")
        .with_cancellation("Cancel")
        .build()
        .unwrap()
}

#[test]
fn a_wait_step_is_drawn_as_sending_nothing_with_its_stop() {
    let map = fulfil_map();
    assert_eq!(map.steps()[0].command(), None);
    assert_eq!(
        map.to_mermaid(),
        "flowchart TD\n\
         \x20   start([\"Placed\"])\n\
         \x20   s1[/\"payment<br/>waits\"/]\n\
         \x20   completed([\"completed<br/>Ship\"])\n\
         \x20   stopped([\"stopped\"])\n\
         \x20   compensated([\"compensated<br/>Cancel\"])\n\
         \x20   start --> s1\n\
         \x20   s1 -->|\"Paid\"| completed\n\
         \x20   s1 -->|\"Cancelled\"| stopped\n\
         \x20   s1 -.->|\"timeout payment-due\"| compensated\n"
    );
}

#[test]
fn a_wait_step_takes_no_compensation() {
    let error = SagaMap::builder(Fulfil::KIND, "Placed")
        .with_step(
            SagaMapStep::wait("payment")
                .with_success("Paid")
                .with_compensation("Refund"),
        )
        .build()
        .unwrap_err();
    assert_eq!(error.code().as_str(), "CR-E0035");
    assert!(
        error.to_string().contains("step `payment` waits"),
        "{error}"
    );
}

#[test]
fn verify_follows_wait_steps_and_stops() {
    let faithful = Fulfil {
        cancel_when_stopped: false,
    };
    fulfil_map().verify(&faithful, fulfil_sample).unwrap();

    // The code sends a command where the map says the saga just stops.
    let cancelling = Fulfil {
        cancel_when_stopped: true,
    };
    let error = fulfil_map().verify(&cancelling, fulfil_sample).unwrap_err();
    assert_eq!(error.code().as_str(), "CR-E0037");
    assert!(
        error.to_string().contains(
            "when step `payment` is stopped by `Cancelled` (Placed, Cancelled): the map \
             expects the commands [], then completed, but the saga sent [\"Cancel\"], \
             then completed"
        ),
        "{error}"
    );

    // The map says the step sends a command; the saga only waits.
    let sending = SagaMap::builder(Fulfil::KIND, "Placed")
        .with_step(SagaMapStep::new("payment", "RequestPayment").with_success("Paid"))
        .with_completion("Ship")
        .build()
        .unwrap();
    let error = sending.verify(&faithful, fulfil_sample).unwrap_err();
    assert!(
        error.to_string().contains(
            "every step succeeds (Placed, Paid): the map expects the commands \
             [\"RequestPayment\", \"Ship\"], then completed, but the saga sent [\"Ship\"]"
        ),
        "{error}"
    );
}

#[async_trait]
impl CommandDispatcher<Command> for Outbox {
    async fn dispatch(&self, command: &SagaCommand<Command>) -> Result<(), DispatchError> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(command.command.clone());
        Ok(())
    }
}

async fn shop(store: &InMemoryEventStore, stream: &str, event: Shop) -> StoredEvent {
    let stream_id = StreamId::new(stream).unwrap();
    let new = NewEvent::from_event(&event).unwrap();
    store
        .append(&stream_id, ExpectedVersion::Any, vec![new])
        .await
        .unwrap();
    store
        .load_stream(&stream_id, 0)
        .await
        .unwrap()
        .pop()
        .unwrap()
}

#[tokio::test]
async fn a_history_is_drawn_as_a_sequence_diagram() {
    let clock = TestClock::new();
    let store = InMemoryEventStore::new().with_clock(Arc::new(clock.clone()));
    let runtime = SagaRuntime::builder(Checkout, store.clone(), Outbox::default())
        .with_clock(Arc::new(clock.clone()))
        .build();
    let ordered = Shop::Ordered {
        order: "o-1".into(),
        amount: 40,
    };
    for (stream, event) in [
        ("order-o-1", ordered),
        (
            "inventory-o-1",
            Shop::Reserved {
                order: "o-1".into(),
            },
        ),
    ] {
        let stored = shop(&store, stream, event).await;
        runtime.handle(&stored).await.unwrap();
        clock.advance(Duration::from_secs(5));
    }
    // No answer from payment: the timeout undoes both steps.
    clock.advance(REPLY);
    runtime.idle().await;

    let saga_id = SagaId::new("o-1").unwrap();
    let history = SagaHistory::load(&store, Checkout::KIND, &saga_id)
        .await
        .unwrap();
    assert_eq!(history.outcome(), Some(SagaOutcome::Compensated));
    let HistoryEntry::Step { cause, .. } = &history.entries()[0] else {
        panic!("a step first: {:?}", history.entries());
    };
    assert!(
        matches!(cause, StepCause::Input { stream_id: Some(s), event_type: Some(t), .. }
            if s == "order-o-1" && t == "Ordered"),
        "{cause:?}"
    );
    let expected = "\
sequenceDiagram
    participant p0 as order
    participant p1 as inventory
    participant saga as checkout o-1
    participant commands
    p0->>saga: Ordered
    Note over saga: recorded Started
    saga->>commands: Reserve
    Note over saga: timeout reply due 2025-01-01 00:00:30 UTC
    commands-->>saga: delivered Reserve
    p1->>saga: Reserved
    Note over saga: recorded Reserved
    saga->>commands: Charge
    Note over saga: timeout reply due 2025-01-01 00:00:35 UTC
    commands-->>saga: delivered Charge
    saga->>saga: timeout reply fired
    Note over saga: recorded Failed
    saga->>commands: Refund
    saga->>commands: Release
    Note over saga: compensated
    commands-->>saga: delivered Refund, Release
";
    assert_eq!(history.to_mermaid(), expected);
    runtime.shutdown().await;
}

#[tokio::test]
async fn a_saga_that_never_stepped_has_no_history() {
    let store = InMemoryEventStore::new();
    let error = SagaHistory::load(&store, "checkout", &SagaId::new("nope").unwrap())
        .await
        .unwrap_err();
    assert_eq!(error.code().as_str(), "CR-E0036");
    assert!(
        error.to_string().contains("`saga-checkout-nope`"),
        "{error}"
    );
}
