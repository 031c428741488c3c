//! What an operator sees and does from outside the service (the
//! `composable` command line): every projection's checkpoint, every dead
//! letter, and [`ProjectionRequest`]s filed for a projection's manager
//! (rebuild, retry a dead letter), which the manager takes with
//! [`take_requests`](composable_rust_core::projection::ProjectionCheckpoint::take_requests).
//!
//! The statements are built here from the validated, quoted schema name;
//! everything else is a bind parameter.

use chrono::{DateTime, Utc};
use composable_rust_core::projection::{DeadLetter, ProjectionRequest};
use composable_rust_core::{Position, ProjectionError};
use serde::Serialize;
use uuid::Uuid;

use super::store::PostgresProjectionStore;
use crate::error::PostgresError;

/// The `kind` column of a rebuild request.
const REBUILD: &str = "rebuild";
/// The `kind` column of a dead-letter retry request.
const RETRY: &str = "retry";

/// One projection's checkpoint, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StoredCheckpoint {
    /// The projection's name.
    pub projection: String,
    /// The position of the last event it applied.
    pub position: Position,
    /// When the checkpoint last moved.
    pub updated_at: DateTime<Utc>,
}

impl PostgresProjectionStore {
    /// Every projection's checkpoint in this store, by name.
    ///
    /// # Errors
    ///
    /// [`PostgresError`] if the query fails (`CR-E0107` when the store's
    /// tables do not exist).
    pub async fn checkpoints(&self) -> Result<Vec<StoredCheckpoint>, PostgresError> {
        const OPERATION: &str = "list checkpoints";
        let sql = format!(
            "SELECT projection, commit_position, sequence, updated_at \
             FROM {}.projection_checkpoints ORDER BY projection",
            self.quoted_schema()
        );
        let rows: Vec<(String, i64, i64, DateTime<Utc>)> = sqlx::query_as(&sql)
            .fetch_all(self.pool())
            .await
            .map_err(|error| self.sql_error(error, OPERATION))?;
        rows.into_iter()
            .map(|(projection, commit, sequence, updated_at)| {
                Ok(StoredCheckpoint {
                    projection,
                    position: Position::new(
                        unsigned(commit, OPERATION)?,
                        unsigned(sequence, OPERATION)?,
                    ),
                    updated_at,
                })
            })
            .collect()
    }

    /// The dead letters of every projection, by projection, oldest first.
    ///
    /// # Errors
    ///
    /// [`ProjectionError::Backend`] if the query fails,
    /// [`ProjectionError::Serialization`] if a stored event does not
    /// decode.
    pub async fn all_dead_letters(&self) -> Result<Vec<DeadLetter>, ProjectionError> {
        let sql = format!(
            "SELECT DISTINCT projection FROM {}.projection_dead_letters ORDER BY projection",
            self.quoted_schema()
        );
        let projections: Vec<String> = sqlx::query_scalar(&sql)
            .fetch_all(self.pool())
            .await
            .map_err(|error| self.sql_error(error, "list dead letters"))?;
        let mut letters = Vec::new();
        for projection in projections {
            letters.extend(
                composable_rust_core::projection::ProjectionCheckpoint::dead_letters(
                    self,
                    &projection,
                )
                .await?,
            );
        }
        Ok(letters)
    }

