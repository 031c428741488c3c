//! [`Reaction`]: what a saga decided to do about one input, as a value.

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::Saga;

/// How a saga ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SagaOutcome {
    /// Every step succeeded.
    Completed,
    /// A step failed or timed out, and the completed steps were compensated.
    Compensated,
}

impl fmt::Display for SagaOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Completed => "completed",
            Self::Compensated => "compensated",
        })
    }
}

/// A timeout asked for by a [`Reaction`], before it has a deadline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TimeoutRequest {
    Start { name: String, after: Duration },
    Cancel { name: String },
}

/// A change to a saga's timeouts, with the deadline fixed on the clock of
/// the moment it was decided (so a restarted runtime waits only for what is
/// left of it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum TimeoutChange {
    /// Start (or restart) the timeout `name`, due at `deadline`.
    Start {
        /// The timeout's name.
        name: String,
        /// When it fires.
        deadline: DateTime<Utc>,
    },
    /// Cancel the timeout `name`, if it is running.
    Cancel {
        /// The timeout's name.
        name: String,
    },
}

/// What a saga does about one input: the events it records (its own facts,
/// which [`Saga::apply`] turns into its next state), the commands it sends,
/// the timeouts it starts or cancels, and whether it is over.
///
/// Commands and timeouts are **values**, like [`Effect`](crate::Effect)s:
/// the runtime persists them with the events before anything runs, and
/// `SagaTest` asserts them without running anything.
///
/// ```
/// # use std::time::Duration;
/// # use composable_rust_core::saga::{Reaction, Saga, SagaContext, SagaError, Routed};
/// # use composable_rust_core::{Event, StoredEvent};
/// # use serde::{Deserialize, Serialize};
/// # #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
/// # enum Recorded { Asked }
/// # impl Event for Recorded {}
/// # #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
/// # enum Command { Reserve, Release }
/// # struct S;
/// # impl Saga for S {
/// #     const KIND: &'static str = "s";
/// #     type State = ();
/// #     type Input = ();
/// #     type Event = Recorded;
/// #     type Command = Command;
/// #     fn route(&self, _: &StoredEvent) -> Result<Option<Routed<()>>, SagaError> { Ok(None) }
/// #     fn react(&self, _: &(), _: (), _: &SagaContext) -> Reaction<Self> { Reaction::new() }
/// #     fn apply(_: &mut (), _: &Recorded) {}
/// # }
/// let reaction: Reaction<S> = Reaction::new()
///     .record(Recorded::Asked)
///     .send(Command::Reserve)
///     .start_timeout("inventory", Duration::from_secs(30));
/// assert_eq!(reaction.commands(), &[Command::Reserve]);
/// ```
pub struct Reaction<S: Saga> {
    pub(crate) events: Vec<S::Event>,
    pub(crate) commands: Vec<S::Command>,
    pub(crate) timeouts: Vec<TimeoutRequest>,
    pub(crate) outcome: Option<SagaOutcome>,
}

impl<S: Saga> Reaction<S> {
    /// Nothing happens: the input does not concern the saga in its current
    /// state (an unexpected or late reply). Nothing is recorded, so the same
    /// input delivered again later is considered again.
    pub fn new() -> Self {
        Self {
            events: Vec::new(),
            commands: Vec::new(),
            timeouts: Vec::new(),
            outcome: None,
        }
    }

    /// Records `event` in the saga's stream; [`Saga::apply`] applies it.
    #[must_use]
    pub fn record(mut self, event: S::Event) -> Self {
        self.events.push(event);
        self
    }

    /// Sends `command` once the step is recorded. Commands of one reaction
    /// are dispatched in the order they were added.
    #[must_use]
    pub fn send(mut self, command: S::Command) -> Self {
        self.commands.push(command);
        self
    }

    /// Sends every command of `commands`, in order (e.g. the compensations
    /// of [`SagaSteps::compensations`](super::SagaSteps::compensations)).
    #[must_use]
    pub fn send_all(mut self, commands: impl IntoIterator<Item = S::Command>) -> Self {
        self.commands.extend(commands);
        self
    }

    /// Starts the timeout `name`: unless cancelled, the saga's
    /// [`on_timeout`](Saga::on_timeout) runs with `name` once `after` has
    /// passed on the runtime's clock. Starting a running timeout restarts it.
    #[must_use]
    pub fn start_timeout(mut self, name: impl Into<String>, after: Duration) -> Self {
        self.timeouts.push(TimeoutRequest::Start {
            name: name.into(),
            after,
        });
        self
    }

    /// Cancels the timeout `name` (nothing happens if it is not running).
    #[must_use]
    pub fn cancel_timeout(mut self, name: impl Into<String>) -> Self {
        self.timeouts
            .push(TimeoutRequest::Cancel { name: name.into() });
        self
    }

    /// Ends the saga with `outcome` once this step is recorded: its running
    /// timeouts are cancelled and later inputs are ignored. The commands of
    /// this reaction (the last compensations, say) are still sent.
    #[must_use]
    pub fn finish(mut self, outcome: SagaOutcome) -> Self {
        self.outcome = Some(outcome);
        self
    }

    /// [`finish`](Self::finish) with [`SagaOutcome::Completed`].
    #[must_use]
    pub fn complete(self) -> Self {
        self.finish(SagaOutcome::Completed)
    }

    /// [`finish`](Self::finish) with [`SagaOutcome::Compensated`].
    #[must_use]
    pub fn compensated(self) -> Self {
        self.finish(SagaOutcome::Compensated)
    }

    /// Whether nothing happens.
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
            && self.commands.is_empty()
            && self.timeouts.is_empty()
            && self.outcome.is_none()
    }

    /// The events to record.
    pub fn events(&self) -> &[S::Event] {
        &self.events
    }

    /// The commands to send.
    pub fn commands(&self) -> &[S::Command] {
        &self.commands
    }

    /// How the saga ends, if this reaction ends it.
    pub fn outcome(&self) -> Option<SagaOutcome> {
        self.outcome
    }
}

impl<S: Saga> Default for Reaction<S> {
    fn default() -> Self {
        Self::new()
    }
}

impl<S: Saga> fmt::Debug for Reaction<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reaction")
            .field("events", &self.events)
            .field("commands", &self.commands)
            .field("timeouts", &self.timeouts)
            .field("outcome", &self.outcome)
            .finish()
    }
}
