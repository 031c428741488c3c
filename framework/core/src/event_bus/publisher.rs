//! [`EventPublisher`]: publishes every event of the event store to the bus,
//! reliably, by following the store's global stream with a checkpoint.
//!
//! # Why a checkpointed follower, and not "publish after append"
//!
//! Publishing from the command handler right after `append` loses the
//! event whenever the process dies between the two (or the bus is down
//! at that moment), and nothing would ever notice. Instead, the publisher
//! treats the event store as the outbox: it reads the global stream after
//! its checkpoint, publishes a page, and only then moves the checkpoint.
//!
//! - An event appended while no publisher runs (crashed, deploying, the bus
//!   down) is published when one runs again: **nothing is lost**.
//! - A crash after publishing a page and before saving the checkpoint
//!   publishes that page again on restart: **duplicates are possible**, and
//!   every copy carries the same [`event_id`](crate::StoredEvent::event_id)
//!   (and position), so consumers de-duplicate.
//! - Events are published in global position order, so on each topic the
//!   first copy of every event comes in position order (a re-published page
//!   repeats events already seen, never reorders new ones). Run **one
//!   publisher per name** at a time (e.g. on the leader instance); two
//!   publishers would only duplicate the work.
//!
//! # Why not a `Projection`
//!
//! The checkpoint lives in any [`ProjectionCheckpoint`] store (in memory,
//! PostgreSQL, Redis): the same machinery, and crash safety, as projections.
//! But the loop is its own rather than a [`Projection`](crate::Projection)
//! run by a [`ProjectionManager`](crate::ProjectionManager), because
//! publishing needs different promises:
//!
//! - **No dead letters.** The manager gives up on an event after a few
//!   attempts and moves on; a publisher that skipped an event would
//!   silently starve every consumer of it. Every publish failure is
//!   retried (after `failure_backoff`, doubling up to 30 s) until the bus
//!   takes the page.
//! - **Batches.** `Projection::apply` sees one event at a time; the
//!   publisher sends a whole page per topic with
//!   [`EventBus::publish_batch`] (one round trip on Redis).
//! - **Nothing to rebuild or reset**: there is no read model.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::{EventBus, EventBusError, Topic};
use crate::error::CodedError;
use crate::event::{Position, StoredEvent};
use crate::event_store::EventStoreError;
use crate::projection::follow::{Follow, Page};
use crate::projection::{DeadLetter, EventSource, ProjectionCheckpoint};
use crate::resilience::Backoff;
use crate::shutdown::Activity;

/// The longest wait between retries of a failing page.
const MAX_FAILURE_BACKOFF: Duration = Duration::from_secs(30);
/// How often, at most, the events behind the publisher are counted for
/// its gauge while it publishes (a count is a query of its own).
const COUNT_BEHIND_EVERY: Duration = Duration::from_secs(1);

/// Chooses the topic of each event, or `None` to not publish it.
type Router = Arc<dyn Fn(&StoredEvent) -> Option<Topic> + Send + Sync>;

/// Settings of an [`EventPublisher`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublisherConfig {
    /// Events read, published and checkpointed per page (default 500).
    pub batch_size: usize,
    /// How long to wait after a failure (bus, store or checkpoint store
    /// down) before trying the page again (default 1 s); the wait doubles
    /// with each failure in a row, up to 30 s.
    pub failure_backoff: Duration,
    /// The longest wait for new events without a notification from the
    /// source (default 5 s).
    pub idle_poll_interval: Duration,
    /// How long to wait after a page shorter than `batch_size` before
    /// reading again (default 0: at once); see
    /// [`ProjectionConfig::linger`](crate::projection::ProjectionConfig::linger).
    pub linger: Duration,
}

impl Default for PublisherConfig {
    fn default() -> Self {
        Self {
            batch_size: 500,
            failure_backoff: Duration::from_secs(1),
            idle_poll_interval: Duration::from_secs(5),
            linger: Duration::ZERO,
        }
    }
}

/// Publishes the events of an [`EventSource`] (the event store's global
/// stream) to an [`EventBus`], at least once, resuming from a checkpoint;
/// see the [`event_bus`](crate::event_bus) module for the guarantees. Cloning gives another
/// handle to the same publisher.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use std::sync::Arc;
/// use std::time::Duration;
/// use composable_rust_core::event_bus::{EventBus, EventPublisher, InMemoryEventBus, Topic};
/// use composable_rust_core::{EventStore, ExpectedVersion, InMemoryEventStore, InMemoryProjectionStore, NewEvent, StreamId};
///
/// let events = InMemoryEventStore::new();
/// let bus = InMemoryEventBus::new();
/// let checkpoints = Arc::new(InMemoryProjectionStore::new());
/// let topic = Topic::new("orders")?;
/// let publisher = EventPublisher::new("orders-publisher", events.clone(), bus.clone(), checkpoints, topic.clone());
/// let running = publisher.start();
///
/// # let new_event = NewEvent::new("OrderPlaced", serde_json::json!({}));
/// let written = events.append(&StreamId::new("order-1")?, ExpectedVersion::NoStream, vec![new_event]).await?;
/// publisher.wait_for(written.last_position, Duration::from_secs(5)).await?;
/// assert_eq!(bus.topic_len(&topic).await?, 1);
///
/// publisher.shutdown();
/// running.await??;
/// # Ok(())
/// # }
/// ```
pub struct EventPublisher<C: ProjectionCheckpoint> {
    shared: Arc<Shared<C>>,
}

