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
