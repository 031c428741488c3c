//! The half of a partitioned worker that does not depend on what runs in
//! a partition: validating the worker's settings, and the heartbeat loop
//! that says the worker is alive, renews its leases, gives back partitions
//! beyond its fair share, claims free ones up to it, and starts and stops
//! the work of each partition it holds. [`PartitionedWorker`] runs a
//! projection manager per partition through it, [`PartitionedSagaWorker`]
//! a saga runtime's rounds.
//!
//! [`PartitionedWorker`]: super::PartitionedWorker
//! [`PartitionedSagaWorker`]: super::PartitionedSagaWorker

use std::collections::BTreeMap;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use composable_rust_core::projection::manager::Partition;
use composable_rust_core::{Clock, CodedError, ProjectionError};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::error::PartitionError;
use super::leases::{Lease, PartitionLeases};

/// The most partitions a projection (or saga kind) may have.
pub const MAX_PARTITIONS: u32 = 1024;

/// The longest worker id accepted, in characters.
const MAX_WORKER_ID_CHARS: usize = 200;

/// A worker's validated settings, common to both kinds of worker.
pub(super) struct Settings {
    pub(super) partitions: NonZeroU32,
    pub(super) worker_id: String,
    pub(super) lease_duration: Duration,
    pub(super) heartbeat: Duration,
    pub(super) clock: Arc<dyn Clock>,
}

impl Settings {
    /// Checks the settings a builder collected.
    ///
    /// # Errors
    ///
    /// [`PartitionError::Invalid`] (`CR-E0123`) for a partition count
    /// outside 1 to [`MAX_PARTITIONS`], a worker id that is empty or
    /// longer than 200 characters, or a lease not longer than three
    /// heartbeats.
    pub(super) fn new(
        partitions: u32,
        worker_id: String,
        lease_duration: Duration,
        heartbeat: Duration,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, PartitionError> {
        let invalid = |reason: String| Err(PartitionError::Invalid { reason });
        let Some(partitions) = NonZeroU32::new(partitions).filter(|n| n.get() <= MAX_PARTITIONS)
        else {
            return invalid(format!(
                "{partitions} partitions; use 1 to {MAX_PARTITIONS}"
            ));
        };
        if worker_id.is_empty() || worker_id.chars().count() > MAX_WORKER_ID_CHARS {
            return invalid(format!(
                "worker id {worker_id:?}; use 1 to {MAX_WORKER_ID_CHARS} characters"
            ));
        }
        if heartbeat.is_zero() || lease_duration <= heartbeat * 3 {
            return invalid(format!(
                "a lease of {lease_duration:?} with a heartbeat every {heartbeat:?}; the lease \
                 must last longer than three heartbeats (a non-zero heartbeat), so one late \
                 heartbeat does not lose it"
            ));
        }
        Ok(Self {
            partitions,
            worker_id,
            lease_duration,
            heartbeat,
            clock,
        })
    }
}

/// The work of one held partition, started by [`PartitionWork::start`].
pub(super) struct Started {
    /// The partition's task; it ends when the work stops (asked, or on an
    /// error: a lost lease, `CR-E0121`, drops the partition, any other
    /// error stops the worker).
    pub(super) task: JoinHandle<Result<(), PartitionError>>,
    /// Asks the work to finish what it is doing (a batch, a round) and
    /// stop.
    pub(super) stop: Box<dyn Fn() + Send + Sync>,
    /// Called once the work has stopped, however it stopped.
    pub(super) stopped: Box<dyn Fn() + Send + Sync>,
}

/// What a worker runs in each partition it holds.
pub(super) trait PartitionWork: Send + Sync {
    /// Starts the work of the partition `lease` holds, on a task of its
    /// own.
    fn start(&self, lease: &Lease) -> Started;
}

/// A held partition and its running work.
struct Running {
    lease: Lease,
    started: Started,
}

impl Drop for Running {
    /// A crashed worker leaves nothing running: when the worker's own
    /// future is dropped (its task was aborted), so are its partitions'.
    fn drop(&mut self) {
        self.started.task.abort();
    }
}

/// The heartbeat loop of one worker: which partitions of `work` it holds,
/// and the flag that stops it.
pub(super) struct Scheduler {
    pub(super) leases: PartitionLeases,
    pub(super) settings: Settings,
    /// The lease name: the projection's name, or `saga:{KIND}`.
    pub(super) work: String,
    owned: watch::Sender<Vec<Partition>>,
    stop: watch::Sender<bool>,
}

impl Scheduler {
    /// A scheduler for `work`, not yet running.
    pub(super) fn new(leases: PartitionLeases, settings: Settings, work: String) -> Self {
        Self {
            leases,
            settings,
            work,
            owned: watch::channel(Vec::new()).0,
            stop: watch::channel(false).0,
        }
    }

