//! [`SagaRuntime`]: routes events to saga instances, records their steps in
//! the event store, runs their timeouts and delivers their commands.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio_util::task::TaskTracker;

use super::instance::{Decision, SagaInstance, SagaMessage, dispatched_record, saga_stream_id};
use super::{CommandDispatcher, Saga, SagaError, SagaId, SagaOutcome};
use crate::clock::{Clock, SystemClock};
use crate::effect::{Effect, EffectId};
use crate::error::CodedError;
use crate::event::{
    Event, ExpectedVersion, NewEvent, Position, Snapshot, StoredEvent, StreamId, Upcasters, decode,
};
use crate::event_store::{EventStore, EventStoreError};
use crate::projection::EventSource;
use crate::store::{ActionSink, EffectRunner};

/// How many catalog events [`SagaRuntime::resume`] reads past the last
/// catalog snapshot before it saves a new one.
const CATALOG_SNAPSHOT_EVERY: usize = 1_000;
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

/// The catalog of a saga kind (stream `sagas-{KIND}`): which instances
/// started and which ended, so [`SagaRuntime::resume`] finds the running
/// ones without scanning the whole store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum CatalogEvent {
    #[serde(rename = "$saga.started")]
    Started { saga_id: SagaId },
    #[serde(rename = "$saga.closed")]
    Closed { saga_id: SagaId },
}

impl Event for CatalogEvent {}

/// A timeout that fired, fed back by its delay effect.
#[derive(Debug, Clone)]
struct TimeoutFired {
    saga_id: SagaId,
    name: String,
    deadline: DateTime<Utc>,
    generation: u64,
}

#[derive(Default)]
struct Timers {
    next_generation: u64,
    armed: HashMap<(SagaId, String), Armed>,
}

struct Armed {
    generation: u64,
    wake_at: DateTime<Utc>,
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

/// Configures a [`SagaRuntime`]; from [`SagaRuntime::builder`].
pub struct SagaRuntimeBuilder<S: Saga> {
    saga: S,
    store: Arc<dyn EventStore>,
    dispatcher: Arc<dyn CommandDispatcher<S::Command>>,
    clock: Arc<dyn Clock>,
    upcasters: Upcasters,
    conflict_attempts: usize,
    retry_after: Duration,
}

impl<S: Saga> SagaRuntimeBuilder<S> {
    /// The clock timeouts run on and deadlines are computed with (default:
    /// the [`SystemClock`]). Pass a [`TestClock`](crate::TestClock) in
    /// tests, and the same clock your environment uses.
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Upcasts the saga's old events when its stream is replayed.
    #[must_use]
    pub fn with_upcasters(mut self, upcasters: Upcasters) -> Self {
        self.upcasters = upcasters;
        self
    }

    /// How many times an event is tried when another writer appends to the
    /// saga's stream first (default 3); each attempt reloads the saga.
    #[must_use]
    pub fn with_conflict_attempts(mut self, attempts: usize) -> Self {
        self.conflict_attempts = attempts.max(1);
        self
    }

    /// How long to wait before trying a timeout again whose handling failed
    /// (the event store was unreachable, say); default one second.
    #[must_use]
    pub fn with_retry_after(mut self, delay: Duration) -> Self {
        self.retry_after = delay;
        self
    }

