//! [`PartitionedSagaWorker`]: one process's share of a saga kind's
//! instances. It leases partitions of the saga ids in the same lease
//! tables as the projection workers ([`PartitionLeases`], under the lease
//! name `saga:{KIND}`), rebalances the same way, and for each partition it
//! holds runs rounds of
//! [`SagaRuntime::catch_up_partition`](composable_rust_core::SagaRuntime::catch_up_partition)
//! from the partition's stored position, storing the position each round
//! returns in a transaction fenced by the lease ([`FencedStore`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use composable_rust_core::error::ErrorClass;
use composable_rust_core::projection::manager::Partition;
use composable_rust_core::projection::{
    EventSource, ProjectionCheckpoint, ProjectionConfig, ProjectionStore,
};
use composable_rust_core::resilience::Backoff;
use composable_rust_core::{
    Clock, CodedError, EventStoreError, Position, ProjectionError, Saga, SagaRuntime, StoredEvent,
    SystemClock,
};
use tokio::sync::watch;
use uuid::Uuid;

use super::error::{PartitionError, lease_lost};
use super::fenced::{FencedStore, partition_checkpoint};
use super::leases::{Lease, PartitionLeases};
use super::pages::SharedPages;
use super::scheduler::{PartitionWork, Scheduler, Settings, Started};
use crate::PostgresProjectionStore;

/// The namespace of saga kinds in the lease tables and the checkpoint
/// table: saga kind `checkout` leases its partitions under the name
/// `saga:checkout`, and keeps partition 3 of 8's position under the
/// checkpoint name `saga:checkout@3/8`. A projection worker refuses a
/// projection name starting with it, so the two never share a lease.
pub const SAGA_WORK_PREFIX: &str = "saga:";

/// The name saga kind `kind` leases its partitions under:
/// `saga:{kind}` (see [`SAGA_WORK_PREFIX`]).
pub fn saga_work(kind: &str) -> String {
    format!("{SAGA_WORK_PREFIX}{kind}")
}

/// Makes a fresh [`SagaRuntime`] for each partition a worker claims.
type RuntimeFactory<S> = Arc<dyn Fn() -> SagaRuntime<S> + Send + Sync>;

/// Builds a [`PartitionedSagaWorker`]; from
/// [`PartitionedSagaWorker::builder`]. The options are the projection
/// worker's ([`PartitionedWorkerBuilder`](super::PartitionedWorkerBuilder)).
pub struct PartitionedSagaWorkerBuilder<S: Saga> {
    runtime: RuntimeFactory<S>,
    store: PostgresProjectionStore,
    source: SharedPages,
    partitions: u32,
    worker_id: String,
    lease_duration: Duration,
    heartbeat: Duration,
    clock: Arc<dyn Clock>,
    config: ProjectionConfig,
}

impl<S: Saga> std::fmt::Debug for PartitionedSagaWorkerBuilder<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PartitionedSagaWorkerBuilder")
            .field("kind", &S::KIND)
            .field("partitions", &self.partitions)
            .field("worker_id", &self.worker_id)
            .finish_non_exhaustive()
    }
}

impl<S: Saga> PartitionedSagaWorkerBuilder<S> {
    /// This worker's name in the lease tables (default: `worker-` and a
    /// random UUID). Give each process its own; 1 to 200 characters.
    #[must_use]
    pub fn with_worker_id(mut self, worker_id: impl Into<String>) -> Self {
        self.worker_id = worker_id.into();
        self
    }

    /// How long a lease lasts without renewal (default 30 s): a worker
    /// that stops heartbeating loses its partitions this long after its
    /// last heartbeat. Must be longer than three heartbeats.
    #[must_use]
    pub fn with_lease_duration(mut self, lease_duration: Duration) -> Self {
        self.lease_duration = lease_duration;
        self
    }

    /// How often the worker renews its leases and rebalances (default
    /// 5 s).
    #[must_use]
    pub fn with_heartbeat(mut self, heartbeat: Duration) -> Self {
        self.heartbeat = heartbeat;
        self
    }

