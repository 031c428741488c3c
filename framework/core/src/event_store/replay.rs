//! What [`EventStore::replay`](super::EventStore::replay) hands over: only
//! what rebuilding an aggregate needs (version, type, schema version,
//! payload), borrowed from the store's rows, so a load builds no
//! [`StoredEvent`](crate::event::StoredEvent) and copies no payload.

use serde::de::DeserializeOwned;
use serde_json::Value;

use super::EventStoreError;
use crate::event::{ExpectedVersion, NewEvent};

/// JSON as a store holds it: text (PostgreSQL hands payloads over as
/// text) or a parsed value (the in-memory store).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum JsonRef<'a> {
    /// JSON text.
    Text(&'a str),
    /// A parsed value.
    Value(&'a Value),
}

impl JsonRef<'_> {
    /// `T` read from this JSON, without an intermediate [`Value`] for
    /// text.
    ///
    /// # Errors
    ///
    /// serde_json's, when the JSON does not parse or does not fit `T`.
    pub fn deserialize<T: DeserializeOwned>(self) -> Result<T, serde_json::Error> {
        match self {
            Self::Text(text) => serde_json::from_str(text),
            Self::Value(value) => T::deserialize(value),
        }
    }

    /// The JSON as a [`Value`] (parsed, or cloned).
    ///
    /// # Errors
    ///
    /// serde_json's, when the text does not parse.
    pub fn to_value(self) -> Result<Value, serde_json::Error> {
        match self {
            Self::Text(text) => serde_json::from_str(text),
            Self::Value(value) => Ok(value.clone()),
        }
    }

    /// Whether this is JSON `null`.
    pub fn is_null(self) -> bool {
        match self {
            Self::Text(text) => text.trim() == "null",
            Self::Value(value) => value.is_null(),
        }
    }
}

/// One stored event as [`EventStore::replay`](super::EventStore::replay)
/// hands it over.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReplayedEvent<'a> {
    /// Its version in the stream.
    pub stream_version: u64,
    /// Its stored type name.
    pub event_type: &'a str,
    /// The schema version it was stored with.
    pub schema_version: u32,
    /// Its payload as stored (before upcasting).
    pub payload: JsonRef<'a>,
}

/// The stream's snapshot, as [`EventStore::replay`](super::EventStore::replay)
/// hands it over (first, before any event).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReplayedSnapshot<'a> {
    /// The stream version the snapshot reflects.
    pub stream_version: u64,
    /// The schema version of its state.
    pub schema_version: u32,
    /// Its state, when its schema version is the one asked for; the events
    /// that follow are then those after `stream_version`. `None` for a
    /// snapshot of another schema version: the events that follow are then
    /// the whole stream.
    pub state: Option<JsonRef<'a>>,
}

/// What [`EventStore::replay`](super::EventStore::replay) hands to its
/// visitor, in order: at most one snapshot, then events in version order.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Replayed<'a> {
    /// The stream's snapshot.
    Snapshot(ReplayedSnapshot<'a>),
    /// One event.
    Event(ReplayedEvent<'a>),
}

/// The visitor of [`EventStore::replay`](super::EventStore::replay): called
/// once per item, in order; an error stops the replay and is returned.
pub type ReplayVisitor<'v> = dyn FnMut(Replayed<'_>) -> Result<(), EventStoreError> + Send + 'v;

/// What [`EventStore::replay_and_append`](super::EventStore::replay_and_append)
/// drives: the replay's items, then one decision about what to append.
///
/// # Examples
///
/// "Deposit, unless the account is closed", decided while the stream is
/// replayed, and appended at the version the replay saw:
///
/// ```
/// use composable_rust_core::event_store::{ReplayAndDecide, Replayed};
/// use composable_rust_core::{
///     EventStore, EventStoreError, ExpectedVersion, InMemoryEventStore, NewEvent, StreamId,
/// };
/// use serde_json::json;
///
/// #[derive(Default)]
/// struct Deposit {
///     version: u64,
///     closed: bool,
/// }
///
/// impl ReplayAndDecide for Deposit {
///     fn visit(&mut self, item: Replayed<'_>) -> Result<(), EventStoreError> {
///         if let Replayed::Event(event) = item {
///             self.version = event.stream_version;
///             self.closed |= event.event_type == "Closed";
///         }
///         Ok(())
///     }
///
///     fn decide(&mut self) -> Option<(ExpectedVersion, Vec<NewEvent>)> {
///         let deposited = NewEvent::new("Deposited", json!({ "amount": 5 }));
///         (!self.closed).then(|| (ExpectedVersion::Exact(self.version), vec![deposited]))
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), EventStoreError> {
/// let store = InMemoryEventStore::new();
/// let account = StreamId::new("account-1")?;
/// let opened = vec![NewEvent::new("Opened", json!({}))];
/// store.append(&account, ExpectedVersion::NoStream, opened).await?;
///
/// let outcome = store.replay_and_append(&account, None, &mut Deposit::default()).await?;
/// assert_eq!(outcome.map(|o| o.stream_version), Some(2));
///
/// let closed = vec![NewEvent::new("Closed", json!({}))];
/// store.append(&account, ExpectedVersion::Exact(2), closed).await?;
/// let outcome = store.replay_and_append(&account, None, &mut Deposit::default()).await?;
/// assert!(outcome.is_none(), "closed: nothing appended");
/// # Ok(())
/// # }
/// ```
pub trait ReplayAndDecide: Send {
    /// One item of the replay, in order (as
    /// [`EventStore::replay`](super::EventStore::replay)'s visitor gets
    /// them). An error stops the replay and is returned; `decide` is then
    /// not called.
    ///
    /// # Errors
    ///
    /// Whatever stops the replay (an event that does not decode).
    fn visit(&mut self, item: Replayed<'_>) -> Result<(), EventStoreError>;

    /// Called once, after a replay that succeeded: the expected version and
    /// the events to append, or `None` to append nothing.
    fn decide(&mut self) -> Option<(ExpectedVersion, Vec<NewEvent>)>;
}
