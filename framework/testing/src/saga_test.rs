//! [`SagaTest`]: exhaustive, step-by-step testing of a [`Saga`], with time
//! on a [`TestClock`].
//!
//! Feed the saga inputs ([`when`](SagaTest::when)) and let time pass
//! ([`advance`](SagaTest::advance)); after each, assert the commands it
//! sent ([`then_commands`](SagaTest::then_commands)). Every command the saga
//! emits must be asserted: feeding the next input, letting time pass or
//! ending the test while a command is unasserted fails the test, naming the
//! commands.
//!
//! It runs the same decision and replay code as the
//! [`SagaRuntime`](composable_rust_core::saga::SagaRuntime), without a store
//! or a runtime. After every step it also encodes what the runtime would
//! store and replays it, failing if the replayed saga differs from the live
//! one (an event that does not survive serde, or an `apply` that depends on
//! something besides the event), so a restarted process would resume
//! exactly where it stopped.

use std::collections::VecDeque;
use std::fmt::Debug;
use std::time::Duration;

use chrono::{DateTime, Utc};
use composable_rust_core::__private::{Decision, SagaMessage, Transition};
use composable_rust_core::saga::{Saga, SagaId, SagaInstance, SagaOutcome};
use composable_rust_core::{Clock, Position, StoredEvent, TestClock, Upcasters};
use uuid::Uuid;

use crate::diff::diff;

/// The saga id a [`SagaTest`] uses unless told otherwise.
const DEFAULT_SAGA_ID: &str = "saga-under-test";
/// More timeouts firing within one `advance` than this means they restart
/// each other forever.
const MAX_TIMEOUTS_PER_ADVANCE: usize = 1_000;

/// Drives one saga instance input by input and asserts every command it
/// sends.
///
/// ```
/// use std::time::Duration;
/// use composable_rust_core::saga::{Reaction, Routed, Saga, SagaContext, SagaError};
/// use composable_rust_core::{Event, StoredEvent};
/// use composable_rust_testing::SagaTest;
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Debug, Clone, PartialEq)]
/// enum Input { Ordered, Paid }
/// #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
/// enum Recorded { Waiting, Done, GaveUp }
/// impl Event for Recorded {}
/// #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
/// enum Command { Charge, Ship, Cancel }
///
/// struct Shipping;
/// impl Saga for Shipping {
///     const KIND: &'static str = "shipping";
///     type State = Option<Recorded>;
///     type Input = Input;
///     type Event = Recorded;
///     type Command = Command;
///     fn route(&self, _: &StoredEvent) -> Result<Option<Routed<Input>>, SagaError> {
///         Ok(None)
///     }
///     fn react(&self, state: &Self::State, input: Input, _: &SagaContext) -> Reaction<Self> {
///         match (state, input) {
///             (None, Input::Ordered) => Reaction::new()
///                 .record(Recorded::Waiting)
///                 .send(Command::Charge)
///                 .start_timeout("payment", Duration::from_secs(60)),
///             (Some(Recorded::Waiting), Input::Paid) => Reaction::new()
///                 .record(Recorded::Done)
///                 .send(Command::Ship)
///                 .complete(),
///             _ => Reaction::new(),
///         }
///     }
///     fn on_timeout(&self, _: &Self::State, _: &str, _: &SagaContext) -> Reaction<Self> {
///         Reaction::new().record(Recorded::GaveUp).send(Command::Cancel).compensated()
///     }
///     fn apply(state: &mut Self::State, event: &Recorded) {
///         *state = Some(event.clone());
///     }
/// }
///
/// // Happy path.
/// let mut test = SagaTest::new(Shipping);
/// test.when(Input::Ordered).then_commands([Command::Charge]);
/// test.when(Input::Paid).then_commands([Command::Ship]).then_completed();
/// test.finish();
///
/// // No payment within a minute: instant on the test clock.
/// let mut test = SagaTest::new(Shipping);
/// test.when(Input::Ordered).then_commands([Command::Charge]);
/// test.then_timeout("payment", Duration::from_secs(60));
/// test.advance(Duration::from_secs(60)).then_commands([Command::Cancel]).then_compensated();
/// test.finish();
/// ```
pub struct SagaTest<S: Saga> {
    saga: S,
    instance: SagaInstance<S>,
    clock: TestClock,
    upcasters: Upcasters,
    /// The saga's stream as the runtime would have stored it.
    stored: Vec<StoredEvent>,
    inputs: u128,
    last_input: Option<(Uuid, S::Input)>,
    unasserted: VecDeque<S::Command>,
    last_events: Vec<S::Event>,
    last_step: Option<String>,
    finished: bool,
}

