//! Where read models live: [`ProjectionStore`] and its unit of work
//! [`ProjectionTx`], the [`ProjectionCheckpoint`] extension that records
//! progress and dead letters in the same unit of work, and the
//! [`QueryableProjectionStore`] extension for stores that answer queries.
//!
//! Everything a projection writes for a batch of events, the checkpoint
//! after that batch, and any dead letter go through one `Tx` and are
//! committed together. On a store whose commit is atomic (PostgreSQL, the
//! in-memory store), a crash can never leave the read model ahead of or
//! behind its checkpoint: each event takes effect exactly once.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::error::ProjectionError;
use crate::event::{EventMetadata, Position, StoredEvent, StreamId};

/// What a store promises about a batch's writes and its checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// Read-model writes and checkpoint commit atomically: after a crash the
    /// manager resumes exactly after the last applied event.
    ExactlyOnce,
    /// A crash can leave writes applied without their checkpoint; those
    /// events are applied again on restart, so `apply` must be idempotent
    /// (for example, keep the last applied position per key).
    AtLeastOnce,
}

/// One unit of work against a [`ProjectionStore`]. Dropping it without
/// committing discards (rolls back) its writes.
///
/// # Examples
///
/// ```
/// use composable_rust_core::projection::{
///     InMemoryProjectionStore, ProjectionError, ProjectionStore, ProjectionTx,
/// };
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), ProjectionError> {
/// let store = InMemoryProjectionStore::new();
/// let mut tx = store.begin().await?;
/// tx.save("order:1", b"placed").await?;
/// tx.save("order:2", b"placed").await?;
/// assert_eq!(tx.get("order:1").await?, Some(b"placed".to_vec()), "the in-memory tx sees its writes");
/// tx.delete("order:2").await?;
/// store.commit(tx).await?;
///
/// let mut tx = store.begin().await?;
/// assert_eq!(tx.delete_prefix("order:").await?, 1);
/// store.commit(tx).await?;
/// assert_eq!(store.get("order:1").await?, None);
/// # Ok(())
/// # }
/// ```
#[async_trait]
pub trait ProjectionTx: Send + 'static {
    /// Stores `data` under `key`, replacing any previous value.
    async fn save(&mut self, key: &str, data: &[u8]) -> Result<(), ProjectionError>;
    /// The value under `key`, including this unit of work's own writes
    /// where the backend can see them (documented per store).
    async fn get(&mut self, key: &str) -> Result<Option<Vec<u8>>, ProjectionError>;
    /// Removes `key`; removing a missing key is not an error.
    async fn delete(&mut self, key: &str) -> Result<(), ProjectionError>;
    /// Removes every key starting with `prefix` (used to reset a projection
    /// for a rebuild); returns how many were removed, where known.
    async fn delete_prefix(&mut self, prefix: &str) -> Result<u64, ProjectionError>;
}

