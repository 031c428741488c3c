//! SagaTest: what it lets a test say, and that it fails when it should.

use std::time::Duration;

use composable_rust_core::event::decode;
use composable_rust_core::saga::{
    Reaction, Routed, Saga, SagaContext, SagaError, SagaId, SagaSteps,
};
use composable_rust_core::{Event, NewEvent, Position, StoredEvent, StreamId, Upcasters};
use composable_rust_testing::SagaTest;
use serde::{Deserialize, Serialize};

// A three-step saga: reserve, charge, ship. Shipping can fail, which undoes
// the payment and then the reservation.

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Input {
    Ordered { amount: u64 },
    Reserved,
    Charged,
    Declined,
    Shipped,
    ShippingFailed,
}
impl Event for Input {}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Recorded {
    Started { amount: u64 },
    Reserved,
    Charged,
    Shipped,
    Failed { step: String },
}
impl Event for Recorded {}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Command {
    Reserve,
    Release,
    Charge { amount: u64 },
    Refund { amount: u64 },
    Ship,
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
        let Some(order) = event.stream_id.as_str().strip_prefix("order-") else {
            return Ok(None);
        };
        let input = decode::<Input>(event, &Upcasters::new())?;
        let saga_id = SagaId::new(order)?;
        Ok(input.map(|input| Routed::new(saga_id, input)))
    }

    fn react(&self, state: &State, input: Input, _: &SagaContext) -> Reaction<Self> {
        let waiting_for = state.steps.in_flight();
        match input {
            Input::Ordered { amount } if !state.steps.contains("inventory") => Reaction::new()
                .record(Recorded::Started { amount })
                .send(Command::Reserve)
                .start_timeout("reply", REPLY),
            Input::Reserved if waiting_for == ["inventory"] => Reaction::new()
                .record(Recorded::Reserved)
                .send(Command::Charge {
                    amount: state.amount,
                })
                .start_timeout("reply", REPLY),
            Input::Charged if waiting_for == ["payment"] => Reaction::new()
                .record(Recorded::Charged)
                .send(Command::Ship)
                .start_timeout("reply", REPLY),
            Input::Shipped if waiting_for == ["shipping"] => {
                Reaction::new().record(Recorded::Shipped).complete()
            }
            Input::Declined if waiting_for == ["payment"] => fail(state, "payment"),
            Input::ShippingFailed if waiting_for == ["shipping"] => fail(state, "shipping"),
            _ => Reaction::new(),
        }
    }

    fn on_timeout(&self, state: &State, _: &str, _: &SagaContext) -> Reaction<Self> {
        let step = state.steps.in_flight().first().copied().unwrap_or("?");
        fail(state, step)
    }

    fn apply(state: &mut State, event: &Recorded) {
        let amount = state.amount;
        let steps = &mut state.steps;
        match event {
            Recorded::Started { amount } => {
                state.amount = *amount;
                steps.start("inventory", Some(Command::Release));
            }
            Recorded::Reserved => {
                steps.complete("inventory");
                steps.start("payment", Some(Command::Refund { amount }));
            }
            Recorded::Charged => {
                steps.complete("payment");
                steps.start("shipping", None);
            }
            Recorded::Shipped => steps.complete("shipping"),
            Recorded::Failed { step } => steps.fail(step),
        }
    }
}

/// The failed step did nothing; undo the completed ones, latest first.
fn fail(state: &State, step: &str) -> Reaction<Checkout> {
    Reaction::new()
        .record(Recorded::Failed { step: step.into() })
        .send_all(state.steps.compensations())
        .compensated()
}

fn ordered() -> Input {
    Input::Ordered { amount: 40 }
}

// ---- what a test can say ---------------------------------------------------

#[test]
fn the_happy_path() {
    let mut test = SagaTest::new(Checkout);
    test.when(ordered())
        .then_commands([Command::Reserve])
        .then_events([Recorded::Started { amount: 40 }])
        .then_timeout("reply", REPLY)
        .then_running();
    test.when(Input::Reserved)
        .then_commands([Command::Charge { amount: 40 }]);
    test.when(Input::Charged).then_commands([Command::Ship]);
    test.when(Input::Shipped)
        .then_no_commands()
        .then_events([Recorded::Shipped])
        .then_completed()
        .then_no_timeouts()
        .then_state(|state| assert!(state.steps.in_flight().is_empty()));
    test.finish();
}

#[test]
fn a_failing_step_compensates_the_completed_steps_in_reverse_order() {
    let mut test = SagaTest::new(Checkout);
    test.given([ordered(), Input::Reserved, Input::Charged]);
    test.when(Input::ShippingFailed)
        .then_commands([Command::Refund { amount: 40 }, Command::Release])
        .then_compensated()
        .then_no_timeouts();
    test.finish();
}