struct Shared<C: ProjectionCheckpoint> {
    name: String,
    source: Arc<dyn EventSource>,
    bus: Arc<dyn EventBus>,
    checkpoints: Arc<C>,
    router: Router,
    config: PublisherConfig,
    /// The checkpoint, or `None` when it must be reloaded (at start and
    /// after a failure). Held for a whole page.
    cursor: tokio::sync::Mutex<Option<Position>>,
    /// When the events behind were last counted.
    counted_behind: std::sync::Mutex<Option<std::time::Instant>>,
    position: watch::Sender<Position>,
    shutdown: CancellationToken,
    /// The `run` and `publish_pending` calls in progress, for a graceful
    /// shutdown to wait on.
    activity: Activity,
    published: AtomicU64,
}

/// Builds an [`EventPublisher`]; from [`EventPublisher::builder`].
pub struct EventPublisherBuilder<C: ProjectionCheckpoint> {
    name: String,
    source: Arc<dyn EventSource>,
    bus: Arc<dyn EventBus>,
    checkpoints: Arc<C>,
    router: Router,
    config: PublisherConfig,
}

impl<C: ProjectionCheckpoint> EventPublisherBuilder<C> {
    /// Page size and backoffs (default: [`PublisherConfig::default`]).
    #[must_use]
    pub fn with_config(mut self, config: PublisherConfig) -> Self {
        self.config = config;
        self
    }

    /// The publisher.
    pub fn build(self) -> EventPublisher<C> {
        let (position, _) = watch::channel(Position::START);
        EventPublisher {
            shared: Arc::new(Shared {
                name: self.name,
                source: self.source,
                bus: self.bus,
                checkpoints: self.checkpoints,
                router: self.router,
                config: self.config,
                cursor: tokio::sync::Mutex::new(None),
                counted_behind: std::sync::Mutex::new(None),
                position,
                shutdown: CancellationToken::new(),
                activity: Activity::new(),
                published: AtomicU64::new(0),
            }),
        }
    }
}

