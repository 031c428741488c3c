//! Errors of event buses, the event publisher and bus-fed event sources.

use std::sync::Arc;
use std::time::Duration;

use crate::error::{CodedError, ErrorCode, codes};
use crate::event::Position;
use crate::event_store::EventStoreError;
use crate::projection::ProjectionError;

/// What can go wrong publishing to or consuming from an event bus.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum EventBusError {
    /// A topic, consumer group or consumer name was rejected.
    #[error(
        "[CR-E0015] `{name}` is not a valid {kind} name: {reason}; use 1 to 200 bytes of ASCII \
         letters, digits and . _ - : /, e.g. \"orders\" or \"billing-1\""
    )]
    InvalidName {
        /// What was being named: `"topic"`, `"consumer group"` or
        /// `"consumer"`.
        kind: &'static str,
        /// The rejected name.
        name: String,
        /// Why it was rejected.
        reason: &'static str,
    },
    /// A message on the bus is not in the form the bus writes.
    #[error(
        "[CR-E0016] message {message_id} of topic `{topic}` cannot be decoded: {reason}; it was \
         not written by this framework's bus (or by an incompatible version). Something else \
         writes to this topic: give the framework its own topics (or key prefix)"
    )]
    Decode {
        /// The topic.
        topic: String,
        /// The message's id.
        message_id: String,
        /// What is wrong with it.
        reason: String,
    },
    /// `EventPublisher::wait_for` gave up.
    #[error(
        "[CR-E0017] event publisher `{publisher}` did not publish position {target} within \
         {timeout:?} (it is at {reached}); check that it is running (start() or run()) and \
         that the bus is reachable (its logs show failed batches)"
    )]
    PublisherWaitTimedOut {
        /// The publisher's name.
        publisher: String,
        /// The position waited for.
        target: Position,
        /// The position it had published.
        reached: Position,
        /// How long it waited.
        timeout: Duration,
    },
    /// Reading events from the event store failed (the publisher's source).
    #[error(transparent)]
    Source(#[from] EventStoreError),
    /// Loading or saving a checkpoint failed (the publisher's checkpoint
    /// store).
    #[error(transparent)]
    Checkpoint(#[from] ProjectionError),
    /// The bus's backend failed (connection, command...). The code is the
    /// backend's own, e.g. `CR-E0203` for an unreachable Redis.
    #[error("[{code}] {message}")]
    Backend {
        /// The backend's code.
        code: ErrorCode,
        /// What happened and what to do.
        message: String,
        /// The underlying error, if any.
        #[source]
        source: Option<Arc<dyn std::error::Error + Send + Sync>>,
    },
}

impl EventBusError {
    /// Whether the failure is in the infrastructure (a backend that is
    /// down) and the operation can be retried as is.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Backend { .. } | Self::Source(EventStoreError::Backend { .. }) => true,
            Self::Checkpoint(error) => error.is_transient(),
            _ => false,
        }
    }
}

impl CodedError for EventBusError {
    fn code(&self) -> ErrorCode {
        match self {
            Self::InvalidName { .. } => codes::INVALID_BUS_NAME,
            Self::Decode { .. } => codes::BUS_MESSAGE_DECODE,
            Self::PublisherWaitTimedOut { .. } => codes::PUBLISHER_WAIT_TIMED_OUT,
            Self::Source(error) => error.code(),
            Self::Checkpoint(error) => error.code(),
            Self::Backend { code, .. } => *code,
        }
    }
}

impl From<EventBusError> for EventStoreError {
    /// A bus failure as seen by an [`EventSource`](crate::projection::EventSource)
    /// reader: a backend error carrying the bus error's code and message
    /// (so a projection manager treats it as transient and retries).
    fn from(error: EventBusError) -> Self {
        match error {
            EventBusError::Source(error) => error,
            other => EventStoreError::Backend {
                code: other.code(),
                message: other.to_string(),
                source: Some(Arc::new(other)),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_start_with_their_code() {
        let errors = [
            EventBusError::InvalidName {
                kind: "topic",
                name: "a b".into(),
                reason: "it contains a space",
            },
            EventBusError::Decode {
                topic: "orders".into(),
                message_id: "1-0".into(),
                reason: "no `event` field".into(),
            },
            EventBusError::PublisherWaitTimedOut {
                publisher: "bus".into(),
                target: Position::new(2, 2),
                reached: Position::new(1, 1),
                timeout: Duration::from_secs(1),
            },
        ];
        for error in errors {
            let prefix = format!("[{}]", error.code());
            assert!(error.to_string().starts_with(&prefix), "{error}");
            assert!(!error.is_transient());
        }
    }

    #[test]
    fn backend_failures_are_transient_and_keep_their_code_as_source_errors() {
        let error = EventBusError::Backend {
            code: ErrorCode::new("CR-E0203", "unreachable"),
            message: "could not reach Redis".into(),
            source: None,
        };
        assert!(error.is_transient());
        let as_source: EventStoreError = error.into();
        assert_eq!(as_source.code().as_str(), "CR-E0203");
        assert!(matches!(as_source, EventStoreError::Backend { .. }));
    }
}
