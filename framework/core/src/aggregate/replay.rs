//! [`ReplayDebugger`]: step through an aggregate's events one at a time,
//! seeing each event and what it did to the state, or run until a
//! condition first holds.
//!
//! "How did this account end up negative?" is answered by replaying its
//! stream and watching: the debugger loads the state at a starting point
//! (a [temporal load](super::AggregateRepository::load_at)), then applies
//! the following events one by one, reporting for each the event (type,
//! version, time, payload) and the state before and after, with a
//! [`StateDiff`]. It applies events with the aggregate's own `apply`, so
//! what it shows is exactly what loading the aggregate computes.
//!
//! The events after the starting point are read and decoded up front (one
//! read of the stream), so stepping cannot fail and a stream that does not
//! decode is reported before the first step.

use std::collections::VecDeque;
use std::fmt;
use std::io;

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::event::{StoredEvent, StreamId, decode};
use crate::event_store::{EventStore, EventStoreError};

use super::diff::StateDiff;
use super::temporal::AsOf;
use super::{Aggregate, AggregateRepository};

/// One event applied by the [`ReplayDebugger`], and what it did.
pub struct ReplayStep<A: Aggregate> {
    /// The event's version in its stream.
    pub version: u64,
    /// Its stored type name.
    pub event_type: String,
    /// When the store recorded it.
    pub recorded_at: DateTime<Utc>,
    /// Its payload, as stored (before upcasting).
    pub payload: Value,
    /// The event as the aggregate sees it (after upcasting).
    pub event: A::Event,
    /// The state before the event, serialized.
    pub before: Value,
    /// The state after it, serialized.
    pub after: Value,
    /// What changed, field by field.
    pub diff: StateDiff,
}

impl<A: Aggregate> fmt::Debug for ReplayStep<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReplayStep")
            .field("version", &self.version)
            .field("event_type", &self.event_type)
            .field("recorded_at", &self.recorded_at)
            .field("payload", &self.payload)
            .field("diff", &self.diff)
            .finish_non_exhaustive()
    }
}

impl<A: Aggregate> fmt::Display for ReplayStep<A> {
    /// The event on one line (version, time, type, payload), then one
    /// indented line per change of the state.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "v{} {} {} {}",
            self.version,
            self.recorded_at.format("%Y-%m-%d %H:%M:%S%.3f UTC"),
            self.event_type,
            self.payload
        )?;
        if self.diff.is_empty() {
            return writeln!(f, "    (state unchanged)");
        }
        for change in self.diff.changes() {
            writeln!(f, "    {change}")?;
        }
        Ok(())
    }
}

/// Steps through an aggregate's events from a starting point; from
/// [`AggregateRepository::debugger`].
///
/// ```
/// # use composable_rust_core::{Aggregate, AggregateRepository, Event, InMemoryEventStore, StreamId};
/// # use composable_rust_core::aggregate::AsOf;
/// # use serde::{Deserialize, Serialize};
/// # #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
/// # enum Moved { Deposited { amount: i64 }, Withdrawn { amount: i64 } }
/// # impl Event for Moved {}
/// # #[derive(Debug, Default, Serialize, Deserialize)]
/// # struct Account { balance: i64 }
/// # impl Aggregate for Account {
/// #     const KIND: &'static str = "account";
/// #     type Event = Moved;
/// #     type Command = Moved;
/// #     type Error = std::convert::Infallible;
/// #     type Environment = ();
/// #     fn decide(&self, command: Moved, _: &()) -> Result<Vec<Moved>, Self::Error> { Ok(vec![command]) }
/// #     fn apply(&mut self, event: &Moved) {
/// #         match event { Moved::Deposited { amount } => self.balance += amount, Moved::Withdrawn { amount } => self.balance -= amount }
/// #     }
/// # }
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let repository = AggregateRepository::<Account, _>::new(InMemoryEventStore::new(), ());
/// let id = StreamId::for_aggregate(Account::KIND, 7)?;
/// for command in [Moved::Deposited { amount: 50 }, Moved::Withdrawn { amount: 80 }] {
///     repository.execute(&id, command).await?;
/// }
/// let mut debugger = repository.debugger(&id, AsOf::Version(0)).await?;
/// let step = debugger.run_until(|account, _event| account.balance < 0).expect("it went negative");
/// assert_eq!((step.version, step.event_type.as_str()), (2, "Withdrawn"));
/// assert_eq!(step.diff.to_string(), "~ balance: 50 -> -30\n");
/// # Ok(())
/// # }
/// ```
pub struct ReplayDebugger<A: Aggregate> {
    stream_id: StreamId,
    state: A,
    version: u64,
    /// The events still to apply, decoded (`None`: discarded by an
    /// upcaster; it only moves the version on).
    ahead: VecDeque<(StoredEvent, Option<A::Event>)>,
}

