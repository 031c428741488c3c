//! [`PartitionError`]: what can go wrong sharing a projection between
//! partitioned workers of projections and sagas (codes `CR-E0120` to
//! `CR-E0125`).

use std::sync::Arc;

use composable_rust_core::error::{BackendError, coded_error};
use composable_rust_core::projection::manager::Partition;
use composable_rust_core::{ProjectionError, SagaError};

use crate::error::{codes, sqlx_error_class};

/// What can go wrong with partition leases and partitioned workers. Its
/// `Display` starts with the code and says what to do; through the core's
/// projection traits it arrives as [`ProjectionError::Backend`] with the
/// same code and class (`downcast_ref::<PartitionError>()` gets it back).
#[coded_error]
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum PartitionError {
    /// The lease tables do not exist in the schema (`CR-E0120`).
    #[code(codes::LEASE_TABLES_MISSING, configuration)]
    #[error(
        "the partition lease tables do not exist in schema `{schema}` ({source}); call \
         PartitionLeases::migrate() once at startup, after PostgresProjectionStore::migrate()"
    )]
    TablesMissing {
        /// The schema of the projection store.
        schema: String,
        /// What PostgreSQL reported (`undefined_table`, 42P01).
        source: Arc<sqlx::Error>,
    },
    /// This worker no longer holds the partition's lease: another worker
    /// took it (`CR-E0121`). The unit of work was rolled back. Permanent
    /// for this worker: it drops the partition, and its new owner goes on
    /// from the partition's checkpoint.
    #[code(codes::LEASE_LOST, permanent)]
    #[error(
        "worker `{worker}` no longer holds the lease of partition {partition} of `{work}` \
         (its token {token} was replaced): another worker took the partition, so this unit of \
         work was rolled back and nothing was written; the worker drops the partition (if this \
         happens often, raise the lease duration above your slowest batch)"
    )]
    LeaseLost {
        /// The projection or saga kind.
        work: String,
        /// The partition.
        partition: Partition,
        /// The worker that lost it.
        worker: String,
        /// The token it held.
        token: i64,
    },
    /// A worker was started with another partition count than the one
    /// recorded by the first worker (`CR-E0122`).
    #[code(codes::PARTITION_COUNT_CHANGED, configuration)]
    #[error(
        "`{work}` is split into {recorded} partitions, but this worker was configured with \
         {configured}: start every worker with {recorded}, or stop them all and rebuild the \
         projection to change the count"
    )]
    CountChanged {
        /// The projection or saga kind.
        work: String,
        /// The count recorded in `partition_sets`.
        recorded: u32,
        /// The count this worker was given.
        configured: u32,
    },
    /// A setting was rejected (`CR-E0123`).
    #[code(codes::INVALID_PARTITIONING, configuration)]
    #[error("invalid partitioned worker settings: {reason}")]
    Invalid {
        /// What is wrong, and the allowed values.
        reason: String,
    },
    /// A lease query failed (`CR-E0124`); the class follows the SQLSTATE.
    #[code(codes::LEASE_QUERY_FAILED, class = sqlx_error_class(source))]
    #[error(
        "PostgreSQL failed to {operation}: {source} ({}); a transient failure is retried at \
         the next heartbeat (leases that cannot be renewed expire and move to other workers)",
        sqlx_error_class(source)
    )]
    Query {
        /// What the worker was doing.
        operation: &'static str,
        /// What sqlx reported.
        source: Arc<sqlx::Error>,
    },
    /// Running the lease migrations failed (`CR-E0125`).
    #[code(codes::LEASE_MIGRATION_FAILED, configuration)]
    #[error(
        "the partition lease migrations failed in schema `{schema}`: {source}; check that the \
         database user may create schemas and tables, and that no migration that already ran \
         was edited"
    )]
    Migration {
        /// The schema being migrated.
        schema: String,
        /// What the migrator reported.
        source: Arc<sqlx::migrate::MigrateError>,
    },
    /// A partition's projection manager stopped on an error retrying
    /// cannot fix (its code and class).
    #[code(transparent)]
    #[error(transparent)]
    Projection(ProjectionError),
    /// A partition's saga round (or the runtime's
    /// [`resume`](composable_rust_core::SagaRuntime::resume) at start-up)
    /// failed with an error retrying cannot fix (its code and class).
    #[code(transparent)]
    #[error(transparent)]
    Saga(SagaError),
}

impl PartitionError {
    /// Classifies a sqlx error of `operation` on the lease tables.
    pub(crate) fn query(error: sqlx::Error, operation: &'static str, schema: &str) -> Self {
        let missing = error
            .as_database_error()
            .and_then(|database| database.code())
            .is_some_and(|code| code == "42P01" || code == "3F000");
        if missing {
            Self::TablesMissing {
                schema: schema.to_owned(),
                source: Arc::new(error),
            }
        } else {
            Self::Query {
                operation,
                source: Arc::new(error),
            }
        }
    }

    /// The lease lost by a unit of work, if this error (or the projection
    /// error it wraps) is [`LeaseLost`](Self::LeaseLost).
    pub fn as_lease_lost(&self) -> Option<&Self> {
        match self {
            Self::LeaseLost { .. } => Some(self),
            Self::Projection(error) => lease_lost(error),
            _ => None,
        }
    }
}

/// The [`PartitionError::LeaseLost`] inside a projection error, if any.
pub(crate) fn lease_lost(error: &ProjectionError) -> Option<&PartitionError> {
    match error {
        ProjectionError::Backend(backend) => backend
            .downcast_ref::<PartitionError>()
            .filter(|error| matches!(error, PartitionError::LeaseLost { .. })),
        _ => None,
    }
}

impl From<PartitionError> for ProjectionError {
    fn from(error: PartitionError) -> Self {
        match error {
            PartitionError::Projection(error) => error,
            other => ProjectionError::Backend(BackendError::new(other)),
        }
    }
}
