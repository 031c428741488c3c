//! Errors of event buses, the event publisher and bus-fed event sources.

use std::time::Duration;

use crate::error::{BackendError, CodedError, ErrorClass, coded_error, codes};
use crate::event::Position;
use crate::event_store::EventStoreError;
use crate::projection::ProjectionError;

/// What can go wrong publishing to or consuming from an event bus.
#[coded_error]
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum EventBusError {
    /// A topic, consumer group or consumer name was rejected.
    #[code(codes::INVALID_BUS_NAME, permanent)]
    #[error(
        "`{name}` is not a valid {kind} name: {reason}; use 1 to 200 bytes of ASCII \
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
    #[code(codes::BUS_MESSAGE_DECODE, permanent)]
    #[error(
        "message {message_id} of topic `{topic}` cannot be decoded: {reason}; it was \
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
    #[code(codes::PUBLISHER_WAIT_TIMED_OUT, transient)]
    #[error(
        "event publisher `{publisher}` did not publish position {target} within \
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
    #[code(transparent)]
    #[error(transparent)]
    Source(#[from] EventStoreError),
    /// Loading or saving a checkpoint failed (the publisher's checkpoint
    /// store).
    #[code(transparent)]
    #[error(transparent)]
    Checkpoint(#[from] ProjectionError),
    /// The bus's backend failed (connection, command...). Code, class and
    /// message are the backend's own, e.g. `CR-E0203` for an unreachable
    /// Redis.
    #[code(transparent)]
    #[error(transparent)]
    Backend(#[from] BackendError),
}

impl EventBusError {
    /// Whether retrying the same operation later can succeed (see
    /// [`ErrorClass`]); a shortcut for `self.class() == ErrorClass::Transient`.
    pub fn is_transient(&self) -> bool {
        self.class() == ErrorClass::Transient
    }
}

impl From<EventBusError> for EventStoreError {
    /// A bus failure as seen by an [`EventSource`](crate::projection::EventSource)
    /// reader: a backend error that keeps the bus error's code, class and
    /// type.
    fn from(error: EventBusError) -> Self {
        match error {
            EventBusError::Source(error) => error,
            EventBusError::Backend(error) => EventStoreError::Backend(error),
            other => EventStoreError::Backend(BackendError::new(other)),
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
            let transient = matches!(error, EventBusError::PublisherWaitTimedOut { .. });
            assert_eq!(error.is_transient(), transient, "{error}");
        }
    }

    #[crate::error::coded_error]
    #[derive(Debug, thiserror::Error)]
    enum FakeBackend {
        #[code(crate::error::ErrorCode::new("CR-E0299", "test"), transient)]
        #[error("could not reach the fake backend")]
        Unreachable,
    }

    #[test]
    fn backend_failures_keep_their_code_class_and_type_as_source_errors() {
        let error = EventBusError::from(BackendError::new(FakeBackend::Unreachable));
        assert!(error.is_transient());
        let as_source: EventStoreError = error.into();
        assert_eq!(as_source.code().as_str(), "CR-E0299");
        assert_eq!(as_source.class(), ErrorClass::Transient);
        let EventStoreError::Backend(backend) = &as_source else {
            panic!("{as_source:?}");
        };
        assert!(backend.is::<FakeBackend>());
        assert_eq!(
            as_source.to_string(),
            "[CR-E0299] could not reach the fake backend"
        );
    }
}
