//! Decoding a bus message's envelope, the same way on every transport.
//!
//! A bus that stores events outside this process (Redis Streams fields,
//! Kafka record headers) writes the envelope of a [`StoredEvent`] as
//! named text fields: event id, stream version, position, type, schema
//! version, recording time, and, on dead-letter topics, the
//! [`DeadLetterInfo`]. Only the names differ between transports
//! (`event_id` in a Redis entry, `event-id` in a Kafka header), so the
//! parsing, and every error message a malformed message gets, lives here
//! once. Each backend keeps what is its own: where the stream id and the
//! payload are (a field, or the record's key and value) and how metadata
//! is spelled.
//!
//! ```
//! use composable_rust_core::event_bus::wire::{EnvelopeDecoder, FieldNames};
//! use composable_rust_core::event_bus::{MessageId, Topic};
//! use composable_rust_core::{EventMetadata, StreamId};
//!
//! const NAMES: FieldNames = FieldNames {
//!     noun: "field",
//!     event_id: "event_id",
//!     stream_version: "stream_version",
//!     position: "position",
//!     event_type: "event_type",
//!     schema_version: "schema_version",
//!     recorded_at: "recorded_at",
//!     dead_letter: "dead_letter",
//! };
//! let fields = [
//!     ("event_id", "0b9f6c2e-1d4a-4c7e-9a39-2f1d5d8b7c11"),
//!     ("stream_version", "3"),
//!     ("position", "10/12"),
//!     ("event_type", "OrderPlaced"),
//!     ("schema_version", "1"),
//!     ("recorded_at", "2026-01-02T03:04:05Z"),
//! ];
//! let topic = Topic::new("orders")?;
//! let decoder = EnvelopeDecoder::new(&topic, MessageId::new("1-0"), &NAMES, |name: &str| {
//!     fields.iter().find(|(n, _)| *n == name).map(|(_, v)| v.as_bytes())
//! });
//! let event_id = decoder.event_id()?;
//! let message = decoder.finish(
//!     event_id,
//!     StreamId::new("order-7")?,
//!     serde_json::json!({ "total": 42 }),
//!     EventMetadata::default(),
//!     1,
//! )?;
//! assert_eq!(message.event.stream_version, 3);
//! assert_eq!(message.event.event_type, "OrderPlaced");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;

use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;

use super::{BusMessage, DeadLetterInfo, EventBusError, MessageId, Topic};
use crate::event::{EventMetadata, Position, StoredEvent, StreamId};

/// What a transport calls the envelope's fields, and what it calls a
/// field in error messages (`"field"` for a Redis entry, `"header"` for a
/// Kafka record).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldNames {
    /// The word for a field in messages: "its `position` header is ...".
    pub noun: &'static str,
    /// The event id (a UUID).
    pub event_id: &'static str,
    /// The version in the stream.
    pub stream_version: &'static str,
    /// The global position, `commit/sequence`.
    pub position: &'static str,
    /// The event type.
    pub event_type: &'static str,
    /// The schema version.
    pub schema_version: &'static str,
    /// The recording time, RFC 3339.
    pub recorded_at: &'static str,
    /// On dead-letter topics: the [`DeadLetterInfo`] as JSON.
    pub dead_letter: &'static str,
}

/// Decodes one message of `topic`, whose fields `lookup` finds by name.
/// Every failure is an [`EventBusError::Decode`] naming the topic, the
/// message and the field at fault.
pub struct EnvelopeDecoder<'a, F> {
    topic: &'a Topic,
    id: MessageId,
    names: &'a FieldNames,
    lookup: F,
}

