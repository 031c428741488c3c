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
//! - Operations from outside the service ([`checkpoints`](PostgresProjectionStore::checkpoints),
//!   [`all_dead_letters`](PostgresProjectionStore::all_dead_letters),
//!   [`request`](PostgresProjectionStore::request) a rebuild or a dead
//!   letter's retry, which the manager carries out): what the `composable`
//!   command line uses.
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
//! traits the same errors arrive as [`ProjectionError::Backend`] with the
//! same code, class and message (codes `CR-E0102`, `CR-E0107` to
//! `CR-E0113`). The class follows the SQLSTATE
//! ([`sqlstate_class`](crate::sqlstate_class)): the manager retries a
//! transient failure (the database is down, a serialization failure)
//! until it succeeds; dead-letters the event behind a permanent one (data
//! PostgreSQL refuses: classes 22 and 23, or a key too long for its index,
//! class 54), so one bad event never stalls the projection; and stops on a
//! configuration error (missing tables, permissions). Use [`sql_error`] to
//! convert the errors of your own SQL the same way.

mod blue_green;
mod bulk;
mod documents;
mod operations;
mod sql;
mod store;
mod tx;

use composable_rust_core::ProjectionError;

pub use blue_green::{BlueGreen, BlueGreenError, Switched, Version, VersionState};
pub use documents::{Document, DocumentQuery, DocumentTable, SortOrder};
pub use operations::StoredCheckpoint;
pub use store::PostgresProjectionStore;
pub use tx::PostgresProjectionTx;

use crate::error::PostgresError;

/// Converts an error of a projection's own SQL (run on
/// [`PostgresProjectionTx::connection`]) into a [`ProjectionError`] whose
/// class follows the SQLSTATE: data PostgreSQL rejects is permanent (the
/// event is dead-lettered), a lost connection transient (retried), a
/// missing table or privilege configuration (the manager stops).
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

#[cfg(test)]
mod tests {
    use super::*;
    use composable_rust_core::CodedError;

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
        assert_eq!(error.class(), composable_rust_core::ErrorClass::Permanent);
        assert_eq!(error.code().as_str(), "CR-E0109");
    }
}
