//! Partitioned workers: several processes share one projection's work.
//!
//! The streams are split into a fixed number of partitions by a stable
//! hash of their id ([`Partition`]); workers lease partitions in
//! PostgreSQL ([`PartitionLeases`]) and run one
//! [`ProjectionManager`](composable_rust_core::ProjectionManager) per held
//! partition ([`PartitionedWorker`]).
//!
//! ```text
//!  worker A ─┬─ manager p0 ─┐   each commit: read-model writes
//!            └─ manager p1 ─┤   + checkpoint "name@k/P"
//!  worker B ─┬─ manager p2 ─┤   + lease check (owner, token) FOR SHARE
//!            └─ manager p3 ─┘   in one transaction
//!  heartbeat: renew own leases, give back beyond the fair share,
//!             claim free or expired partitions (token + 1)
//! ```
//!
//! - **Per-stream order**: a stream's events are all in one partition,
//!   and a partition has one owner at a time, whose manager applies them
//!   in order.
//! - **Exactly once** (PostgreSQL read models): each partition's
//!   checkpoint commits with the read model's changes, and the commit
//!   checks in the same transaction that the worker still holds the
//!   lease's token ([`FencedStore`]). A worker that lost its lease (it was
//!   paused past the lease's end and another worker took the partition)
//!   rolls back with [`PartitionError::LeaseLost`] (`CR-E0121`).
//! - **Rebalancing**: live workers (heartbeat within a lease duration)
//!   each aim at an equal share; a joining worker gets its share as the
//!   others give partitions back at their next heartbeat; a dead worker's
//!   leases expire and the others claim them.
//!
//! - **Sagas** partition the same way, by saga id:
//!   [`PartitionedSagaWorker`] shares one saga kind's instances through
//!   the same lease tables (lease name `saga:{KIND}`, see
//!   [`SAGA_WORK_PREFIX`]), one runtime per held partition, each
//!   partition's position stored fenced by its lease.
//!
//! Why leases in a table rather than advisory locks: see ADR-026 in the
//! book's appendix.

mod error;
mod fenced;
mod leases;
mod pages;
mod saga_worker;
mod scheduler;
mod worker;

pub use composable_rust_core::projection::manager::Partition;
pub use error::PartitionError;
pub use fenced::{FencedStore, PartitionProjection, partition_checkpoint};
pub use leases::{Lease, LeaseRow, PartitionLeases};
pub use saga_worker::{
    PartitionedSagaWorker, PartitionedSagaWorkerBuilder, SAGA_WORK_PREFIX, saga_work,
};
pub use scheduler::MAX_PARTITIONS;
pub use worker::{PartitionedWorker, PartitionedWorkerBuilder};