    /// Where lease expiry times come from (default: the system clock). A
    /// [`TestClock`](composable_rust_core::TestClock) lets a test expire a
    /// lease by advancing it. (The runtimes' own clock, for the sagas'
    /// timeouts, is the one the runtime factory gives them.)
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The rounds' settings (default [`ProjectionConfig::default`]): a
    /// round handles at most `batch_size` events before the partition's
    /// position is stored; a caught-up partition waits for the source's
    /// notification of new events, or `idle_poll_interval`; a failed
    /// round is tried again after `failure_backoff`, doubling up to
    /// `max_failure_backoff`. The other fields are not used.
    #[must_use]
    pub fn with_config(mut self, config: ProjectionConfig) -> Self {
        self.config = config;
        self
    }

    /// The worker.
    ///
    /// # Errors
    ///
    /// [`PartitionError::Invalid`] (`CR-E0123`) for a partition count
    /// outside 1 to [`MAX_PARTITIONS`](super::MAX_PARTITIONS), a worker id that is empty or
    /// longer than 200 characters, a lease not longer than three
    /// heartbeats, or a batch size of zero.
    pub fn build(self) -> Result<PartitionedSagaWorker<S>, PartitionError> {
        let settings = Settings::new(
            self.partitions,
            self.worker_id,
            self.lease_duration,
            self.heartbeat,
            self.clock,
        )?;
        if self.config.batch_size == 0 {
            return Err(PartitionError::Invalid {
                reason: "a batch size of 0; a round must handle at least one event".into(),
            });
        }
        let leases = PartitionLeases::new(&self.store);
        Ok(PartitionedSagaWorker {
            shared: Arc::new(Shared {
                runtime: self.runtime,
                store: self.store,
                source: self.source,
                config: self.config,
                scheduler: Scheduler::new(leases, settings, saga_work(S::KIND)),
                handled: AtomicU64::new(0),
            }),
        })
    }
}

/// One worker of a saga kind whose instances are split into partitions,
/// sharing the work with the other workers (tasks or processes) of the
/// same kind: the saga counterpart of
/// [`PartitionedWorker`](super::PartitionedWorker).
///
/// - Saga ids are split into a fixed number of partitions by a stable
///   hash ([`Partition::contains`]); every event routed to a saga lands
///   in its partition, so one saga is stepped by one worker at a time, in
///   event order.
/// - Partitions are leased in PostgreSQL ([`PartitionLeases`], lease name
///   [`saga_work`]`(KIND)`) and rebalanced exactly as for projections.
/// - Each held partition gets a **runtime of its own**, fresh from the
///   factory given to [`builder`](Self::builder), and a task that runs
///   rounds of [`SagaRuntime::catch_up_partition`] from the partition's
///   stored position (at most `batch_size` events a round), then stores
///   the position the round returns in a transaction that first checks
///   the lease's token ([`FencedStore`]): a worker that lost the lease
///   cannot move the position (`CR-E0121`). When the partition is given
///   back or lost, its runtime is shut down, so its timeouts stop firing
///   there; the next owner starts with an empty cache, never a stale one.
///
/// What is delivered how often: a round stores its position only after
/// every event of it was handled and every command its steps issued was
/// delivered and recorded as delivered. A worker killed mid-round leaves
/// the position before the round; the next owner handles those events
/// again: the steps already recorded are recognised (same event id) and
/// their commands still pending are delivered then. A command whose
/// delivery was cut off after the receiver got it and before it was
/// recorded is delivered again: commands are at least once, with a stable
/// [`CommandId`](composable_rust_core::saga::CommandId) to deduplicate on.
///
/// Recovery: when the worker starts a partition, its new runtime calls
/// [`SagaRuntime::resume_partition`] for it: the partition's sagas that
/// have not ended are loaded, the commands a previous owner left pending
/// are delivered, and their timeouts are armed again (a timeout whose time
/// has passed fires at once). Only that partition's sagas: the others
/// belong to other runtimes.
///
/// Cloning gives another handle to the same worker.
pub struct PartitionedSagaWorker<S: Saga> {
    shared: Arc<Shared<S>>,
}