impl<A: Aggregate> fmt::Debug for ReplayDebugger<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReplayDebugger")
            .field("stream_id", &self.stream_id)
            .field("version", &self.version)
            .field("remaining", &self.ahead.len())
            .finish_non_exhaustive()
    }
}

impl<A: Aggregate, S: EventStore> AggregateRepository<A, S> {
    /// A [`ReplayDebugger`] over `stream_id`, standing at `from` (loaded as
    /// by [`load_at`](Self::load_at), snapshots included), ready to apply
    /// the events after it. `AsOf::Version(0)` starts before the first
    /// event.
    ///
    /// # Errors
    ///
    /// As [`load_at`](Self::load_at), including for an event after `from`
    /// that does not decode (so stepping cannot fail).
    pub async fn debugger(
        &self,
        stream_id: &StreamId,
        from: AsOf,
    ) -> Result<ReplayDebugger<A>, EventStoreError> {
        let (loaded, after) = self.rebuild_at(stream_id, from).await?;
        let mut ahead = VecDeque::with_capacity(after.len());
        for stored in after {
            let decoded = decode::<A::Event>(&stored, self.upcasters())?;
            ahead.push_back((stored, decoded));
        }
        Ok(ReplayDebugger {
            stream_id: stream_id.clone(),
            state: loaded.state,
            version: loaded.version,
            ahead,
        })
    }
}

impl<A: Aggregate> ReplayDebugger<A> {
    /// The stream being replayed.
    pub fn stream_id(&self) -> &StreamId {
        &self.stream_id
    }

    /// The state after the events applied so far.
    pub fn state(&self) -> &A {
        &self.state
    }

    /// The version the state reflects.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// How many events are left to apply.
    pub fn remaining(&self) -> usize {
        self.ahead.len()
    }

    /// Applies the next event and returns what it did; `None` at the end
    /// of the stream (as it was when the debugger loaded it). An event an
    /// upcaster discards is passed over (the version moves on, the state
    /// does not change).
    pub fn step(&mut self) -> Option<ReplayStep<A>> {
        loop {
            let (stored, decoded) = self.ahead.pop_front()?;
            self.version = stored.stream_version;
            let Some(event) = decoded else { continue };
            let before = serialized(&self.state);
            self.state.apply(&event);
            let after = serialized(&self.state);
            return Some(ReplayStep {
                version: stored.stream_version,
                event_type: stored.event_type,
                recorded_at: stored.recorded_at,
                payload: stored.payload,
                event,
                diff: StateDiff::between(&before, &after),
                before,
                after,
            });
        }
    }

    /// Applies events until `condition` holds for the state after one of
    /// them (and that event), and returns that step; `None` if the stream
    /// ends first (the debugger then stands at its end). Call again to find
    /// the next event after which it holds.
    pub fn run_until(
        &mut self,
        mut condition: impl FnMut(&A, &A::Event) -> bool,
    ) -> Option<ReplayStep<A>> {
        while let Some(step) = self.step() {
            if condition(&self.state, &step.event) {
                return Some(step);
            }
        }
        None
    }

    /// Prints where the replay starts: the stream, the version and the
    /// state there (pretty JSON).
    ///
    /// # Errors
    ///
    /// `out`'s.
    pub fn print_state(&self, out: &mut impl io::Write) -> io::Result<()> {
        let state = serde_json::to_string_pretty(&serialized(&self.state))
            .unwrap_or_else(|error| format!("(the state does not serialize: {error})"));
        writeln!(out, "{} at version {}:", self.stream_id, self.version)?;
        for line in state.lines() {
            writeln!(out, "    {line}")?;
        }
        Ok(())
    }

    /// Applies events, printing each step (see [`ReplayStep`]'s
    /// `Display`), until `condition` holds after one of them or the stream
    /// ends, and says which; returns the version it stopped at when the
    /// condition held. Print all the remaining events with a condition
    /// that never holds (`|_, _| false`).
    ///
    /// # Errors
    ///
    /// `out`'s.
    pub fn print_until(
        &mut self,
        out: &mut impl io::Write,
        mut condition: impl FnMut(&A, &A::Event) -> bool,
    ) -> io::Result<Option<u64>> {
        while let Some(step) = self.step() {
            write!(out, "{step}")?;
            if condition(&self.state, &step.event) {
                writeln!(
                    out,
                    "stopped at version {}: the condition holds",
                    step.version
                )?;
                return Ok(Some(step.version));
            }
        }
        writeln!(out, "end of {} at version {}", self.stream_id, self.version)?;
        Ok(None)
    }
}

/// The state as JSON; a state that does not serialize (which would also
/// fail every snapshot) shows as a string saying so.
fn serialized<A: Aggregate>(state: &A) -> Value {
    serde_json::to_value(state)
        .unwrap_or_else(|error| Value::String(format!("(the state does not serialize: {error})")))
}