impl<C: ProjectionCheckpoint> std::fmt::Debug for EventPublisherBuilder<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventPublisherBuilder")
            .field("name", &self.name)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl<C: ProjectionCheckpoint> Clone for EventPublisher<C> {
    fn clone(&self) -> Self {
        Self {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<C: ProjectionCheckpoint> EventPublisher<C> {
    /// A publisher named `name` that publishes every event of `source` to
    /// `topic`, keeping its checkpoint in `checkpoints` under `name` (use a
    /// name no projection of that store uses, e.g. `"bus-publisher"`).
    pub fn new(
        name: &str,
        source: impl EventSource,
        bus: impl EventBus,
        checkpoints: Arc<C>,
        topic: Topic,
    ) -> Self {
        Self::builder(name, source, bus, checkpoints, move |_: &StoredEvent| {
            Some(topic.clone())
        })
        .build()
    }

    /// A publisher with settings, that asks `router` for each event's topic
    /// (`None`: do not publish it; the checkpoint still moves past it):
    /// `EventPublisher::builder(name, source, bus, checkpoints, router)
    /// .with_config(config).build()`.
    ///
    /// ```
    /// # use composable_rust_core::event_bus::Topic;
    /// # use composable_rust_core::StoredEvent;
    /// // One topic per aggregate kind: "order-42" goes to "order".
    /// let router = |event: &StoredEvent| {
    ///     let kind = event.stream_id.as_str().split('-').next()?;
    ///     Topic::new(kind).ok()
    /// };
    /// # let _ = router;
    /// ```
    pub fn builder(
        name: &str,
        source: impl EventSource,
        bus: impl EventBus,
        checkpoints: Arc<C>,
        router: impl Fn(&StoredEvent) -> Option<Topic> + Send + Sync + 'static,
    ) -> EventPublisherBuilder<C> {
        EventPublisherBuilder {
            name: name.to_owned(),
            source: Arc::new(source),
            bus: Arc::new(bus),
            checkpoints,
            router: Arc::new(router),
            config: PublisherConfig::default(),
        }
    }

    /// The publisher's name (its checkpoint's key).
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// The last position published and checkpointed (or loaded).
    pub fn position(&self) -> Position {
        *self.shared.position.borrow()
    }

    /// A receiver of the checkpointed position, updated after every page.
    pub fn subscribe_position(&self) -> watch::Receiver<Position> {
        self.shared.position.subscribe()
    }

    /// How many messages this publisher (this process) has published,
    /// re-published pages included.
    pub fn published(&self) -> u64 {
        self.shared.published.load(Ordering::Relaxed)
    }

    /// Publishes pages until the source has nothing more; returns how many
    /// events it went past (published or routed nowhere).
    ///
    /// # Errors
    ///
    /// The first failure of the source, the bus or the checkpoint store;
    /// what was checkpointed before it stays checkpointed.
    pub async fn publish_pending(&self) -> Result<u64, EventBusError> {
        let _active = self.shared.activity.enter();
        let mut total = 0;
        loop {
            match self.publish_next_page().await? {
                Page::More(n) | Page::Short(n) => total += n,
                Page::Empty => return Ok(total),
            }
            if self.shared.shutdown.is_cancelled() {
                return Ok(total);
            }
        }
    }

    /// Publishes everything pending, then follows new events as they are
    /// appended, until [`shutdown`](Self::shutdown). Transient failures
    /// (the bus or a store unavailable) are logged and retried after
    /// `failure_backoff`, doubling with each failure in a row up to 30 s. A stored event that cannot be read is set aside
    /// as a dead letter under the publisher's name (in its checkpoint
    /// store) and skipped.
    ///
    /// # Errors
    ///
    /// Any other failure stops `run` and is returned: a configuration error,
    /// or a permanent refusal by the bus, which would refuse every retry
    /// and which the publisher must not skip (subscribers rely on getting
    /// every event).
    pub async fn run(&self) -> Result<(), EventBusError> {
        let shared = &self.shared;
        let _active = shared.activity.enter();
        let mut follow = Follow::new(
            shared.source.subscribe(),
            shared.config.idle_poll_interval,
            shared.config.linger,
        );
        tracing::info!(publisher = self.name(), "event publisher started");
        let backoff = Backoff::new(shared.config.failure_backoff, MAX_FAILURE_BACKOFF);
        let mut failures = 0;
        while !shared.shutdown.is_cancelled() {
            follow.before_read();
            let outcome = self.publish_next_page().await;
            if outcome.is_ok() {
                failures = 0;
            }
            match outcome {
                Ok(page) => follow.after_page(page, &shared.shutdown).await,
                Err(error) if error.is_transient() => {
                    failures += 1;
                    tracing::warn!(publisher = self.name(), %error, failures, "publishing a page failed; retrying");
                    self.pause(backoff.delay(failures)).await;
                }
                Err(error) => {
                    tracing::error!(publisher = self.name(), %error, class = %error.class(), "event publisher stopped: retrying cannot fix this failure");
                    return Err(error);
                }
            }
        }
        tracing::info!(publisher = self.name(), position = %self.position(), "event publisher stopped");
        Ok(())
    }

    /// Runs [`run`](Self::run) on a tokio task.
    pub fn start(&self) -> JoinHandle<Result<(), EventBusError>> {
        let publisher = self.clone();
        tokio::spawn(async move { publisher.run().await })
    }

    /// The stored events this publisher could not read and skipped, kept in
    /// its checkpoint store under its name.
    ///
    /// # Errors
    ///
    /// A failure of the checkpoint store.
    pub async fn dead_letters(&self) -> Result<Vec<DeadLetter>, EventBusError> {
        Ok(self
            .shared
            .checkpoints
            .dead_letters(&self.shared.name)
            .await?)
    }

    /// Asks `run` and `publish_pending` to stop after the page in progress.
    /// To also wait until they have, within a deadline, use
    /// [`GracefulShutdown::shutdown_within`](crate::shutdown::GracefulShutdown::shutdown_within).
    pub fn shutdown(&self) {
        self.shared.shutdown.cancel();
    }

    /// Returns once no `run` or `publish_pending` is in progress and no page
    /// holds the cursor.
    pub(crate) async fn stopped(&self) {
        self.shared.activity.idle().await;
        drop(self.shared.cursor.lock().await);
    }

    /// Waits until everything up to `target` (e.g. an append's
    /// `last_position`) has been published and checkpointed.
    ///
    /// # Errors
    ///
    /// [`EventBusError::PublisherWaitTimedOut`] (`CR-E0017`).
    pub async fn wait_for(&self, target: Position, timeout: Duration) -> Result<(), EventBusError> {
        let mut position = self.subscribe_position();
        match tokio::time::timeout(timeout, position.wait_for(|p| *p >= target)).await {
            Ok(Ok(_)) => Ok(()),
            _ => Err(EventBusError::PublisherWaitTimedOut {
                publisher: self.name().to_owned(),
                target,
                reached: self.position(),
                timeout,
            }),
        }
    }

    /// Reads, publishes and checkpoints one page; returns the page.
    async fn publish_next_page(&self) -> Result<Page, EventBusError> {
        let shared = &self.shared;
        let mut cursor = shared.cursor.lock().await;
        let result = async {
            let after = match *cursor {
                Some(position) => position,
                None => {
                    let loaded = shared
                        .checkpoints
                        .load_position(&shared.name)
                        .await?
                        .unwrap_or(Position::START);
                    *cursor = Some(loaded);
                    shared.position.send_replace(loaded);
                    loaded
                }
            };
            let read = shared
                .source
                .read_after(after, shared.config.batch_size.max(1))
                .await;
            let page = match read {
                Ok(page) => page,
                Err(EventStoreError::CorruptEvent {
                    position,
                    stream_id,
                    event_id,
                    raw,
                    reason,
                }) => {
                    // It cannot be published as it is: set it aside where
                    // the checkpoint lives, in the same unit of work that
                    // moves past it, and go on.
                    let event = DeadLetter::corrupt_event(position, &stream_id, event_id, raw);
                    let error = EventStoreError::CorruptEvent {
                        position,
                        stream_id,
                        event_id,
                        raw: String::new(),
                        reason,
                    };
                    tracing::error!(publisher = %shared.name, %error, "an unreadable stored event was set aside as a dead letter");
                    let letter = DeadLetter {
                        projection: shared.name.clone(),
                        event,
                        error: error.to_string(),
                        attempts: 1,
                        failed_at: chrono::Utc::now(),
                    };
                    let mut tx = shared.checkpoints.begin().await?;
                    shared.checkpoints.record_dead_letter(&mut tx, &letter).await?;
                    shared
                        .checkpoints
                        .save_position(&mut tx, &shared.name, position)
                        .await?;
                    shared.checkpoints.commit(tx).await?;
                    *cursor = Some(position);
                    shared.position.send_replace(position);
                    // Set aside, not the end: read on at once.
                    return Ok(Page::More(1));
                }
                Err(error) => return Err(error.into()),
            };
            let Some(last) = page.last().map(|event| event.position) else {
                return Ok(Page::Empty);
            };
            // Per topic, in position order; topics in order of first use.
            let mut batches: Vec<(Topic, Vec<StoredEvent>)> = Vec::new();
            for event in &page {
                if let Some(topic) = (shared.router)(event) {
                    match batches.iter_mut().find(|(t, _)| *t == topic) {
                        Some((_, batch)) => batch.push(event.clone()),
                        None => batches.push((topic, vec![event.clone()])),
                    }
                }
            }
            for (topic, batch) in &mut batches {
                // The spans close when the batch is on the bus.
                let _spans = crate::trace::publish_spans(topic, batch);
                shared.bus.publish_batch(topic, batch).await?;
                shared
                    .published
                    .fetch_add(batch.len() as u64, Ordering::Relaxed);
            }
            let mut tx = shared.checkpoints.begin().await?;
            shared
                .checkpoints
                .save_position(&mut tx, &shared.name, last)
                .await?;
            shared.checkpoints.commit(tx).await?;
            *cursor = Some(last);
            shared.position.send_replace(last);
            tracing::debug!(publisher = %shared.name, events = page.len(), position = %last, "published a page");
            Ok(Page::of(page.len(), shared.config.batch_size.max(1)))
        }
        .await;
        match result {
            // Caught up: nothing after the checkpoint.
            Ok(Page::Empty) => crate::metrics::publisher_behind(&shared.name, 0),
            // Best effort: a failed count leaves the lag gauge as it was.
            Ok(_) => {
                if let Some(position) = *cursor
                    && self.count_behind_due()
                    && let Ok(behind) = shared.source.count_after(position).await
                {
                    crate::metrics::publisher_behind(&shared.name, behind);
                }
            }
            Err(_) => {
                // The checkpoint may or may not have been saved: reload it.
                *cursor = None;
            }
        }
        result
    }

    async fn pause(&self, duration: Duration) {
        crate::projection::follow::pause(duration, &self.shared.shutdown).await;
    }

    /// Whether the events behind should be counted now (at most every
    /// [`COUNT_BEHIND_EVERY`]); if so, notes that they are.
    fn count_behind_due(&self) -> bool {
        let mut counted = self
            .shared
            .counted_behind
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let due = counted.is_none_or(|at| at.elapsed() >= COUNT_BEHIND_EVERY);
        if due {
            *counted = Some(std::time::Instant::now());
        }
        due
    }
}

impl<C: ProjectionCheckpoint> std::fmt::Debug for EventPublisher<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventPublisher")
            .field("name", &self.name())
            .field("position", &self.position())
            .field("published", &self.published())
            .finish_non_exhaustive()
    }
}
