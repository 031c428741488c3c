//! Sagas: long-running business transactions across aggregates, with
//! compensation.
//!
//! A checkout touches three aggregates, each its own consistency boundary:
//! the order, the inventory, the payment. No transaction spans them. A
//! **saga** coordinates them step by step (reserve the stock, charge the
//! card, confirm the order) and, when a step fails or takes too long,
//! **compensates** the steps already done, most recent first (refund the
//! card, release the stock, cancel the order).
//!
//! # The model
//!
//! A saga is a reducer over its own state, written as a [`Saga`]:
//!
//! - [`Saga::route`] says which saga instance an incoming event is for (by
//!   a correlation id: the order id, say) and turns it into the saga's
//!   input.
//! - [`Saga::react`] (and [`Saga::on_timeout`]) decide, from the state and
//!   the input alone, what happens: a [`Reaction`] of the saga's own
//!   **events** to record, **commands** to send, **timeouts** to start or
//!   cancel, and whether the saga is over. Pure: no I/O, no clock except the
//!   `now` in its [`SagaContext`].
//! - [`Saga::apply`] turns a recorded event into the next state. Replaying
//!   the saga's events rebuilds its state, like an aggregate's.
//!
//! The state carries **everything** the saga needs later (the items, the
//! total, the customer), taken from fat events as they arrive. A saga never
//! queries a projection: a read model may lag behind the very event the
//! saga is reacting to.
//!
//! [`SagaSteps`] keeps the steps taken and the compensation of each, and
//! lists the compensations in reverse order when a step fails.
//!
//! # Why a `Saga` and not a plain [`Reducer`](crate::Reducer)
//!
//! A reducer's effects are futures: opaque until they run. A saga's
//! commands must be **recorded before they run** (so a crash between
//! deciding and sending loses nothing) and **asserted as values** in tests
//! (so `SagaTest` can demand that every command be accounted for). So a
//! saga returns its commands and timeouts as data in a [`Reaction`], and
//! the [`SagaRuntime`] turns them into effects: an append, the delivery
//! through a [`CommandDispatcher`], and an
//! [`Effect::delay`](crate::Effect::delay) made cancellable per timeout.
//!
//! # Persistence: the saga's own stream
//!
//! Each instance has a stream `saga-{KIND}-{id}` in the event store. Each
//! step is **one atomic append**: the saga's events, then a `$saga.step`
//! record of what caused the step (the input's event id, or the timeout),
//! the commands issued (with stable [`CommandId`]s), the timeouts started
//! or cancelled (with absolute deadlines) and the outcome. Once commands
//! are delivered, a `$saga.dispatched` record says so. A catalog stream
//! `sagas-{KIND}` lists the instances started and closed, so a restarted
//! process finds the running ones ([`SagaRuntime::resume`]).
//!
//! # Guarantees
//!
//! | what happens | what the runtime does |
//! |---|---|
//! | an event is delivered twice (at-least-once bus, catch-up from an old position) | the input's id is in the saga's state: ignored ([`Handled::Duplicate`]) |
//! | the process dies after a step was recorded, before its commands were sent | [`resume`](SagaRuntime::resume) sends them |
//! | the process dies after sending a command, before recording that | `resume` sends it again, with the same [`CommandId`]: receivers use it as an idempotency key, so no step runs twice with effect |
//! | the process dies while a timeout runs | `resume` arms it again for what is left of its deadline |
//! | two processes handle the same saga | optimistic concurrency on the saga's stream: the loser reloads and decides again |
//! | a command cannot be delivered | the step stays recorded, the command pending: retried on the next event for the saga, by [`retry_pending`](SagaRuntime::retry_pending), or by `resume` ([`SagaError::Dispatch`]) |
//! | an event arrives after the saga ended | ignored ([`Handled::Ended`]) |
//!
//! # Where events come from
//!
//! [`SagaRuntime::handle`] takes one stored event; that is the seam for any
//! transport. [`SagaRuntime::catch_up`] follows the event store's global
//! stream from a position (no bus needed); an event bus consumer calls
//! `handle` for each delivery and acknowledges it once `handle` returned
//! `Ok`.
//!
//! # Example
//!
//! A two-step saga: reserve, then charge; a declined charge releases the
//! reservation; no answer within 30 s does the same.
//!
//! ```
//! use std::time::Duration;
//! use composable_rust_core::saga::{
//!     Reaction, Routed, Saga, SagaContext, SagaError, SagaId, SagaSteps,
//! };
//! use composable_rust_core::{Event, StoredEvent};
//! use serde::{Deserialize, Serialize};
//!
//! /// What the saga reacts to (decoded from the domain's events).
//! #[derive(Debug, Clone, PartialEq)]
//! enum Input { Ordered { amount: u64 }, Reserved, Charged, Declined }
//!
//! /// What the saga records about itself.
//! #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
//! enum Recorded { Started { amount: u64 }, Reserved, Charged, Failed }
//! impl Event for Recorded {}
//!
//! /// What it asks others to do.
//! #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
//! enum Command { Reserve, Release, Charge { amount: u64 } }
//!
//! #[derive(Debug, Clone, Default, PartialEq)]
//! struct State { amount: u64, steps: SagaSteps<Command> }
//!
//! struct Checkout;
//!
//! impl Saga for Checkout {
//!     const KIND: &'static str = "checkout";
//!     type State = State;
//!     type Input = Input;
//!     type Event = Recorded;
//!     type Command = Command;
//!
//!     fn route(&self, _event: &StoredEvent) -> Result<Option<Routed<Input>>, SagaError> {
//!         Ok(None) // decode the domain's events here
//!     }
//!
//!     fn react(&self, state: &State, input: Input, _ctx: &SagaContext) -> Reaction<Self> {
//!         match input {
//!             Input::Ordered { amount } if state.steps.in_flight().is_empty() => Reaction::new()
//!                 .record(Recorded::Started { amount })
//!                 .send(Command::Reserve)
//!                 .start_timeout("reply", Duration::from_secs(30)),
//!             Input::Reserved if state.steps.in_flight() == ["inventory"] => Reaction::new()
//!                 .record(Recorded::Reserved)
//!                 .send(Command::Charge { amount: state.amount })
//!                 .start_timeout("reply", Duration::from_secs(30)),
//!             Input::Charged if state.steps.in_flight() == ["payment"] => Reaction::new()
//!                 .record(Recorded::Charged)
//!                 .complete(),
//!             Input::Declined if state.steps.in_flight() == ["payment"] => Reaction::new()
//!                 .record(Recorded::Failed)
//!                 .send_all(state.steps.compensations())
//!                 .compensated(),
//!             _ => Reaction::new(), // late, repeated or out of place: nothing to do
//!         }
//!     }
//!
//!     fn on_timeout(&self, state: &State, _name: &str, _ctx: &SagaContext) -> Reaction<Self> {
//!         Reaction::new()
//!             .record(Recorded::Failed)
//!             .send_all(state.steps.compensations())
//!             .compensated()
//!     }
//!
//!     fn apply(state: &mut State, event: &Recorded) {
//!         match event {
//!             Recorded::Started { amount } => {
//!                 state.amount = *amount;
//!                 state.steps.start("inventory", Some(Command::Release));
//!             }
//!             Recorded::Reserved => {
//!                 state.steps.complete("inventory");
//!                 state.steps.start("payment", None);
//!             }
//!             Recorded::Charged => state.steps.complete("payment"),
//!             Recorded::Failed => {
//!                 for step in ["inventory", "payment"] {
//!                     if state.steps.in_flight().contains(&step) {
//!                         state.steps.fail(step);
//!                     }
//!                 }
//!             }
//!         }
//!     }
//! }
//! # let _ = SagaId::new("order-1").unwrap();
//! ```
//!
//! Test it with `SagaTest` (in `composable-rust-testing`); run it with a
//! [`SagaRuntime`].
//!
//! # Diagrams
//!
//! A saga may declare its steps and compensations as a [`SagaMap`]
//! ([`DeclaredSaga`]), drawn as a mermaid flowchart and checked against the
//! saga's code by [`SagaMap::verify`]. One instance's recorded history
//! ([`SagaHistory`]) is drawn as a mermaid sequence diagram.

