//! [`PartitionedWorker`]: one process's share of a partitioned
//! projection. Every heartbeat it says it is alive, counts the live
//! workers, renews its leases, gives back partitions beyond its fair share
//! and claims free ones up to it; it runs one [`ProjectionManager`] per
//! partition it holds.

use std::collections::BTreeMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use composable_rust_core::projection::manager::Partition;
use composable_rust_core::projection::{
    EventSource, ProjectionCheckpoint, ProjectionConfig, ProjectionStore,
};
use composable_rust_core::{
    Clock, CodedError, EventStoreError, Position, Projection, ProjectionError, ProjectionManager,
    StoredEvent, SystemClock,
};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use uuid::Uuid;

use super::error::{PartitionError, lease_lost};
use super::fenced::{FencedStore, PartitionProjection};
use super::leases::{Lease, PartitionLeases};
use super::pages::SharedPages;
use crate::PostgresProjectionStore;

/// The most partitions a projection may have.
pub const MAX_PARTITIONS: u32 = 1024;

/// Builds a [`PartitionedWorker`]; from [`PartitionedWorker::builder`].
pub struct PartitionedWorkerBuilder<P> {
    projection: Arc<P>,
    store: PostgresProjectionStore,
    source: Arc<dyn EventSource>,
    partitions: u32,
    worker_id: String,
    lease_duration: Duration,
    heartbeat: Duration,
    clock: Arc<dyn Clock>,
    config: ProjectionConfig,
}

impl<P> std::fmt::Debug for PartitionedWorkerBuilder<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PartitionedWorkerBuilder")
            .field("partitions", &self.partitions)
            .field("worker_id", &self.worker_id)
            .finish_non_exhaustive()
    }
}

impl<P: Projection<Store = PostgresProjectionStore>> PartitionedWorkerBuilder<P> {
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
    /// lease by advancing it.
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The settings of every partition's manager (batch size, retries,
    /// polling; default [`ProjectionConfig::default`]).
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
    /// outside 1 to [`MAX_PARTITIONS`], a worker id that is empty or
    /// longer than 200 characters, a lease not longer than three
    /// heartbeats, or a projection name in the saga workers' namespace
    /// (starting with [`SAGA_WORK_PREFIX`](super::SAGA_WORK_PREFIX)).
    pub fn build(self) -> Result<PartitionedWorker<P>, PartitionError> {
        let invalid = |reason: String| Err(PartitionError::Invalid { reason });
        let Some(partitions) =
            NonZeroU32::new(self.partitions).filter(|n| n.get() <= MAX_PARTITIONS)
        else {
            return invalid(format!(
                "{} partitions; use 1 to {MAX_PARTITIONS}",
                self.partitions
            ));
        };
        if self.worker_id.is_empty() || self.worker_id.chars().count() > 200 {
            return invalid(format!(
                "worker id {:?}; use 1 to 200 characters",
                self.worker_id
            ));
        }
        if self.projection.name().starts_with(super::SAGA_WORK_PREFIX) {
            return invalid(format!(
                "projection name {:?}: names starting with `{}` are the lease names of \
                 partitioned saga workers (PartitionedSagaWorker); rename the projection",
                self.projection.name(),
                super::SAGA_WORK_PREFIX
            ));
        }
        if self.heartbeat.is_zero() || self.lease_duration <= self.heartbeat * 3 {
            return invalid(format!(
                "a lease of {:?} with a heartbeat every {:?}; the lease must last longer than \
                 three heartbeats (a non-zero heartbeat), so one late heartbeat does not lose it",
                self.lease_duration, self.heartbeat
            ));
        }
        let leases = PartitionLeases::new(&self.store);
        let (owned, _) = watch::channel(Vec::new());
        let (stop, _) = watch::channel(false);
        Ok(PartitionedWorker {
            shared: Arc::new(Shared {
                projection: self.projection,
                store: self.store,
                source: self.source,
                leases,
                partitions,
                worker_id: self.worker_id,
                lease_duration: self.lease_duration,
                heartbeat: self.heartbeat,
                clock: self.clock,
                config: self.config,
                owned,
                stop,
                applied: Mutex::new(0),
            }),
        })
    }
}