    /// Files `request` for `projection`'s manager, which carries it out the
    /// next time it looks (at the start of `catch_up`, and while `run`
    /// runs). Filing the same request twice files it once.
    ///
    /// Returns `false`, filing nothing, for a
    /// [`RetryDeadLetter`](ProjectionRequest::RetryDeadLetter) of an event
    /// the projection has no dead letter for.
    ///
    /// # Errors
    ///
    /// [`PostgresError`] if the statement fails (`CR-E0107` when the
    /// store's tables, including the requests table added with this
    /// feature, do not exist: run the service once, or call
    /// [`migrate`](Self::migrate)).
    pub async fn request(
        &self,
        projection: &str,
        request: ProjectionRequest,
    ) -> Result<bool, PostgresError> {
        let schema = self.quoted_schema();
        let filed: Option<i32> = match request {
            ProjectionRequest::Rebuild => {
                let sql = format!(
                    "INSERT INTO {schema}.projection_requests (projection, kind) VALUES ($1, $2) \
                     ON CONFLICT DO NOTHING"
                );
                sqlx::query(&sql)
                    .bind(projection)
                    .bind(REBUILD)
                    .execute(self.pool())
                    .await
                    .map(|_| Some(1))
            }
            ProjectionRequest::RetryDeadLetter(event_id) => {
                // Only for a dead letter that exists; ON CONFLICT keeps a
                // second request from failing, and reports it as filed.
                let sql = format!(
                    "WITH letter AS ( \
                         SELECT 1 FROM {schema}.projection_dead_letters \
                         WHERE projection = $1 AND event_id = $3), \
                     filed AS ( \
                         INSERT INTO {schema}.projection_requests (projection, kind, event_id) \
                         SELECT $1, $2, $3 FROM letter \
                         ON CONFLICT DO NOTHING) \
                     SELECT 1 FROM letter"
                );
                sqlx::query_scalar(&sql)
                    .bind(projection)
                    .bind(RETRY)
                    .bind(event_id)
                    .fetch_optional(self.pool())
                    .await
            }
        }
        .map_err(|error| self.sql_error(error, "file a request"))?;
        Ok(filed.is_some())
    }

    /// The requests waiting for `projection`'s manager, oldest first,
    /// without taking them.
    ///
    /// # Errors
    ///
    /// [`PostgresError`] if the query fails.
    pub async fn pending_requests(
        &self,
        projection: &str,
    ) -> Result<Vec<ProjectionRequest>, PostgresError> {
        let sql = format!(
            "SELECT kind, event_id, requested_at FROM {}.projection_requests \
             WHERE projection = $1 ORDER BY requested_at, kind, event_id",
            self.quoted_schema()
        );
        let rows: Vec<(String, Uuid, DateTime<Utc>)> = sqlx::query_as(&sql)
            .bind(projection)
            .fetch_all(self.pool())
            .await
            .map_err(|error| self.sql_error(error, "list requests"))?;
        rows.into_iter().map(request_from_row).collect()
    }

    /// [`take_requests`](composable_rust_core::projection::ProjectionCheckpoint::take_requests):
    /// one `DELETE ... RETURNING`, so two managers never both take one.
    pub(super) async fn take_requests_now(
        &self,
        projection: &str,
    ) -> Result<Vec<ProjectionRequest>, PostgresError> {
        let sql = format!(
            "DELETE FROM {}.projection_requests WHERE projection = $1 \
             RETURNING kind, event_id, requested_at",
            self.quoted_schema()
        );
        let mut rows: Vec<(String, Uuid, DateTime<Utc>)> = sqlx::query_as(&sql)
            .bind(projection)
            .fetch_all(self.pool())
            .await
            .map_err(|error| self.sql_error(error, "take requests"))?;
        rows.sort_by_key(|(kind, event_id, at)| (*at, kind.clone(), *event_id));
        rows.into_iter().map(request_from_row).collect()
    }

    fn sql_error(&self, error: sqlx::Error, operation: &'static str) -> PostgresError {
        PostgresError::from_sqlx_projection(error, operation, self.schema(), None)
    }
}

fn request_from_row(
    (kind, event_id, _): (String, Uuid, DateTime<Utc>),
) -> Result<ProjectionRequest, PostgresError> {
    match kind.as_str() {
        REBUILD => Ok(ProjectionRequest::Rebuild),
        RETRY => Ok(ProjectionRequest::RetryDeadLetter(event_id)),
        other => Err(PostgresError::ProjectionCorruptRow {
            operation: "read requests",
            reason: format!("unknown request kind `{other}`"),
        }),
    }
}

fn unsigned(value: i64, operation: &'static str) -> Result<u64, PostgresError> {
    u64::try_from(value).map_err(|_| PostgresError::ProjectionCorruptRow {
        operation,
        reason: format!("negative position part {value}"),
    })
}
