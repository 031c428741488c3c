//! [`SagaInstance`]: one saga's state plus the runtime's bookkeeping, and
//! the pure step from an input to a [`Transition`] that both the
//! [`SagaRuntime`](super::SagaRuntime) and `SagaTest` use.
//!
//! A transition is stored as one atomic append to the saga's stream: the
//! saga's own events (under their own type names, so upcasters work on
//! them), then one `$saga.step` record with the bookkeeping (which input
//! caused it, the commands issued, the timeouts changed, the outcome).
//! After commands are delivered, a `$saga.dispatched` record says so.
//! Replaying the stream rebuilds all of it.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::reaction::{SagaOutcome, TimeoutChange, TimeoutRequest};
use super::{CommandId, Saga, SagaCommand, SagaContext, SagaError, SagaId};
use crate::event::{Event, EventMetadata, NewEvent, StoredEvent, StreamId, Upcasters, decode};
use crate::event_store::EventStoreError;

/// Stored event types starting with this prefix belong to the runtime.
pub(crate) const RECORD_PREFIX: &str = "$saga.";

/// What a saga is asked to handle.
#[derive(Debug, Clone, PartialEq)]
pub enum SagaMessage<I> {
    /// An input (a domain event), identified for de-duplication by `id`
    /// (the stored event's id).
    Input {
        /// The input's id; an input whose id the saga already handled is
        /// ignored.
        id: Uuid,
        /// The input.
        input: I,
    },
    /// The timeout `name`, due at `deadline`, fired.
    Timeout {
        /// The timeout's name.
        name: String,
        /// Its deadline; a timeout that was restarted or cancelled since is
        /// stale and ignored.
        deadline: DateTime<Utc>,
    },
}

/// What caused a transition, as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Cause {
    /// The input with this id.
    Input {
        /// The input's (stored event's) id.
        id: Uuid,
        /// Which event it was, when the runtime knew (records written
        /// before this was recorded, and `SagaTest`'s, have none): what a
        /// saga's history shows it received.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        received: Option<Received>,
    },
    /// A timeout that fired.
    Timeout {
        /// The timeout's name.
        name: String,
        /// Its deadline.
        deadline: DateTime<Utc>,
    },
}

/// The stored event an input came from, as a saga's history names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Received {
    /// The event's stream.
    pub stream_id: String,
    /// The event's stored type.
    pub event_type: String,
}

/// One step of a saga, decided but not yet applied: what the runtime
/// appends to the saga's stream before anything runs.
pub struct Transition<S: Saga> {
    /// What caused it.
    pub cause: Cause,
    /// The saga's events.
    pub events: Vec<S::Event>,
    /// The commands to send, with their ids.
    pub commands: Vec<SagaCommand<S::Command>>,
    /// The timeouts started or cancelled, with deadlines.
    pub timeouts: Vec<TimeoutChange>,
    /// How the saga ends, if it does.
    pub outcome: Option<SagaOutcome>,
}

impl<S: Saga> Clone for Transition<S> {
    fn clone(&self) -> Self {
        Self {
            cause: self.cause.clone(),
            events: self.events.clone(),
            commands: self.commands.clone(),
            timeouts: self.timeouts.clone(),
            outcome: self.outcome,
        }
    }
}

impl<S: Saga> fmt::Debug for Transition<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Transition")
            .field("cause", &self.cause)
            .field("events", &self.events)
            .field("commands", &self.commands)
            .field("timeouts", &self.timeouts)
            .field("outcome", &self.outcome)
            .finish()
    }
}