#[test]
fn a_declined_payment_releases_only_the_inventory() {
    let mut test = SagaTest::new(Checkout);
    test.given([ordered(), Input::Reserved]);
    test.when(Input::Declined)
        .then_commands([Command::Release])
        .then_compensated();
    // Events after the end change nothing.
    test.when(Input::Charged).then_no_commands().then_events([]);
    test.finish();
}

#[test]
fn a_timeout_compensates_without_waiting() {
    let mut test = SagaTest::new(Checkout);
    test.given([ordered(), Input::Reserved]);
    test.advance(Duration::from_secs(29)).then_no_commands();
    test.then_timeout("reply", Duration::from_secs(1));
    test.advance(Duration::from_secs(1))
        .then_commands([Command::Release])
        .then_events([Recorded::Failed {
            step: "payment".into(),
        }])
        .then_compensated();
    test.finish();
}

#[test]
fn a_reply_restarts_the_timeout() {
    let mut test = SagaTest::new(Checkout);
    test.when(ordered()).then_commands([Command::Reserve]);
    test.advance(Duration::from_secs(20));
    test.when(Input::Reserved)
        .then_commands([Command::Charge { amount: 40 }])
        .then_timeout("reply", REPLY);
    test.advance(Duration::from_secs(29)).then_no_commands();
    test.finish();
}

#[test]
fn a_redelivered_input_is_handled_once() {
    let mut test = SagaTest::new(Checkout);
    test.when(ordered()).then_commands([Command::Reserve]);
    test.when_redelivered().then_no_commands().then_events([]);
    // The same fact with a new id: the saga's own guard ignores it.
    test.when(ordered()).then_no_commands();
    test.finish();
}

#[test]
fn a_restarted_saga_continues_where_it_stopped() {
    let mut test = SagaTest::new(Checkout);
    test.when(ordered()).then_commands([Command::Reserve]);
    test.advance(Duration::from_secs(10));
    test.restart();
    test.then_timeout("reply", Duration::from_secs(20));
    test.when(Input::Reserved)
        .then_commands([Command::Charge { amount: 40 }]);
    test.finish();
}

#[test]
fn stored_events_are_routed_to_the_instance() {
    let mut test = SagaTest::new(Checkout).with_saga_id("7");
    test.when_event(&stored("order-7", &ordered()))
        .then_commands([Command::Reserve]);
    test.finish();
}

fn stored(stream: &str, input: &Input) -> StoredEvent {
    let new = NewEvent::from_event(input).unwrap();
    StoredEvent::builder(new.event_type, new.payload)
        .with_id(new.event_id)
        .with_stream(StreamId::new(stream).unwrap(), 1)
        .with_position(Position::new(1, 1))
        .with_schema_version(new.schema_version)
        .with_recorded_at(chrono::Utc::now())
        .build()
}

// ---- failing when it should -----------------------------------------------

#[test]
#[should_panic(
    expected = "the saga sent 1 command(s) that the test never asserted before the end \
                           of the test:\n  - Reserve\nassert them with then_commands([...])"
)]
fn finish_fails_on_an_unasserted_command() {
    let mut test = SagaTest::new(Checkout);
    test.when(ordered());
    test.finish();
}

#[test]
#[should_panic(expected = "never asserted before the SagaTest was dropped")]
fn dropping_the_test_fails_on_an_unasserted_command() {
    let mut test = SagaTest::new(Checkout);
    test.when(ordered());
}

#[test]
#[should_panic(expected = "never asserted before when(Reserved)")]
fn the_next_input_fails_while_a_command_is_unasserted() {
    let mut test = SagaTest::new(Checkout);
    test.when(ordered());
    test.when(Input::Reserved);
}

#[test]
#[should_panic(expected = "never asserted before advance(30s)")]
fn letting_time_pass_fails_while_a_command_is_unasserted() {
    let mut test = SagaTest::new(Checkout);
    test.when(ordered());
    test.advance(REPLY);
}

#[test]
#[should_panic(expected = "the saga sent other commands than expected after when(Reserved)")]
fn then_commands_fails_on_other_commands() {
    let mut test = SagaTest::new(Checkout);
    test.when(ordered()).then_commands([Command::Reserve]);
    test.when(Input::Reserved)
        .then_commands([Command::Charge { amount: 41 }]);
}

#[test]
#[should_panic(expected = "the saga sent other commands than expected")]
fn then_commands_fails_on_compensations_in_the_wrong_order() {
    let mut test = SagaTest::new(Checkout);
    test.given([ordered(), Input::Reserved, Input::Charged]);
    test.when(Input::ShippingFailed)
        .then_commands([Command::Release, Command::Refund { amount: 40 }]);
}

