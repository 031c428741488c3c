//! [`SagaRuntime`]: routes events to saga instances, records their steps in
//! the event store, runs their timeouts and delivers their commands.
//!
//! This module holds the runtime's handle, its public methods and the state
//! its parts share (the cache of loaded instances among it); the parts:
//!
//! - [`builder`]: [`SagaRuntimeBuilder`], the runtime's settings;
//! - [`steps`]: processing one message for one instance (load, decide,
//!   record with optimistic concurrency, deliver the commands);
//! - [`timers`]: arming, firing and re-arming timeouts on the clock;
//! - [`catalog`]: the `sagas-{KIND}` stream of running instances, read by
//!   [`resume`](SagaRuntime::resume).

mod builder;
mod catalog;
mod steps;
mod timers;

pub use builder::SagaRuntimeBuilder;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::watch;
use tokio_util::task::TaskTracker;

use self::timers::Timers;
use super::instance::{Received, SagaInstance, SagaMessage};
use super::{CommandDispatcher, Saga, SagaError, SagaId, SagaOutcome};
use crate::clock::Clock;
use crate::event::{Position, StoredEvent, StreamId, Upcasters};
use crate::event_store::{EventStore, EventStoreError};
use crate::projection::EventSource;
use crate::projection::manager::Partition;
use crate::store::EffectRunner;

/// Page size of [`SagaRuntime::catch_up`].
const CATCH_UP_PAGE: usize = 256;

/// What [`SagaRuntime::handle`] did with an event.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Handled {
    /// No saga instance of this kind is interested in the event.
    NotRouted,
    /// The saga already handled this event (same event id): redelivery.
    Duplicate(SagaId),
    /// The saga has ended; the event is ignored.
    Ended(SagaId),
    /// The saga had nothing to do about the event in its current state.
    NoReaction(SagaId),
    /// The saga took a step: recorded, and its commands delivered.
    Stepped {
        /// The saga.
        saga_id: SagaId,
        /// How the saga ended, if this step ended it.
        outcome: Option<SagaOutcome>,
    },
}

/// What [`SagaRuntime::resume`] found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResumeReport {
    /// Running sagas loaded from the event store.
    pub sagas: usize,
    /// Commands that had been recorded but not delivered, delivered now.
    pub redispatched: usize,
    /// Timeouts armed again (each waits only for what is left of it).
    pub timeouts: usize,
    /// Sagas that had ended (and delivered all their commands) but were
    /// still listed in the catalog, now closed there.
    pub closed: usize,
}

type Slot<S> = Arc<tokio::sync::Mutex<Option<SagaInstance<S>>>>;

/// Runs the instances of one saga kind.
///
/// Feed it events with [`handle`](Self::handle) (from an event bus
/// subscription, or from the event store with
/// [`catch_up`](Self::catch_up)); for each event it
///
/// 1. asks the saga which instance the event is for ([`Saga::route`]);
/// 2. loads that instance by replaying its stream (`saga-{KIND}-{id}`),
///    unless it is cached;
/// 3. ignores the event if the instance already handled its id
///    (redelivery) or has ended;
/// 4. lets the saga decide ([`Saga::react`]) and appends the step (the
///    saga's events and a `$saga.step` record with the commands and
///    timeouts) in one append, expecting the version it loaded;
/// 5. applies the step, arms or cancels timeouts on its clock
///    ([`Effect::delay`], cancellable), and delivers the commands through
///    the [`CommandDispatcher`], recording their delivery.
///
/// After a restart, [`resume`](Self::resume) delivers the commands that
/// were recorded but not delivered and arms the running timeouts again for
/// what is left of them. Cloning gives another handle to the same runtime.
///
/// [`Effect::delay`]: crate::Effect::delay
pub struct SagaRuntime<S: Saga> {
    inner: Arc<Inner<S>>,
}

impl<S: Saga> Clone for SagaRuntime<S> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<S: Saga> std::fmt::Debug for SagaRuntime<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SagaRuntime")
            .field("kind", &S::KIND)
            .field("armed_timeouts", &self.armed_timeouts())
            .finish_non_exhaustive()
    }
}