impl<S: Saga> Clone for PartitionedSagaWorker<S> {
    fn clone(&self) -> Self {
        Self {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<S: Saga> std::fmt::Debug for PartitionedSagaWorker<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scheduler = &self.shared.scheduler;
        f.debug_struct("PartitionedSagaWorker")
            .field("work", &scheduler.work)
            .field("worker_id", &scheduler.settings.worker_id)
            .field("partitions", &scheduler.settings.partitions)
            .field("owned", &scheduler.owned())
            .finish_non_exhaustive()
    }
}

struct Shared<S: Saga> {
    runtime: RuntimeFactory<S>,
    store: PostgresProjectionStore,
    source: SharedPages,
    config: ProjectionConfig,
    scheduler: Scheduler,
    /// Events read by rounds whose position was stored.
    handled: AtomicU64,
}

/// What the scheduler runs in each held partition: its rounds, on a
/// runtime of its own.
struct Rounds<S: Saga>(Arc<Shared<S>>);

impl<S: Saga> PartitionWork for Rounds<S> {
    fn start(&self, lease: &Lease) -> Started {
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(run_partition(Arc::clone(&self.0), lease.clone(), stopped));
        Started {
            task,
            stop: Box::new(move || {
                stop.send_replace(true);
            }),
            stopped: Box::new(|| {}),
        }
    }
}

impl<S: Saga> PartitionedSagaWorker<S> {
    /// A worker of saga kind `S` split into `partitions` partitions (every
    /// worker of the kind must use the same count): `runtime` makes the
    /// runtime of each partition it claims (give each the same event
    /// store, dispatcher and clock), `store` keeps the partitions'
    /// positions and holds the lease tables, `source` is the global stream
    /// of events the sagas react to.
    pub fn builder(
        runtime: impl Fn() -> SagaRuntime<S> + Send + Sync + 'static,
        store: PostgresProjectionStore,
        source: impl EventSource,
        partitions: u32,
    ) -> PartitionedSagaWorkerBuilder<S> {
        PartitionedSagaWorkerBuilder {
            runtime: Arc::new(runtime),
            store,
            // Each partition reads the whole stream: its pages are fetched
            // once for all the partitions this worker holds.
            source: SharedPages::new(source),
            partitions,
            worker_id: format!("worker-{}", Uuid::new_v4()),
            lease_duration: Duration::from_secs(30),
            heartbeat: Duration::from_secs(5),
            clock: Arc::new(SystemClock),
            config: ProjectionConfig::default(),
        }
    }

    /// This worker's id in the lease tables.
    pub fn worker_id(&self) -> &str {
        &self.shared.scheduler.settings.worker_id
    }

    /// The name its partitions are leased under: `saga:{KIND}`.
    pub fn work(&self) -> &str {
        &self.shared.scheduler.work
    }

    /// The lease tables it uses.
    pub fn leases(&self) -> &PartitionLeases {
        &self.shared.scheduler.leases
    }

    /// The partitions this worker holds now.
    pub fn owned(&self) -> Vec<Partition> {
        self.shared.scheduler.owned()
    }

    /// A receiver of the partitions held, updated at every change.
    pub fn subscribe_owned(&self) -> watch::Receiver<Vec<Partition>> {
        self.shared.scheduler.subscribe_owned()
    }

    /// Events read by this worker's rounds whose position was stored.
    pub fn events_handled(&self) -> u64 {
        self.shared.handled.load(Ordering::Relaxed)
    }

