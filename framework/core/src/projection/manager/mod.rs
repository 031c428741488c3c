//! [`ProjectionManager`]: runs one projection against an event source.
//!
//! ```text
//!            ┌──────────── run() ─────────────┐
//! checkpoint │ read batch after checkpoint    │ idle: wait for a notification
//!  (store) ──►  apply each event through tx   │       (or the poll interval)
//!            │  save checkpoint in tx, commit │
//!            └────────────────────────────────┘
//! ```
//!
//! - **Resumes** from the checkpoint it committed last, after a restart or
//!   a crash.
//! - **Exactly once** on stores whose commit is atomic: a batch's writes and
//!   its checkpoint commit together.
//! - Acts on each failure's [`ErrorClass`]: a **permanent** failure of
//!   one event (the projection cannot apply it, or the store refuses its
//!   writes, e.g. a key too long for an index) is isolated by applying the
//!   batch one event per unit of work, retried with exponential backoff,
//!   then moved to the **dead letters** (in the same unit of work as the
//!   checkpoint that moves past it), so one poison event never stalls the
//!   projection; a stored event that cannot even be read
//!   ([`EventStoreError::CorruptEvent`]) becomes a dead letter of its own.
//!   A **transient** failure (the database is down) is never
//!   dead-lettered: the batch is retried with growing backoff until the
//!   store is back, and [`health`](ProjectionManager::health) says so. A
//!   **configuration** failure (missing tables, permissions) stops
//!   [`run`](ProjectionManager::run) with the error, which says what to
//!   fix.
//! - **Rebuilds** on request: reset the read model and the checkpoint in one
//!   unit of work, then catch up.
//! - Carries out **operator requests** filed in the store from outside the
//!   service ([`ProjectionRequest`]: rebuild, retry a dead letter), which
//!   is how `composable checkpoint reset` and `composable dead-letters
//!   retry` reach a running service.
//! - Reports **lag** and throughput as metrics ([`metrics`]), and traces each
//!   batch.
//! - **Shuts down gracefully**: the current batch finishes and commits.
//! - [`wait_for`](ProjectionManager::wait_for) lets a caller wait until the
//!   projection has applied a position (read-your-writes).

mod config;
mod health;
pub mod metrics;
mod partition;

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use uuid::Uuid;

pub use config::{ProjectionConfig, RetryPolicy};
pub use health::ProjectionHealth;
pub use metrics::{Lag, ProjectionStats};
pub use partition::Partition;

use super::Projection;
use super::error::ProjectionError;
use super::follow::{Follow, Page};
use super::source::EventSource;
use super::store::{DeadLetter, ProjectionCheckpoint, ProjectionRequest, ProjectionStore};
use crate::error::{CodedError, ErrorClass};
use crate::event::{Position, StoredEvent};
use crate::event_store::EventStoreError;
use crate::resilience::Backoff;
use crate::shutdown::Activity;

/// Runs a [`Projection`]. Cloning gives another handle to the same manager.
pub struct ProjectionManager<P: Projection> {
    shared: Arc<Shared<P>>,
}

struct Shared<P: Projection> {
    projection: P,
    store: Arc<P::Store>,
    source: Arc<dyn EventSource>,
    config: ProjectionConfig,
    /// The committed position, or `None` when it must be reloaded from the
    /// store (at start, and after a failure that may or may not have
    /// committed). Held for the whole of every batch, rebuild and
    /// dead-letter retry, so they never interleave.
    cursor: tokio::sync::Mutex<Option<Position>>,
    position: watch::Sender<Position>,
    shutdown: CancellationToken,
    /// The `run` and `catch_up` calls in progress, for a graceful shutdown
    /// to wait on.
    activity: Activity,
    stats: Mutex<ProjectionStats>,
    health: Mutex<ProjectionHealth>,
}