impl<S: Saga> Transition<S> {
    /// The events to append for this transition, for the saga `saga_id`:
    /// the saga's events, then the `$saga.step` record. Each carries the
    /// input's id as causation id and the saga id as a header.
    pub fn to_new_events(&self, saga_id: &SagaId) -> Result<Vec<NewEvent>, EventStoreError> {
        let metadata = EventMetadata {
            correlation_id: Uuid::parse_str(saga_id.as_str()).ok(),
            causation_id: match &self.cause {
                Cause::Input { id, .. } => Some(*id),
                Cause::Timeout { .. } => None,
            },
            headers: BTreeMap::from([(super::SAGA_ID_HEADER.to_owned(), saga_id.to_string())]),
        };
        let mut batch = Vec::with_capacity(self.events.len() + 1);
        for event in &self.events {
            let encoded = NewEvent::from_event(event)?.with_metadata(metadata.clone());
            if encoded.event_type.starts_with(RECORD_PREFIX) {
                return Err(EventStoreError::Encode {
                    reason: format!(
                        "saga event type `{}` starts with `{RECORD_PREFIX}`, which is \
                         reserved for the saga runtime; rename the variant",
                        encoded.event_type
                    ),
                });
            }
            batch.push(encoded);
        }
        let record = SagaRecord::Step {
            cause: self.cause.clone(),
            events: self.events.len(),
            commands: self.commands.clone(),
            timeouts: self.timeouts.clone(),
            outcome: self.outcome,
        };
        batch.push(NewEvent::from_event(&record)?.with_metadata(metadata));
        Ok(batch)
    }
}

/// The runtime's records in a saga's stream, beside the saga's own events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(bound(serialize = "C: Serialize", deserialize = "C: DeserializeOwned"))]
pub(crate) enum SagaRecord<C> {
    /// Ends the events of one transition and holds its bookkeeping.
    #[serde(rename = "$saga.step")]
    Step {
        cause: Cause,
        /// How many of the saga's events precede this record.
        events: usize,
        commands: Vec<SagaCommand<C>>,
        timeouts: Vec<TimeoutChange>,
        outcome: Option<SagaOutcome>,
    },
    /// These commands were delivered.
    #[serde(rename = "$saga.dispatched")]
    Dispatched { commands: Vec<CommandId> },
}

impl<C: Serialize + DeserializeOwned + Send + Sync + 'static> Event for SagaRecord<C> {}

/// The `$saga.dispatched` record for `commands`.
pub(crate) fn dispatched_record<C>(
    commands: &[CommandId],
    saga_id: &SagaId,
) -> Result<NewEvent, EventStoreError>
where
    C: Serialize + DeserializeOwned + Send + Sync + 'static,
{
    let record = SagaRecord::<C>::Dispatched {
        commands: commands.to_vec(),
    };
    let mut event = NewEvent::from_event(&record)?;
    event
        .metadata
        .headers
        .insert(super::SAGA_ID_HEADER.to_owned(), saga_id.to_string());
    Ok(event)
}

/// What [`SagaInstance::decide`] concluded.
pub enum Decision<S: Saga> {
    /// The input was handled before (same id): nothing to do.
    Duplicate,
    /// The saga has ended; later inputs and timeouts are ignored.
    Ended,
    /// The timeout was cancelled or restarted since it was armed.
    StaleTimeout,
    /// The saga had nothing to do about the input; nothing is recorded.
    NoReaction,
    /// A transition to record, then apply with [`SagaInstance::commit`].
    Step(Transition<S>),
}

impl<S: Saga> fmt::Debug for Decision<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Duplicate => f.write_str("Duplicate"),
            Self::Ended => f.write_str("Ended"),
            Self::StaleTimeout => f.write_str("StaleTimeout"),
            Self::NoReaction => f.write_str("NoReaction"),
            Self::Step(transition) => f.debug_tuple("Step").field(transition).finish(),
        }
    }
}

/// One saga instance: the saga's state, rebuilt from its stream, plus what
/// the runtime keeps beside it: the ids of the inputs handled (for
/// de-duplication), the commands not yet delivered (the outbox), the running
/// timeouts and the outcome.
pub struct SagaInstance<S: Saga> {
    id: SagaId,
    stream_id: StreamId,
    state: S::State,
    version: u64,
    handled: BTreeSet<Uuid>,
    issued: u64,
    pending: Vec<SagaCommand<S::Command>>,
    timeouts: BTreeMap<String, DateTime<Utc>>,
    outcome: Option<SagaOutcome>,
}

