//! Errors with stable codes.
//!
//! Every user-facing error in Composable Rust carries an [`ErrorCode`]
//! (`CR-E0001`, ...). Codes never change meaning once released; each is
//! explained in the book's troubleshooting appendix. Each crate owns a range:
//! core uses `CR-E00xx`.

use std::fmt;
use std::time::Duration;

/// A stable, documented error code such as `CR-E0001`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ErrorCode {
    code: &'static str,
    summary: &'static str,
}

impl ErrorCode {
    /// Declares a code. Codes are declared once, as constants, by the crate
    /// that owns them.
    pub const fn new(code: &'static str, summary: &'static str) -> Self {
        Self { code, summary }
    }

    /// The code, e.g. `"CR-E0001"`.
    pub const fn as_str(&self) -> &'static str {
        self.code
    }

    /// A one-line summary of what the code means.
    pub const fn summary(&self) -> &'static str {
        self.summary
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code)
    }
}

/// An error that carries a stable [`ErrorCode`].
pub trait CodedError: std::error::Error {
    /// The stable code of this error.
    fn code(&self) -> ErrorCode;
}

/// The codes owned by `composable-rust-core`.
pub mod codes {
    use super::ErrorCode;

    /// An action was sent to a store that is shutting down.
    pub const STORE_SHUT_DOWN: ErrorCode =
        ErrorCode::new("CR-E0001", "action sent to a store that is shutting down");
    /// Effects were still running when a store's shutdown deadline passed.
    pub const SHUTDOWN_TIMED_OUT: ErrorCode =
        ErrorCode::new("CR-E0002", "effects still running at the shutdown deadline");

    /// An append found the stream at another version than expected.
    pub const WRONG_EXPECTED_VERSION: ErrorCode = ErrorCode::new(
        "CR-E0003",
        "stream not at the expected version (concurrency conflict)",
    );
    /// A stream id was rejected.
    pub const INVALID_STREAM_ID: ErrorCode = ErrorCode::new("CR-E0004", "invalid stream id");
    /// A stored payload does not fit today's event type.
    pub const EVENT_DECODE: ErrorCode =
        ErrorCode::new("CR-E0005", "stored event cannot be decoded");
    /// A stored event's type no longer exists.
    pub const UNKNOWN_EVENT_TYPE: ErrorCode =
        ErrorCode::new("CR-E0006", "unknown stored event type");
    /// An event could not be encoded.
    pub const EVENT_ENCODE: ErrorCode = ErrorCode::new("CR-E0007", "event cannot be encoded");
    /// An old schema version has no upcaster.
    pub const MISSING_UPCASTER: ErrorCode =
        ErrorCode::new("CR-E0008", "no upcaster for an old event schema version");
    /// An append carried no events.
    pub const EMPTY_APPEND: ErrorCode = ErrorCode::new("CR-E0009", "append without events");
    /// An event id was used twice.
    pub const DUPLICATE_EVENT_ID: ErrorCode = ErrorCode::new("CR-E0010", "duplicate event id");

    /// A projection failed to apply an event.
    pub const PROJECTION_APPLY: ErrorCode =
        ErrorCode::new("CR-E0011", "a projection failed to apply an event");
    /// A read-model value could not be (de)serialized.
    pub const PROJECTION_SERIALIZATION: ErrorCode =
        ErrorCode::new("CR-E0012", "read-model value cannot be (de)serialized");
    /// Waiting for a projection to reach a position timed out.
    pub const PROJECTION_WAIT_TIMED_OUT: ErrorCode =
        ErrorCode::new("CR-E0013", "projection did not reach a position in time");
    /// A dead letter was not found.
    pub const DEAD_LETTER_NOT_FOUND: ErrorCode = ErrorCode::new("CR-E0014", "no such dead letter");

    /// A topic, consumer group or consumer name was rejected.
    pub const INVALID_BUS_NAME: ErrorCode =
        ErrorCode::new("CR-E0015", "invalid topic, consumer group or consumer name");
    /// A message on the event bus is not in the form the bus writes.
    pub const BUS_MESSAGE_DECODE: ErrorCode =
        ErrorCode::new("CR-E0016", "event bus message cannot be decoded");
    /// Waiting for the event publisher to reach a position timed out.
    pub const PUBLISHER_WAIT_TIMED_OUT: ErrorCode = ErrorCode::new(
        "CR-E0017",
        "event publisher did not reach a position in time",
    );

