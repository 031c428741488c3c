//! [`PostgresProjectionStore`]: read models, checkpoints and dead letters in
//! PostgreSQL, committed together: **exactly once**.
//!
//! - [`PostgresProjectionStore`] implements the core's
//!   [`ProjectionStore`](composable_rust_core::ProjectionStore) and
//!   [`ProjectionCheckpoint`](composable_rust_core::projection::ProjectionCheckpoint):
//!   a key/bytes table (`projection_data`), the checkpoints
//!   (`projection_checkpoints`) and the dead letters
//!   (`projection_dead_letters`), created by its own
//!   [`migrate`](PostgresProjectionStore::migrate).
//! - Its unit of work, [`PostgresProjectionTx`], is one PostgreSQL
//!   transaction. A [`ProjectionManager`](composable_rust_core::ProjectionManager)
//!   applies a batch of events, saves the checkpoint and records dead
//!   letters through it, then commits: the read model and the checkpoint
//!   change together or not at all. Projections can run their own SQL in
//!   the same transaction through
//!   [`connection`](PostgresProjectionTx::connection).
//! - [`DocumentTable`]: queryable read models, one JSONB document per row
//!   with a GIN index, and [`DocumentQuery`] (containment filter, ordering
//!   by a field, limit and offset).
//!
//! The store is its own checkpoint store (what the design calls
//! `PostgresProjectionCheckpoint`): checkpoints and dead letters must live
//! in the same database as the read model to commit with it.
//!
//! ## Same database or a separate read database
//!
//! The store needs nothing from the event store: give it a pool on the
//! event store's database (in the same schema or another one), or on a
//! separate read database or server ([`connect`](PostgresProjectionStore::connect)
//! takes its own URL). That is CQRS at the infrastructure level: queries
//! load the read database, never the event store.
//!
//! On the same server, keep units of work short (the manager does: one
//! batch each, with writes sent at the end): transaction ids are
//! server-wide, so while a writing transaction is open, every
//! `PostgresEventStore` on that server holds back events committed after
//! it began (see the event store's `read_all`). A read database on
//! another server is not affected.
//!
//! ## Errors
//!
//! Constructors, [`migrate`](PostgresProjectionStore::migrate) and
//! [`DocumentTable::ensure`] return [`PostgresError`]; through the core
//! traits the same errors arrive as
//! [`ProjectionError::Backend`]
//! with the same code and message (codes `CR-E0102`, `CR-E0107` to
//! `CR-E0113`). The manager treats those as transient: it retries the
//! batch until the database is back and never dead-letters an event
//! because of them. One exception: when PostgreSQL rejects the *data* of
//! a statement (SQLSTATE classes 22, data exception, and 23, integrity
//! constraint violation, e.g. a projection's own `CHECK` failing), the
//! error becomes [`ProjectionError::Apply`],
//! so the event is retried and then dead-lettered instead of stalling the
//! projection forever. Use [`sql_error`] to convert the errors of your own
//! SQL the same way.

mod documents;
mod sql;
mod store;
mod tx;

use composable_rust_core::{CodedError, ProjectionError};

pub use documents::{Document, DocumentQuery, DocumentTable, SortOrder};
pub use store::PostgresProjectionStore;
pub use tx::PostgresProjectionTx;

use crate::error::PostgresError;

/// Converts an error of a projection's own SQL (run on
/// [`PostgresProjectionTx::connection`]) into a [`ProjectionError`]:
/// data PostgreSQL rejects (SQLSTATE classes 22 and 23) becomes
/// [`ProjectionError::Apply`], retried and then dead-lettered; anything
/// else (connection lost, missing table...) becomes
/// [`ProjectionError::Backend`], retried until it works.
///
/// ```no_run
/// # use composable_rust_core::ProjectionError;
/// # use composable_rust_postgres::{PostgresProjectionTx, sql_error};
/// # async fn apply(tx: &mut PostgresProjectionTx) -> Result<(), ProjectionError> {
/// sqlx::query("UPDATE shop.stock SET quantity = quantity - 1 WHERE sku = $1")
///     .bind("sku-42")
///     .execute(tx.connection().await?)
///     .await
///     .map_err(sql_error)?;
/// # Ok(())
/// # }
/// ```
pub fn sql_error(error: sqlx::Error) -> ProjectionError {
    const OPERATION: &str = "run a projection's own SQL";
    match PostgresError::from_sqlx_projection(error, OPERATION, "", None) {
        // A missing table here is the projection's own, not the store's.
        PostgresError::ProjectionMigrationsNotRun { source, .. } => {
            PostgresError::ProjectionQuery {
                operation: OPERATION,
                source,
            }
        }
        other => other,
    }
    .into()
}

impl From<PostgresError> for ProjectionError {
    fn from(error: PostgresError) -> Self {
        if rejects_data(&error) {
            return ProjectionError::apply(&error);
        }
        ProjectionError::Backend {
            code: error.code(),
            message: error.message(),
            source: error.shared_source(),
        }
    }
}

/// Whether PostgreSQL refused the data of a statement (SQLSTATE class 22,
/// data exception, or 23, integrity constraint violation): the event or
/// the projection is at fault, not the infrastructure.
fn rejects_data(error: &PostgresError) -> bool {
    let PostgresError::ProjectionQuery { source, .. } = error else {
        return false;
    };
    source
        .as_database_error()
        .and_then(|database| database.code())
        .is_some_and(|code| code.starts_with("22") || code.starts_with("23"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn infrastructure_failures_are_backend_errors_with_the_code() {
        let error: ProjectionError =
            PostgresError::from_sqlx_projection(sqlx::Error::PoolTimedOut, "commit", "s", None)
                .into();
        assert!(error.is_transient());
        assert_eq!(error.code().as_str(), "CR-E0102");
        assert!(error.to_string().starts_with("[CR-E0102] "), "{error}");

        let error: ProjectionError = PostgresError::CheckpointConflict {
            projection: "p".into(),
        }
        .into();
        assert!(error.is_transient());
        assert_eq!(error.code().as_str(), "CR-E0113");

        let error = sql_error(sqlx::Error::RowNotFound);
        assert!(error.is_transient());
        assert_eq!(error.code().as_str(), "CR-E0109");
    }
}