#[test]
#[should_panic(
    expected = "expected the saga to send [Ship] after when(Reserved), but it sent no \
                           command"
)]
fn then_commands_fails_when_nothing_was_sent() {
    let mut test = SagaTest::new(Checkout);
    test.given([ordered(), Input::Reserved]);
    test.when(Input::Reserved).then_commands([Command::Ship]);
}

#[test]
#[should_panic(expected = "expected the saga to have completed, but it has compensated")]
fn then_completed_fails_on_a_compensated_saga() {
    let mut test = SagaTest::new(Checkout);
    test.given([ordered(), Input::Reserved, Input::Declined]);
    test.then_completed();
}

#[test]
#[should_panic(expected = "expected the saga to have compensated, but it is still running")]
fn then_compensated_fails_on_a_running_saga() {
    let mut test = SagaTest::new(Checkout);
    test.given([ordered()]);
    test.then_compensated();
}

#[test]
#[should_panic(expected = "the timeout `reply` fires in 30s, not in 20s")]
fn then_timeout_fails_on_another_deadline() {
    let mut test = SagaTest::new(Checkout);
    test.given([ordered()]);
    test.then_timeout("reply", Duration::from_secs(20));
}

#[test]
#[should_panic(expected = "the saga recorded other events than expected after when(Reserved)")]
fn then_events_fails_on_other_events() {
    let mut test = SagaTest::new(Checkout);
    test.given([ordered()]);
    test.when(Input::Reserved)
        .then_commands([Command::Charge { amount: 40 }])
        .then_events([Recorded::Charged]);
}

#[test]
#[should_panic(expected = "did not route the Reserved event order-7@1 to any saga instance")]
fn when_event_fails_on_an_event_the_saga_does_not_route() {
    struct Deaf;
    impl Saga for Deaf {
        const KIND: &'static str = "deaf";
        type State = ();
        type Input = Input;
        type Event = Recorded;
        type Command = Command;
        fn route(&self, _: &StoredEvent) -> Result<Option<Routed<Input>>, SagaError> {
            Ok(None)
        }
        fn react(&self, _: &(), _: Input, _: &SagaContext) -> Reaction<Self> {
            Reaction::new()
        }
        fn apply(_: &mut (), _: &Recorded) {}
    }
    SagaTest::new(Deaf).when_event(&stored("order-7", &Input::Reserved));
}

#[test]
#[should_panic(
    expected = "sent the Ordered event to saga `7`, but this test drives saga \
                           `saga-under-test`"
)]
fn when_event_fails_on_an_event_for_another_instance() {
    SagaTest::new(Checkout).when_event(&stored("order-7", &ordered()));
}

/// A saga whose state depends on something its event does not store.
struct Forgetful;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Noted {
    Noted {
        #[serde(skip)]
        note: String,
    },
}
impl Event for Noted {}

impl Saga for Forgetful {
    const KIND: &'static str = "forgetful";
    type State = String;
    type Input = String;
    type Event = Noted;
    type Command = String;
    fn route(&self, _: &StoredEvent) -> Result<Option<Routed<String>>, SagaError> {
        Ok(None)
    }
    fn react(&self, _: &String, note: String, _: &SagaContext) -> Reaction<Self> {
        Reaction::new().record(Noted::Noted { note })
    }
    fn apply(state: &mut String, Noted::Noted { note }: &Noted) {
        state.clone_from(note);
    }
}

#[test]
#[should_panic(
    expected = "replaying the saga's stored events gives another state than the live \
                           one"
)]
fn a_state_that_would_not_survive_a_restart_fails_the_test() {
    SagaTest::new(Forgetful).when("remember me".into());
}

#[test]
#[should_panic(expected = "is reserved for the saga runtime")]
fn an_event_type_in_the_runtime_namespace_fails_the_test() {
    struct Intruder;
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    enum Sneaky {
        #[serde(rename = "$saga.step")]
        Step,
    }
    impl Event for Sneaky {}
    impl Saga for Intruder {
        const KIND: &'static str = "intruder";
        type State = ();
        type Input = ();
        type Event = Sneaky;
        type Command = ();
        fn route(&self, _: &StoredEvent) -> Result<Option<Routed<()>>, SagaError> {
            Ok(None)
        }
        fn react(&self, _: &(), _: (), _: &SagaContext) -> Reaction<Self> {
            Reaction::new().record(Sneaky::Step)
        }
        fn apply(_: &mut (), _: &Sneaky) {}
    }
    SagaTest::new(Intruder).when(());
}