    /// The partitions held now.
    pub(super) fn owned(&self) -> Vec<Partition> {
        self.owned.borrow().clone()
    }

    /// A receiver of the partitions held, updated at every change.
    pub(super) fn subscribe_owned(&self) -> watch::Receiver<Vec<Partition>> {
        self.owned.subscribe()
    }

    /// Asks [`run`](Self::run) to stop.
    pub(super) fn shutdown(&self) {
        self.stop.send_replace(true);
    }

    /// Runs until [`shutdown`](Self::shutdown): heartbeats, rebalances and
    /// runs `work` in each held partition. A transient failure (the
    /// database is down) is logged and retried at the next heartbeat. On
    /// the way out, every partition is stopped gracefully and its lease
    /// given back, so the others take over at their next heartbeat instead
    /// of after a lease duration.
    pub(super) async fn run(&self, work: &dyn PartitionWork) -> Result<(), PartitionError> {
        let settings = &self.settings;
        self.leases
            .register(&self.work, settings.partitions)
            .await?;
        tracing::info!(work = %self.work, worker = %settings.worker_id, partitions = settings.partitions.get(), "partitioned worker started");
        let mut running: BTreeMap<u32, Running> = BTreeMap::new();
        let mut stop = self.stop.subscribe();
        let outcome = loop {
            if *stop.borrow_and_update() {
                break Ok(());
            }
            match self.tick(work, &mut running).await {
                Ok(()) => {}
                Err(error) if error.is_transient() => {
                    tracing::warn!(work = %self.work, worker = %settings.worker_id, %error, "heartbeat failed; retrying at the next one");
                }
                Err(error) => break Err(error),
            }
            tokio::select! {
                () = tokio::time::sleep(settings.heartbeat) => {}
                _ = stop.changed() => {}
            }
        };
        let partitions: Vec<u32> = running.keys().copied().collect();
        for partition in partitions {
            self.stop_partition(&mut running, partition, true).await;
        }
        self.publish_owned(&running);
        if let Err(error) = self.leases.leave(&self.work, &settings.worker_id).await {
            tracing::warn!(work = %self.work, %error, "could not remove the worker from the live workers");
        }
        tracing::info!(work = %self.work, worker = %settings.worker_id, "partitioned worker stopped");
        outcome
    }

