//! [`SubscriptionSource`]: a bus subscription as the
//! [`EventSource`] of a [`ProjectionManager`](crate::ProjectionManager).

use std::collections::VecDeque;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::watch;

use super::{BusMessage, Subscription};
use crate::event::{Position, StoredEvent};
use crate::event_store::EventStoreError;
use crate::projection::EventSource;

/// How long a read waits for new messages by default.
const DEFAULT_WAIT: Duration = Duration::from_millis(250);

/// Feeds a [`ProjectionManager`](crate::ProjectionManager) from a bus
/// subscription instead of the event store's global stream.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # use std::sync::Arc;
/// # use async_trait::async_trait;
/// # use composable_rust_core::{InMemoryProjectionStore, Projection, ProjectionError, ProjectionStore, StoredEvent};
/// # struct OrderTotals;
/// # #[async_trait]
/// # impl Projection for OrderTotals {
/// #     type Store = InMemoryProjectionStore;
/// #     fn name(&self) -> &str { "order-totals" }
/// #     async fn apply(&self, _: &StoredEvent, _: &mut <Self::Store as ProjectionStore>::Tx) -> Result<(), ProjectionError> { Ok(()) }
/// #     async fn reset(&self, _: &mut <Self::Store as ProjectionStore>::Tx) -> Result<(), ProjectionError> { Ok(()) }
/// # }
/// use composable_rust_core::ProjectionManager;
/// use composable_rust_core::event_bus::{EventBus, InMemoryEventBus, SubscribeOptions, SubscriptionSource, Topic};
///
/// let bus = InMemoryEventBus::new();
/// // One group per projection, one consumer in it, under a stable name.
/// let options = SubscribeOptions::new(Topic::new("orders")?, "order-totals", "order-totals")?
///     .with_take_over_pending(true)
///     .with_max_deliveries(u32::MAX); // the manager dead-letters poison events itself
/// let source = SubscriptionSource::new(bus.subscribe(options).await?);
/// let store = Arc::new(InMemoryProjectionStore::new());
/// let manager = ProjectionManager::new(OrderTotals, store, source);
/// manager.catch_up().await?;
/// # Ok(())
/// # }
/// ```
///
/// # Semantics
///
/// Every message carries a [`StoredEvent`] with its event-store
/// [`Position`], so the projection keeps checkpointing by position, as it
/// does on the event store:
///
/// - **Applied in arrival order, each position once.** A read returns the
///   received events whose position is above the manager's checkpoint,
///   keeping only those above every position before them in the same read;
///   an event at or below the checkpoint (a redelivery, or a copy the
///   publisher re-published after a crash) is skipped and acknowledged.
/// - **Acknowledged after commit.** A message is acknowledged when the
///   manager asks for events after a checkpoint at or past its position,
///   which it only does once the batch holding the event has committed (or
///   when a graceful shutdown releases the source after its last commit). A
///   crash before that leaves the message pending, so it comes back: on a
///   store with exactly-once commits the projection applies it exactly
///   once; on an at-least-once store (Redis), as the store itself
///   promises.
/// - **Same read model as from the store,** provided first copies arrive
///   in position order. [`EventPublisher`](super::EventPublisher) publishes
///   in position order, so this holds when the group has **one consumer**
///   (a projection applies events in order; members splitting the work
///   would each see a part). Subscribe with a stable consumer name and
///   [`with_take_over_pending`](super::SubscribeOptions::with_take_over_pending), so
///   after a restart the messages held before come back first, in order.
/// - **Let the manager handle poison events.** The manager retries an
///   event that fails to apply and moves it to the *projection's* dead
///   letters, committing the checkpoint past it; the bus never sees the
///   failure. The bus only counts deliveries across restarts (and
///   redeliveries of a batch held longer than the visibility timeout), and
///   a message that reaches `max_deliveries` goes to the *bus's*
///   dead-letter topic, so the projection would never apply it: subscribe
///   with [`with_max_deliveries(u32::MAX)`](super::SubscribeOptions::with_max_deliveries),
///   and a visibility timeout longer than a batch takes.
/// - **Trimmed is gone.** A topic is bounded; messages trimmed before the
///   group read them never arrive, and the projection cannot tell (positions
///   need not be consecutive). Size the topic for the longest stop of the
///   projection, or rebuild it from the event store after a long one.
/// - **Lag** counts the events received and not yet applied plus the
///   messages the group has not been delivered yet, where the bus can tell
///   ([`Subscription::backlog`]); copies are counted as events.
/// - **Rebuilds** only see what the bus still delivers, not the history:
///   rebuild a bus-fed projection from the event store (a manager with the
///   store as its source, same projection and store), then go back to the
///   bus; events at or below the rebuilt checkpoint are skipped.
/// - **Waiting.** A read with nothing to return waits up to
///   [`with_wait`](Self::with_wait) (default 250 ms) for messages, then
///   tells the manager to read again, so a running manager long-polls the
///   bus and applies a new event as soon as it arrives.
pub struct SubscriptionSource {
    state: tokio::sync::Mutex<State>,
    wait: Duration,
    notify: watch::Sender<u64>,
}