    /// A saga id was rejected.
    pub const INVALID_SAGA_ID: ErrorCode = ErrorCode::new("CR-E0030", "invalid saga id");
    /// A saga's command could not be delivered; it stays pending.
    pub const SAGA_DISPATCH_FAILED: ErrorCode =
        ErrorCode::new("CR-E0031", "a saga command could not be dispatched");
    /// Another writer kept appending to a saga's stream.
    pub const SAGA_CONFLICT: ErrorCode = ErrorCode::new(
        "CR-E0032",
        "a saga was changed by another writer on every attempt",
    );
    /// A saga's stream holds records the runtime did not write that way.
    pub const SAGA_STREAM_CORRUPT: ErrorCode =
        ErrorCode::new("CR-E0033", "a saga's stream is inconsistent");
    /// An event was given to a saga runtime that is shut down.
    pub const SAGA_RUNTIME_SHUT_DOWN: ErrorCode = ErrorCode::new(
        "CR-E0034",
        "event given to a saga runtime that is shut down",
    );

    /// Every code this crate owns, in order.
    pub const ALL: &[ErrorCode] = &[
        STORE_SHUT_DOWN,
        SHUTDOWN_TIMED_OUT,
        WRONG_EXPECTED_VERSION,
        INVALID_STREAM_ID,
        EVENT_DECODE,
        UNKNOWN_EVENT_TYPE,
        EVENT_ENCODE,
        MISSING_UPCASTER,
        EMPTY_APPEND,
        DUPLICATE_EVENT_ID,
        PROJECTION_APPLY,
        PROJECTION_SERIALIZATION,
        PROJECTION_WAIT_TIMED_OUT,
        DEAD_LETTER_NOT_FOUND,
        INVALID_BUS_NAME,
        BUS_MESSAGE_DECODE,
        PUBLISHER_WAIT_TIMED_OUT,
        INVALID_SAGA_ID,
        SAGA_DISPATCH_FAILED,
        SAGA_CONFLICT,
        SAGA_STREAM_CORRUPT,
        SAGA_RUNTIME_SHUT_DOWN,
    ];
}

/// Errors reported by the [`Store`](crate::Store).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The store no longer accepts actions.
    #[error(
        "[CR-E0001] the store is shutting down and did not run this action; \
         send actions before calling Store::shutdown, or create a new Store"
    )]
    ShutDown,
    /// Shutdown gave up waiting and cancelled the remaining effects.
    #[error(
        "[CR-E0002] {in_flight} effect(s) were still running when the shutdown deadline of \
         {deadline:?} passed and were cancelled; pass a longer deadline to Store::shutdown, \
         or make long-running effects finish sooner"
    )]
    ShutdownTimedOut {
        /// How many effects were cancelled.
        in_flight: usize,
        /// The deadline that passed.
        deadline: Duration,
    },
}

impl CodedError for StoreError {
    fn code(&self) -> ErrorCode {
        match self {
            Self::ShutDown => codes::STORE_SHUT_DOWN,
            Self::ShutdownTimedOut { .. } => codes::SHUTDOWN_TIMED_OUT,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_start_with_their_code() {
        let errors = [
            StoreError::ShutDown,
            StoreError::ShutdownTimedOut {
                in_flight: 2,
                deadline: Duration::from_secs(1),
            },
        ];
        for error in errors {
            let prefix = format!("[{}]", error.code());
            assert!(error.to_string().starts_with(&prefix), "{error}");
        }
    }

    #[test]
    fn codes_are_unique_and_well_formed() {
        let mut seen = std::collections::HashSet::new();
        for code in codes::ALL {
            assert!(seen.insert(code.as_str()), "duplicate {code}");
            let digits = code.as_str().strip_prefix("CR-E").expect("CR-E prefix");
            assert_eq!(digits.len(), 4);
            assert!(digits.chars().all(|c| c.is_ascii_digit()));
        }
    }
}
