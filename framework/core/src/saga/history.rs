//! [`SagaHistory`]: what one saga instance received, recorded, sent and
//! timed out, read back from its stream and drawn as a mermaid sequence
//! diagram (behind `ops saga show <id>`).
//!
//! The runtime records every step in the saga's stream (`saga-<kind>-<id>`,
//! see the [module docs](super)): the saga's own events, then a
//! `$saga.step` record of the cause (the input's event, or a timeout), the
//! commands issued, the timeouts started or cancelled and the outcome, and
//! later a `$saga.dispatched` record when the commands went out. The
//! history reads those records without the saga's types (commands are
//! named by their variant), so a tool can show any saga of any kind.

use chrono::{DateTime, Utc};
use serde_json::Value;
use uuid::Uuid;

use super::diagram::{command_name, label, push_line};
use super::instance::{Cause, RECORD_PREFIX, SagaRecord};
use super::{CommandId, SagaError, SagaId, SagaOutcome, TimeoutChange};
use crate::event::{StoredEvent, StreamId, Upcasters, decode};
use crate::event_store::EventStore;

/// What set a step off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepCause {
    /// A stored event routed to the saga.
    Input {
        /// The event's id.
        event_id: Uuid,
        /// Its stream, when recorded (steps recorded by older versions
        /// have none).
        stream_id: Option<String>,
        /// Its stored type, when recorded.
        event_type: Option<String>,
    },
    /// A timeout that fired.
    Timeout {
        /// Its name.
        name: String,
        /// When it was due.
        deadline: DateTime<Utc>,
    },
}

/// One entry of a saga's history.
#[derive(Debug, Clone, PartialEq)]
pub enum HistoryEntry {
    /// A step: its cause, what the saga recorded, sent and changed.
    Step {
        /// The stream version of the step record.
        version: u64,
        /// When it was recorded.
        recorded_at: DateTime<Utc>,
        /// What set it off.
        cause: StepCause,
        /// The types of the saga's own events it recorded.
        events: Vec<String>,
        /// The commands it issued: id and variant name.
        commands: Vec<(CommandId, String)>,
        /// The timeouts it started or cancelled.
        timeouts: Vec<TimeoutChange>,
        /// How the saga ended, if this step ended it.
        outcome: Option<SagaOutcome>,
    },
    /// Commands that were delivered.
    Dispatched {
        /// The stream version of the record.
        version: u64,
        /// When it was recorded.
        recorded_at: DateTime<Utc>,
        /// The commands delivered: id and variant name.
        commands: Vec<(CommandId, String)>,
    },
}

/// One saga instance's recorded history; from [`SagaHistory::load`].
#[derive(Debug, Clone, PartialEq)]
pub struct SagaHistory {
    kind: String,
    saga_id: SagaId,
    entries: Vec<HistoryEntry>,
}

impl SagaHistory {
    /// Reads the history of saga `saga_id` of kind `kind` (its
    /// [`Saga::KIND`](super::Saga::KIND)) from `store`.
    ///
    /// # Errors
    ///
    /// [`SagaError::NotFound`] (`CR-E0036`) when the saga's stream is empty;
    /// [`SagaError::CorruptStream`] for a runtime record that does not
    /// decode; the store's errors.
    pub async fn load<S: EventStore + ?Sized>(
        store: &S,
        kind: &str,
        saga_id: &SagaId,
    ) -> Result<Self, SagaError> {
        let stream_id = StreamId::new(format!("saga-{kind}-{saga_id}"))?;
        let stored = store.load_stream(&stream_id, 0).await?;
        if stored.is_empty() {
            return Err(SagaError::NotFound {
                stream_id: stream_id.to_string(),
            });
        }
        Self::from_events(kind, saga_id, &stored)
    }

