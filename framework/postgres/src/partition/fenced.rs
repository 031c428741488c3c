//! What one partition's [`ProjectionManager`] runs: the projection seen
//! through a [`PartitionProjection`] (only the partition's streams, its
//! own checkpoint name) writing to a [`FencedStore`] (the projection
//! store, plus the lease check in every unit of work that moves the
//! checkpoint).
//!
//! This is how partitioning needs no change in the manager: the manager
//! already skips events its projection does not
//! [`handle`](Projection::handles) (and moves the checkpoint past them),
//! and already saves the checkpoint in the unit of work it commits, which
//! is where the lease is checked.
//!
//! [`ProjectionManager`]: composable_rust_core::ProjectionManager

use std::sync::Arc;

use async_trait::async_trait;
use composable_rust_core::projection::manager::Partition;
use composable_rust_core::projection::{
    DeadLetter, Delivery, ProjectionCheckpoint, ProjectionRequest, ProjectionStore,
};
use composable_rust_core::{Position, Projection, ProjectionError, StoredEvent};
use uuid::Uuid;

use super::leases::{Lease, PartitionLeases};
use crate::{PostgresProjectionStore, PostgresProjectionTx};

/// The checkpoint name of `partition` of projection `work`:
/// `"{work}@{index}/{count}"`. Each partition keeps its own checkpoint in
/// `projection_checkpoints`, committed with the read model's changes.
pub fn partition_checkpoint(work: &str, partition: Partition) -> String {
    format!("{work}@{partition}")
}

/// A projection restricted to one partition: it
/// [`handles`](Projection::handles) only the events of the partition's
/// streams, and keeps its checkpoint under
/// [`partition_checkpoint`]. Its store is the [`FencedStore`] of the
/// partition's lease.
pub struct PartitionProjection<P> {
    inner: Arc<P>,
    partition: Partition,
    name: String,
}

impl<P: Projection<Store = PostgresProjectionStore>> PartitionProjection<P> {
    /// `inner` restricted to `partition`.
    pub fn new(inner: Arc<P>, partition: Partition) -> Self {
        let name = partition_checkpoint(inner.name(), partition);
        Self {
            inner,
            partition,
            name,
        }
    }

    /// The partition.
    pub fn partition(&self) -> Partition {
        self.partition
    }
}

impl<P> std::fmt::Debug for PartitionProjection<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PartitionProjection")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl<P: Projection<Store = PostgresProjectionStore>> Projection for PartitionProjection<P> {
    type Store = FencedStore;

    fn name(&self) -> &str {
        &self.name
    }

    fn handles(&self, event: &StoredEvent) -> bool {
        self.partition.contains_event(event) && self.inner.handles(event)
    }

    async fn apply(
        &self,
        event: &StoredEvent,
        tx: &mut PostgresProjectionTx,
    ) -> Result<(), ProjectionError> {
        self.inner.apply(event, tx).await
    }

    /// Refused: resetting would delete every partition's read model, not
    /// this one's. Stop the workers and reset the whole projection instead
    /// ([`PartitionedWorker::reset`](super::PartitionedWorker::reset)).
    async fn reset(&self, _tx: &mut PostgresProjectionTx) -> Result<(), ProjectionError> {
        Err(ProjectionError::apply(format!(
            "partition {} of `{}` cannot be rebuilt alone: stop every worker, call \
             PartitionedWorker::reset (the read model and every partition's checkpoint, in \
             one transaction), then start the workers again",
            self.partition,
            self.inner.name()
        )))
    }
}

/// The projection store as one partition's manager sees it: every unit of
/// work that moves the partition's checkpoint first checks, in the same
/// transaction, that this worker still holds the partition's lease
/// ([`PartitionLeases::check`]); otherwise it fails with
/// [`LeaseLost`](super::PartitionError::LeaseLost) (`CR-E0121`) and
/// nothing is written. Everything else is the projection store's.
#[derive(Debug, Clone)]
pub struct FencedStore {
    store: PostgresProjectionStore,
    leases: PartitionLeases,
    lease: Lease,
}

impl FencedStore {
    /// `store`, fenced by `lease` (held in `leases`).
    pub fn new(store: PostgresProjectionStore, leases: PartitionLeases, lease: Lease) -> Self {
        Self {
            store,
            leases,
            lease,
        }
    }

    /// The lease this store's units of work are fenced by.
    pub fn lease(&self) -> &Lease {
        &self.lease
    }
}

#[async_trait]
impl ProjectionStore for FencedStore {
    type Tx = PostgresProjectionTx;

    fn delivery(&self) -> Delivery {
        self.store.delivery()
    }

    async fn begin(&self) -> Result<PostgresProjectionTx, ProjectionError> {
        self.store.begin().await
    }

    async fn commit(&self, tx: PostgresProjectionTx) -> Result<(), ProjectionError> {
        self.store.commit(tx).await
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, ProjectionError> {
        self.store.get(key).await
    }
}

#[async_trait]
impl ProjectionCheckpoint for FencedStore {
    async fn load_position(&self, projection: &str) -> Result<Option<Position>, ProjectionError> {
        self.store.load_position(projection).await
    }

    /// Checks the lease, then saves the checkpoint, in `tx`. The manager
    /// saves the checkpoint in every unit of work it commits (a batch, one
    /// event, a dead letter), so none commits without the check.
    async fn save_position(
        &self,
        tx: &mut PostgresProjectionTx,
        projection: &str,
        position: Position,
    ) -> Result<(), ProjectionError> {
        self.leases
            .check(tx.unbuffered().await?, &self.lease)
            .await?;
        self.store.save_position(tx, projection, position).await
    }

    async fn record_dead_letter(
        &self,
        tx: &mut PostgresProjectionTx,
        letter: &DeadLetter,
    ) -> Result<(), ProjectionError> {
        self.store.record_dead_letter(tx, letter).await
    }

    async fn remove_dead_letter(
        &self,
        tx: &mut PostgresProjectionTx,
        projection: &str,
        event_id: Uuid,
    ) -> Result<bool, ProjectionError> {
        self.leases
            .check(tx.unbuffered().await?, &self.lease)
            .await?;
        self.store
            .remove_dead_letter(tx, projection, event_id)
            .await
    }

    async fn dead_letters(&self, projection: &str) -> Result<Vec<DeadLetter>, ProjectionError> {
        self.store.dead_letters(projection).await
    }

    /// Takes the operator's requests filed for this partition's checkpoint
    /// name (a dead letter's retry); a rebuild request is refused by
    /// [`PartitionProjection::reset`].
    async fn take_requests(
        &self,
        projection: &str,
    ) -> Result<Vec<ProjectionRequest>, ProjectionError> {
        self.store.take_requests(projection).await
    }
}
