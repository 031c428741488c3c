//! [`EventSource`]: where a projection manager reads events from.

use async_trait::async_trait;
use tokio::sync::watch;

use crate::event::{Position, StoredEvent};
use crate::event_store::{EventStore, EventStoreError};

/// An ordered, gap-free source of events with positions, and a way to
/// learn that new ones arrived.
///
/// Every [`EventStore`] is an event source (its global stream). Keeping the
/// source behind this trait lets other transports (an event bus
/// subscription) feed projections too.
///
/// # Examples
///
/// Every event store is a source; a [`ProjectionManager`](crate::ProjectionManager)
/// reads it like this:
///
/// ```
/// use composable_rust_core::projection::EventSource;
/// use composable_rust_core::{
///     EventStore, EventStoreError, ExpectedVersion, InMemoryEventStore, NewEvent, Position, StreamId,
/// };
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), EventStoreError> {
/// let store = InMemoryEventStore::new();
/// let changes = EventSource::subscribe(&store);
/// let placed = (0..3).map(|n| NewEvent::new("Placed", serde_json::json!({ "n": n }))).collect();
/// store.append(&StreamId::new("order-1")?, ExpectedVersion::NoStream, placed).await?;
/// assert!(changes.has_changed().unwrap(), "new events: read again");
///
/// let first_two = store.read_after(Position::START, 2).await?;
/// assert_eq!(first_two.len(), 2);
/// let behind = EventSource::count_after(&store, first_two[1].position).await?;
/// assert_eq!(behind, 1);
/// # Ok(())
/// # }
/// ```
#[async_trait]
pub trait EventSource: Send + Sync + 'static {
    /// Up to `limit` events after `after`, in position order.
    async fn read_after(
        &self,
        after: Position,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, EventStoreError>;

    /// How many events there are after `after` (for lag).
    async fn count_after(&self, after: Position) -> Result<u64, EventStoreError>;

    /// Changes when new events may be readable.
    fn subscribe(&self) -> watch::Receiver<u64>;

    /// Called when a runner reading from this source stops gracefully,
    /// with the position it committed last: a source that holds delivered
    /// events until the next read (a bus subscription) acknowledges those
    /// at or below it, so they are not delivered again. Does nothing by
    /// default.
    async fn release(&self, committed: Position) -> Result<(), EventStoreError> {
        let _ = committed;
        Ok(())
    }
}

impl std::fmt::Debug for dyn EventSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("dyn EventSource")
    }
}

#[async_trait]
impl<S: EventStore> EventSource for S {
    async fn read_after(
        &self,
        after: Position,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, EventStoreError> {
        self.read_all(after, limit).await
    }

    async fn count_after(&self, after: Position) -> Result<u64, EventStoreError> {
        EventStore::count_after(self, after).await
    }

    fn subscribe(&self) -> watch::Receiver<u64> {
        EventStore::subscribe(self)
    }
}