impl<'a, F> EnvelopeDecoder<'a, F>
where
    F: Fn(&str) -> Option<&'a [u8]>,
{
    /// A decoder of the message `id` of `topic`, named as `names` says.
    pub fn new(topic: &'a Topic, id: MessageId, names: &'a FieldNames, lookup: F) -> Self {
        Self {
            topic,
            id,
            names,
            lookup,
        }
    }

    /// The error for this message: it cannot be decoded, because `reason`
    /// ("it has no key", "its value is not JSON: ...").
    pub fn undecodable(&self, reason: impl Into<String>) -> EventBusError {
        EventBusError::Decode {
            topic: self.topic.to_string(),
            message_id: self.id.to_string(),
            reason: reason.into(),
        }
    }

    /// The raw value of the field `name`, if the message has it.
    pub fn field(&self, name: &str) -> Option<&'a [u8]> {
        (self.lookup)(name)
    }

    /// The required field `name`, as UTF-8 text.
    ///
    /// # Errors
    ///
    /// [`EventBusError::Decode`] when it is missing or not UTF-8.
    pub fn text(&self, name: &str) -> Result<&'a str, EventBusError> {
        let noun = self.names.noun;
        let value = self
            .field(name)
            .ok_or_else(|| self.undecodable(format!("it has no `{name}` {noun}")))?;
        std::str::from_utf8(value)
            .map_err(|_| self.undecodable(format!("its `{name}` {noun} is not UTF-8")))
    }

    /// The required field `name`, as an unsigned number.
    ///
    /// # Errors
    ///
    /// [`EventBusError::Decode`] when it is missing or not a number.
    pub fn number(&self, name: &str) -> Result<u64, EventBusError> {
        self.text(name)?.parse().map_err(|_| {
            self.undecodable(format!("its `{name}` {} is not a number", self.names.noun))
        })
    }

    /// The optional field `name`, as a UUID.
    ///
    /// # Errors
    ///
    /// [`EventBusError::Decode`] when it is present and not a UUID.
    pub fn uuid(&self, name: &str) -> Result<Option<uuid::Uuid>, EventBusError> {
        self.field(name)
            .map(|value| {
                std::str::from_utf8(value)
                    .ok()
                    .and_then(|text| text.parse().ok())
                    .ok_or_else(|| {
                        self.undecodable(format!("its `{name}` {} is not a UUID", self.names.noun))
                    })
            })
            .transpose()
    }

    /// The optional field `name`, as JSON.
    ///
    /// # Errors
    ///
    /// [`EventBusError::Decode`] when it is present and not a `T`.
    pub fn json<T: DeserializeOwned>(&self, name: &str) -> Result<Option<T>, EventBusError> {
        self.field(name)
            .map(serde_json::from_slice::<T>)
            .transpose()
            .map_err(|error| {
                self.undecodable(format!(
                    "its `{name}` {} is malformed: {error}",
                    self.names.noun
                ))
            })
    }

    /// The event id: decoded first, since a message without one is not
    /// an event of this framework at all.
    ///
    /// # Errors
    ///
    /// [`EventBusError::Decode`] when it is missing or not a UUID.
    pub fn event_id(&self) -> Result<uuid::Uuid, EventBusError> {
        let name = self.names.event_id;
        self.text(name)?.parse().map_err(|_| {
            self.undecodable(format!("its `{name}` {} is not a UUID", self.names.noun))
        })
    }

    /// The message: the fields every transport writes the same way, with
    /// what the transport decoded itself (the stream id, the payload and
    /// the metadata) and how often it has been delivered.
    ///
    /// # Errors
    ///
    /// [`EventBusError::Decode`] naming the first field at fault.
    pub fn finish(
        self,
        event_id: uuid::Uuid,
        stream_id: StreamId,
        payload: serde_json::Value,
        metadata: EventMetadata,
        deliveries: u32,
    ) -> Result<BusMessage, EventBusError> {
        let FieldNames { noun, .. } = *self.names;
        let names = self.names;
        let position = self
            .text(names.position)?
            .split_once('/')
            .and_then(|(commit, sequence)| {
                Some(Position::new(commit.parse().ok()?, sequence.parse().ok()?))
            })
            .ok_or_else(|| {
                self.undecodable(format!(
                    "its `{}` {noun} is not `commit/sequence`",
                    names.position
                ))
            })?;
        let schema_version = u32::try_from(self.number(names.schema_version)?).map_err(|_| {
            self.undecodable(format!(
                "its `{}` {noun} is too large",
                names.schema_version
            ))
        })?;
        let recorded_at = DateTime::parse_from_rfc3339(self.text(names.recorded_at)?)
            .map_err(|_| {
                self.undecodable(format!(
                    "its `{}` {noun} is not an RFC 3339 time",
                    names.recorded_at
                ))
            })?
            .with_timezone(&Utc);
        let dead_letter = self.json::<DeadLetterInfo>(names.dead_letter)?;
        let event = StoredEvent {
            event_id,
            stream_id,
            stream_version: self.number(names.stream_version)?,
            position,
            event_type: self.text(names.event_type)?.to_owned(),
            schema_version,
            payload,
            metadata,
            recorded_at,
        };
        Ok(BusMessage {
            topic: self.topic.clone(),
            id: self.id,
            event,
            deliveries,
            dead_letter,
        })
    }
}

