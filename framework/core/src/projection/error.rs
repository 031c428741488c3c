//! Errors of projections, their stores and the projection manager.

use std::time::Duration;

use crate::error::{BackendError, CodedError, ErrorClass, coded_error, codes};
use crate::event::Position;
use crate::event_store::EventStoreError;

/// What can go wrong keeping a read model up to date.
#[coded_error]
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum ProjectionError {
    /// The projection could not apply an event (a bug, or an event it cannot
    /// handle). The manager retries it with backoff, then dead-letters it.
    #[code(codes::PROJECTION_APPLY, permanent)]
    #[error(
        "the projection failed to apply an event: {message}; the manager retries \
         it with backoff and then moves it to the dead letters, where it can be inspected, \
         retried after a fix, or discarded"
    )]
    Apply {
        /// What went wrong.
        message: String,
    },
    /// A read-model value could not be (de)serialized.
    #[code(codes::PROJECTION_SERIALIZATION, permanent)]
    #[error(
        "the read-model value at `{key}` could not be (de)serialized: {reason}; if \
         the value's type changed, rebuild the projection"
    )]
    Serialization {
        /// The key of the value.
        key: String,
        /// What serde said.
        reason: String,
    },
    /// `wait_for` gave up.
    #[code(codes::PROJECTION_WAIT_TIMED_OUT, transient)]
    #[error(
        "projection `{projection}` did not reach position {target} within \
         {timeout:?} (it is at {reached}); check that its manager is running and not stuck on \
         a failing event (see its dead letters and lag metrics)"
    )]
    WaitTimedOut {
        /// The projection waited on.
        projection: String,
        /// The position waited for.
        target: Position,
        /// The position it had reached.
        reached: Position,
        /// How long it waited.
        timeout: Duration,
    },
    /// No dead letter has that event id.
    #[code(codes::DEAD_LETTER_NOT_FOUND, permanent)]
    #[error(
        "projection `{projection}` has no dead letter for event {event_id}; list \
         them with ProjectionManager::dead_letters"
    )]
    DeadLetterNotFound {
        /// The projection.
        projection: String,
        /// The event id asked for.
        event_id: uuid::Uuid,
    },
    /// Reading events from the source failed; code and class are the
    /// source's.
    #[code(transparent)]
    #[error(transparent)]
    Source(#[from] EventStoreError),
    /// The projection store failed (connection, query, a key the backend
    /// refuses...). Code, class and message are the backend's own: the
    /// manager retries a transient failure, dead-letters the event behind a
    /// permanent one, and stops on a configuration error.
    #[code(transparent)]
    #[error(transparent)]
    Backend(#[from] BackendError),
}

impl ProjectionError {
    /// An [`Apply`](Self::Apply) error with `message`; return it from
    /// `Projection::apply` for an event the projection cannot handle.
    pub fn apply(message: impl std::fmt::Display) -> Self {
        Self::Apply {
            message: message.to_string(),
        }
    }

    /// Whether retrying the same operation later can succeed (see
    /// [`ErrorClass`]); a shortcut for `self.class() == ErrorClass::Transient`.
    pub fn is_transient(&self) -> bool {
        self.class() == ErrorClass::Transient
    }
}