    /// The runtime.
    pub fn build(self) -> SagaRuntime<S> {
        let (activity, _) = watch::channel(0);
        let catalog = StreamId::new(format!("sagas-{}", S::KIND))
            .expect("Saga::KIND must be a short name without control characters");
        SagaRuntime {
            inner: Arc::new(Inner {
                runner: EffectRunner::new(Arc::clone(&self.clock)),
                saga: self.saga,
                store: self.store,
                dispatcher: self.dispatcher,
                clock: self.clock,
                upcasters: self.upcasters,
                conflict_attempts: self.conflict_attempts,
                retry_after: self.retry_after,
                catalog,
                own_prefix: format!("saga-{}-", S::KIND),
                slots: Mutex::new(HashMap::new()),
                timer_group: TaskTracker::new(),
                timers: Mutex::new(Timers::default()),
                busy: AtomicUsize::new(0),
                activity,
                accepting: AtomicBool::new(true),
                tasks: TaskTracker::new(),
            }),
        }
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
    pub fn new(
        saga: S,
        store: impl EventStore,
        dispatcher: impl CommandDispatcher<S::Command>,
    ) -> Self {
        Self::builder(saga, store, dispatcher).build()
    }

    /// Configures a runtime for `saga`, recording in `store` and delivering
    /// commands through `dispatcher`.
    pub fn builder(
        saga: S,
        store: impl EventStore,
        dispatcher: impl CommandDispatcher<S::Command>,
    ) -> SagaRuntimeBuilder<S> {
        SagaRuntimeBuilder {
            saga,
            store: Arc::new(store),
            dispatcher: Arc::new(dispatcher),
            clock: Arc::new(SystemClock),
            upcasters: Upcasters::new(),
            conflict_attempts: 3,
            retry_after: Duration::from_secs(1),
        }
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
        let message = SagaMessage::Input {
            id: event.event_id,
            input: routed.input,
        };
        Inner::process(&self.inner, routed.saga_id, message).await
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
                self.handle(event).await?;
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
        if !self.inner.accepting.load(Ordering::SeqCst) {
            return Err(SagaError::ShutDown);
        }
        let active = self.inner.running_sagas().await?;
        let mut report = ResumeReport::default();
        let mut first_error = None;
        for saga_id in active {
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
                self.inner.close(&saga_id).await?;
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

    fn lock_timers(&self) -> std::sync::MutexGuard<'_, Timers> {
        self.timers.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn slot(&self, saga_id: &SagaId) -> Slot<S> {
        Arc::clone(self.lock_slots().entry(saga_id.clone()).or_default())
    }

    fn evict(&self, saga_id: &SagaId) {
        self.lock_slots().remove(saga_id);
    }

    fn is_busy(&self) -> bool {
        if self.busy.load(Ordering::SeqCst) > 0 {
            return true;
        }
        let now = self.clock.now();
        self.lock_timers()
            .armed
            .values()
            .any(|armed| armed.wake_at <= now)
    }

    async fn load(&self, saga_id: &SagaId) -> Result<SagaInstance<S>, SagaError> {
        let stream_id = saga_stream_id::<S>(saga_id)?;
        let stored = self.store.load_stream(&stream_id, 0).await?;
        SagaInstance::replay(saga_id.clone(), &stored, &self.upcasters)
    }

    /// Loads `saga_id` into `guard` if it is not there, arming its timeouts.
    async fn ensure_loaded<'g>(
        this: &Arc<Self>,
        saga_id: &SagaId,
        guard: &'g mut Option<SagaInstance<S>>,
    ) -> Result<&'g mut SagaInstance<S>, SagaError> {
        if guard.is_none() {
            let instance = this.load(saga_id).await?;
            Self::sync_timeouts(this, saga_id, &BTreeMap::new(), instance.timeouts());
            *guard = Some(instance);
        }
        Ok(guard.as_mut().expect("loaded above"))
    }

    async fn process(
        this: &Arc<Self>,
        saga_id: SagaId,
        message: SagaMessage<S::Input>,
    ) -> Result<Handled, SagaError> {
        let slot = this.slot(&saga_id);
        let mut guard = slot.lock().await;
        let mut attempt = 0;
        let mut settled_before;
        let handled = loop {
            attempt += 1;
            let instance = Self::ensure_loaded(this, &saga_id, &mut guard).await?;
            settled_before = instance.is_settled();
            let decision = instance.decide(&this.saga, message.clone(), this.clock.now());
            let transition = match decision {
                Decision::Duplicate => break Handled::Duplicate(saga_id.clone()),
                Decision::Ended => break Handled::Ended(saga_id.clone()),
                Decision::NoReaction | Decision::StaleTimeout => {
                    break Handled::NoReaction(saga_id.clone());
                }
                Decision::Step(transition) => transition,
            };
            let outcome = transition.outcome;
            match Self::record(this, instance, transition).await {
                Ok(()) => {
                    tracing::debug!(saga = S::KIND, %saga_id, ?outcome, "saga step recorded");
                    break Handled::Stepped {
                        saga_id: saga_id.clone(),
                        outcome,
                    };
                }
                Err(SagaError::Store(EventStoreError::WrongExpectedVersion { .. })) => {
                    // Another writer got there first: reload and decide again.
                    *guard = None;
                    if attempt >= this.conflict_attempts {
                        return Err(SagaError::Conflict {
                            saga_id,
                            attempts: attempt,
                        });
                    }
                }
                Err(error) => {
                    *guard = None;
                    return Err(error);
                }
            }
        };
        let instance = guard.as_mut().expect("the instance is loaded");
        if let Err(error) = this.flush(instance).await {
            if !matches!(error, SagaError::Dispatch { .. }) {
                *guard = None;
            }
            return Err(error);
        }
        if !settled_before && instance.is_settled() {
            this.close(&saga_id).await?;
        }
        Ok(handled)
    }

    /// Appends `transition` to the instance's stream and applies it.
    async fn record(
        this: &Arc<Self>,
        instance: &mut SagaInstance<S>,
        transition: super::instance::Transition<S>,
    ) -> Result<(), SagaError> {
        let batch = transition.to_new_events(instance.id())?;
        let expected = if instance.version() == 0 {
            // Listed in the catalog first, so a crash right after the
            // saga's first append cannot hide it from resume().
            this.catalog_append(CatalogEvent::Started {
                saga_id: instance.id().clone(),
            })
            .await?;
            ExpectedVersion::NoStream
        } else {
            ExpectedVersion::Exact(instance.version())
        };
        let appended = this
            .store
            .append(instance.stream_id(), expected, batch)
            .await?;
        let before = instance.timeouts().clone();
        instance.commit(transition, appended.stream_version);
        let saga_id = instance.id().clone();
        Self::sync_timeouts(this, &saga_id, &before, instance.timeouts());
        Ok(())
    }

    /// Delivers the instance's pending commands in order, stopping at the
    /// first failure, and records the delivery of those that went out.
    async fn flush(&self, instance: &mut SagaInstance<S>) -> Result<usize, SagaError> {
        if instance.pending().is_empty() {
            return Ok(0);
        }
        let mut delivered = Vec::new();
        let mut failure = None;
        for command in instance.pending() {
            match self.dispatcher.dispatch(command).await {
                Ok(()) => delivered.push(command.id.clone()),
                Err(source) => {
                    tracing::warn!(
                        saga = S::KIND,
                        saga_id = %command.saga_id,
                        command_id = %command.id,
                        error = %source,
                        "delivering a saga command failed; it stays pending"
                    );
                    failure = Some(SagaError::Dispatch {
                        saga_id: command.saga_id.clone(),
                        command_id: command.id.clone(),
                        source,
                    });
                    break;
                }
            }
        }
        if !delivered.is_empty() {
            let record = dispatched_record::<S::Command>(&delivered, instance.id())?;
            let appended = self
                .store
                .append(
                    instance.stream_id(),
                    ExpectedVersion::Exact(instance.version()),
                    vec![record],
                )
                .await?;
            instance.mark_dispatched(&delivered, appended.stream_version);
        }
        match failure {
            Some(error) => Err(error),
            None => Ok(delivered.len()),
        }
    }

    async fn resume_one(
        this: &Arc<Self>,
        saga_id: &SagaId,
        report: &mut ResumeReport,
    ) -> Result<(), SagaError> {
        let slot = this.slot(saga_id);
        let mut guard = slot.lock().await;
        let instance = Self::ensure_loaded(this, saga_id, &mut guard).await?;
        report.sagas += 1;
        report.timeouts += instance.timeouts().len();
        match this.flush(instance).await {
            Ok(count) => report.redispatched += count,
            Err(error) => {
                if !matches!(error, SagaError::Dispatch { .. }) {
                    *guard = None;
                }
                return Err(error);
            }
        }
        // Ended, and every command delivered: close it in the catalog. (A
        // saga with an empty stream stays listed: another process may be
        // about to record its first step.)
        if instance.is_settled() {
            report.closed += 1;
            this.close(saga_id).await?;
        }
        Ok(())
    }

    /// Marks `saga_id` as closed in the catalog and forgets it.
    async fn close(&self, saga_id: &SagaId) -> Result<(), SagaError> {
        self.catalog_append(CatalogEvent::Closed {
            saga_id: saga_id.clone(),
        })
        .await?;
        self.evict(saga_id);
        Ok(())
    }

    async fn catalog_append(&self, event: CatalogEvent) -> Result<(), SagaError> {
        let event = NewEvent::from_event(&event)?;
        self.store
            .append(&self.catalog, ExpectedVersion::Any, vec![event])
            .await?;
        Ok(())
    }

    /// The sagas listed as started and not closed in the catalog.
    async fn running_sagas(&self) -> Result<BTreeSet<SagaId>, SagaError> {
        let (mut running, from) = match self.store.load_snapshot(&self.catalog).await? {
            Some(snapshot) => match serde_json::from_value(snapshot.state) {
                Ok(running) => (running, snapshot.stream_version),
                Err(error) => {
                    tracing::warn!(saga = S::KIND, %error, "ignoring an unreadable catalog snapshot");
                    (BTreeSet::new(), 0)
                }
            },
            None => (BTreeSet::new(), 0),
        };
        let events = self.store.load_stream(&self.catalog, from + 1).await?;
        for stored in &events {
            match decode::<CatalogEvent>(stored, &Upcasters::new())? {
                Some(CatalogEvent::Started { saga_id }) => {
                    running.insert(saga_id);
                }
                Some(CatalogEvent::Closed { saga_id }) => {
                    running.remove(&saga_id);
                }
                None => {}
            }
        }
        if events.len() >= CATALOG_SNAPSHOT_EVERY
            && let Some(last) = events.last()
        {
            let state =
                serde_json::to_value(&running).map_err(|error| EventStoreError::Encode {
                    reason: format!("saga catalog snapshot: {error}"),
                })?;
            self.store
                .save_snapshot(&Snapshot {
                    stream_id: self.catalog.clone(),
                    stream_version: last.stream_version,
                    schema_version: 1,
                    state,
                    taken_at: self.clock.now(),
                })
                .await?;
        }
        Ok(running)
    }

    /// Arms the timeouts that are new or moved, disarms those that are gone.
    fn sync_timeouts(
        this: &Arc<Self>,
        saga_id: &SagaId,
        before: &BTreeMap<String, DateTime<Utc>>,
        after: &BTreeMap<String, DateTime<Utc>>,
    ) {
        for name in before.keys() {
            if !after.contains_key(name) {
                this.disarm(saga_id, name);
            }
        }
        for (name, deadline) in after {
            if before.get(name) != Some(deadline) {
                Self::arm(this, saga_id, name, *deadline, *deadline);
            }
        }
    }

    fn effect_id(saga_id: &SagaId, name: &str) -> EffectId {
        EffectId::new(format!("saga-{}-{saga_id}/{name}", S::KIND))
    }

    /// Arms timeout `name` (due at `deadline`) to fire at `wake_at`.
    fn arm(
        this: &Arc<Self>,
        saga_id: &SagaId,
        name: &str,
        deadline: DateTime<Utc>,
        wake_at: DateTime<Utc>,
    ) {
        if !this.accepting.load(Ordering::SeqCst) {
            return;
        }
        let effect_id = Self::effect_id(saga_id, name);
        this.runner.cancel(&effect_id);
        let generation = {
            let mut timers = this.lock_timers();
            timers.next_generation += 1;
            let generation = timers.next_generation;
            timers.armed.insert(
                (saga_id.clone(), name.to_owned()),
                Armed {
                    generation,
                    wake_at,
                },
            );
            generation
        };
        let remaining = (wake_at - this.clock.now()).to_std().unwrap_or_default();
        let fired = TimeoutFired {
            saga_id: saga_id.clone(),
            name: name.to_owned(),
            deadline,
            generation,
        };
        let weak: Weak<Self> = Arc::downgrade(this);
        let sink: ActionSink<TimeoutFired> = Arc::new(move |fired| {
            if let Some(inner) = weak.upgrade() {
                Self::on_timeout(&inner, fired);
            }
        });
        this.runner.run(
            Effect::delay(remaining, fired).cancellable(effect_id),
            &this.timer_group,
            &sink,
        );
    }

    fn disarm(&self, saga_id: &SagaId, name: &str) {
        self.runner.cancel(&Self::effect_id(saga_id, name));
        self.lock_timers()
            .armed
            .remove(&(saga_id.clone(), name.to_owned()));
        self.activity.send_modify(|n| *n += 1);
    }

    /// A timeout's delay is over: handle it on a task of its own.
    fn on_timeout(this: &Arc<Self>, fired: TimeoutFired) {
        if !this.accepting.load(Ordering::SeqCst) {
            return;
        }
        this.busy.fetch_add(1, Ordering::SeqCst);
        let inner = Arc::clone(this);
        this.tasks.spawn(async move {
            let message = SagaMessage::Timeout {
                name: fired.name.clone(),
                deadline: fired.deadline,
            };
            let result = Self::process(&inner, fired.saga_id.clone(), message).await;
            let key = (fired.saga_id.clone(), fired.name.clone());
            let still_armed = inner
                .lock_timers()
                .armed
                .get(&key)
                .is_some_and(|armed| armed.generation == fired.generation);
            match result {
                Err(error) if still_armed && error.is_transient() => {
                    // Not recorded: try again later.
                    tracing::warn!(
                        saga = S::KIND,
                        saga_id = %fired.saga_id,
                        timeout = %fired.name,
                        %error,
                        "handling a saga timeout failed; trying again"
                    );
                    let wake_at = inner.clock.now()
                        + chrono::Duration::from_std(inner.retry_after)
                            .unwrap_or(chrono::Duration::MAX);
                    Self::arm(&inner, &fired.saga_id, &fired.name, fired.deadline, wake_at);
                }
                result => {
                    if let Err(error) = result.as_ref()
                        && !error.is_transient()
                        && !matches!(error, SagaError::Dispatch { .. })
                    {
                        tracing::error!(
                            saga = S::KIND,
                            saga_id = %fired.saga_id,
                            timeout = %fired.name,
                            %error,
                            class = %error.class(),
                            "handling a saga timeout failed and retrying cannot help; it is \
                             armed again by resume() once the cause is fixed"
                        );
                    } else if let Err(error) = result {
                        tracing::warn!(
                            saga = S::KIND,
                            saga_id = %fired.saga_id,
                            timeout = %fired.name,
                            %error,
                            "a saga timeout was recorded, but delivering its commands failed"
                        );
                    }
                    let mut timers = inner.lock_timers();
                    if timers
                        .armed
                        .get(&key)
                        .is_some_and(|armed| armed.generation == fired.generation)
                    {
                        timers.armed.remove(&key);
                    }
                }
            }
            inner.busy.fetch_sub(1, Ordering::SeqCst);
            inner.activity.send_modify(|n| *n += 1);
        });
    }
}