impl<S: Saga> SagaTest<S>
where
    S::State: PartialEq,
    S::Event: PartialEq,
    S::Command: PartialEq,
{
    /// A test of a new instance of `saga` (id `saga-under-test`), on its own
    /// [`TestClock`].
    pub fn new(saga: S) -> Self {
        let id = SagaId::new(DEFAULT_SAGA_ID).expect("a valid saga id");
        Self {
            saga,
            instance: new_instance::<S>(id),
            clock: TestClock::new(),
            upcasters: Upcasters::new(),
            stored: Vec::new(),
            inputs: 0,
            last_input: None,
            unasserted: VecDeque::new(),
            last_events: Vec::new(),
            last_step: None,
            finished: false,
        }
    }

    /// Runs on `clock` (share it with whatever else the test controls).
    #[must_use]
    pub fn with_clock(mut self, clock: TestClock) -> Self {
        self.clock = clock;
        self
    }

    /// Tests the instance `id` (it shows in command ids, and
    /// [`when_event`](Self::when_event) expects events routed to it).
    #[track_caller]
    #[must_use]
    pub fn with_saga_id(mut self, id: &str) -> Self {
        assert!(
            self.instance.version() == 0,
            "with_saga_id must come before the first input"
        );
        let id = SagaId::new(id).unwrap_or_else(|error| panic!("{error}"));
        self.instance = new_instance::<S>(id);
        self
    }

    /// Replays the saga's stream with `upcasters` in the checks after each
    /// step (and in [`restart`](Self::restart)).
    #[must_use]
    pub fn with_upcasters(mut self, upcasters: Upcasters) -> Self {
        self.upcasters = upcasters;
        self
    }

    /// Inputs that already happened: the saga handles them, and the
    /// commands it sends for them need not be asserted. For tests that start
    /// in the middle of a flow.
    #[track_caller]
    pub fn given(&mut self, inputs: impl IntoIterator<Item = S::Input>) -> &mut Self {
        self.assert_all_asserted("given(...)");
        for input in inputs {
            self.when(input);
            self.unasserted.clear();
        }
        self
    }

    /// The saga receives `input` (with a fresh id, as a new stored event
    /// would have).
    #[track_caller]
    pub fn when(&mut self, input: S::Input) -> &mut Self {
        self.inputs += 1;
        let id = Uuid::from_u128(self.inputs);
        let label = format!("when({input:?})");
        self.deliver(id, input, label)
    }

    /// The saga receives the stored `event`, through
    /// [`Saga::route`]: tests the routing and decoding too. Fails if the
    /// event is not routed to this instance.
    #[track_caller]
    pub fn when_event(&mut self, event: &StoredEvent) -> &mut Self {
        let routed = match self.saga.route(event) {
            Ok(Some(routed)) => routed,
            Ok(None) => panic!(
                "Saga::route did not route the {} event {}@{} to any saga instance",
                event.event_type, event.stream_id, event.stream_version
            ),
            Err(error) => panic!("Saga::route failed: {error}"),
        };
        assert!(
            routed.saga_id == *self.instance.id(),
            "Saga::route sent the {} event to saga `{}`, but this test drives saga `{}` \
             (set it with with_saga_id)",
            event.event_type,
            routed.saga_id,
            self.instance.id()
        );
        let label = format!("when_event({}@{})", event.stream_id, event.stream_version);
        self.deliver(event.event_id, routed.input, label)
    }

    /// The last input arrives again, with the same id (an at-least-once
    /// delivery): a saga handles it once, so it must send nothing.
    #[track_caller]
    pub fn when_redelivered(&mut self) -> &mut Self {
        let Some((id, input)) = self.last_input.clone() else {
            panic!("when_redelivered() needs an earlier when(...)");
        };
        let label = format!("when_redelivered({input:?})");
        self.deliver(id, input, label)
    }

    /// Lets `duration` pass on the test clock; the timeouts that fall due
    /// fire in deadline order, and their commands must then be asserted.
    #[track_caller]
    pub fn advance(&mut self, duration: Duration) -> &mut Self {
        self.assert_all_asserted(&format!("advance({duration:?})"));
        let target = self.clock.now() + to_chrono(duration);
        let mut fired = Vec::new();
        for _ in 0..MAX_TIMEOUTS_PER_ADVANCE {
            let due = self
                .instance
                .timeouts()
                .iter()
                .filter(|(_, deadline)| **deadline <= target)
                .min_by_key(|(_, deadline)| **deadline)
                .map(|(name, deadline)| (name.clone(), *deadline));
            let Some((name, deadline)) = due else {
                self.move_clock_to(target);
                if !fired.is_empty() {
                    self.last_step = Some(format!(
                        "advance({duration:?}), which fired {}",
                        fired.join(", ")
                    ));
                }
                return self;
            };
            self.move_clock_to(deadline);
            fired.push(format!("timeout `{name}`"));
            let label = format!("timeout `{name}`");
            self.step(SagaMessage::Timeout { name, deadline }, &label, false);
        }
        panic!(
            "more than {MAX_TIMEOUTS_PER_ADVANCE} timeouts fired within advance({duration:?}); \
             does on_timeout restart a timeout with a zero duration?"
        );
    }

    /// Simulates a restart: the saga is rebuilt from what the runtime would
    /// have stored, as a new process would load it.
    #[track_caller]
    pub fn restart(&mut self) -> &mut Self {
        self.instance = self.replay("restart()");
        self
    }

    /// Asserts that the saga sent exactly `expected`, in order, since the
    /// last assertion; they count as asserted afterwards.
    #[track_caller]
    pub fn then_commands(&mut self, expected: impl IntoIterator<Item = S::Command>) -> &mut Self {
        let expected: Vec<S::Command> = expected.into_iter().collect();
        let actual: Vec<S::Command> = self.unasserted.drain(..).collect();
        if actual != expected {
            let after = self.last_step.as_deref().unwrap_or("the start of the test");
            if actual.is_empty() {
                panic!(
                    "expected the saga to send {expected:?} after {after}, but it sent no \
                     command"
                );
            }
            panic!(
                "the saga sent other commands than expected after {after} {}",
                diff(&expected, &actual)
            );
        }
        self
    }

    /// Asserts that the saga sent no command since the last assertion.
    #[track_caller]
    pub fn then_no_commands(&mut self) -> &mut Self {
        self.then_commands([])
    }

    /// Asserts the events the last input (or timeout) made the saga record
    /// (none when it had nothing to do, or was a duplicate).
    #[track_caller]
    pub fn then_events(&mut self, expected: impl IntoIterator<Item = S::Event>) -> &mut Self {
        let expected: Vec<S::Event> = expected.into_iter().collect();
        assert!(
            self.last_events == expected,
            "the saga recorded other events than expected after {} {}",
            self.last_step.as_deref().unwrap_or("the start of the test"),
            diff(&expected, &self.last_events)
        );
        self
    }

    /// Asserts that the timeout `name` is running and fires in exactly
    /// `remaining`.
    #[track_caller]
    pub fn then_timeout(&mut self, name: &str, remaining: Duration) -> &mut Self {
        let now = self.clock.now();
        match self.instance.timeouts().get(name) {
            Some(deadline) => {
                let left = (*deadline - now).to_std().unwrap_or_default();
                assert!(
                    left == remaining,
                    "the timeout `{name}` fires in {left:?}, not in {remaining:?}"
                );
            }
            None => panic!(
                "expected the timeout `{name}` to be running, but the running timeouts are {:?}",
                self.instance.timeouts().keys().collect::<Vec<_>>()
            ),
        }
        self
    }

    /// Asserts that no timeout is running.
    #[track_caller]
    pub fn then_no_timeouts(&mut self) -> &mut Self {
        assert!(
            self.instance.timeouts().is_empty(),
            "expected no running timeouts, but these are running: {:?}",
            self.instance.timeouts().keys().collect::<Vec<_>>()
        );
        self
    }

    /// Asserts that the saga has not ended.
    #[track_caller]
    pub fn then_running(&mut self) -> &mut Self {
        if let Some(outcome) = self.instance.outcome() {
            panic!("expected the saga to be running, but it has {outcome}");
        }
        self
    }

    /// Asserts that the saga ended with [`SagaOutcome::Completed`].
    #[track_caller]
    pub fn then_completed(&mut self) -> &mut Self {
        self.then_outcome(SagaOutcome::Completed)
    }

    /// Asserts that the saga ended with [`SagaOutcome::Compensated`].
    #[track_caller]
    pub fn then_compensated(&mut self) -> &mut Self {
        self.then_outcome(SagaOutcome::Compensated)
    }

    /// Runs `check` on the saga's state (assert what matters there).
    pub fn then_state(&mut self, check: impl FnOnce(&S::State)) -> &mut Self {
        check(self.instance.state());
        self
    }

    /// The saga's state.
    pub fn state(&self) -> &S::State {
        self.instance.state()
    }

    /// The saga instance: state, running timeouts, outcome.
    pub fn instance(&self) -> &SagaInstance<S> {
        &self.instance
    }

    /// The clock timeouts run on.
    pub fn clock(&self) -> &TestClock {
        &self.clock
    }

    /// Ends the test; fails if a command the saga sent was never asserted.
    /// Running timeouts are fine (a saga waiting for a reply is a normal
    /// place to stop); assert them with [`then_timeout`](Self::then_timeout).
    #[track_caller]
    pub fn finish(mut self) {
        self.finished = true;
        self.assert_all_asserted("the end of the test");
    }

    #[track_caller]
    fn then_outcome(&mut self, expected: SagaOutcome) -> &mut Self {
        match self.instance.outcome() {
            Some(outcome) if outcome == expected => {}
            Some(outcome) => panic!("expected the saga to have {expected}, but it has {outcome}"),
            None => panic!(
                "expected the saga to have {expected}, but it is still running (after {})",
                self.last_step.as_deref().unwrap_or("the start of the test")
            ),
        }
        self
    }

    #[track_caller]
    fn deliver(&mut self, id: Uuid, input: S::Input, label: String) -> &mut Self {
        self.assert_all_asserted(&label);
        self.last_input = Some((id, input.clone()));
        self.step(SagaMessage::Input { id, input }, &label, true);
        self.last_step = Some(label);
        self
    }

    #[track_caller]
    fn step(&mut self, message: SagaMessage<S::Input>, label: &str, from_input: bool) {
        let decision = self.instance.decide(&self.saga, message, self.clock.now());
        let transition = match decision {
            Decision::Step(transition) => transition,
            _ => {
                if from_input {
                    self.last_events.clear();
                }
                return;
            }
        };
        self.store(&transition, label);
        self.last_events = transition.events.clone();
        self.unasserted
            .extend(transition.commands.iter().map(|c| c.command.clone()));
        let version = self.stored.len() as u64;
        self.instance.commit(transition, version);
        let replayed = self.replay(label);
        if replayed.state() != self.instance.state() {
            panic!(
                "after {label}, replaying the saga's stored events gives another state than \
                 the live one, so a restarted process would resume from another state: make \
                 every event carry all that apply() needs, and check its serde attributes {}",
                diff(self.instance.state(), replayed.state())
            );
        }
        assert!(
            replayed.timeouts() == self.instance.timeouts()
                && replayed.outcome() == self.instance.outcome(),
            "after {label}, the replayed saga's timeouts or outcome differ from the live one's"
        );
    }

    /// Appends what the runtime would store for `transition`.
    #[track_caller]
    fn store(&mut self, transition: &Transition<S>, label: &str) {
        let events = transition
            .to_new_events(self.instance.id())
            .unwrap_or_else(|error| {
                panic!("after {label}, the step cannot be stored: {error}");
            });
        let recorded_at = self.clock.now();
        for event in events {
            let number = self.stored.len() as u64 + 1;
            self.stored.push(
                StoredEvent::builder(event.event_type, event.payload)
                    .with_id(event.event_id)
                    .with_stream(self.instance.stream_id().clone(), number)
                    .with_position(Position::new(number, number))
                    .with_schema_version(event.schema_version)
                    .with_metadata(event.metadata)
                    .with_recorded_at(recorded_at)
                    .build(),
            );
        }
    }

    #[track_caller]
    fn replay(&self, label: &str) -> SagaInstance<S> {
        SagaInstance::replay(self.instance.id().clone(), &self.stored, &self.upcasters)
            .unwrap_or_else(|error| {
                panic!(
                    "after {label}, the saga's stored events cannot be replayed, so a \
                     restarted process could not resume it: {error}"
                )
            })
    }

    fn move_clock_to(&self, instant: DateTime<Utc>) {
        let now = self.clock.now();
        if instant > now {
            self.clock
                .advance((instant - now).to_std().unwrap_or_default());
        }
    }
}