struct Inner<S: Saga> {
    saga: S,
    store: Arc<dyn EventStore>,
    dispatcher: Arc<dyn CommandDispatcher<S::Command>>,
    clock: Arc<dyn Clock>,
    upcasters: Upcasters,
    conflict_attempts: usize,
    retry_after: Duration,
    catalog: StreamId,
    own_prefix: String,
    /// Loaded instances, each behind its own lock: one event at a time per
    /// saga, many sagas at once.
    slots: Mutex<HashMap<SagaId, Slot<S>>>,
    runner: EffectRunner,
    timer_group: TaskTracker,
    timers: Mutex<Timers>,
    /// Timeouts being handled right now.
    busy: AtomicUsize,
    /// Bumped whenever a timeout was handled or disarmed.
    activity: watch::Sender<u64>,
    accepting: AtomicBool,
    tasks: TaskTracker,
}

impl<S: Saga> Drop for Inner<S> {
    fn drop(&mut self) {
        // A dropped runtime's timeouts must never fire.
        self.runner.cancel_all();
    }
}

impl<S: Saga> SagaRuntime<S> {
    /// A runtime on the [`SystemClock`]; see [`builder`](Self::builder) for
    /// the options.
    ///
    /// [`SystemClock`]: crate::SystemClock
    pub fn new(
        saga: S,
        store: impl EventStore,
        dispatcher: impl CommandDispatcher<S::Command>,
    ) -> Self {
        Self::builder(saga, store, dispatcher).build()
    }

    /// Configures a runtime for `saga`, recording in `store` and delivering
    /// commands through `dispatcher`.
    /// Configures a runtime for `saga`, recording in `store` and delivering
    /// commands through `dispatcher`.
    pub fn builder(
        saga: S,
        store: impl EventStore,
        dispatcher: impl CommandDispatcher<S::Command>,
    ) -> SagaRuntimeBuilder<S> {
        SagaRuntimeBuilder::new(saga, store, dispatcher)
    }

    /// The saga this runtime runs.
    pub fn saga(&self) -> &S {
        &self.inner.saga
    }

    /// Handles one event: routes it to its saga instance, records the step
    /// the saga takes and delivers its commands (see the type's docs).
    ///
    /// Safe to call again with the same event (at-least-once delivery): a
    /// redelivered event is recognised by its id. If delivering a command
    /// fails, the step stays recorded and the error is
    /// [`SagaError::Dispatch`]; deliver the event again (or call
    /// [`retry_pending`](Self::retry_pending)) to retry. Acknowledge an
    /// event to a bus only after `handle` returned `Ok`.
    pub async fn handle(&self, event: &StoredEvent) -> Result<Handled, SagaError> {
        self.handle_in(event, None).await
    }

    /// [`handle`](Self::handle), for a worker that owns only `partition`
    /// of this saga kind's instances: an event routed to a saga whose id
    /// is in another partition is [`Handled::NotRouted`] here (its owner
    /// handles it). Partitioning by saga id keeps each saga with one
    /// worker, so its events stay in order; see
    /// [`Partition`](crate::projection::manager::Partition).
    pub async fn handle_partition(
        &self,
        event: &StoredEvent,
        partition: Partition,
    ) -> Result<Handled, SagaError> {
        self.handle_in(event, Some(partition)).await
    }

