//! Event-sourced aggregates: decide which events a command produces, apply
//! events to rebuild state, and a repository that does the loading and
//! saving around them.
//!
//! An [`Aggregate`] is two pure functions over its state:
//!
//! - [`decide`](Aggregate::decide): given the state and a command, which
//!   events happen (or why the command is refused);
//! - [`apply`](Aggregate::apply): given the state and an event, the next
//!   state. Replaying a stream is applying its events in order.
//!
//! The [`AggregateRepository`] loads an aggregate (latest snapshot plus the
//! events after it), runs a command through `decide`, appends the events
//! with the version it loaded as the expected version (optimistic
//! concurrency), and applies them. [`append_events`] is the same append as
//! an [`Effect`](crate::Effect), for reducers run by a [`Store`](crate::Store).
//!
//! Since every change is kept, the past can be read back:
//! [`AggregateRepository::load_at`] loads the state as of a version or a
//! time ([`AsOf`]), and [`AggregateRepository::debugger`] steps through the
//! events one by one with the state before and after each
//! ([`ReplayDebugger`], [`StateDiff`]), stopping where a condition holds
//! (a closure, or a [`StateCondition`] parsed from text).

mod condition;
mod diff;
mod effect;
mod hot;
mod replay;
mod repository;
mod temporal;

pub use condition::{ConditionError, StateCondition};
pub use diff::{Change, StateDiff};
pub use effect::append_events;
pub use replay::{ReplayDebugger, ReplayStep};
pub use repository::{AggregateRepository, Executed, Loaded, RepositoryError, SnapshotPolicy};
pub use temporal::{AsOf, AsOfError};

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::event::Event;

/// A consistency boundary whose state is rebuilt from its events.
///
/// The state is serde-serializable so the repository can snapshot it.
///
/// # Examples
///
/// ```
/// use composable_rust_core::Aggregate;
/// use composable_rust_core::event::Event;
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
/// enum CounterEvent {
///     Incremented { by: u32 },
/// }
/// impl Event for CounterEvent {}
///
/// #[derive(Debug, thiserror::Error)]
/// #[error("the counter would overflow; increment by less")]
/// struct Overflow;
///
/// #[derive(Debug, Default, Serialize, Deserialize)]
/// struct Counter {
///     value: u32,
/// }
///
/// impl Aggregate for Counter {
///     const KIND: &'static str = "counter";
///     type Event = CounterEvent;
///     type Command = u32;
///     type Error = Overflow;
///     type Environment = ();
///
///     fn decide(&self, by: u32, _env: &()) -> Result<Vec<CounterEvent>, Overflow> {
///         self.value.checked_add(by).ok_or(Overflow)?;
///         Ok(vec![CounterEvent::Incremented { by }])
///     }
///
///     fn apply(&mut self, event: &CounterEvent) {
///         match event {
///             CounterEvent::Incremented { by } => self.value += by,
///         }
///     }
/// }
///
/// let mut counter = Counter::default();
/// for event in counter.decide(2, &()).unwrap() {
///     counter.apply(&event);
/// }
/// assert_eq!(counter.value, 2);
/// assert!(counter.decide(u32::MAX, &()).is_err(), "refused: nothing happens");
/// ```
pub trait Aggregate: Default + Serialize + DeserializeOwned + Send + Sync + 'static {
    /// The stream id prefix of this kind of aggregate, e.g. `"account"`.
    const KIND: &'static str;
    /// The version of the state's serialized shape. Bump it when the shape
    /// changes: older snapshots are then ignored and streams replayed.
    const SNAPSHOT_VERSION: u32 = 1;

    /// What happened to it.
    type Event: Event + Clone;
    /// What it can be asked to do.
    type Command: Send;
    /// Why a command can be refused.
    type Error: std::error::Error + Send + Sync + 'static;
    /// What `decide` may use besides state and command (a clock, limits...).
    type Environment: Send + Sync;

    /// The events `command` produces, or why it is refused. Pure: must not
    /// change anything; the repository applies the events.
    fn decide(
        &self,
        command: Self::Command,
        env: &Self::Environment,
    ) -> Result<Vec<Self::Event>, Self::Error>;

    /// The state after `event`. Pure and infallible: events already happened.
    fn apply(&mut self, event: &Self::Event);
}