/// One worker of a projection split into partitions, sharing the work with
/// the other workers (tasks or processes) of the same projection.
///
/// - Streams are split into a fixed number of partitions by a stable hash
///   of their id ([`Partition`]); every event of a stream lands in the
///   same partition, so per-stream order holds.
/// - Partitions are leased in PostgreSQL ([`PartitionLeases`]); live
///   workers (heartbeat within a lease duration) share them fairly: when
///   a worker joins, the others give back what exceeds their share; when
///   one dies, its leases expire and the others take them.
/// - Each held partition runs a [`ProjectionManager`] of its own, with its
///   own checkpoint ([`partition_checkpoint`](super::partition_checkpoint)),
///   committed with the read model's changes: exactly once. Every commit
///   checks the lease's token in the same transaction (fencing), so a
///   worker that lost a lease cannot commit.
///
/// Cloning gives another handle to the same worker.
pub struct PartitionedWorker<P> {
    shared: Arc<Shared<P>>,
}

impl<P> Clone for PartitionedWorker<P> {
    fn clone(&self) -> Self {
        Self {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<P> std::fmt::Debug for PartitionedWorker<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PartitionedWorker")
            .field("worker_id", &self.shared.worker_id)
            .field("partitions", &self.shared.partitions)
            .field("owned", &*self.shared.owned.borrow())
            .finish_non_exhaustive()
    }
}

struct Shared<P> {
    projection: Arc<P>,
    store: PostgresProjectionStore,
    source: Arc<dyn EventSource>,
    leases: PartitionLeases,
    partitions: NonZeroU32,
    worker_id: String,
    lease_duration: Duration,
    heartbeat: Duration,
    clock: Arc<dyn Clock>,
    config: ProjectionConfig,
    owned: watch::Sender<Vec<Partition>>,
    stop: watch::Sender<bool>,
    /// Events committed by managers that have stopped.
    applied: Mutex<u64>,
}

/// A held partition and the manager running it.
struct Running<P: Projection<Store = PostgresProjectionStore>> {
    lease: Lease,
    manager: ProjectionManager<PartitionProjection<P>>,
    task: AbortOnDrop,
}

/// A manager's task, aborted if the worker's own future is dropped (the
/// worker's task was aborted): a crashed worker leaves nothing running.
struct AbortOnDrop(Option<JoinHandle<Result<(), ProjectionError>>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        if let Some(task) = &self.0 {
            task.abort();
        }
    }
}

