//! Errors of sagas and the saga runtime.

use std::sync::Arc;

use super::id::{CommandId, SagaId};
use crate::error::{ErrorClass, coded_error, codes};
use crate::event_store::EventStoreError;

/// Why a [`CommandDispatcher`](super::CommandDispatcher) could not deliver a
/// command. The command stays pending and is delivered again later.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct DispatchError {
    message: String,
    permanent: bool,
    #[source]
    source: Option<Arc<dyn std::error::Error + Send + Sync>>,
}

impl DispatchError {
    /// A dispatch failure described by `message`.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            permanent: false,
            source: None,
        }
    }

    /// A dispatch failure that delivering again cannot fix (the receiver
    /// refuses the command as it is). [`SagaError::Dispatch`] then reports
    /// [`ErrorClass::Permanent`], so a bus consumer stops redelivering the
    /// event; the command stays pending for an operator.
    pub fn permanent(message: impl Into<String>) -> Self {
        Self {
            permanent: true,
            ..Self::new(message)
        }
    }

    /// Whether delivering again can help.
    pub fn class(&self) -> ErrorClass {
        if self.permanent {
            ErrorClass::Permanent
        } else {
            ErrorClass::Transient
        }
    }

    /// The failure was caused by `source`.
    #[must_use]
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Arc::new(source));
        self
    }
}

/// What can go wrong running a saga.
#[coded_error]
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum SagaError {
    /// A saga id was rejected.
    #[code(codes::INVALID_SAGA_ID, permanent)]
    #[error(
        "`{id}` is not a valid saga id: {reason}; use 1 to 100 bytes without \
         control characters, such as the order id or the correlation id the saga coordinates"
    )]
    InvalidSagaId {
        /// The rejected id.
        id: String,
        /// Why it was rejected.
        reason: &'static str,
    },
    /// A command could not be handed to its receiver. The step that issued
    /// it is recorded; the command stays pending.
    #[code(codes::SAGA_DISPATCH_FAILED, class = source.class())]
    #[error(
        "command {command_id} of saga {saga_id} could not be dispatched: {source}; \
         the step that issued it is recorded and the command stays pending: it is dispatched \
         again on the next event for this saga, by SagaRuntime::retry_pending, or by \
         SagaRuntime::resume after a restart, so make its receiver idempotent by command id"
    )]
    Dispatch {
        /// The saga that issued the command.
        saga_id: SagaId,
        /// The command that was not delivered.
        command_id: CommandId,
        /// What the dispatcher reported.
        #[source]
        source: DispatchError,
    },
    /// Another writer kept appending to the saga's stream.
    #[code(codes::SAGA_CONFLICT, transient)]
    #[error(
        "saga {saga_id} was changed by another writer on each of {attempts} \
         attempts, so this event was not handled; run one saga runtime per saga kind (or \
         route each saga id to one consumer), and deliver the event again"
    )]
    Conflict {
        /// The saga.
        saga_id: SagaId,
        /// How many times the runtime reloaded the saga and tried again.
        attempts: usize,
    },
    /// The saga's stream holds events the runtime did not write in that
    /// order.
    #[code(codes::SAGA_STREAM_CORRUPT, permanent)]
    #[error(
        "the stream of saga {saga_id} is inconsistent at version {version}: \
         {reason}; only the saga runtime may append to a saga's stream (`saga-<kind>-<id>`)"
    )]
    CorruptStream {
        /// The saga.
        saga_id: SagaId,
        /// The stream version where the problem is.
        version: u64,
        /// What is wrong.
        reason: String,
    },
    /// The runtime was shut down.
    #[code(codes::SAGA_RUNTIME_SHUT_DOWN, configuration)]
    #[error(
        "the saga runtime is shut down and did not handle this event; stop \
         delivering events before SagaRuntime::shutdown, and deliver it again to a new \
         runtime (it resumes from the event store)"
    )]
    ShutDown,
    /// A [`SagaMap`](super::SagaMap) declaration is not a saga.
    #[code(codes::INVALID_SAGA_MAP, configuration)]
    #[error(
        "the saga map of `{kind}` is invalid: {reason}; declare each step once, in \
         order, each with the input that says it succeeded (SagaMapStep::with_success)"
    )]
    InvalidMap {
        /// The saga kind.
        kind: String,
        /// What is wrong.
        reason: String,
    },
    /// A saga does something else than its [`SagaMap`](super::SagaMap)
    /// says ([`SagaMap::verify`](super::SagaMap::verify)).
    #[code(codes::SAGA_MAP_MISMATCH, configuration)]
    #[error(
        "the saga map of `{kind}` does not match the saga's code when {path}: the map \
         expects the commands {expected}, but the saga sent {actual}; change the map \
         (the saga's DeclaredSaga::map) or the saga so that they agree"
    )]
    MapMismatch {
        /// The saga kind.
        kind: String,
        /// The path where they differ, with its inputs.
        path: String,
        /// The commands the map expects, and the end.
        expected: String,
        /// The commands the saga sent, and the end.
        actual: String,
    },
    /// No saga instance with this id has recorded anything.
    #[code(codes::SAGA_NOT_FOUND, permanent)]
    #[error(
        "no saga has recorded anything in stream `{stream_id}`; check the saga id (the id \
         Saga::route gives) and kind, and that this is the event store (database and \
         schema) of the deployment that ran it"
    )]
    NotFound {
        /// The saga's stream, `saga-<kind>-<id>`.
        stream_id: String,
    },
    /// Loading or appending failed; nothing was recorded. Code and class
    /// are the event store's.
    #[code(transparent)]
    #[error(transparent)]
    Store(#[from] EventStoreError),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::CodedError;

    #[test]
    fn messages_start_with_their_code() {
        let saga_id = SagaId::new("s-1").unwrap();
        let errors = [
            SagaError::InvalidSagaId {
                id: String::new(),
                reason: "it is empty",
            },
            SagaError::Dispatch {
                saga_id: saga_id.clone(),
                command_id: CommandId::new("saga-x-s-1#1"),
                source: DispatchError::new("connection refused"),
            },
            SagaError::Conflict {
                saga_id: saga_id.clone(),
                attempts: 3,
            },
            SagaError::CorruptStream {
                saga_id,
                version: 4,
                reason: "x".into(),
            },
            SagaError::ShutDown,
            SagaError::InvalidMap {
                kind: "checkout".into(),
                reason: "it declares no step".into(),
            },
            SagaError::MapMismatch {
                kind: "checkout".into(),
                path: "step `payment` fails".into(),
                expected: "[]".into(),
                actual: "[]".into(),
            },
            SagaError::NotFound {
                stream_id: "saga-checkout-1".into(),
            },
        ];
        for error in errors {
            let prefix = format!("[{}]", error.code());
            assert!(error.to_string().starts_with(&prefix), "{error}");
        }
    }
}
