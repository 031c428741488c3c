//! Errors of event stores, events and aggregates' persistence.

use std::sync::Arc;

use crate::error::{CodedError, ErrorCode, codes};
use crate::event::ExpectedVersion;

/// What can go wrong storing or loading events.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum EventStoreError {
    /// The stream was not at the expected version; nothing was written.
    #[error(
        "[CR-E0003] stream `{stream_id}` is at version {actual}, but the append expected \
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
    #[error(
        "[CR-E0004] `{stream_id}` is not a valid stream id: {reason}; use 1 to 200 bytes \
         without control characters, e.g. StreamId::for_aggregate(\"todo\", 42)"
    )]
    InvalidStreamId {
        /// The rejected id.
        stream_id: String,
        /// Why it was rejected.
        reason: &'static str,
    },
    /// A stored payload does not fit today's event type.
    #[error(
        "[CR-E0005] event {stream_id}@{stream_version} of type `{event_type}` could not be \
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
    #[error(
        "[CR-E0006] event {stream_id}@{stream_version} has type `{event_type}`, which the \
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
    #[error("[CR-E0007] an event could not be encoded: {reason}")]
    Encode {
        /// Why.
        reason: String,
    },
    /// A stored event is older than its type's current schema version and
    /// no upcaster bridges the gap.
    #[error(
        "[CR-E0008] event {stream_id}@{stream_version} of type `{event_type}` is stored at \
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
    #[error(
        "[CR-E0009] append to stream `{stream_id}` carried no events; skip the append when a \
         command produces no events"
    )]
    EmptyAppend {
        /// The stream appended to.
        stream_id: String,
    },
    /// An event id was already used; event ids must be unique.
    #[error(
        "[CR-E0010] event id {event_id} is already stored; nothing was written. Give every \
         new event a fresh id (NewEvent::from_event does)"
    )]
    DuplicateEventId {
        /// The duplicated id.
        event_id: uuid::Uuid,
    },
    /// The storage backend failed (connection, SQL, migrations...). The code
    /// is the backend's own.
    #[error("[{code}] {message}")]
    Backend {
        /// The backend's code, e.g. `CR-E0101`.
        code: ErrorCode,
        /// What happened and what to do.
        message: String,
        /// The underlying error, if any.
        #[source]
        source: Option<Arc<dyn std::error::Error + Send + Sync>>,
    },
}

impl CodedError for EventStoreError {
    fn code(&self) -> ErrorCode {
        match self {
            Self::WrongExpectedVersion { .. } => codes::WRONG_EXPECTED_VERSION,
            Self::InvalidStreamId { .. } => codes::INVALID_STREAM_ID,
            Self::Decode { .. } => codes::EVENT_DECODE,
            Self::UnknownEventType { .. } => codes::UNKNOWN_EVENT_TYPE,
            Self::Encode { .. } => codes::EVENT_ENCODE,
            Self::MissingUpcaster { .. } => codes::MISSING_UPCASTER,
            Self::EmptyAppend { .. } => codes::EMPTY_APPEND,
            Self::DuplicateEventId { .. } => codes::DUPLICATE_EVENT_ID,
            Self::Backend { code, .. } => *code,
        }
    }
}