    /// The history in the events of a saga's stream, as loaded.
    ///
    /// # Errors
    ///
    /// [`SagaError::CorruptStream`] for a runtime record that does not
    /// decode.
    pub fn from_events(
        kind: &str,
        saga_id: &SagaId,
        stored: &[StoredEvent],
    ) -> Result<Self, SagaError> {
        let mut entries = Vec::new();
        let mut events = Vec::new();
        let mut issued: Vec<(CommandId, String)> = Vec::new();
        for event in stored {
            if !event.event_type.starts_with(RECORD_PREFIX) {
                events.push(event.event_type.clone());
                continue;
            }
            let record = decode::<SagaRecord<Value>>(event, &Upcasters::new())
                .ok()
                .flatten()
                .ok_or_else(|| SagaError::CorruptStream {
                    saga_id: saga_id.clone(),
                    version: event.stream_version,
                    reason: format!("the runtime record `{}` does not decode", event.event_type),
                })?;
            match record {
                SagaRecord::Step {
                    cause,
                    commands,
                    timeouts,
                    outcome,
                    ..
                } => {
                    let commands: Vec<(CommandId, String)> = commands
                        .into_iter()
                        .map(|command| (command.id, command_name(&command.command)))
                        .collect();
                    issued.extend(commands.iter().cloned());
                    entries.push(HistoryEntry::Step {
                        version: event.stream_version,
                        recorded_at: event.recorded_at,
                        cause: match cause {
                            Cause::Input { id, received } => StepCause::Input {
                                event_id: id,
                                stream_id: received.as_ref().map(|r| r.stream_id.clone()),
                                event_type: received.map(|r| r.event_type),
                            },
                            Cause::Timeout { name, deadline } => {
                                StepCause::Timeout { name, deadline }
                            }
                        },
                        events: std::mem::take(&mut events),
                        commands,
                        timeouts,
                        outcome,
                    });
                }
                SagaRecord::Dispatched { commands } => {
                    let named = commands
                        .into_iter()
                        .map(|id| {
                            let name = issued
                                .iter()
                                .find(|(issued, _)| *issued == id)
                                .map_or_else(|| id.to_string(), |(_, name)| name.clone());
                            (id, name)
                        })
                        .collect();
                    entries.push(HistoryEntry::Dispatched {
                        version: event.stream_version,
                        recorded_at: event.recorded_at,
                        commands: named,
                    });
                }
            }
        }
        Ok(Self {
            kind: kind.to_owned(),
            saga_id: saga_id.clone(),
            entries,
        })
    }

    /// The entries, in the order they were recorded.
    pub fn entries(&self) -> &[HistoryEntry] {
        &self.entries
    }

    /// How the saga ended, if it has.
    pub fn outcome(&self) -> Option<SagaOutcome> {
        self.entries.iter().find_map(|entry| match entry {
            HistoryEntry::Step { outcome, .. } => *outcome,
            HistoryEntry::Dispatched { .. } => None,
        })
    }

    /// The history as a mermaid sequence diagram: the streams whose events
    /// the saga received (by category: `order-42` is `order`) on the left,
    /// the saga, and on the right the commands it sent. Notes show what it
    /// recorded, the timeouts, and how it ended.
    pub fn to_mermaid(&self) -> String {
        let mut out = String::from("sequenceDiagram\n");
        let mut sources: Vec<String> = Vec::new();
        for entry in &self.entries {
            if let HistoryEntry::Step {
                cause: cause @ StepCause::Input { .. },
                ..
            } = entry
            {
                let source = source_of(cause);
                if !sources.contains(&source) {
                    sources.push(source);
                }
            }
        }
        for (i, source) in sources.iter().enumerate() {
            push_line(
                &mut out,
                format_args!("    participant p{i} as {}", label(source)),
            );
        }
        let saga = label(&format!("{} {}", self.kind, self.saga_id));
        push_line(&mut out, format_args!("    participant saga as {saga}"));
        push_line(&mut out, format_args!("    participant commands"));
        for entry in &self.entries {
            match entry {
                HistoryEntry::Step {
                    cause,
                    events,
                    commands,
                    timeouts,
                    outcome,
                    ..
                } => {
                    match cause {
                        StepCause::Input {
                            event_id,
                            event_type,
                            ..
                        } => {
                            let index = sources
                                .iter()
                                .position(|s| *s == source_of(cause))
                                .unwrap_or_default();
                            let what = event_type
                                .clone()
                                .unwrap_or_else(|| format!("event {event_id}"));
                            push_line(
                                &mut out,
                                format_args!("    p{index}->>saga: {}", label(&what)),
                            );
                        }
                        StepCause::Timeout { name, .. } => {
                            push_line(
                                &mut out,
                                format_args!("    saga->>saga: timeout {} fired", label(name)),
                            );
                        }
                    }
                    if !events.is_empty() {
                        let recorded: Vec<String> = events.iter().map(|e| label(e)).collect();
                        push_line(
                            &mut out,
                            format_args!("    Note over saga: recorded {}", recorded.join(", ")),
                        );
                    }
                    for (_, name) in commands {
                        push_line(
                            &mut out,
                            format_args!("    saga->>commands: {}", label(name)),
                        );
                    }
                    for change in timeouts {
                        let text = match change {
                            TimeoutChange::Start { name, deadline } => format!(
                                "timeout {} due {}",
                                label(name),
                                deadline.format("%Y-%m-%d %H:%M:%S UTC")
                            ),
                            TimeoutChange::Cancel { name } => {
                                format!("timeout {} cancelled", label(name))
                            }
                        };
                        push_line(&mut out, format_args!("    Note over saga: {text}"));
                    }
                    if let Some(outcome) = outcome {
                        push_line(&mut out, format_args!("    Note over saga: {outcome}"));
                    }
                }
                HistoryEntry::Dispatched { commands, .. } => {
                    let names: Vec<String> = commands.iter().map(|(_, n)| label(n)).collect();
                    push_line(
                        &mut out,
                        format_args!("    commands-->>saga: delivered {}", names.join(", ")),
                    );
                }
            }
        }
        out
    }
}