    /// The stored position of every partition, by index
    /// ([`Position::START`] for one that never stored any): the sagas
    /// have handled every event up to it.
    ///
    /// # Errors
    ///
    /// [`PartitionError::Projection`] if the checkpoint table cannot be
    /// read.
    pub async fn positions(&self) -> Result<Vec<Position>, PartitionError> {
        let mut positions = Vec::new();
        let scheduler = &self.shared.scheduler;
        for partition in Partition::all(scheduler.settings.partitions) {
            let name = partition_checkpoint(&scheduler.work, partition);
            let position = self
                .shared
                .store
                .load_position(&name)
                .await
                .map_err(PartitionError::Projection)?;
            positions.push(position.unwrap_or(Position::START));
        }
        Ok(positions)
    }

    /// Asks [`run`](Self::run) to stop: each partition finishes its round
    /// (and stores its position), its runtime shuts down, the worker gives
    /// its leases back and leaves, so the others take over at their next
    /// heartbeat.
    pub fn shutdown(&self) {
        self.shared.scheduler.shutdown();
    }

    /// Runs until [`shutdown`](Self::shutdown): heartbeats, rebalances and
    /// runs each held partition's rounds. A transient failure (the
    /// database is down) is logged and retried at the next heartbeat.
    ///
    /// # Errors
    ///
    /// [`PartitionError::CountChanged`] (`CR-E0122`) if another partition
    /// count was recorded; [`PartitionError::Saga`] if a partition's round
    /// failed on a configuration error (its runtime was shut down, say);
    /// [`PartitionError::Projection`] if positions cannot be stored for a
    /// reason retrying cannot fix; any other error that retrying cannot
    /// fix.
    pub async fn run(&self) -> Result<(), PartitionError> {
        self.shared
            .scheduler
            .run(&Rounds(Arc::clone(&self.shared)))
            .await
    }
}

/// One partition's rounds, on a runtime of its own, until `stop` (or the
/// lease is lost: `CR-E0121`). The runtime is shut down on the way out.
async fn run_partition<S: Saga>(
    shared: Arc<Shared<S>>,
    lease: Lease,
    stop: watch::Receiver<bool>,
) -> Result<(), PartitionError> {
    let runtime = (shared.runtime)();
    let result = rounds(&shared, &runtime, lease, stop).await;
    runtime.shutdown().await;
    result
}

async fn rounds<S: Saga>(
    shared: &Shared<S>,
    runtime: &SagaRuntime<S>,
    lease: Lease,
    mut stop: watch::Receiver<bool>,
) -> Result<(), PartitionError> {
    let partition = lease.partition;
    let work = &shared.scheduler.work;
    let name = partition_checkpoint(work, partition);
    let fenced = FencedStore::new(shared.store.clone(), shared.scheduler.leases.clone(), lease);
    let mut failures = 0_u32;
    let mut position = loop {
        match shared.store.load_position(&name).await {
            Ok(position) => break position.unwrap_or(Position::START),
            Err(error) if error.is_transient() => {
                tracing::warn!(saga = %work, %partition, %error, "loading the partition's position failed; retrying");
                if pause(shared, &mut stop, &mut failures).await {
                    return Ok(());
                }
            }
            Err(error) => return Err(PartitionError::Projection(error)),
        }
    };
    // The partition's sagas as the last owner left them: their pending
    // commands delivered, their timeouts armed again (a saga waiting only
    // for a timeout gets no event that would load it). A failure here is
    // not fatal: the rounds deliver pending commands as they meet the
    // sagas' events again.
    match runtime.resume_partition(partition).await {
        Ok(report) => {
            tracing::debug!(saga = %work, %partition, sagas = report.sagas, timeouts = report.timeouts, "resumed the partition's sagas")
        }
        Err(error) => {
            tracing::warn!(saga = %work, %partition, %error, "resuming the partition's sagas failed; their commands are delivered as their events are handled again")
        }
    }
    let mut changes = shared.source.subscribe();
    let mut notified = true;
    loop {
        if *stop.borrow_and_update() {
            return Ok(());
        }
        changes.borrow_and_update();
        let round = Round::new(
            shared.source.clone(),
            shared.config.batch_size,
            stop.clone(),
        );
        match runtime
            .catch_up_partition(&round, position, partition)
            .await
        {
            Ok(next) if next > position => match store_position(&fenced, &name, next).await {
                Ok(()) => {
                    failures = 0;
                    position = next;
                    shared
                        .handled
                        .fetch_add(round.read.load(Ordering::Relaxed) as u64, Ordering::Relaxed);
                }
                Err(error) => {
                    if let Some(lost) = lease_lost(&error) {
                        return Err(lost.clone());
                    }
                    if !error.is_transient() {
                        return Err(PartitionError::Projection(error));
                    }
                    tracing::warn!(saga = %work, %partition, %error, "storing the partition's position failed; the round is handled again");
                    if pause(shared, &mut stop, &mut failures).await {
                        return Ok(());
                    }
                }
            },
            Ok(_) => {
                failures = 0;
                // Caught up: wait for new events, the poll, or the stop.
                tokio::select! {
                    changed = changes.changed(), if notified => notified = changed.is_ok(),
                    () = tokio::time::sleep(shared.config.idle_poll_interval) => {}
                    _ = stop.changed() => {}
                }
            }
            Err(error) if error.class() == ErrorClass::Configuration => {
                return Err(PartitionError::Saga(error));
            }
            Err(error) => {
                // Transient (the store, a conflict) or this event's
                // (a failed delivery): the round is handled again from the
                // stored position; steps already recorded are recognised.
                tracing::warn!(saga = %work, %partition, code = %error.code(), %error, "a saga round failed; it is tried again");
                if pause(shared, &mut stop, &mut failures).await {
                    return Ok(());
                }
            }
        }
    }
}

/// Stores `position` under `name` in one transaction that first checks the
/// lease ([`FencedStore::save_position`]).
async fn store_position(
    fenced: &FencedStore,
    name: &str,
    position: Position,
) -> Result<(), ProjectionError> {
    let mut tx = fenced.begin().await?;
    fenced.save_position(&mut tx, name, position).await?;
    fenced.commit(tx).await
}

/// Backs off after a failure, on the framework's one [`Backoff`] schedule
/// (`failure_backoff`, doubling up to `max_failure_backoff`, as the
/// projection manager waits); true if the partition was asked to stop
/// meanwhile.
async fn pause<S: Saga>(
    shared: &Shared<S>,
    stop: &mut watch::Receiver<bool>,
    failures: &mut u32,
) -> bool {
    *failures = failures.saturating_add(1);
    let config = &shared.config;
    let delay = Backoff::new(config.failure_backoff, config.max_failure_backoff).delay(*failures);
    tokio::select! {
        () = tokio::time::sleep(delay) => {}
        _ = stop.changed() => {}
    }
    *stop.borrow()
}

/// The source as one round sees it: one page of at most `limit` events,
/// then nothing, so
/// [`catch_up_partition`](SagaRuntime::catch_up_partition) returns after
/// it and the position is stored; nothing at all once the partition is
/// asked to stop (the round in progress finishes its page).
struct Round {
    source: SharedPages,
    limit: usize,
    served: AtomicBool,
    read: AtomicUsize,
    stop: watch::Receiver<bool>,
}

impl Round {
    fn new(source: SharedPages, limit: usize, stop: watch::Receiver<bool>) -> Self {
        Self {
            source,
            limit,
            served: AtomicBool::new(false),
            read: AtomicUsize::new(0),
            stop,
        }
    }
}

#[async_trait]
impl EventSource for Round {
    async fn read_after(
        &self,
        after: Position,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, EventStoreError> {
        if *self.stop.borrow() || self.served.swap(true, Ordering::SeqCst) {
            return Ok(Vec::new());
        }
        let page = self.source.read_after(after, limit.min(self.limit)).await?;
        self.read.fetch_add(page.len(), Ordering::Relaxed);
        Ok(page)
    }

    async fn count_after(&self, after: Position) -> Result<u64, EventStoreError> {
        self.source.count_after(after).await
    }

    fn subscribe(&self) -> watch::Receiver<u64> {
        self.source.subscribe()
    }
}