mod diagram;
mod dispatch;
mod error;
mod history;
mod id;
pub(crate) mod instance;
mod reaction;
mod runtime;
mod steps;

use std::fmt::Debug;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde::de::DeserializeOwned;

pub use diagram::{DeclaredSaga, SagaMap, SagaMapBuilder, SagaMapStep};
pub use dispatch::{CommandDispatcher, RetryingDispatcher};
pub use error::{DispatchError, SagaError};
pub use history::{HistoryEntry, SagaHistory, StepCause};
pub use id::{COMMAND_ID_HEADER, CommandId, SAGA_ID_HEADER, SagaCommand, SagaId};
pub use instance::SagaInstance;
pub use reaction::{Reaction, SagaOutcome, TimeoutChange};
pub use runtime::{Handled, ResumeReport, SagaRuntime, SagaRuntimeBuilder};
pub use steps::SagaSteps;

use crate::event::{Event, StoredEvent};

/// A saga: which events it follows, how it reacts to each, and how its own
/// events build its state. See the [module docs](self) for the model and
/// an example.
///
/// # Examples
///
/// A saga is pure: `react` decides, `apply` records. (The
/// [`SagaRuntime`] persists and delivers; `SagaTest` in
/// `composable-rust-testing` tests a saga without one.)
///
/// ```
/// use composable_rust_core::saga::{Reaction, Routed, Saga, SagaContext, SagaError, SagaId};
/// use composable_rust_core::{Event, StoredEvent};
/// use serde::{Deserialize, Serialize};
///
/// /// Sends one reminder per order, and ends when it was delivered.
/// struct Reminder;
///
/// #[derive(Debug, Clone, PartialEq)]
/// enum Input { Ordered, Notified }
///
/// #[derive(Debug, Clone, Serialize, Deserialize)]
/// enum Recorded { Started, Done }
/// impl Event for Recorded {}
///
/// #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
/// enum Command { Notify }
///
/// impl Saga for Reminder {
///     const KIND: &'static str = "reminder";
///     type State = bool; // started?
///     type Input = Input;
///     type Event = Recorded;
///     type Command = Command;
///
///     fn route(&self, event: &StoredEvent) -> Result<Option<Routed<Input>>, SagaError> {
///         let input = match event.event_type.as_str() {
///             "Ordered" => Input::Ordered,
///             "Notified" => Input::Notified,
///             _ => return Ok(None),
///         };
///         Ok(Some(Routed::new(SagaId::new(event.stream_id.as_str())?, input)))
///     }
///
///     fn react(&self, started: &bool, input: Input, _: &SagaContext) -> Reaction<Self> {
///         match input {
///             Input::Ordered if !started => Reaction::new().record(Recorded::Started).send(Command::Notify),
///             Input::Notified if *started => Reaction::new().record(Recorded::Done).complete(),
///             _ => Reaction::new(), // repeated or late: nothing to do
///         }
///     }
///
///     fn apply(started: &mut bool, event: &Recorded) {
///         *started = matches!(event, Recorded::Started);
///     }
/// }
///
/// # fn main() -> Result<(), SagaError> {
/// let ctx = SagaContext::new(SagaId::new("order-1")?, chrono::Utc::now());
/// let reaction = Reminder.react(&false, Input::Ordered, &ctx);
/// assert_eq!(reaction.commands(), [Command::Notify]);
///
/// let mut started = false;
/// for event in reaction.events() {
///     Reminder::apply(&mut started, event);
/// }
/// assert!(Reminder.react(&started, Input::Ordered, &ctx).commands().is_empty(), "only once");
/// # Ok(())
/// # }
/// ```
pub trait Saga: Send + Sync + Sized + 'static {
    /// The name of this kind of saga, e.g. `"checkout"`: its instances'
    /// streams are `saga-{KIND}-{id}`. Changing it orphans running sagas.
    const KIND: &'static str;

    /// Everything the saga knows: built by [`apply`](Saga::apply) from its
    /// events, starting from `Default`.
    type State: Default + Clone + Debug + Send + Sync + 'static;
    /// What the saga reacts to, decoded from domain events by
    /// [`route`](Saga::route).
    type Input: Clone + Debug + Send + Sync + 'static;
    /// What the saga records about itself; stored in its stream.
    type Event: Event + Clone + Debug;
    /// What the saga asks others to do; stored with the step that issued
    /// it until it is delivered, so it must survive serde.
    type Command: Clone + Debug + Serialize + DeserializeOwned + Send + Sync + 'static;

    /// Which instance `event` is for and what it means to it, or `None` if
    /// this saga does not care about it. Decode the payload with
    /// [`decode`](crate::event::decode); the instance id is usually in the
    /// (fat) event or its correlation id ([`SagaId::from_correlation`]).
    /// An error (an event that cannot be decoded) is returned by
    /// [`SagaRuntime::handle`], and the event is not acknowledged.
    fn route(&self, event: &StoredEvent) -> Result<Option<Routed<Self::Input>>, SagaError>;

    /// What happens when `input` arrives. Pure: decide from `state` and
    /// `input` only; return [`Reaction::new`] for an input that does not
    /// concern the saga in its current state (a late or repeated reply).
    fn react(&self, state: &Self::State, input: Self::Input, ctx: &SagaContext) -> Reaction<Self>;

    /// What happens when the timeout `name` fires. The default does
    /// nothing.
    fn on_timeout(&self, state: &Self::State, name: &str, ctx: &SagaContext) -> Reaction<Self> {
        let _ = (state, name, ctx);
        Reaction::new()
    }

    /// The state after `event`. Pure and infallible: the event happened.
    fn apply(state: &mut Self::State, event: &Self::Event);
}

/// An event routed to a saga instance: which instance, and the input.
#[derive(Debug, Clone, PartialEq)]
pub struct Routed<I> {
    /// The saga instance the event is for.
    pub saga_id: SagaId,
    /// What the event means to the saga.
    pub input: I,
}

impl<I> Routed<I> {
    /// `input` for the saga instance `saga_id`.
    pub fn new(saga_id: SagaId, input: I) -> Self {
        Self { saga_id, input }
    }
}

/// What a saga may know besides its state and the input.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SagaContext {
    /// The instance reacting.
    pub saga_id: SagaId,
    /// The time, on the runtime's clock.
    pub now: DateTime<Utc>,
}

impl SagaContext {
    /// A context for saga `saga_id` at time `now`.
    pub fn new(saga_id: SagaId, now: DateTime<Utc>) -> Self {
        Self { saga_id, now }
    }
}