struct State {
    subscription: Box<dyn Subscription>,
    /// Received and not yet acknowledged, in arrival order.
    buffer: VecDeque<BusMessage>,
}

impl SubscriptionSource {
    /// A source reading from `subscription`.
    pub fn new(subscription: impl Subscription) -> Self {
        let (notify, _) = watch::channel(0);
        Self {
            state: tokio::sync::Mutex::new(State {
                subscription: Box::new(subscription),
                buffer: VecDeque::new(),
            }),
            wait: DEFAULT_WAIT,
            notify,
        }
    }

    /// How long a read waits for new messages when it has nothing to return
    /// (default 250 ms). This is also how long a catch-up takes to notice
    /// that it is done.
    #[must_use]
    pub fn with_wait(mut self, wait: Duration) -> Self {
        self.wait = wait;
        self
    }
}

impl State {
    /// Acknowledges and forgets every buffered message at or below `after`.
    async fn ack_through(&mut self, after: Position) -> Result<(), EventStoreError> {
        let (done, keep): (Vec<_>, Vec<_>) = self
            .buffer
            .drain(..)
            .partition(|message| message.event.position <= after);
        self.buffer = keep.into();
        if !done.is_empty()
            && let Err(error) = self.subscription.ack_many(&done).await
        {
            // Keep them, to acknowledge on the next read.
            self.buffer.extend(done);
            return Err(error.into());
        }
        Ok(())
    }

    /// Receives up to `max` more messages; acknowledges those at or below
    /// `after` at once.
    async fn fill(
        &mut self,
        after: Position,
        max: usize,
        wait: Duration,
    ) -> Result<(), EventStoreError> {
        let received = self.subscription.receive(max, wait).await?;
        let (stale, fresh): (Vec<_>, Vec<_>) = received
            .into_iter()
            .partition(|message| message.event.position <= after);
        self.buffer.extend(fresh);
        if !stale.is_empty() {
            self.subscription.ack_many(&stale).await?;
        }
        Ok(())
    }

    /// Up to `limit` buffered events above `after`, each above all before
    /// it.
    fn batch(&self, after: Position, limit: usize) -> Vec<StoredEvent> {
        let mut high = after;
        let mut batch = Vec::new();
        for message in &self.buffer {
            if batch.len() >= limit {
                break;
            }
            if message.event.position > high {
                high = message.event.position;
                batch.push(message.event.clone());
            }
        }
        batch
    }
}

#[async_trait]
impl EventSource for SubscriptionSource {
    async fn read_after(
        &self,
        after: Position,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, EventStoreError> {
        let limit = limit.max(1);
        let mut state = self.state.lock().await;
        state.ack_through(after).await?;
        let mut batch = state.batch(after, limit);
        if batch.len() < limit {
            let wait = if batch.is_empty() {
                self.wait
            } else {
                Duration::ZERO
            };
            state.fill(after, limit - batch.len(), wait).await?;
            batch = state.batch(after, limit);
            if batch.is_empty() && !wait.is_zero() {
                // Nothing arrived while waiting: a running manager should
                // come straight back (long polling) rather than sleep.
                self.notify.send_modify(|n| *n += 1);
            }
        }
        Ok(batch)
    }

    async fn count_after(&self, after: Position) -> Result<u64, EventStoreError> {
        let mut state = self.state.lock().await;
        let buffered = state
            .buffer
            .iter()
            .filter(|message| message.event.position > after)
            .count() as u64;
        let backlog = state.subscription.backlog().await?.unwrap_or(0);
        Ok(buffered + backlog)
    }

    fn subscribe(&self) -> watch::Receiver<u64> {
        self.notify.subscribe()
    }

    /// Acknowledges the buffered messages at or below `committed` (a
    /// graceful shutdown): the rest stay pending and go to the next
    /// consumer.
    async fn release(&self, committed: Position) -> Result<(), EventStoreError> {
        self.state.lock().await.ack_through(committed).await
    }
}

impl std::fmt::Debug for SubscriptionSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SubscriptionSource")
            .field("wait", &self.wait)
            .finish_non_exhaustive()
    }
}