    async fn handle_in(
        &self,
        event: &StoredEvent,
        partition: Option<Partition>,
    ) -> Result<Handled, SagaError> {
        if !self.inner.accepting.load(Ordering::SeqCst) {
            return Err(SagaError::ShutDown);
        }
        let stream = event.stream_id.as_str();
        if stream == self.inner.catalog.as_str() || stream.starts_with(&self.inner.own_prefix) {
            return Ok(Handled::NotRouted);
        }
        let Some(routed) = self.inner.saga.route(event)? else {
            return Ok(Handled::NotRouted);
        };
        if partition.is_some_and(|partition| !partition.contains(routed.saga_id.as_str())) {
            return Ok(Handled::NotRouted);
        }
        let message = SagaMessage::Input {
            id: event.event_id,
            input: routed.input,
        };
        let received = Received {
            stream_id: event.stream_id.to_string(),
            event_type: event.event_type.clone(),
        };
        // A child of the trace context the event carries: the saga's step
        // (its appends, the commands it dispatches) joins the trace of the
        // command that wrote the event (see `crate::trace`).
        let span = tracing::debug_span!(
            "saga.step",
            saga = S::KIND,
            saga_id = %routed.saga_id,
            event_type = %event.event_type,
            correlation_id = event.metadata.correlation_id.map(tracing::field::display),
        );
        crate::trace::continue_from(&span, &event.metadata);
        let step = Inner::process(&self.inner, routed.saga_id, message, Some(received));
        tracing::Instrument::instrument(step, span).await
    }

    /// Handles every event of `source` after `after`, in order, until there
    /// are no more, and returns the position of the last one: the way to
    /// drive sagas from the event store's global stream without a bus. Keep
    /// the returned position and pass it next time; after a crash, starting
    /// again from an older position is safe (redelivered events are
    /// ignored).
    pub async fn catch_up<E>(&self, source: &E, after: Position) -> Result<Position, SagaError>
    where
        E: EventSource + ?Sized,
    {
        self.catch_up_in(source, after, None).await
    }

    /// [`catch_up`](Self::catch_up) through
    /// [`handle_partition`](Self::handle_partition): handles only the
    /// events routed to sagas in `partition`, and returns the position of
    /// the last event read (keep it per partition).
    pub async fn catch_up_partition<E>(
        &self,
        source: &E,
        after: Position,
        partition: Partition,
    ) -> Result<Position, SagaError>
    where
        E: EventSource + ?Sized,
    {
        self.catch_up_in(source, after, Some(partition)).await
    }

    async fn catch_up_in<E>(
        &self,
        source: &E,
        after: Position,
        partition: Option<Partition>,
    ) -> Result<Position, SagaError>
    where
        E: EventSource + ?Sized,
    {
        let mut position = after;
        loop {
            let page = match source.read_after(position, CATCH_UP_PAGE).await {
                Ok(page) => page,
                Err(EventStoreError::CorruptEvent {
                    position: corrupt,
                    stream_id,
                    reason,
                    ..
                }) => {
                    // No saga can act on an event nobody can read; skipping
                    // it is the only way past it. Logged loudly: the row
                    // needs fixing, and projections keep it as a dead letter.
                    tracing::error!(
                        saga = S::KIND,
                        position = %corrupt,
                        stream_id,
                        reason,
                        "skipped an unreadable stored event (CR-E0018)"
                    );
                    position = corrupt;
                    continue;
                }
                Err(error) => return Err(error.into()),
            };
            if page.is_empty() {
                return Ok(position);
            }
            for event in &page {
                self.handle_in(event, partition).await?;
                position = event.position;
            }
        }
    }

    /// Picks up where a previous process stopped: loads every saga of this
    /// kind that has not ended (from the catalog stream `sagas-{KIND}`),
    /// delivers the commands it recorded but did not deliver, and arms its
    /// timeouts again for what is left of them. Call it once at start-up,
    /// before delivering events. Safe to call again.
    ///
    /// Every saga is visited even if one fails; the first failure is
    /// returned.
    pub async fn resume(&self) -> Result<ResumeReport, SagaError> {
        self.resume_in(None).await
    }

    /// [`resume`](Self::resume) for the sagas in `partition` only: what a
    /// runtime that has just been given a partition calls (a partitioned
    /// worker), so it picks up that partition's pending commands and
    /// timeouts without touching the sagas other runtimes own.
    pub async fn resume_partition(&self, partition: Partition) -> Result<ResumeReport, SagaError> {
        self.resume_in(Some(partition)).await
    }