    /// One heartbeat: reap stopped partitions, say we are alive, renew,
    /// give back what exceeds our share, claim up to it.
    async fn tick(
        &self,
        work: &dyn PartitionWork,
        running: &mut BTreeMap<u32, Running>,
    ) -> Result<(), PartitionError> {
        let settings = &self.settings;
        self.reap(running).await?;
        let now = settings.clock.now();
        let lease =
            chrono::Duration::from_std(settings.lease_duration).unwrap_or(chrono::Duration::MAX);
        let expires_at = now + lease;
        let live = self
            .leases
            .heartbeat(&self.work, &settings.worker_id, now, now - lease)
            .await?;
        let target = fair_share(settings.partitions.get(), &live, &settings.worker_id);

        let held: Vec<Lease> = running.values().map(|r| r.lease.clone()).collect();
        let kept = self.leases.renew(&held, expires_at).await?;
        let lost: Vec<u32> = running
            .keys()
            .copied()
            .filter(|partition| !kept.contains(partition))
            .collect();
        for partition in lost {
            tracing::warn!(work = %self.work, worker = %settings.worker_id, partition, "lease taken over by another worker; dropping the partition");
            self.stop_partition(running, partition, false).await;
        }

        // Beyond our share: give back the highest partitions, after their
        // work finished the batch (or round) in progress.
        while running.len() > target {
            let Some(&partition) = running.keys().next_back() else {
                break;
            };
            tracing::info!(work = %self.work, worker = %settings.worker_id, partition, target, "giving a partition back to rebalance");
            self.stop_partition(running, partition, true).await;
        }
        if running.len() < target {
            let claimed = self
                .leases
                .claim(
                    &self.work,
                    settings.partitions,
                    &settings.worker_id,
                    target - running.len(),
                    now,
                    expires_at,
                )
                .await?;
            for lease in claimed {
                tracing::info!(work = %self.work, worker = %settings.worker_id, partition = %lease.partition, token = lease.token, "partition claimed");
                let started = work.start(&lease);
                running.insert(lease.partition.index(), Running { lease, started });
            }
        }
        self.publish_owned(running);
        Ok(())
    }

    /// Collects partitions whose work stopped by itself: a lost lease
    /// drops the partition; any other error stops the worker.
    async fn reap(&self, running: &mut BTreeMap<u32, Running>) -> Result<(), PartitionError> {
        let finished: Vec<u32> = running
            .iter()
            .filter(|(_, r)| r.started.task.is_finished())
            .map(|(partition, _)| *partition)
            .collect();
        for partition in finished {
            let Some(mut stopped) = running.remove(&partition) else {
                continue;
            };
            let result = (&mut stopped.started.task).await.unwrap_or_else(|join| {
                Err(PartitionError::Projection(ProjectionError::apply(format!(
                    "the work of partition {partition} panicked: {join}"
                ))))
            });
            (stopped.started.stopped)();
            match result {
                Err(error) if error.as_lease_lost().is_some() => {
                    tracing::warn!(work = %self.work, worker = %self.settings.worker_id, partition, "lost the lease while committing; dropping the partition");
                }
                Err(error) => {
                    let _ = self.leases.release(&stopped.lease).await;
                    return Err(error);
                }
                Ok(()) => {
                    let _ = self.leases.release(&stopped.lease).await;
                }
            }
        }
        Ok(())
    }

    /// Stops a partition's work: gracefully (finish the batch or round,
    /// then release the lease) when `release`, otherwise at once (the
    /// lease is gone; whatever the work was doing cannot commit anyway).
    async fn stop_partition(
        &self,
        running: &mut BTreeMap<u32, Running>,
        partition: u32,
        release: bool,
    ) {
        let Some(mut stopped) = running.remove(&partition) else {
            return;
        };
        if release {
            (stopped.started.stop)();
            // Work stuck longer than a lease is abandoned: its commit would
            // be fenced off anyway.
            let in_time =
                tokio::time::timeout(self.settings.lease_duration, &mut stopped.started.task).await;
            if in_time.is_err() {
                stopped.started.task.abort();
            }
        } else {
            stopped.started.task.abort();
        }
        (stopped.started.stopped)();
        if release && let Err(error) = self.leases.release(&stopped.lease).await {
            tracing::warn!(work = %self.work, partition, %error, "could not release a lease; it expires by itself");
        }
    }

    fn publish_owned(&self, running: &BTreeMap<u32, Running>) {
        let owned: Vec<Partition> = running.values().map(|r| r.lease.partition).collect();
        self.owned.send_if_modified(|current| {
            let changed = *current != owned;
            *current = owned;
            changed
        });
    }
}

/// How many of `partitions` `worker` should hold among `live` (sorted):
/// an equal share, one more for the first `partitions % live` workers.
fn fair_share(partitions: u32, live: &[String], worker: &str) -> usize {
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
