//! Errors of projections, their stores and the projection manager.

use std::sync::Arc;
use std::time::Duration;

use crate::error::{CodedError, ErrorCode, codes};
use crate::event::Position;
use crate::event_store::EventStoreError;

/// What can go wrong keeping a read model up to date.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum ProjectionError {
    /// The projection could not apply an event (a bug, or an event it cannot
    /// handle). The manager retries it with backoff, then dead-letters it.
    #[error(
        "[CR-E0011] the projection failed to apply an event: {message}; the manager retries \
         it with backoff and then moves it to the dead letters, where it can be inspected, \
         retried after a fix, or discarded"
    )]
    Apply {
        /// What went wrong.
        message: String,
    },
    /// A read-model value could not be (de)serialized.
    #[error(
        "[CR-E0012] the read-model value at `{key}` could not be (de)serialized: {reason}; if \
         the value's type changed, rebuild the projection"
    )]
    Serialization {
        /// The key of the value.
        key: String,
        /// What serde said.
        reason: String,
    },
    /// `wait_for` gave up.
    #[error(
        "[CR-E0013] projection `{projection}` did not reach position {target} within \
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
    #[error(
        "[CR-E0014] projection `{projection}` has no dead letter for event {event_id}; list \
         them with ProjectionManager::dead_letters"
    )]
    DeadLetterNotFound {
        /// The projection.
        projection: String,
        /// The event id asked for.
        event_id: uuid::Uuid,
    },
    /// Reading events from the source failed.
    #[error(transparent)]
    Source(#[from] EventStoreError),
    /// The projection store failed (connection, query...). The code is the
    /// backend's own. Treated as transient: the manager retries the batch
    /// later and never dead-letters an event because of it.
    #[error("[{code}] {message}")]
    Backend {
        /// The backend's code, e.g. `CR-E0103`.
        code: ErrorCode,
        /// What happened and what to do.
        message: String,
        /// The underlying error, if any.
        #[source]
        source: Option<Arc<dyn std::error::Error + Send + Sync>>,
    },
}

impl ProjectionError {
    /// An [`Apply`](Self::Apply) error with `message`; return it from
    /// `Projection::apply` for an event the projection cannot handle.
    pub fn apply(message: impl std::fmt::Display) -> Self {
        Self::Apply {
            message: message.to_string(),
        }
    }

    /// Whether the failure is in the infrastructure rather than in the
    /// event or the projection: retried without counting towards
    /// dead-lettering.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Self::Backend { .. } | Self::Source(EventStoreError::Backend { .. })
        )
    }
}

impl CodedError for ProjectionError {
    fn code(&self) -> ErrorCode {
        match self {
            Self::Apply { .. } => codes::PROJECTION_APPLY,
            Self::Serialization { .. } => codes::PROJECTION_SERIALIZATION,
            Self::WaitTimedOut { .. } => codes::PROJECTION_WAIT_TIMED_OUT,
            Self::DeadLetterNotFound { .. } => codes::DEAD_LETTER_NOT_FOUND,
            Self::Source(error) => error.code(),
            Self::Backend { code, .. } => *code,
        }
    }
}