    async fn resume_in(&self, partition: Option<Partition>) -> Result<ResumeReport, SagaError> {
        if !self.inner.accepting.load(Ordering::SeqCst) {
            return Err(SagaError::ShutDown);
        }
        let active = self.inner.running_sagas().await?;
        let mut report = ResumeReport::default();
        let mut first_error = None;
        let mine = |saga_id: &SagaId| partition.is_none_or(|p| p.contains(saga_id.as_str()));
        for saga_id in active.into_iter().filter(mine) {
            match Inner::resume_one(&self.inner, &saga_id, &mut report).await {
                Ok(()) => {}
                Err(error) => {
                    tracing::warn!(saga = S::KIND, %saga_id, %error, "resuming a saga failed");
                    first_error.get_or_insert(error);
                }
            }
        }
        match first_error {
            Some(error) => Err(error),
            None => Ok(report),
        }
    }

    /// Delivers again the commands of loaded sagas whose delivery failed,
    /// and returns how many were delivered. Every saga is tried; the first
    /// failure is returned.
    pub async fn retry_pending(&self) -> Result<usize, SagaError> {
        let slots: Vec<Slot<S>> = self.inner.lock_slots().values().cloned().collect();
        let mut delivered = 0;
        let mut first_error = None;
        for slot in slots {
            let mut guard = slot.lock().await;
            let Some(instance) = guard.as_mut() else {
                continue;
            };
            let was_settled = instance.is_settled();
            match self.inner.flush(instance).await {
                Ok(count) => delivered += count,
                Err(error) => {
                    if !matches!(error, SagaError::Dispatch { .. }) {
                        *guard = None;
                    }
                    first_error.get_or_insert(error);
                    continue;
                }
            }
            if !was_settled && instance.is_settled() {
                let saga_id = instance.id().clone();
                // Like a failed flush: remember it, and try the other sagas.
                // The saga stays listed and is closed by the next resume.
                if let Err(error) = self.inner.close(&saga_id).await {
                    first_error.get_or_insert(error);
                }
            }
        }
        match first_error {
            Some(error) => Err(error),
            None => Ok(delivered),
        }
    }

    /// Saga `saga_id` as it stands: from this runtime's cache, or replayed
    /// from the event store (a saga that never started is empty, at version
    /// 0). Read-only.
    pub async fn instance(&self, saga_id: &SagaId) -> Result<SagaInstance<S>, SagaError> {
        let slot = self.inner.lock_slots().get(saga_id).cloned();
        if let Some(slot) = slot
            && let Some(instance) = slot.lock().await.as_ref()
        {
            return Ok(instance.clone());
        }
        self.inner.load(saga_id).await
    }

    /// How many timeouts are armed.
    pub fn armed_timeouts(&self) -> usize {
        self.inner.lock_timers().armed.len()
    }

    /// Waits until no timeout is due and unhandled: after a
    /// [`TestClock::advance`](crate::TestClock::advance), await this before
    /// asserting what the timeouts did.
    pub async fn idle(&self) {
        let mut changes = self.inner.activity.subscribe();
        loop {
            if !self.inner.is_busy() {
                return;
            }
            if changes.changed().await.is_err() {
                return;
            }
        }
    }

    /// Stops: refuses further events, cancels every timeout (they are
    /// recorded, so the next runtime arms them again) and waits for the
    /// timeouts being handled to finish.
    pub async fn shutdown(&self) {
        self.inner.accepting.store(false, Ordering::SeqCst);
        self.inner.runner.cancel_all();
        self.inner.lock_timers().armed.clear();
        self.inner.activity.send_modify(|n| *n += 1);
        self.inner.tasks.close();
        self.inner.tasks.wait().await;
    }
}

impl<S: Saga> Inner<S> {
    fn lock_slots(&self) -> std::sync::MutexGuard<'_, HashMap<SagaId, Slot<S>>> {
        self.slots.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn slot(&self, saga_id: &SagaId) -> Slot<S> {
        Arc::clone(self.lock_slots().entry(saga_id.clone()).or_default())
    }

    fn evict(&self, saga_id: &SagaId) {
        self.lock_slots().remove(saga_id);
    }
}