/// JSON helpers for every [`ProjectionTx`].
///
/// # Examples
///
/// ```
/// use composable_rust_core::projection::{
///     InMemoryProjectionStore, ProjectionError, ProjectionStore, ProjectionTxExt,
/// };
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Debug, PartialEq, Serialize, Deserialize)]
/// struct Summary {
///     orders: u32,
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), ProjectionError> {
/// let store = InMemoryProjectionStore::new();
/// let mut tx = store.begin().await?;
/// let summary: Option<Summary> = tx.get_json("summary:ada").await?;
/// let orders = summary.map_or(0, |s| s.orders) + 1;
/// tx.save_json("summary:ada", &Summary { orders }).await?;
/// store.commit(tx).await?;
/// # Ok(())
/// # }
/// ```
#[async_trait]
pub trait ProjectionTxExt: ProjectionTx {
    /// Stores `value` as JSON under `key`.
    async fn save_json<T: Serialize + Sync>(
        &mut self,
        key: &str,
        value: &T,
    ) -> Result<(), ProjectionError> {
        let data = serde_json::to_vec(value).map_err(|error| serialization(key, &error))?;
        self.save(key, &data).await
    }

    /// The JSON value under `key`, deserialized.
    async fn get_json<T: DeserializeOwned>(
        &mut self,
        key: &str,
    ) -> Result<Option<T>, ProjectionError> {
        match self.get(key).await? {
            Some(data) => serde_json::from_slice(&data)
                .map(Some)
                .map_err(|error| serialization(key, &error)),
            None => Ok(None),
        }
    }
}

impl<T: ProjectionTx + ?Sized> ProjectionTxExt for T {}

/// A read-model store: reads directly, writes through units of work.
///
/// Writes go through a unit of work ([`ProjectionTx`]) and become visible
/// together at [`commit`](ProjectionStore::commit); dropping the unit of
/// work discards them. The projection manager commits a batch's writes and
/// the checkpoint in one unit of work.
///
/// # Examples
///
/// ```
/// use composable_rust_core::projection::{
///     InMemoryProjectionStore, ProjectionStore, ProjectionStoreExt, ProjectionTx,
///     ProjectionTxExt,
/// };
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), composable_rust_core::ProjectionError> {
/// let store = InMemoryProjectionStore::new();
///
/// let mut tx = store.begin().await?;
/// tx.save_json("balance:ada", &100_u64).await?;
/// assert_eq!(store.get("balance:ada").await?, None, "not visible before commit");
/// store.commit(tx).await?;
/// assert_eq!(store.get_json::<u64>("balance:ada").await?, Some(100));
///
/// let mut tx = store.begin().await?;
/// tx.delete("balance:ada").await?;
/// drop(tx); // discarded: nothing changes
/// assert!(store.get("balance:ada").await?.is_some());
/// # Ok(())
/// # }
/// ```
#[async_trait]
pub trait ProjectionStore: Send + Sync + 'static {
    /// This store's unit of work.
    type Tx: ProjectionTx;

    /// What a projection on this store can rely on after a crash.
    fn delivery(&self) -> Delivery;

    /// Starts a unit of work.
    async fn begin(&self) -> Result<Self::Tx, ProjectionError>;

    /// Commits everything written through `tx`.
    async fn commit(&self, tx: Self::Tx) -> Result<(), ProjectionError>;

    /// Whether a unit of work may be applied while the one begun before it
    /// is still committing. `true` only for a store whose units of work
    /// take turns: each waits, before it first reads or writes, until
    /// every one begun before it has committed or been dropped, so it
    /// still sees their writes. A bulk load
    /// ([`load_version`](super::blue_green::load_version)) then applies
    /// the next batch while the previous one commits. The default is
    /// `false`, which is always correct.
    fn overlaps_units_of_work(&self) -> bool {
        false
    }

    /// The committed value under `key`.
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, ProjectionError>;

    /// Whether a committed value exists under `key`.
    async fn exists(&self, key: &str) -> Result<bool, ProjectionError> {
        Ok(self.get(key).await?.is_some())
    }

    /// Stores `data` under `key` in a unit of work of its own.
    async fn save(&self, key: &str, data: &[u8]) -> Result<(), ProjectionError> {
        let mut tx = self.begin().await?;
        tx.save(key, data).await?;
        self.commit(tx).await
    }

    /// Removes `key` in a unit of work of its own.
    async fn delete(&self, key: &str) -> Result<(), ProjectionError> {
        let mut tx = self.begin().await?;
        tx.delete(key).await?;
        self.commit(tx).await
    }
}

