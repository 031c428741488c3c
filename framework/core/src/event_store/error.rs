//! Errors of event stores, events and aggregates' persistence.

use crate::error::{BackendError, coded_error, codes};
use crate::event::{ExpectedVersion, Position};

/// What can go wrong storing or loading events.
#[coded_error]
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum EventStoreError {
    /// The stream was not at the expected version; nothing was written.
    #[code(codes::WRONG_EXPECTED_VERSION, permanent)]
    #[error(
        "stream `{stream_id}` is at version {actual}, but the append expected \
         {expected}; nothing was written. Another writer got there first: reload the \
         aggregate and run the command again (AggregateRepository::execute_with_retry does this)"
    )]
    WrongExpectedVersion {
        /// The stream appended to.
        stream_id: String,
        /// What the append expected.
        expected: ExpectedVersion,
        /// The stream's actual version.
        actual: u64,
    },
    /// A stream id was rejected.
    #[code(codes::INVALID_STREAM_ID, permanent)]
    #[error(
        "`{stream_id}` is not a valid stream id: {reason}; use 1 to 200 bytes \
         without control characters, e.g. StreamId::for_aggregate(\"todo\", 42)"
    )]
    InvalidStreamId {
        /// The rejected id.
        stream_id: String,
        /// Why it was rejected.
        reason: &'static str,
    },
    /// A stored payload does not fit today's event type.
    #[code(codes::EVENT_DECODE, permanent)]
    #[error(
        "event {stream_id}@{stream_version} of type `{event_type}` could not be \
         decoded: {reason}; if the event's shape changed, bump its schema version and \
         register an upcaster for the old one"
    )]
    Decode {
        /// The event's stream.
        stream_id: String,
        /// The event's version in its stream.
        stream_version: u64,
        /// The event's stored type.
        event_type: String,
        /// What serde said.
        reason: String,
    },
    /// A stored event's type is not a variant of today's event enum.
    #[code(codes::UNKNOWN_EVENT_TYPE, permanent)]
    #[error(
        "event {stream_id}@{stream_version} has type `{event_type}`, which the \
         event enum no longer has; register an upcaster that renames or discards it"
    )]
    UnknownEventType {
        /// The event's stream.
        stream_id: String,
        /// The event's version in its stream.
        stream_version: u64,
        /// The unknown type.
        event_type: String,
    },
    /// An event could not be turned into a payload.
    #[code(codes::EVENT_ENCODE, permanent)]
    #[error("an event could not be encoded: {reason}")]
    Encode {
        /// Why.
        reason: String,
    },
    /// A stored event is older than its type's current schema version and
    /// no upcaster bridges the gap.
    #[code(codes::MISSING_UPCASTER, permanent)]
    #[error(
        "event {stream_id}@{stream_version} of type `{event_type}` is stored at \
         schema version {stored_version} but the current version is {current_version}; \
         register an upcaster for (`{event_type}`, {stored_version})"
    )]
    MissingUpcaster {
        /// The event's stream.
        stream_id: String,
        /// The event's version in its stream.
        stream_version: u64,
        /// The event's type.
        event_type: String,
        /// The version it was stored at (after any upcasting that applied).
        stored_version: u32,
        /// The version the event type has today.
        current_version: u32,
    },
    /// An append carried no events.
    #[code(codes::EMPTY_APPEND, permanent)]
    #[error(
        "append to stream `{stream_id}` carried no events; skip the append when a \
         command produces no events"
    )]
    EmptyAppend {
        /// The stream appended to.
        stream_id: String,
    },
    /// An [`append_to_streams`](crate::EventStore::append_to_streams)
    /// named no stream, too many, or one stream twice; nothing was
    /// written.
    #[code(codes::INVALID_STREAM_APPENDS, permanent)]
    #[error(
        "the append to several streams {reason}; nothing was written. Give every stream \
         one StreamAppend holding all of its events, and 1 to 100 streams per commit"
    )]
    InvalidStreamAppends {
        /// What is wrong with it.
        reason: String,
    },
    /// An event id was already used; event ids must be unique.
    #[code(codes::DUPLICATE_EVENT_ID, permanent)]
    #[error(
        "event id {event_id} is already stored; nothing was written. Give every \
         new event a fresh id (NewEvent::from_event does)"
    )]
    DuplicateEventId {
        /// The duplicated id.
        event_id: uuid::Uuid,
    },
    /// A stored event cannot be read back: its row or payload is not what
    /// the store writes (edited by hand, restored from a bad dump, or
    /// written by an older version that accepted it). Readers that follow
    /// the global stream set it aside as a dead letter and go on.
    #[code(codes::CORRUPT_EVENT, permanent)]
    #[error(
        "the event at position {position} (stream `{stream_id}`) cannot be read back: {reason}; \
         it was probably written or edited outside the event store. Projections and \
         publishers set it aside as a dead letter (with its raw content) and go on; fix or \
         delete the row, then retry or discard the dead letter"
    )]
    CorruptEvent {
        /// Where the event is in the global order.
        position: Position,
        /// Its stream, as stored (may itself be what is wrong).
        stream_id: String,
        /// Its id, when that much could be read.
        event_id: Option<uuid::Uuid>,
        /// The raw row or payload, as text, for inspection.
        raw: String,
        /// What is wrong with it.
        reason: String,
    },
    /// An event's payload cannot be stored so that it reads back (too
    /// deep, too large, or holding a value the backend refuses); nothing
    /// was written.
    #[code(codes::UNSTORABLE_PAYLOAD, permanent)]
    #[error(
        "event of type `{event_type}` cannot be stored: {reason}; nothing was written. Change \
         the event so that {limit}"
    )]
    UnstorablePayload {
        /// The event's type.
        event_type: String,
        /// What is wrong with the payload.
        reason: String,
        /// What the event must respect instead, worded to end the
        /// message's sentence "Change the event so that ...", e.g. "its
        /// payload and metadata nest arrays and objects at most 64 levels
        /// deep (MAX_PAYLOAD_DEPTH): ...".
        limit: &'static str,
    },
    /// A temporal load ([`AggregateRepository::load_at`]) or a replay
    /// ([`ReplayDebugger`]) asked for a version the stream has not reached.
    ///
    /// [`AggregateRepository::load_at`]: crate::AggregateRepository::load_at
    /// [`ReplayDebugger`]: crate::aggregate::ReplayDebugger
    #[code(codes::VERSION_PAST_END, permanent)]
    #[error(
        "stream `{stream_id}` has no version {requested}: it ends at version {current}; ask \
         for a version from 0 to {current}, or for a point in time (AsOf::Time)"
    )]
    VersionPastEnd {
        /// The stream.
        stream_id: String,
        /// The version asked for.
        requested: u64,
        /// The stream's last version (0: the stream has no events).
        current: u64,
    },
    /// The storage backend failed (connection, SQL, migrations...). Code,
    /// class and message are the backend's own; downcast the
    /// [`BackendError`] to get its typed error back.
    #[code(transparent)]
    #[error(transparent)]
    Backend(#[from] BackendError),
}