/// The participant an input came from: its stream's category (the part
/// before the first `-`), or `inputs` when the step did not record it.
fn source_of(cause: &StepCause) -> String {
    match cause {
        StepCause::Input {
            stream_id: Some(stream),
            ..
        } => stream
            .split_once('-')
            .map_or(stream.as_str(), |(category, _)| category)
            .to_owned(),
        StepCause::Input { .. } | StepCause::Timeout { .. } => "inputs".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::event::{NewEvent, StoredEvent};
    use crate::saga::SagaCommand;

    fn stored(version: u64, event: NewEvent) -> StoredEvent {
        StoredEvent::builder(event.event_type, event.payload)
            .with_stream(StreamId::new("saga-old-1").unwrap(), version)
            .build()
    }

    /// A step recorded before steps named their input (no `received`):
    /// drawn from an `inputs` participant, by event id.
    #[test]
    fn steps_recorded_without_their_input_show_its_id() {
        let saga_id = SagaId::new("1").unwrap();
        let input = Uuid::nil();
        let command = SagaCommand {
            id: CommandId::new("saga-old-1#1"),
            saga_id: saga_id.clone(),
            command: json!({ "Ship": { "to": "Ada" } }),
        };
        let step = SagaRecord::Step {
            cause: Cause::Input {
                id: input,
                received: None,
            },
            events: 1,
            commands: vec![command],
            timeouts: vec![],
            outcome: Some(SagaOutcome::Completed),
        };
        let encoded = NewEvent::from_event(&step).unwrap();
        assert!(
            encoded.payload["cause"]["Input"].get("received").is_none(),
            "an absent input is not written: {}",
            encoded.payload
        );
        let events = [
            stored(1, NewEvent::new("Shipped", json!(null))),
            stored(2, encoded),
        ];
        let history = SagaHistory::from_events("old", &saga_id, &events).unwrap();
        assert_eq!(history.outcome(), Some(SagaOutcome::Completed));
        let expected = "\
sequenceDiagram
    participant p0 as inputs
    participant saga as old 1
    participant commands
    p0->>saga: event 00000000-0000-0000-0000-000000000000
    Note over saga: recorded Shipped
    saga->>commands: Ship
    Note over saga: completed
";
        assert_eq!(history.to_mermaid(), expected);
    }

    #[test]
    fn a_runtime_record_that_does_not_decode_is_a_corrupt_stream() {
        let saga_id = SagaId::new("1").unwrap();
        let events = [stored(
            1,
            NewEvent::new("$saga.step", json!({ "no": "such shape" })),
        )];
        let error = SagaHistory::from_events("old", &saga_id, &events).unwrap_err();
        assert!(
            matches!(error, SagaError::CorruptStream { version: 1, .. }),
            "{error:?}"
        );
    }
}