/// JSON helpers for every [`ProjectionStore`].
///
/// # Examples
///
/// The query side reads committed JSON:
///
/// ```
/// use composable_rust_core::projection::{
///     InMemoryProjectionStore, ProjectionError, ProjectionStore, ProjectionStoreExt,
/// };
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), ProjectionError> {
/// let store = InMemoryProjectionStore::new();
/// store.save("balance:ada", b"125").await?;
/// assert_eq!(store.get_json::<u64>("balance:ada").await?, Some(125));
/// assert_eq!(store.get_json::<u64>("balance:bob").await?, None);
/// # Ok(())
/// # }
/// ```
#[async_trait]
pub trait ProjectionStoreExt: ProjectionStore {
    /// The committed JSON value under `key`, deserialized.
    async fn get_json<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, ProjectionError> {
        match self.get(key).await? {
            Some(data) => serde_json::from_slice(&data)
                .map(Some)
                .map_err(|error| serialization(key, &error)),
            None => Ok(None),
        }
    }
}

impl<T: ProjectionStore + ?Sized> ProjectionStoreExt for T {}

/// A store that also keeps projections' checkpoints and dead letters, in the
/// same units of work as their read models.
///
/// # Examples
///
/// The checkpoint commits with the read model, in one unit of work (the
/// [`ProjectionManager`](super::ProjectionManager) does this for you):
///
/// ```
/// use composable_rust_core::projection::{
///     InMemoryProjectionStore, ProjectionCheckpoint, ProjectionError, ProjectionStore, ProjectionTx,
/// };
/// use composable_rust_core::Position;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), ProjectionError> {
/// let store = InMemoryProjectionStore::new();
/// assert_eq!(store.load_position("balances").await?, None, "never ran: start from the beginning");
///
/// let mut tx = store.begin().await?;
/// tx.save("balance:ada", b"100").await?;
/// store.save_position(&mut tx, "balances", Position::new(7, 1)).await?;
/// store.commit(tx).await?;
///
/// assert_eq!(store.load_position("balances").await?, Some(Position::new(7, 1)));
/// assert!(store.dead_letters("balances").await?.is_empty());
/// # Ok(())
/// # }
/// ```
#[async_trait]
pub trait ProjectionCheckpoint: ProjectionStore {
    /// Where `projection` got to, or `None` if it never committed a batch.
    async fn load_position(&self, projection: &str) -> Result<Option<Position>, ProjectionError>;

    /// Records, in `tx`, that `projection` has applied everything up to
    /// `position`.
    async fn save_position(
        &self,
        tx: &mut Self::Tx,
        projection: &str,
        position: Position,
    ) -> Result<(), ProjectionError>;

    /// Records, in `tx`, an event `projection` gave up on.
    async fn record_dead_letter(
        &self,
        tx: &mut Self::Tx,
        letter: &DeadLetter,
    ) -> Result<(), ProjectionError>;

    /// Removes, in `tx`, the dead letter of `event_id`; whether there was one.
    async fn remove_dead_letter(
        &self,
        tx: &mut Self::Tx,
        projection: &str,
        event_id: Uuid,
    ) -> Result<bool, ProjectionError>;

    /// The dead letters of `projection`, oldest first.
    async fn dead_letters(&self, projection: &str) -> Result<Vec<DeadLetter>, ProjectionError>;

    /// Removes and returns the [`ProjectionRequest`]s waiting for
    /// `projection`, oldest first. An operator files them from outside the
    /// service (`composable dead-letters retry`, `composable checkpoint
    /// reset`), through the store's own `request` method; the
    /// [`ProjectionManager`](super::ProjectionManager) takes them at the
    /// start of `catch_up` and, while `run` runs, at most every
    /// `lag_interval` (within `idle_poll_interval` when idle), and carries
    /// them out.
    ///
    /// The default takes nothing: a store that cannot hold requests simply
    /// never has any.
    async fn take_requests(
        &self,
        projection: &str,
    ) -> Result<Vec<ProjectionRequest>, ProjectionError> {
        let _ = projection;
        Ok(Vec::new())
    }
}

/// Something an operator asked a projection's manager to do, from outside
/// the service that runs it: the operations tool cannot apply events
/// itself (it does not know the projection's types), so it leaves a
/// request in the projection's store, and the manager carries it out the
/// next time it looks (see [`ProjectionCheckpoint::take_requests`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", content = "event_id", rename_all = "snake_case")]
pub enum ProjectionRequest {
    /// Rebuild the projection: reset its read model, checkpoint and dead
    /// letters, then catch up from the first event
    /// ([`ProjectionManager::rebuild`](super::ProjectionManager::rebuild)).
    Rebuild,
    /// Apply the dead letter of this event again
    /// ([`ProjectionManager::retry_dead_letter`](super::ProjectionManager::retry_dead_letter));
    /// if it fails again, its dead letter is recorded again with the new
    /// error and one more attempt.
    RetryDeadLetter(Uuid),
}

/// A store that answers queries beyond get-by-key (filters, sorting,
/// top-N...). Each store defines its own query and result types.
///
/// # Examples
///
/// A store picks its own query type. Here a store wrapping the in-memory one
/// answers a multi-get (the PostgreSQL store answers document filters, the
/// Redis store sorted-set ranges):
///
/// ```
/// use async_trait::async_trait;
/// use composable_rust_core::projection::{
///     Delivery, InMemoryProjectionStore, InMemoryTx, ProjectionError, ProjectionStore,
///     QueryableProjectionStore,
/// };
///
/// struct Balances(InMemoryProjectionStore);
///
/// #[async_trait]
/// impl ProjectionStore for Balances {
///     type Tx = InMemoryTx;
///     fn delivery(&self) -> Delivery {
///         self.0.delivery()
///     }
///     async fn begin(&self) -> Result<InMemoryTx, ProjectionError> {
///         self.0.begin().await
///     }
///     async fn commit(&self, tx: InMemoryTx) -> Result<(), ProjectionError> {
///         self.0.commit(tx).await
///     }
///     async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, ProjectionError> {
///         self.0.get(key).await
///     }
/// }
///
/// /// The balances of these owners.
/// struct Owners(Vec<&'static str>);
///
/// #[async_trait]
/// impl QueryableProjectionStore for Balances {
///     type Query = Owners;
///     type Output = Vec<Option<u64>>;
///
///     async fn query(&self, owners: &Owners) -> Result<Vec<Option<u64>>, ProjectionError> {
///         let mut balances = Vec::new();
///         for owner in &owners.0 {
///             let raw = self.0.get(&format!("balance:{owner}")).await?;
///             balances.push(raw.and_then(|bytes| String::from_utf8(bytes).ok()?.parse().ok()));
///         }
///         Ok(balances)
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), ProjectionError> {
/// let store = Balances(InMemoryProjectionStore::new());
/// store.save("balance:ada", b"100").await?;
/// assert_eq!(store.query(&Owners(vec!["ada", "bob"])).await?, vec![Some(100), None]);
/// # Ok(())
/// # }
/// ```
#[async_trait]
pub trait QueryableProjectionStore: ProjectionStore {
    /// A query this store understands.
    type Query: Send + Sync;
    /// What a query returns.
    type Output: Send;

    /// Runs `query` against committed data.
    async fn query(&self, query: &Self::Query) -> Result<Self::Output, ProjectionError>;
}

/// An event a projection could not apply after every retry, kept with the
/// error so it can be inspected, retried after a fix, or discarded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeadLetter {
    /// The projection that failed.
    pub projection: String,
    /// The event, complete, so a retry needs nothing else.
    pub event: StoredEvent,
    /// The last error.
    pub error: String,
    /// How many times it was tried.
    pub attempts: u32,
    /// When it was given up on.
    pub failed_at: DateTime<Utc>,
}

