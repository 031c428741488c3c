//! Projections: read models kept up to date from events.
//!
//! The event store answers one question well: "what happened to this
//! aggregate?". Every other question ("the last ten orders of customer 7",
//! "today's top players") is answered by a **projection**: code that reads
//! the global stream of events, in order, and keeps a query-friendly **read
//! model** up to date in a [`ProjectionStore`].
//!
//! - [`Projection`]: what to do with each event (and how to start over).
//! - [`ProjectionStore`] / [`ProjectionCheckpoint`]: where the read model,
//!   the checkpoint and the dead letters live, written in one unit of work.
//! - [`ProjectionManager`]: runs a projection: catch-up, live updates,
//!   checkpoints, rebuilds, retries, dead letters, lag, graceful shutdown
//!   and `wait_for` (read-your-writes).
//! - [`EventSource`]: where events come from (the event store's global
//!   stream; any type implementing [`EventStore`](crate::EventStore) is one).

pub mod blue_green;
pub mod cached;
mod error;
pub(crate) mod follow;
mod in_memory;
pub mod manager;
mod source;
mod store;

use async_trait::async_trait;

pub use cached::{CacheMode, CacheStats, CachedProjectionStore, CachedTx, ProjectionCache};
pub use error::ProjectionError;
pub use in_memory::{InMemoryProjectionStore, InMemoryTx};
pub use manager::{
    Lag, ProjectionConfig, ProjectionHealth, ProjectionManager, ProjectionManagerBuilder,
    ProjectionStats, RetryPolicy,
};
pub use source::EventSource;
pub use store::{
    DeadLetter, Delivery, ProjectionCheckpoint, ProjectionRequest, ProjectionStore,
    ProjectionStoreExt, ProjectionTx, ProjectionTxExt, QueryableProjectionStore,
};

use crate::event::StoredEvent;

/// Keeps a read model up to date from events.
///
/// `apply` receives every event of the global stream that
/// [`handles`](Projection::handles) accepts, in order, and writes through
/// the unit of work it is given; the manager commits that unit of work
/// together with the checkpoint.
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use async_trait::async_trait;
/// use composable_rust_core::event::{NewEvent, StoredEvent, StreamId};
/// use composable_rust_core::projection::{
///     InMemoryProjectionStore, Projection, ProjectionError, ProjectionManager, ProjectionStore,
///     ProjectionStoreExt, ProjectionTx, ProjectionTxExt,
/// };
/// use composable_rust_core::{EventStore, ExpectedVersion, InMemoryEventStore};
///
/// /// How many events each stream has: `count:<stream>`.
/// struct EventCounts;
///
/// #[async_trait]
/// impl Projection for EventCounts {
///     type Store = InMemoryProjectionStore;
///
///     fn name(&self) -> &str {
///         "event-counts"
///     }
///
///     async fn apply(
///         &self,
///         event: &StoredEvent,
///         tx: &mut <Self::Store as ProjectionStore>::Tx,
///     ) -> Result<(), ProjectionError> {
///         let key = format!("count:{}", event.stream_id);
///         let count: u64 = tx.get_json(&key).await?.unwrap_or(0);
///         tx.save_json(&key, &(count + 1)).await
///     }
///
///     async fn reset(
///         &self,
///         tx: &mut <Self::Store as ProjectionStore>::Tx,
///     ) -> Result<(), ProjectionError> {
///         tx.delete_prefix("count:").await.map(|_| ())
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let events = InMemoryEventStore::new();
/// let stream = StreamId::new("order-1")?;
/// let new = vec![NewEvent::new("Placed", serde_json::json!({})); 1];
/// events.append(&stream, ExpectedVersion::NoStream, new).await?;
///
/// let store = Arc::new(InMemoryProjectionStore::new());
/// let manager = ProjectionManager::new(EventCounts, Arc::clone(&store), events);
/// manager.catch_up().await?;
/// assert_eq!(store.get_json::<u64>("count:order-1").await?, Some(1));
/// # Ok(())
/// # }
/// ```
#[async_trait]
pub trait Projection: Send + Sync + 'static {
    /// The store the read model lives in.
    type Store: ProjectionCheckpoint;

    /// A stable name: checkpoints and dead letters are kept under it.
    /// Changing it starts the projection from scratch.
    fn name(&self) -> &str;

    /// Whether this projection wants `event`; the default is every event.
    /// Events it does not want still advance its checkpoint.
    fn handles(&self, event: &StoredEvent) -> bool {
        let _ = event;
        true
    }

    /// Applies one event to the read model through `tx`.
    ///
    /// Return [`ProjectionError::apply`] for an event that cannot be
    /// applied; errors from `tx` itself are infrastructure failures and are
    /// retried without dead-lettering.
    async fn apply(
        &self,
        event: &StoredEvent,
        tx: &mut <Self::Store as ProjectionStore>::Tx,
    ) -> Result<(), ProjectionError>;

    /// Deletes everything this projection wrote, so a rebuild starts from an
    /// empty read model. Runs in the same unit of work that resets the
    /// checkpoint.
    async fn reset(
        &self,
        tx: &mut <Self::Store as ProjectionStore>::Tx,
    ) -> Result<(), ProjectionError>;
}