/// Builds a [`ProjectionManager`]; from [`ProjectionManager::builder`].
pub struct ProjectionManagerBuilder<P: Projection> {
    projection: P,
    store: Arc<P::Store>,
    source: Arc<dyn EventSource>,
    config: ProjectionConfig,
}

impl<P: Projection> ProjectionManagerBuilder<P> {
    /// Batch size, retries, backoff, clock (default:
    /// [`ProjectionConfig::default`]).
    #[must_use]
    pub fn with_config(mut self, config: ProjectionConfig) -> Self {
        self.config = config;
        self
    }

    /// The manager.
    pub fn build(self) -> ProjectionManager<P> {
        ProjectionManager::from_builder(self)
    }
}

impl<P: Projection> std::fmt::Debug for ProjectionManagerBuilder<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProjectionManagerBuilder")
            .field("projection", &self.projection.name())
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl<P: Projection> Clone for ProjectionManager<P> {
    fn clone(&self) -> Self {
        Self {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<P: Projection> ProjectionManager<P> {
    /// A manager for `projection`, writing to `store`, reading from
    /// `source`, with the default [`ProjectionConfig`].
    pub fn new(projection: P, store: Arc<P::Store>, source: impl EventSource) -> Self {
        Self::builder(projection, store, source).build()
    }

    /// A manager with settings: `ProjectionManager::builder(projection,
    /// store, source).with_config(config).build()`.
    pub fn builder(
        projection: P,
        store: Arc<P::Store>,
        source: impl EventSource,
    ) -> ProjectionManagerBuilder<P> {
        ProjectionManagerBuilder {
            projection,
            store,
            source: Arc::new(source),
            config: ProjectionConfig::default(),
        }
    }

    fn from_builder(builder: ProjectionManagerBuilder<P>) -> Self {
        let ProjectionManagerBuilder {
            projection,
            store,
            source,
            config,
        } = builder;
        let (position, _) = watch::channel(Position::START);
        Self {
            shared: Arc::new(Shared {
                projection,
                store,
                source,
                config,
                cursor: tokio::sync::Mutex::new(None),
                position,
                shutdown: CancellationToken::new(),
                activity: Activity::new(),
                stats: Mutex::new(ProjectionStats::default()),
                health: Mutex::new(ProjectionHealth::Running),
            }),
        }
    }

    /// The projection's name.
    pub fn name(&self) -> &str {
        self.shared.projection.name()
    }

    /// The projection.
    pub fn projection(&self) -> &P {
        &self.shared.projection
    }

    /// The store the read model lives in.
    pub fn store(&self) -> &Arc<P::Store> {
        &self.shared.store
    }

    /// The last position this manager committed (or loaded).
    pub fn position(&self) -> Position {
        *self.shared.position.borrow()
    }

    /// A receiver of the committed position, updated after every commit.
    pub fn subscribe_position(&self) -> watch::Receiver<Position> {
        self.shared.position.subscribe()
    }

    /// Running totals since this manager was created.
    pub fn stats(&self) -> ProjectionStats {
        *self
            .shared
            .stats
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether the manager is keeping up, retrying a transient failure, or
    /// stopped on one that retrying cannot fix.
    pub fn health(&self) -> ProjectionHealth {
        self.shared
            .health
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Processes batches until the source has nothing more; returns how many
    /// events were committed. Poison events and unreadable stored events
    /// are dead-lettered on the way; any other failure is returned (after
    /// the events before it were committed).
    ///
    /// First it carries out the operator's requests waiting in the store
    /// ([`ProjectionRequest`]: a rebuild, dead letters to retry), so a
    /// service that only catches up at startup still honours them.
    pub async fn catch_up(&self) -> Result<u64, ProjectionError> {
        let _active = self.shared.activity.enter();
        self.handle_requests().await;
        self.catch_up_from_cursor().await
    }

    /// [`catch_up`](Self::catch_up) without looking at requests (a rebuild
    /// catches up with this, so a rebuild request cannot start another).
    async fn catch_up_from_cursor(&self) -> Result<u64, ProjectionError> {
        let mut total = 0;
        loop {
            match self.process_next_batch().await? {
                Page::More(n) | Page::Short(n) => total += n,
                Page::Empty => break,
            }
            if self.shared.shutdown.is_cancelled() {
                break;
            }
        }
        if let Ok(lag) = self.lag().await {
            metrics::record_lag(self.name(), lag);
        }
        Ok(total)
    }

    /// Catches up, then follows new events as they arrive, until
    /// [`shutdown`](Self::shutdown) (then it returns `Ok`). Transient
    /// failures are logged, counted and retried with backoff (from
    /// `failure_backoff`, doubling up to `max_failure_backoff`) while
    /// [`health`](Self::health) reports them; a failure retrying cannot fix
    /// (configuration, or permanent without an event to blame) stops `run`
    /// with that error.
    pub async fn run(&self) -> Result<(), ProjectionError> {
        let shared = &self.shared;
        let _active = shared.activity.enter();
        let mut follow = Follow::new(
            shared.source.subscribe(),
            shared.config.idle_poll_interval,
            shared.config.linger,
        );
        let mut lag_refreshed: Option<Instant> = None;
        let mut requests_taken: Option<Instant> = None;
        tracing::info!(projection = self.name(), "projection manager started");
        while !shared.shutdown.is_cancelled() {
            follow.before_read();
            // Operator requests are polled, at most every lag_interval (so
            // within idle_poll_interval when idle): they are rare, and a
            // store has no way to notify them.
            if requests_taken.is_none_or(|at| at.elapsed() >= shared.config.lag_interval) {
                self.handle_requests().await;
                requests_taken = Some(Instant::now());
            }
            let outcome = self.process_next_batch().await;
            if lag_refreshed.is_none_or(|at| at.elapsed() >= shared.config.lag_interval) {
                if let Ok(lag) = self.lag().await {
                    metrics::record_lag(self.name(), lag);
                }
                lag_refreshed = Some(Instant::now());
            }
            match outcome {
                Ok(page) => follow.after_page(page, &shared.shutdown).await,
                Err(error) if error.is_transient() => {
                    metrics::record_backend_error(self.name(), error.class());
                    let attempts = self.set_health(|health| {
                        ProjectionHealth::retrying(health, shared.config.clock.now(), &error)
                    });
                    tracing::warn!(projection = self.name(), %error, attempts, "projection batch failed; retrying");
                    self.pause(self.failure_backoff(attempts)).await;
                }
                Err(error) => {
                    metrics::record_backend_error(self.name(), error.class());
                    self.set_health(|_| ProjectionHealth::Stopped {
                        code: error.code(),
                        error: error.to_string(),
                    });
                    tracing::error!(
                        projection = self.name(),
                        %error,
                        class = %error.class(),
                        "projection manager stopped: retrying cannot fix this failure"
                    );
                    return Err(error);
                }
            }
        }
        tracing::info!(projection = self.name(), position = %self.position(), "projection manager stopped");
        Ok(())
    }

    /// Records a new health and returns the number of failed attempts in a
    /// row it reports (0 unless retrying).
    fn set_health(&self, update: impl FnOnce(&ProjectionHealth) -> ProjectionHealth) -> u32 {
        let mut health = self
            .shared
            .health
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        *health = update(&health);
        metrics::record_health(self.name(), health.gauge());
        match &*health {
            ProjectionHealth::Retrying { attempts, .. } => *attempts,
            _ => 0,
        }
    }

    /// The wait before retry number `attempts` of a transient failure: the
    /// framework's one [`Backoff`], without jitter (one manager per
    /// projection: no crowd to spread out, and a schedule tests can check).
    fn failure_backoff(&self, attempts: u32) -> Duration {
        let config = &self.shared.config;
        Backoff::new(config.failure_backoff, config.max_failure_backoff).delay(attempts)
    }

    /// Runs [`run`](Self::run) on a tokio task.
    pub fn start(&self) -> JoinHandle<Result<(), ProjectionError>> {
        let manager = self.clone();
        tokio::spawn(async move { manager.run().await })
    }

    /// Asks `run` and `catch_up` to stop after the batch in progress has
    /// committed. To also wait until they have, within a deadline, use
    /// [`GracefulShutdown::shutdown_within`](crate::shutdown::GracefulShutdown::shutdown_within).
    pub fn shutdown(&self) {
        self.shared.shutdown.cancel();
    }

    /// Returns once no `run` or `catch_up` is in progress and no batch,
    /// rebuild or dead-letter retry holds the cursor, and the source has
    /// been told what was committed (a bus subscription acknowledges it).
    pub(crate) async fn stopped(&self) {
        self.shared.activity.idle().await;
        let cursor = self.shared.cursor.lock().await;
        if let Some(committed) = *cursor
            && let Err(error) = self.shared.source.release(committed).await
        {
            // Harmless: those events come back and are skipped as at or
            // below the checkpoint.
            tracing::warn!(projection = self.name(), %error, "could not release the committed events of the source");
        }
    }

    /// Resets the read model, the checkpoint and the dead letters in one
    /// unit of work, then catches up from the first event; returns how many
    /// events were committed while catching up. Events that fail again
    /// during the rebuild are dead-lettered again.
    pub async fn rebuild(&self) -> Result<u64, ProjectionError> {
        let shared = &self.shared;
        {
            let mut cursor = shared.cursor.lock().await;
            tracing::info!(projection = self.name(), "rebuilding projection");
            // Old dead letters go too: the rebuild applies every event again,
            // so retrying one of them later would apply it twice.
            let dead_letters = shared.store.dead_letters(self.name()).await?;
            let mut tx = shared.store.begin().await?;
            shared.projection.reset(&mut tx).await?;
            for letter in &dead_letters {
                shared
                    .store
                    .remove_dead_letter(&mut tx, self.name(), letter.event.event_id)
                    .await?;
            }
            shared
                .store
                .save_position(&mut tx, self.name(), Position::START)
                .await?;
            shared.store.commit(tx).await?;
            *cursor = Some(Position::START);
            shared.position.send_replace(Position::START);
        }
        self.catch_up_from_cursor().await
    }

    /// Takes the operator's requests from the store and carries them out,
    /// oldest first. Never fails: a request is removed before it is
    /// carried out, and what goes wrong is logged (a retry that fails
    /// again is recorded on its dead letter, where the operator looks), so
    /// a store without the requests table, or a bad request, never stops
    /// the projection.
    async fn handle_requests(&self) {
        let requests = match self.shared.store.take_requests(self.name()).await {
            Ok(requests) => requests,
            Err(error) => {
                tracing::warn!(projection = self.name(), %error, "could not take the operator's requests");
                return;
            }
        };
        for request in requests {
            tracing::info!(
                projection = self.name(),
                ?request,
                "carrying out an operator's request"
            );
            let outcome = match request {
                ProjectionRequest::Rebuild => self.rebuild().await.map(|_| ()),
                ProjectionRequest::RetryDeadLetter(event_id) => {
                    match self.retry_dead_letter(event_id).await {
                        Err(error)
                            if !matches!(error, ProjectionError::DeadLetterNotFound { .. }) =>
                        {
                            self.record_failed_retry(event_id, &error).await
                        }
                        other => other,
                    }
                }
            };
            if let Err(error) = outcome {
                tracing::warn!(projection = self.name(), ?request, %error, "an operator's request failed");
            }
        }
    }

    /// Records the dead letter of `event_id` again after a requested retry
    /// failed: the new error, one more attempt, failed now. The checkpoint
    /// does not move.
    async fn record_failed_retry(
        &self,
        event_id: Uuid,
        error: &ProjectionError,
    ) -> Result<(), ProjectionError> {
        let shared = &self.shared;
        let _cursor = shared.cursor.lock().await;
        let mut letter = self.find_dead_letter(event_id).await?;
        letter.error = error.to_string();
        letter.attempts = letter.attempts.saturating_add(1);
        letter.failed_at = shared.config.clock.now();
        let mut tx = shared.store.begin().await?;
        shared.store.record_dead_letter(&mut tx, &letter).await?;
        shared.store.commit(tx).await
    }

    /// Waits until the projection has applied `target` (e.g. the
    /// `last_position` of an append), for read-your-writes.
    pub async fn wait_for(
        &self,
        target: Position,
        timeout: Duration,
    ) -> Result<(), ProjectionError> {
        let mut position = self.subscribe_position();
        match tokio::time::timeout(timeout, position.wait_for(|p| *p >= target)).await {
            Ok(Ok(_)) => Ok(()),
            _ => Err(ProjectionError::WaitTimedOut {
                projection: self.name().to_owned(),
                target,
                reached: self.position(),
                timeout,
            }),
        }
    }

    /// How far behind the source the projection is right now.
    pub async fn lag(&self) -> Result<Lag, ProjectionError> {
        let position = self.position();
        let events_behind = self.shared.source.count_after(position).await?;
        let mut seconds_behind = Duration::ZERO;
        if events_behind > 0
            && let Some(next) = self.shared.source.read_after(position, 1).await?.first()
        {
            let age = self.shared.config.clock.now() - next.recorded_at;
            seconds_behind = age.to_std().unwrap_or_default();
        }
        Ok(Lag {
            events_behind,
            seconds_behind,
        })
    }

    /// The events this projection gave up on, oldest first.
    pub async fn dead_letters(&self) -> Result<Vec<DeadLetter>, ProjectionError> {
        self.shared.store.dead_letters(self.name()).await
    }

    /// Applies a dead-lettered event again (after a fix) and, if it now
    /// succeeds, removes it from the dead letters in the same unit of work.
    /// The checkpoint does not move. Only do this when applying the event
    /// late is correct for the read model; otherwise rebuild.
    pub async fn retry_dead_letter(&self, event_id: Uuid) -> Result<(), ProjectionError> {
        let shared = &self.shared;
        let _cursor = shared.cursor.lock().await;
        let mut letter = self.find_dead_letter(event_id).await?;
        if letter.is_corrupt_event() {
            // The row may have been fixed since: read it again, and apply
            // it only if it is still the event at that position.
            let position = letter.event.position;
            let reread = shared.source.read_after(position.just_before(), 1).await?;
            match reread.into_iter().next() {
                Some(event) if event.position == position => letter.event = event,
                _ => {
                    return Err(ProjectionError::apply(format!(
                        "the unreadable event at position {position} is no longer in the \
                         source; discard its dead letter with discard_dead_letter"
                    )));
                }
            }
        }
        let mut tx = shared.store.begin().await?;
        shared.projection.apply(&letter.event, &mut tx).await?;
        shared
            .store
            .remove_dead_letter(&mut tx, self.name(), event_id)
            .await?;
        shared.store.commit(tx).await
    }

    /// Removes a dead letter without applying it.
    pub async fn discard_dead_letter(&self, event_id: Uuid) -> Result<(), ProjectionError> {
        let shared = &self.shared;
        let _cursor = shared.cursor.lock().await;
        self.find_dead_letter(event_id).await?;
        let mut tx = shared.store.begin().await?;
        shared
            .store
            .remove_dead_letter(&mut tx, self.name(), event_id)
            .await?;
        shared.store.commit(tx).await
    }

    async fn find_dead_letter(&self, event_id: Uuid) -> Result<DeadLetter, ProjectionError> {
        self.dead_letters()
            .await?
            .into_iter()
            .find(|letter| letter.event.event_id == event_id)
            .ok_or_else(|| ProjectionError::DeadLetterNotFound {
                projection: self.name().to_owned(),
                event_id,
            })
    }

    /// Reads and commits one batch; returns the page it read, counting the
    /// events it committed.
    async fn process_next_batch(&self) -> Result<Page, ProjectionError> {
        let shared = &self.shared;
        let mut cursor = shared.cursor.lock().await;
        let after = match *cursor {
            Some(position) => position,
            None => {
                let loaded = shared
                    .store
                    .load_position(self.name())
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
        let batch = match read {
            Ok(batch) => batch,
            Err(EventStoreError::CorruptEvent {
                position,
                stream_id,
                event_id,
                raw,
                reason,
            }) => {
                let error = ProjectionError::Source(EventStoreError::CorruptEvent {
                    position,
                    stream_id: stream_id.clone(),
                    event_id,
                    raw: raw.clone(),
                    reason,
                });
                let event = DeadLetter::corrupt_event(position, &stream_id, event_id, raw);
                let result = self.dead_letter(&event, &error, 1).await;
                return match result {
                    Ok(()) => {
                        self.advance(&mut cursor, position, 0);
                        // Set aside, not the end: read on at once.
                        Ok(Page::More(1))
                    }
                    Err(error) => {
                        *cursor = None;
                        Err(error)
                    }
                };
            }
            Err(error) => return Err(error.into()),
        };
        let Some(last) = batch.last().map(|event| event.position) else {
            return Ok(Page::Empty);
        };
        let span = tracing::info_span!("projection.batch", projection = self.name(), %after, events = batch.len());
        let started = Instant::now();
        let result = async {
            match self.commit_batch(&batch, last).await {
                Ok(()) => {
                    self.advance(&mut cursor, last, batch.len() as u64);
                    Ok(batch.len() as u64)
                }
                Err(error) if error.class() != ErrorClass::Permanent => Err(error),
                Err(error) => {
                    // Not counted as an attempt: the slow path retries this
                    // event `max_attempts` times on its own and counts those.
                    tracing::debug!(%error, "an event failed; applying the batch one event at a time");
                    self.commit_one_by_one(&batch, &mut cursor).await
                }
            }
        }
        .instrument(span)
        .await;
        match result {
            Ok(committed) => {
                if !self.health().is_running() {
                    self.set_health(|_| ProjectionHealth::Running);
                }
                self.count(|stats| stats.batches += 1);
                metrics::record_batch(self.name(), committed, started.elapsed());
                Ok(Page::handled(
                    batch.len(),
                    shared.config.batch_size.max(1),
                    committed,
                ))
            }
            Err(error) => {
                // The failure may have happened after the commit reached the
                // store: reload the checkpoint rather than guess.
                *cursor = None;
                Err(error)
            }
        }
    }

    async fn commit_batch(
        &self,
        batch: &[StoredEvent],
        last: Position,
    ) -> Result<(), ProjectionError> {
        let shared = &self.shared;
        let mut tx = shared.store.begin().await?;
        for event in batch {
            if shared.projection.handles(event) {
                let span = apply_span(self.name(), event);
                shared
                    .projection
                    .apply(event, &mut tx)
                    .instrument(span)
                    .await?;
            }
        }
        shared
            .store
            .save_position(&mut tx, self.name(), last)
            .await?;
        shared.store.commit(tx).await
    }

    /// The slow path after a failure: one unit of work per event, retrying
    /// each failing event with backoff, then dead-lettering it.
    async fn commit_one_by_one(
        &self,
        batch: &[StoredEvent],
        cursor: &mut Option<Position>,
    ) -> Result<u64, ProjectionError> {
        let shared = &self.shared;
        let retry = shared.config.retry;
        let mut committed = 0;
        for event in batch {
            let mut attempt = 0;
            loop {
                attempt += 1;
                match self.commit_one(event).await? {
                    Ok(()) => break,
                    Err(error) if error.class() != ErrorClass::Permanent => return Err(error),
                    Err(error) => {
                        self.count(|stats| stats.apply_errors += 1);
                        metrics::record_apply_error(self.name());
                        if attempt >= retry.max_attempts.max(1) {
                            self.dead_letter(event, &error, attempt).await?;
                            break;
                        }
                        tracing::warn!(
                            projection = self.name(),
                            event_id = %event.event_id,
                            attempt,
                            %error,
                            "applying an event failed; retrying"
                        );
                        tokio::select! {
                            () = shared.config.clock.sleep(retry.backoff(attempt)) => {}
                            () = shared.shutdown.cancelled() => return Ok(committed),
                        }
                    }
                }
            }
            self.advance(cursor, event.position, 1);
            committed += 1;
        }
        Ok(committed)
    }

    /// Applies `event` and moves the checkpoint to it in one unit of work.
    /// The inner result is this event's: applying it, or the store
    /// refusing its writes at commit. The outer error is no event's
    /// (starting the unit of work, saving the checkpoint): it is returned
    /// as it is, so a permanent one stops the manager instead of
    /// dead-lettering an innocent event.
    async fn commit_one(
        &self,
        event: &StoredEvent,
    ) -> Result<Result<(), ProjectionError>, ProjectionError> {
        let shared = &self.shared;
        let mut tx = shared.store.begin().await?;
        if shared.projection.handles(event)
            && let Err(error) = shared
                .projection
                .apply(event, &mut tx)
                .instrument(apply_span(self.name(), event))
                .await
        {
            return Ok(Err(error));
        }
        shared
            .store
            .save_position(&mut tx, self.name(), event.position)
            .await?;
        Ok(shared.store.commit(tx).await)
    }

    async fn dead_letter(
        &self,
        event: &StoredEvent,
        error: &ProjectionError,
        attempts: u32,
    ) -> Result<(), ProjectionError> {
        let shared = &self.shared;
        let letter = DeadLetter {
            projection: self.name().to_owned(),
            event: event.clone(),
            error: error.to_string(),
            attempts,
            failed_at: shared.config.clock.now(),
        };
        let mut tx = shared.store.begin().await?;
        shared.store.record_dead_letter(&mut tx, &letter).await?;
        shared
            .store
            .save_position(&mut tx, self.name(), event.position)
            .await?;
        shared.store.commit(tx).await?;
        self.count(|stats| stats.dead_letters += 1);
        metrics::record_dead_letter(self.name());
        tracing::error!(
            projection = self.name(),
            event_id = %event.event_id,
            stream_id = %event.stream_id,
            stream_version = event.stream_version,
            attempts,
            %error,
            "event moved to the dead letters"
        );
        Ok(())
    }

    fn advance(&self, cursor: &mut Option<Position>, position: Position, events: u64) {
        *cursor = Some(position);
        // Count before publishing the position: a `wait_for` caller woken by
        // it must see these events in `stats()`.
        self.count(|stats| stats.events_applied += events);
        self.shared.position.send_replace(position);
    }

    fn count(&self, update: impl FnOnce(&mut ProjectionStats)) {
        update(
            &mut self
                .shared
                .stats
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        );
    }

    async fn pause(&self, duration: Duration) {
        super::follow::pause(duration, &self.shared.shutdown).await;
    }
}

impl<P: Projection> std::fmt::Debug for ProjectionManager<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProjectionManager")
            .field("projection", &self.name())
            .field("position", &self.position())
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

/// The `projection.apply` span of one event: a child of the trace context
/// the event carries, so the projection's work joins the trace of the
/// command that wrote the event (see [`crate::trace`]).
fn apply_span(projection: &str, event: &StoredEvent) -> tracing::Span {
    let span = tracing::debug_span!(
        "projection.apply",
        projection,
        stream_id = %event.stream_id,
        event_type = %event.event_type,
        position = %event.position,
        correlation_id = event.metadata.correlation_id.map(tracing::field::display),
    );
    crate::trace::continue_from(&span, &event.metadata);
    span
}