impl<F> fmt::Debug for EnvelopeDecoder<'_, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EnvelopeDecoder")
            .field("topic", &self.topic)
            .field("id", &self.id)
            .field("names", &self.names)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NAMES: FieldNames = FieldNames {
        noun: "header",
        event_id: "event-id",
        stream_version: "stream-version",
        position: "position",
        event_type: "event-type",
        schema_version: "schema-version",
        recorded_at: "recorded-at",
        dead_letter: "dead-letter",
    };

    fn decode(fields: &[(&str, &str)]) -> Result<BusMessage, EventBusError> {
        let topic = Topic::new("orders").unwrap();
        let decoder = EnvelopeDecoder::new(&topic, MessageId::new("0-5"), &NAMES, |name: &str| {
            fields
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.as_bytes())
        });
        let event_id = decoder.event_id()?;
        decoder.finish(
            event_id,
            StreamId::new("order-7").unwrap(),
            serde_json::Value::Null,
            EventMetadata::default(),
            2,
        )
    }

    const GOOD: [(&str, &str); 6] = [
        ("event-id", "0b9f6c2e-1d4a-4c7e-9a39-2f1d5d8b7c11"),
        ("stream-version", "3"),
        ("position", "10/12"),
        ("event-type", "OrderPlaced"),
        ("schema-version", "2"),
        ("recorded-at", "2026-01-02T03:04:05Z"),
    ];

    fn with(name: &str, value: &str) -> Vec<(&'static str, String)> {
        GOOD.iter()
            .map(|(n, v)| (*n, if *n == name { value } else { v }.to_owned()))
            .collect()
    }

    fn reason(fields: &[(&'static str, String)]) -> String {
        let fields: Vec<(&str, &str)> = fields.iter().map(|(n, v)| (*n, v.as_str())).collect();
        match decode(&fields).unwrap_err() {
            EventBusError::Decode {
                topic,
                message_id,
                reason,
            } => {
                assert_eq!((topic.as_str(), message_id.as_str()), ("orders", "0-5"));
                reason
            }
            other => panic!("not a decode error: {other}"),
        }
    }

    #[test]
    fn a_whole_envelope_decodes() {
        let message = decode(&GOOD).unwrap();
        assert_eq!(message.id.as_str(), "0-5");
        assert_eq!(message.deliveries, 2);
        assert_eq!(message.event.position, Position::new(10, 12));
        assert_eq!(message.event.schema_version, 2);
        assert_eq!(message.event.stream_version, 3);
        assert_eq!(message.event.event_type, "OrderPlaced");
        assert_eq!(
            message.event.recorded_at.to_rfc3339(),
            "2026-01-02T03:04:05+00:00"
        );
        assert!(message.dead_letter.is_none());
    }

    #[test]
    fn each_malformed_field_is_named_with_the_transports_noun() {
        let missing: Vec<(&'static str, String)> = GOOD[1..]
            .iter()
            .map(|(n, v)| (*n, (*v).to_owned()))
            .collect();
        assert_eq!(reason(&missing), "it has no `event-id` header");
        assert_eq!(
            reason(&with("event-id", "nope")),
            "its `event-id` header is not a UUID"
        );
        assert_eq!(
            reason(&with("position", "10")),
            "its `position` header is not `commit/sequence`"
        );
        assert_eq!(
            reason(&with("schema-version", "4294967296")),
            "its `schema-version` header is too large"
        );
        assert_eq!(
            reason(&with("recorded-at", "yesterday")),
            "its `recorded-at` header is not an RFC 3339 time"
        );
        assert_eq!(
            reason(&with("stream-version", "-1")),
            "its `stream-version` header is not a number"
        );
        let mut dead = with("event-type", "OrderPlaced");
        dead.push(("dead-letter", "{".to_owned()));
        assert!(
            reason(&dead).starts_with("its `dead-letter` header is malformed: "),
            "{}",
            reason(&dead)
        );
    }
}