impl<P: Projection<Store = PostgresProjectionStore>> PartitionedWorker<P> {
    /// A worker of `projection` (its read model in `store`, events from
    /// `source`) split into `partitions` partitions; every worker of the
    /// projection must use the same count.
    pub fn builder(
        projection: P,
        store: PostgresProjectionStore,
        source: impl EventSource,
        partitions: u32,
    ) -> PartitionedWorkerBuilder<P> {
        PartitionedWorkerBuilder {
            projection: Arc::new(projection),
            store,
            // Each partition reads the whole stream: its pages are fetched
            // once for all the partitions this worker holds.
            source: Arc::new(SharedPages::new(Arc::new(source))),
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
        &self.shared.worker_id
    }

    /// The lease tables it uses.
    pub fn leases(&self) -> &PartitionLeases {
        &self.shared.leases
    }

    /// The partitions this worker holds now.
    pub fn owned(&self) -> Vec<Partition> {
        self.shared.owned.borrow().clone()
    }

    /// A receiver of the partitions held, updated at every change.
    pub fn subscribe_owned(&self) -> watch::Receiver<Vec<Partition>> {
        self.shared.owned.subscribe()
    }

    /// Events this worker's managers committed so far.
    pub fn events_applied(&self) -> u64 {
        *self
            .shared
            .applied
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Asks [`run`](Self::run) to stop: its managers finish their batch,
    /// it gives its leases back and leaves, so the others take over at
    /// their next heartbeat.
    pub fn shutdown(&self) {
        self.shared.stop.send_replace(true);
    }

    /// Resets the projection for a rebuild: its read model
    /// ([`Projection::reset`]) and every partition's checkpoint, in one
    /// transaction, so the workers apply every event again, from the
    /// first, when they start (each partition in parallel). Call it with
    /// every worker of the projection stopped. This worker's partition
    /// count becomes the projection's: resetting is how the count
    /// changes.
    ///
    /// # Errors
    ///
    /// [`PartitionError::Invalid`] (`CR-E0123`) if a partition is still
    /// leased (a worker is running, or died less than a lease duration
    /// ago); nothing is reset then. [`PartitionError::Projection`] if the
    /// reset fails.
    pub async fn reset(&self) -> Result<(), PartitionError> {
        let shared = &self.shared;
        let work = shared.projection.name().to_owned();
        let mut tx = shared
            .store
            .begin()
            .await
            .map_err(PartitionError::Projection)?;
        // Locked until the commit: no worker can claim a partition between
        // this check and the reset.
        let now = shared.clock.now();
        let rows = shared.leases.lock_all(tx.unbuffered(), &work).await?;
        if let Some(held) = rows
            .iter()
            .find(|row| row.owner.is_some() && row.expires_at > now)
        {
            return Err(PartitionError::Invalid {
                reason: format!(
                    "partition {} of `{work}` is leased by `{}` until {}: stop every worker \
                     (or wait for its lease to expire) before resetting the projection",
                    held.partition,
                    held.owner.as_deref().unwrap_or_default(),
                    held.expires_at
                ),
            });
        }
        // This worker's count becomes the projection's (the only way to
        // change it: every stream is applied again, in its new partition).
        shared
            .leases
            .recreate(tx.unbuffered(), &work, shared.partitions)
            .await?;
        let reset = async {
            shared.projection.reset(&mut tx).await?;
            for partition in Partition::all(shared.partitions) {
                let name = super::partition_checkpoint(&work, partition);
                shared
                    .store
                    .save_position(&mut tx, &name, Position::START)
                    .await?;
            }
            shared.store.commit(tx).await
        };
        reset.await.map_err(PartitionError::Projection)?;
        tracing::info!(projection = %work, "partitioned projection reset; the workers rebuild it");
        Ok(())
    }

    /// Runs until [`shutdown`](Self::shutdown): heartbeats, rebalances and
    /// runs a manager per held partition. A transient failure (the
    /// database is down) is logged and retried at the next heartbeat.
    ///
    /// # Errors
    ///
    /// [`PartitionError::CountChanged`] if another partition count was
    /// recorded; [`PartitionError::Projection`] if a partition's manager
    /// stopped on an error retrying cannot fix (a configuration error);
    /// any other error that retrying cannot fix.
    pub async fn run(&self) -> Result<(), PartitionError> {
        let shared = &self.shared;
        let work = shared.projection.name().to_owned();
        shared.leases.register(&work, shared.partitions).await?;
        tracing::info!(projection = %work, worker = %shared.worker_id, partitions = shared.partitions.get(), "partitioned worker started");
        let mut running: BTreeMap<u32, Running<P>> = BTreeMap::new();
        let mut stop = shared.stop.subscribe();
        let outcome = loop {
            if *stop.borrow_and_update() {
                break Ok(());
            }
            match self.tick(&work, &mut running).await {
                Ok(()) => {}
                Err(error) if error.is_transient() => {
                    tracing::warn!(projection = %work, worker = %shared.worker_id, %error, "heartbeat failed; retrying at the next one");
                }
                Err(error) => break Err(error),
            }
            tokio::select! {
                () = tokio::time::sleep(shared.heartbeat) => {}
                _ = stop.changed() => {}
            }
        };
        // Hand everything back, whatever happened: the others take over at
        // their next heartbeat instead of after a lease duration.
        let partitions: Vec<u32> = running.keys().copied().collect();
        for partition in partitions {
            self.stop_partition(&mut running, partition, true).await;
        }
        self.publish_owned(&running);
        if let Err(error) = shared.leases.leave(&work, &shared.worker_id).await {
            tracing::warn!(projection = %work, %error, "could not remove the worker from the live workers");
        }
        tracing::info!(projection = %work, worker = %shared.worker_id, "partitioned worker stopped");
        outcome
    }

    /// One heartbeat: reap stopped managers, say we are alive, renew,
    /// give back what exceeds our share, claim up to it.
    async fn tick(
        &self,
        work: &str,
        running: &mut BTreeMap<u32, Running<P>>,
    ) -> Result<(), PartitionError> {
        let shared = &self.shared;
        self.reap(running).await?;
        let now = shared.clock.now();
        let lease =
            chrono::Duration::from_std(shared.lease_duration).unwrap_or(chrono::Duration::MAX);
        let expires_at = now + lease;
        let live = shared
            .leases
            .heartbeat(work, &shared.worker_id, now, now - lease)
            .await?;
        let target = fair_share(shared.partitions.get(), &live, &shared.worker_id);

        let held: Vec<Lease> = running.values().map(|r| r.lease.clone()).collect();
        let kept = shared.leases.renew(&held, expires_at).await?;
        let lost: Vec<u32> = running
            .keys()
            .copied()
            .filter(|partition| !kept.contains(partition))
            .collect();
        for partition in lost {
            tracing::warn!(projection = %work, worker = %shared.worker_id, partition, "lease taken over by another worker; dropping the partition");
            self.stop_partition(running, partition, false).await;
        }

        // Beyond our share: give back the highest partitions, after their
        // managers finished the batch in progress.
        while running.len() > target {
            let Some(&partition) = running.keys().next_back() else {
                break;
            };
            tracing::info!(projection = %work, worker = %shared.worker_id, partition, target, "giving a partition back to rebalance");
            self.stop_partition(running, partition, true).await;
        }
        if running.len() < target {
            let claimed = shared
                .leases
                .claim(
                    work,
                    shared.partitions,
                    &shared.worker_id,
                    target - running.len(),
                    now,
                    expires_at,
                )
                .await?;
            for lease in claimed {
                tracing::info!(projection = %work, worker = %shared.worker_id, partition = %lease.partition, token = lease.token, "partition claimed");
                self.start_partition(running, lease);
            }
        }
        self.publish_owned(running);
        Ok(())
    }

    /// Collects managers that stopped by themselves: a lost lease drops
    /// the partition; any other error stops the worker.
    async fn reap(&self, running: &mut BTreeMap<u32, Running<P>>) -> Result<(), PartitionError> {
        let finished: Vec<u32> = running
            .iter()
            .filter(|(_, r)| r.task.0.as_ref().is_none_or(JoinHandle::is_finished))
            .map(|(partition, _)| *partition)
            .collect();
        for partition in finished {
            let Some(mut stopped) = running.remove(&partition) else {
                continue;
            };
            self.count(&stopped.manager);
            let result = match stopped.task.0.take() {
                Some(task) => task.await.unwrap_or_else(|join| {
                    Err(ProjectionError::apply(format!(
                        "the manager of partition {partition} panicked: {join}"
                    )))
                }),
                None => Ok(()),
            };
            match result {
                Err(error) if lease_lost(&error).is_some() => {
                    tracing::warn!(worker = %self.shared.worker_id, partition, "lost the lease while committing; dropping the partition");
                }
                Err(error) => {
                    let _ = self.shared.leases.release(&stopped.lease).await;
                    return Err(PartitionError::Projection(error));
                }
                Ok(()) => {
                    let _ = self.shared.leases.release(&stopped.lease).await;
                }
            }
        }
        Ok(())
    }

    fn start_partition(&self, running: &mut BTreeMap<u32, Running<P>>, lease: Lease) {
        let shared = &self.shared;
        let partition = lease.partition;
        let projection = PartitionProjection::new(Arc::clone(&shared.projection), partition);
        let store = FencedStore::new(shared.store.clone(), shared.leases.clone(), lease.clone());
        let manager = ProjectionManager::builder(
            projection,
            Arc::new(store),
            SharedSource(Arc::clone(&shared.source)),
        )
        .with_config(shared.config.clone())
        .build();
        let task = manager.start();
        running.insert(
            partition.index(),
            Running {
                lease,
                manager,
                task: AbortOnDrop(Some(task)),
            },
        );
    }

    /// Stops a partition's manager: gracefully (finish the batch, then
    /// release the lease) when `release`, otherwise at once (the lease is
    /// gone; whatever it was doing cannot commit anyway).
    async fn stop_partition(
        &self,
        running: &mut BTreeMap<u32, Running<P>>,
        partition: u32,
        release: bool,
    ) {
        let Some(mut stopped) = running.remove(&partition) else {
            return;
        };
        if let Some(task) = stopped.task.0.take() {
            if release {
                stopped.manager.shutdown();
                // A batch stuck longer than a lease is abandoned: its
                // commit would be fenced off anyway.
                let abort = task.abort_handle();
                if tokio::time::timeout(self.shared.lease_duration, task)
                    .await
                    .is_err()
                {
                    abort.abort();
                }
            } else {
                task.abort();
            }
        }
        self.count(&stopped.manager);
        if release && let Err(error) = self.shared.leases.release(&stopped.lease).await {
            tracing::warn!(partition, %error, "could not release a lease; it expires by itself");
        }
    }

    fn count(&self, manager: &ProjectionManager<PartitionProjection<P>>) {
        *self
            .shared
            .applied
            .lock()
            .unwrap_or_else(PoisonError::into_inner) += manager.stats().events_applied;
    }

    fn publish_owned(&self, running: &BTreeMap<u32, Running<P>>) {
        let owned: Vec<Partition> = running.values().map(|r| r.lease.partition).collect();
        self.shared.owned.send_if_modified(|current| {
            let changed = *current != owned;
            *current = owned;
            changed
        });
    }
}

/// How many of `partitions` `worker` should hold among `live` (sorted):
/// an equal share, one more for the first `partitions % live` workers.
pub(super) fn fair_share(partitions: u32, live: &[String], worker: &str) -> usize {
    let workers = u32::try_from(live.len().max(1)).unwrap_or(u32::MAX);
    let rank = live
        .iter()
        .position(|name| name == worker)
        .and_then(|rank| u32::try_from(rank).ok())
        // Not listed (our clock is behind theirs): count as the last.
        .unwrap_or(workers.saturating_sub(1));
    let share = partitions / workers + u32::from(rank < partitions % workers);
    share as usize
}

/// One source shared by every partition's manager.
struct SharedSource(Arc<dyn EventSource>);

#[async_trait]
impl EventSource for SharedSource {
    async fn read_after(
        &self,
        after: Position,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, EventStoreError> {
        self.0.read_after(after, limit).await
    }

    async fn count_after(&self, after: Position) -> Result<u64, EventStoreError> {
        self.0.count_after(after).await
    }

    fn subscribe(&self) -> watch::Receiver<u64> {
        self.0.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_add_up_and_differ_by_at_most_one() {
        for workers in 1..=5 {
            let live: Vec<String> = (0..workers).map(|n| format!("w{n}")).collect();
            for partitions in 1..=9 {
                let shares: Vec<usize> = live
                    .iter()
                    .map(|w| fair_share(partitions, &live, w))
                    .collect();
                assert_eq!(shares.iter().sum::<usize>(), partitions as usize);
                let (min, max) = (shares.iter().min(), shares.iter().max());
                assert!(max.unwrap() - min.unwrap() <= 1, "{shares:?}");
            }
        }
    }
}
