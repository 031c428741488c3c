//! Identities: which saga instance ([`SagaId`]), which command
//! ([`CommandId`]), and the envelope a command travels in ([`SagaCommand`]).

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::SagaError;
use crate::event::{EventMetadata, StoredEvent, StreamId};

/// The longest saga id accepted, in bytes.
const MAX_SAGA_ID_LEN: usize = 100;

/// The header, in the metadata of an event that records a command's
/// outcome, naming the command ([`SagaCommand::metadata`] sets it).
pub const COMMAND_ID_HEADER: &str = "saga-command-id";
/// The header naming the saga instance that issued a command.
pub const SAGA_ID_HEADER: &str = "saga-id";

/// Identifies one saga instance among those of its kind: usually the id of
/// the business transaction it coordinates (an order id) or the events'
/// correlation id. Non-empty, at most 100 bytes, no control characters.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SagaId(String);

impl SagaId {
    /// Validates `id` as a saga id.
    pub fn new(id: impl Into<String>) -> Result<Self, SagaError> {
        let id = id.into();
        let problem = if id.is_empty() {
            Some("it is empty")
        } else if id.len() > MAX_SAGA_ID_LEN {
            Some("it is longer than 100 bytes")
        } else if id.chars().any(char::is_control) {
            Some("it contains control characters")
        } else {
            None
        };
        match problem {
            Some(reason) => Err(SagaError::InvalidSagaId { id, reason }),
            None => Ok(Self(id)),
        }
    }

    /// The saga named by `event`'s correlation id, if it has one: the
    /// convention when every event of one business transaction shares a
    /// correlation id.
    pub fn from_correlation(event: &StoredEvent) -> Option<Self> {
        event.metadata.correlation_id.map(Self::from)
    }

    /// The id as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<Uuid> for SagaId {
    fn from(id: Uuid) -> Self {
        Self(id.to_string())
    }
}

impl fmt::Display for SagaId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for SagaId {
    type Error = SagaError;
    fn try_from(id: String) -> Result<Self, Self::Error> {
        Self::new(id)
    }
}

impl From<SagaId> for String {
    fn from(id: SagaId) -> Self {
        id.0
    }
}

/// Identifies one command a saga issued, stable forever: the saga's stream
/// and the command's number in it, e.g. `saga-checkout-1001#3`.
///
/// A command is delivered **at least once** (a crash between delivering it
/// and recording the delivery delivers it again after the restart), so
/// receivers use this id to do its work only once: as the idempotency key of
/// a payment gateway, or by looking for an event that already records it
/// ([`CommandId::of_event`]).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CommandId(String);

impl CommandId {
    /// A command id from its string form.
    pub fn new(id: impl Into<String>) -> Self {
        Self(id.into())
    }

    /// The id of the `number`th command issued by the saga in `stream`.
    pub(crate) fn issued(stream: &StreamId, number: u64) -> Self {
        Self(format!("{stream}#{number}"))
    }

    /// The command whose outcome `event` records, if its metadata says so
    /// (see [`SagaCommand::metadata`]).
    pub fn of_event(event: &StoredEvent) -> Option<Self> {
        event
            .metadata
            .headers
            .get(COMMAND_ID_HEADER)
            .map(|id| Self(id.clone()))
    }

    /// The id as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CommandId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A command on its way out of a saga: the command itself, its stable id
/// and the saga that issued it. This is what a
/// [`CommandDispatcher`](super::CommandDispatcher) receives.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SagaCommand<C> {
    /// Stable and unique: dispatch it as an idempotency key.
    pub id: CommandId,
    /// The saga instance that issued the command.
    pub saga_id: SagaId,
    /// What the saga asks for.
    pub command: C,
}

impl<C> SagaCommand<C> {
    /// Metadata for the events that record this command's outcome: the
    /// command id and saga id as headers, and the saga id as correlation id
    /// when it is a UUID. With it, a receiver can tell that it already
    /// handled a redelivered command ([`CommandId::of_event`]).
    pub fn metadata(&self) -> EventMetadata {
        EventMetadata {
            correlation_id: Uuid::parse_str(self.saga_id.as_str()).ok(),
            causation_id: None,
            headers: BTreeMap::from([
                (COMMAND_ID_HEADER.to_owned(), self.id.to_string()),
                (SAGA_ID_HEADER.to_owned(), self.saga_id.to_string()),
            ]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saga_ids_are_validated() {
        assert_eq!(SagaId::new("order-1").unwrap().as_str(), "order-1");
        for bad in ["".to_owned(), "x".repeat(101), "a\tb".to_owned()] {
            let error = SagaId::new(bad).unwrap_err();
            assert!(error.to_string().starts_with("[CR-E0030]"), "{error}");
        }
        assert!(serde_json::from_str::<SagaId>("\"\"").is_err());
    }

    #[test]
    fn command_metadata_names_the_command_and_saga() {
        let saga_id = SagaId::from(Uuid::from_u128(7));
        let command = SagaCommand {
            id: CommandId::issued(&StreamId::new("saga-x-1").unwrap(), 3),
            saga_id: saga_id.clone(),
            command: (),
        };
        assert_eq!(command.id.as_str(), "saga-x-1#3");
        let metadata = command.metadata();
        assert_eq!(metadata.correlation_id, Some(Uuid::from_u128(7)));
        assert_eq!(metadata.headers[COMMAND_ID_HEADER], "saga-x-1#3");
        assert_eq!(metadata.headers[SAGA_ID_HEADER], saga_id.as_str());
    }
}
