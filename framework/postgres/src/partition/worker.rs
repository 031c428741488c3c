//! [`PartitionedWorker`]: one process's share of a partitioned
//! projection. Every heartbeat it says it is alive, counts the live
//! workers, renews its leases, gives back partitions beyond its fair share
//! and claims free ones up to it; it runs one [`ProjectionManager`] per
//! partition it holds.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use composable_rust_core::projection::manager::Partition;
use composable_rust_core::projection::{
    EventSource, ProjectionCheckpoint, ProjectionConfig, ProjectionStore,
};
use composable_rust_core::{Clock, Position, Projection, ProjectionManager, SystemClock};
use tokio::sync::watch;
use uuid::Uuid;

use super::error::PartitionError;
use super::fenced::{FencedStore, PartitionProjection};
use super::leases::{Lease, PartitionLeases};
use super::pages::SharedPages;
use super::scheduler::{PartitionWork, Scheduler, Settings, Started};
use crate::PostgresProjectionStore;

/// Builds a [`PartitionedWorker`]; from [`PartitionedWorker::builder`].
pub struct PartitionedWorkerBuilder<P> {
    projection: Arc<P>,
    store: PostgresProjectionStore,
    source: SharedPages,
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
    /// outside 1 to [`MAX_PARTITIONS`](super::MAX_PARTITIONS), a worker id that is empty or
    /// longer than 200 characters, a lease not longer than three
    /// heartbeats, or a projection name in the saga workers' namespace
    /// (starting with [`SAGA_WORK_PREFIX`](super::SAGA_WORK_PREFIX)).
    pub fn build(self) -> Result<PartitionedWorker<P>, PartitionError> {
        let settings = Settings::new(
            self.partitions,
            self.worker_id,
            self.lease_duration,
            self.heartbeat,
            self.clock,
        )?;
        if self.projection.name().starts_with(super::SAGA_WORK_PREFIX) {
            return Err(PartitionError::Invalid {
                reason: format!(
                    "projection name {:?}: names starting with `{}` are the lease names of \
                     partitioned saga workers (PartitionedSagaWorker); rename the projection",
                    self.projection.name(),
                    super::SAGA_WORK_PREFIX
                ),
            });
        }
        let leases = PartitionLeases::new(&self.store);
        let work = self.projection.name().to_owned();
        Ok(PartitionedWorker {
            shared: Arc::new(Shared {
                projection: self.projection,
                store: self.store,
                source: self.source,
                config: self.config,
                scheduler: Scheduler::new(leases, settings, work),
                applied: Arc::new(Mutex::new(0)),
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
        let settings = &self.shared.scheduler.settings;
        f.debug_struct("PartitionedWorker")
            .field("worker_id", &settings.worker_id)
            .field("partitions", &settings.partitions)
            .field("owned", &self.shared.scheduler.owned())
            .finish_non_exhaustive()
    }
}

struct Shared<P> {
    projection: Arc<P>,
    store: PostgresProjectionStore,
    source: SharedPages,
    config: ProjectionConfig,
    scheduler: Scheduler,
    /// Events committed by managers that have stopped.
    applied: Arc<Mutex<u64>>,
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
        self.shared.scheduler.shutdown();
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
        let scheduler = &shared.scheduler;
        let now = scheduler.settings.clock.now();
        let rows = scheduler
            .leases
            .lock_all(
                tx.unbuffered().await.map_err(PartitionError::Projection)?,
                &work,
            )
            .await?;
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
        scheduler
            .leases
            .recreate(
                tx.unbuffered().await.map_err(PartitionError::Projection)?,
                &work,
                scheduler.settings.partitions,
            )
            .await?;
        let reset = async {
            shared.projection.reset(&mut tx).await?;
            for partition in Partition::all(scheduler.settings.partitions) {
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
        self.shared.scheduler.run(&*self.shared).await
    }
}

impl<P: Projection<Store = PostgresProjectionStore>> PartitionWork for Shared<P> {
    /// Runs one [`ProjectionManager`] on the partition, its commits fenced
    /// by the lease.
    fn start(&self, lease: &Lease) -> Started {
        let projection = PartitionProjection::new(Arc::clone(&self.projection), lease.partition);
        let store = FencedStore::new(
            self.store.clone(),
            self.scheduler.leases.clone(),
            lease.clone(),
        );
        let manager = ProjectionManager::builder(projection, Arc::new(store), self.source.clone())
            .with_config(self.config.clone())
            .build();
        let mut inner = manager.start();
        // Aborting this task aborts the manager's with it, even before the
        // task first runs (the guard is dropped with the future).
        let guard = AbortOnDrop(inner.abort_handle());
        let task = tokio::spawn(async move {
            let _guard = guard;
            match (&mut inner).await {
                Ok(result) => result.map_err(PartitionError::Projection),
                Err(join) => Err(PartitionError::Projection(
                    composable_rust_core::ProjectionError::apply(format!(
                        "a partition's manager panicked: {join}"
                    )),
                )),
            }
        });
        let stopping = manager.clone();
        let applied = Arc::clone(&self.applied);
        Started {
            task,
            stop: Box::new(move || stopping.shutdown()),
            stopped: Box::new(move || {
                *applied.lock().unwrap_or_else(PoisonError::into_inner) +=
                    manager.stats().events_applied;
            }),
        }
    }
}

/// Aborts a task when dropped.
struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
