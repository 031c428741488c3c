//! What an operator needs to look at an event store from outside the
//! service that writes it (the `composable` command line): whether the
//! schema is there at all, and the streams with their versions.
//!
//! The schema name reaches these statements as a bind parameter (the
//! catalog checks) or as the validated, quoted identifier (the listing),
//! never as unvalidated text.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgPool;

use crate::error::PostgresError;
use crate::store::PostgresEventStore;

/// What a schema holds, as far as Composable Rust's stores are concerned
/// ([`PostgresEventStore::schema_status`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SchemaStatus {
    /// The schema.
    pub schema: String,
    /// Whether the schema exists.
    pub exists: bool,
    /// Whether it holds the event store's tables (`events`, `snapshots`).
    pub event_tables: bool,
    /// Whether it holds the projection store's tables (checkpoints, dead
    /// letters).
    pub projection_tables: bool,
    /// Whether the projection store's tables include the requests table
    /// (`projection_requests`, added by a later migration than the
    /// others): a store migrated by an older release has the other tables
    /// without it.
    pub request_table: bool,
    /// The other schemas of the database that hold event store tables, by
    /// name: where to look instead when this one has none.
    pub other_event_schemas: Vec<String>,
}

/// One stream of the store ([`PostgresEventStore::list_streams`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StreamSummary {
    /// The stream's id, e.g. `account-1`.
    pub stream_id: String,
    /// Its version: the number of its events.
    pub version: u64,
    /// When its first event was recorded.
    pub first_recorded_at: DateTime<Utc>,
    /// When its last event was recorded.
    pub last_recorded_at: DateTime<Utc>,
}

impl PostgresEventStore {
    /// Looks the store's schema up in the catalog: whether it exists,
    /// whether it holds the event store's and the projection store's
    /// tables, and which other schemas hold event stores. Unlike every
    /// other operation, it works before [`migrate`](Self::migrate), so a
    /// tool can say exactly what is missing.
    ///
    /// # Errors
    ///
    /// [`PostgresError::Unreachable`] (`CR-E0102`) if the server cannot be
    /// reached; [`PostgresError::Query`] if the catalog query fails.
    pub async fn schema_status(&self) -> Result<SchemaStatus, PostgresError> {
        const OPERATION: &str = "look the schema up in the catalog";
        let (exists, event_tables, projection_tables, request_table): (bool, bool, bool, bool) =
            sqlx::query_as(
                "SELECT \
                 EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1), \
                 to_regclass(quote_ident($1) || '.events') IS NOT NULL \
                     AND to_regclass(quote_ident($1) || '.snapshots') IS NOT NULL, \
                 to_regclass(quote_ident($1) || '.projection_checkpoints') IS NOT NULL, \
                 to_regclass(quote_ident($1) || '.projection_requests') IS NOT NULL",
            )
            .bind(self.schema())
            .fetch_one(self.pool())
            .await
            .map_err(|error| self.error(error, OPERATION))?;
        let other_event_schemas = event_schemas(self.pool())
            .await
            .map_err(|error| self.error(error, OPERATION))?
            .into_iter()
            .filter(|schema| schema != self.schema())
            .collect();
        Ok(SchemaStatus {
            schema: self.schema().to_owned(),
            exists,
            event_tables,
            projection_tables,
            request_table,
            other_event_schemas,
        })
    }

    /// The streams whose id starts with `prefix` (every stream for `""`),
    /// in id order, at most `limit`, with their versions and when their
    /// first and last events were recorded.
    ///
    /// # Errors
    ///
    /// [`PostgresError`]: `CR-E0103` when the schema has no event tables.
    pub async fn list_streams(
        &self,
        prefix: &str,
        limit: usize,
    ) -> Result<Vec<StreamSummary>, PostgresError> {
        const OPERATION: &str = "list streams";
        // Walks the primary key (stream_id, stream_version) in order.
        let sql = format!(
            "SELECT stream_id, max(stream_version), min(recorded_at), max(recorded_at) \
             FROM {}.events WHERE starts_with(stream_id, $1) \
             GROUP BY stream_id ORDER BY stream_id LIMIT $2",
            self.quoted_schema()
        );
        let rows: Vec<(String, i64, DateTime<Utc>, DateTime<Utc>)> = sqlx::query_as(&sql)
            .bind(prefix)
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .fetch_all(self.pool())
            .await
            .map_err(|error| self.error(error, OPERATION))?;
        rows.into_iter()
            .map(|(stream_id, version, first, last)| {
                Ok(StreamSummary {
                    version: crate::rows::unsigned(version, "stream_version", OPERATION)?,
                    stream_id,
                    first_recorded_at: first,
                    last_recorded_at: last,
                })
            })
            .collect()
    }
}

/// The schemas holding an event store's tables, by name.
async fn event_schemas(pool: &PgPool) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT e.table_schema::text FROM information_schema.tables e \
         JOIN information_schema.tables s \
             ON s.table_schema = e.table_schema AND s.table_name = 'snapshots' \
         WHERE e.table_name = 'events' ORDER BY 1",
    )
    .fetch_all(pool)
    .await
}