impl<S: Saga> Clone for SagaInstance<S> {
    fn clone(&self) -> Self {
        Self {
            id: self.id.clone(),
            stream_id: self.stream_id.clone(),
            state: self.state.clone(),
            version: self.version,
            handled: self.handled.clone(),
            issued: self.issued,
            pending: self.pending.clone(),
            timeouts: self.timeouts.clone(),
            outcome: self.outcome,
        }
    }
}

impl<S: Saga> fmt::Debug for SagaInstance<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SagaInstance")
            .field("id", &self.id)
            .field("version", &self.version)
            .field("state", &self.state)
            .field("pending", &self.pending)
            .field("timeouts", &self.timeouts)
            .field("outcome", &self.outcome)
            .finish_non_exhaustive()
    }
}

/// The stream of saga `id` of kind `S`: `saga-{KIND}-{id}`.
pub fn saga_stream_id<S: Saga>(id: &SagaId) -> Result<StreamId, EventStoreError> {
    StreamId::new(format!("saga-{}-{id}", S::KIND))
}

impl<S: Saga> SagaInstance<S> {
    /// A saga that has not handled anything yet.
    #[doc(hidden)]
    pub fn new(id: SagaId) -> Result<Self, SagaError> {
        let stream_id = saga_stream_id::<S>(&id)?;
        Ok(Self {
            id,
            stream_id,
            state: S::State::default(),
            version: 0,
            handled: BTreeSet::new(),
            issued: 0,
            pending: Vec::new(),
            timeouts: BTreeMap::new(),
            outcome: None,
        })
    }

    /// Rebuilds saga `id` from the events of its stream (as loaded from the
    /// store), upcasting the saga's events with `upcasters`.
    #[doc(hidden)]
    pub fn replay(
        id: SagaId,
        stored: &[StoredEvent],
        upcasters: &Upcasters,
    ) -> Result<Self, SagaError> {
        let mut instance = Self::new(id)?;
        let mut events = Vec::new();
        let mut events_stored = 0;
        for event in stored {
            let corrupt = |reason: String| SagaError::CorruptStream {
                saga_id: instance.id.clone(),
                version: event.stream_version,
                reason,
            };
            if !event.event_type.starts_with(RECORD_PREFIX) {
                events_stored += 1;
                if let Some(decoded) = decode::<S::Event>(event, upcasters)? {
                    events.push(decoded);
                }
                continue;
            }
            let Some(record) = decode::<SagaRecord<S::Command>>(event, &Upcasters::new())? else {
                return Err(corrupt("a runtime record was discarded".into()));
            };
            match record {
                SagaRecord::Step {
                    cause,
                    events: count,
                    commands,
                    timeouts,
                    outcome,
                } => {
                    if count != events_stored {
                        return Err(corrupt(format!(
                            "the step record counts {count} saga event(s) before it, but \
                             {events_stored} precede it"
                        )));
                    }
                    let transition = Transition {
                        cause,
                        events: std::mem::take(&mut events),
                        commands,
                        timeouts,
                        outcome,
                    };
                    instance.commit(transition, event.stream_version);
                    events_stored = 0;
                }
                SagaRecord::Dispatched { commands } => {
                    if events_stored != 0 {
                        return Err(corrupt(
                            "saga events are not followed by their step record".into(),
                        ));
                    }
                    instance.mark_dispatched(&commands, event.stream_version);
                }
            }
        }
        if events_stored != 0 {
            let version = stored.last().map_or(0, |event| event.stream_version);
            return Err(SagaError::CorruptStream {
                saga_id: instance.id,
                version,
                reason: "the stream ends with saga events that have no step record".into(),
            });
        }
        Ok(instance)
    }

    /// The saga instance's id.
    pub fn id(&self) -> &SagaId {
        &self.id
    }

    /// The saga's stream.
    pub fn stream_id(&self) -> &StreamId {
        &self.stream_id
    }

    /// The saga's state.
    pub fn state(&self) -> &S::State {
        &self.state
    }

    /// The version of the saga's stream this instance reflects (0: nothing
    /// recorded yet).
    pub fn version(&self) -> u64 {
        self.version
    }

    /// How the saga ended, if it has.
    pub fn outcome(&self) -> Option<SagaOutcome> {
        self.outcome
    }