impl<S: Saga> SagaTest<S> {
    #[track_caller]
    fn assert_all_asserted(&self, before: &str) {
        if !self.unasserted.is_empty() {
            panic!(
                "the saga sent {} command(s) that the test never asserted before {before}:\n{}\n\
                 assert them with then_commands([...])",
                self.unasserted.len(),
                list(&self.unasserted)
            );
        }
    }
}

impl<S: Saga> Drop for SagaTest<S> {
    fn drop(&mut self) {
        if self.finished || std::thread::panicking() {
            return;
        }
        self.assert_all_asserted("the SagaTest was dropped (end tests with finish())");
    }
}

impl<S: Saga> std::fmt::Debug for SagaTest<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SagaTest")
            .field("instance", &self.instance)
            .field("unasserted", &self.unasserted)
            .finish_non_exhaustive()
    }
}

fn new_instance<S: Saga>(id: SagaId) -> SagaInstance<S> {
    SagaInstance::new(id).unwrap_or_else(|error| panic!("{error} (is Saga::KIND a short name?)"))
}

fn to_chrono(duration: Duration) -> chrono::Duration {
    chrono::Duration::from_std(duration).unwrap_or(chrono::Duration::MAX)
}

fn list<C: Debug>(commands: &VecDeque<C>) -> String {
    commands
        .iter()
        .map(|c| format!("  - {c:?}"))
        .collect::<Vec<_>>()
        .join("\n")
}