impl DeadLetter {
    /// The `event_type` of the stand-in event of a dead letter for a stored
    /// event that could not be read ([`EventStoreError::CorruptEvent`]).
    ///
    /// [`EventStoreError::CorruptEvent`]: crate::event_store::EventStoreError::CorruptEvent
    pub const CORRUPT_EVENT_TYPE: &'static str = "$corrupt-event";

    /// Whether this dead letter stands for a stored event that could not
    /// be read. Its `event` then carries the position, the stream and the
    /// id (when they could be read), type [`CORRUPT_EVENT_TYPE`](Self::CORRUPT_EVENT_TYPE),
    /// and the raw content as a JSON string in `payload`. Retrying it reads
    /// the event at that position again (after the row was fixed).
    pub fn is_corrupt_event(&self) -> bool {
        self.event.event_type == Self::CORRUPT_EVENT_TYPE
    }

    /// The stand-in event for an unreadable stored event at `position`.
    /// Without an id, it gets one derived from the position, so recording
    /// it twice is one dead letter.
    pub fn corrupt_event(
        position: Position,
        stream_id: &str,
        event_id: Option<Uuid>,
        raw: String,
    ) -> StoredEvent {
        let stream_id = StreamId::new(stream_id)
            .or_else(|_| StreamId::new("$corrupt-stream"))
            .expect("a valid constant stream id");
        StoredEvent {
            event_id: event_id
                .unwrap_or_else(|| Uuid::from_u64_pair(position.commit, position.sequence)),
            stream_id,
            stream_version: 0,
            position,
            event_type: Self::CORRUPT_EVENT_TYPE.to_owned(),
            schema_version: 0,
            payload: serde_json::Value::String(raw),
            metadata: EventMetadata::default(),
            recorded_at: DateTime::<Utc>::UNIX_EPOCH,
        }
    }
}

fn serialization(key: &str, error: &serde_json::Error) -> ProjectionError {
    ProjectionError::Serialization {
        key: key.to_owned(),
        reason: error.to_string(),
    }
}