    /// Commands recorded but not yet known to be delivered, in order.
    pub fn pending(&self) -> &[SagaCommand<S::Command>] {
        &self.pending
    }

    /// The running timeouts and their deadlines, by name.
    pub fn timeouts(&self) -> &BTreeMap<String, DateTime<Utc>> {
        &self.timeouts
    }

    /// Whether the input with this id was handled.
    pub fn has_handled(&self, input_id: Uuid) -> bool {
        self.handled.contains(&input_id)
    }

    /// Ended and every command delivered: nothing left to do.
    pub fn is_settled(&self) -> bool {
        self.outcome.is_some() && self.pending.is_empty()
    }

    /// Decides what `message` does to this saga at time `now`. Pure: the
    /// instance is unchanged until [`commit`](Self::commit).
    #[doc(hidden)]
    pub fn decide(
        &self,
        saga: &S,
        message: SagaMessage<S::Input>,
        now: DateTime<Utc>,
    ) -> Decision<S> {
        if self.outcome.is_some() {
            return Decision::Ended;
        }
        let ctx = SagaContext::new(self.id.clone(), now);
        let (cause, reaction) = match message {
            SagaMessage::Input { id, input } => {
                if self.handled.contains(&id) {
                    return Decision::Duplicate;
                }
                let reaction = saga.react(&self.state, input, &ctx);
                if reaction.is_empty() {
                    return Decision::NoReaction;
                }
                let cause = Cause::Input { id, received: None };
                (cause, reaction)
            }
            SagaMessage::Timeout { name, deadline } => {
                if self.timeouts.get(&name) != Some(&deadline) {
                    return Decision::StaleTimeout;
                }
                // Recorded even when the saga does nothing, so the timeout
                // is not armed again after a restart.
                let reaction = saga.on_timeout(&self.state, &name, &ctx);
                (Cause::Timeout { name, deadline }, reaction)
            }
        };
        let commands = reaction
            .commands
            .into_iter()
            .zip(self.issued + 1..)
            .map(|(command, number)| SagaCommand {
                id: CommandId::issued(&self.stream_id, number),
                saga_id: self.id.clone(),
                command,
            })
            .collect();
        let timeouts = reaction
            .timeouts
            .into_iter()
            .map(|request| match request {
                TimeoutRequest::Start { name, after } => TimeoutChange::Start {
                    name,
                    deadline: now
                        + chrono::Duration::from_std(after).unwrap_or(chrono::Duration::MAX),
                },
                TimeoutRequest::Cancel { name } => TimeoutChange::Cancel { name },
            })
            .collect();
        Decision::Step(Transition {
            cause,
            events: reaction.events,
            commands,
            timeouts,
            outcome: reaction.outcome,
        })
    }

    /// Applies a recorded `transition`; `version` is the stream's version
    /// after it was appended.
    #[doc(hidden)]
    pub fn commit(&mut self, transition: Transition<S>, version: u64) {
        for event in &transition.events {
            S::apply(&mut self.state, event);
        }
        match transition.cause {
            Cause::Input { id, .. } => {
                self.handled.insert(id);
            }
            Cause::Timeout { name, .. } => {
                self.timeouts.remove(&name);
            }
        }
        for change in transition.timeouts {
            match change {
                TimeoutChange::Start { name, deadline } => {
                    self.timeouts.insert(name, deadline);
                }
                TimeoutChange::Cancel { name } => {
                    self.timeouts.remove(&name);
                }
            }
        }
        self.issued += transition.commands.len() as u64;
        self.pending.extend(transition.commands);
        if let Some(outcome) = transition.outcome {
            self.outcome = Some(outcome);
            self.timeouts.clear();
        }
        self.version = version;
    }

    /// Records that `commands` were delivered; `version` is the stream's
    /// version after the `$saga.dispatched` record.
    #[doc(hidden)]
    pub fn mark_dispatched(&mut self, commands: &[CommandId], version: u64) {
        self.pending
            .retain(|command| !commands.contains(&command.id));
        self.version = version;
    }
}
