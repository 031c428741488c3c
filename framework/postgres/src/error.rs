//! Errors of the PostgreSQL backend, with stable codes in the `CR-E01xx`
//! range (core owns `CR-E00xx`).
//!
//! Constructors and [`PostgresEventStore::migrate`](crate::PostgresEventStore::migrate)
//! return a [`PostgresError`]. Through the [`EventStore`](composable_rust_core::EventStore)
//! trait the same errors arrive as
//! [`EventStoreError::Backend`] carrying the same code and message, with the
//! underlying sqlx error as its `source`.

use std::fmt;
use std::sync::Arc;

use composable_rust_core::{CodedError, ErrorCode, EventStoreError};

/// The codes owned by `composable-rust-postgres`.
pub mod codes {
    use composable_rust_core::ErrorCode;

    /// A schema name was rejected.
    pub const INVALID_SCHEMA_NAME: ErrorCode =
        ErrorCode::new("CR-E0101", "invalid PostgreSQL schema name");
    /// PostgreSQL could not be reached, or the connection was lost.
    pub const DATABASE_UNREACHABLE: ErrorCode =
        ErrorCode::new("CR-E0102", "PostgreSQL could not be reached");
    /// The event store's tables do not exist: `migrate()` was not called.
    pub const MIGRATIONS_NOT_RUN: ErrorCode = ErrorCode::new(
        "CR-E0103",
        "event store tables missing: call PostgresEventStore::migrate()",
    );
    /// A query failed for another reason.
    pub const QUERY_FAILED: ErrorCode = ErrorCode::new("CR-E0104", "a PostgreSQL query failed");
    /// Running the embedded migrations failed.
    pub const MIGRATION_FAILED: ErrorCode =
        ErrorCode::new("CR-E0105", "running the event store migrations failed");
    /// A stored row holds a value the store never writes.
    pub const CORRUPT_ROW: ErrorCode =
        ErrorCode::new("CR-E0106", "a stored row holds an impossible value");
    /// The projection store's tables do not exist: `migrate()` was not called.
    pub const PROJECTION_MIGRATIONS_NOT_RUN: ErrorCode = ErrorCode::new(
        "CR-E0107",
        "projection store tables missing: call PostgresProjectionStore::migrate()",
    );
    /// Running the projection store's embedded migrations failed.
    pub const PROJECTION_MIGRATION_FAILED: ErrorCode =
        ErrorCode::new("CR-E0108", "running the projection store migrations failed");
    /// A projection store query failed for another reason.
    pub const PROJECTION_QUERY_FAILED: ErrorCode =
        ErrorCode::new("CR-E0109", "a projection store query failed");
    /// A document table name was rejected.
    pub const INVALID_TABLE_NAME: ErrorCode =
        ErrorCode::new("CR-E0110", "invalid document table name");
    /// A document table does not exist: `ensure()` was not called.
    pub const DOCUMENT_TABLE_MISSING: ErrorCode = ErrorCode::new(
        "CR-E0111",
        "document table missing: call DocumentTable::ensure()",
    );
    /// A projection store row holds a value the store never writes.
    pub const PROJECTION_CORRUPT_ROW: ErrorCode = ErrorCode::new(
        "CR-E0112",
        "a projection store row holds an impossible value",
    );
    /// Another manager moved a projection's checkpoint during a batch.
    pub const CHECKPOINT_CONFLICT: ErrorCode = ErrorCode::new(
        "CR-E0113",
        "another manager moved the projection's checkpoint",
    );

    /// Every code this crate owns, in order.
    pub const ALL: &[ErrorCode] = &[
        INVALID_SCHEMA_NAME,
        DATABASE_UNREACHABLE,
        MIGRATIONS_NOT_RUN,
        QUERY_FAILED,
        MIGRATION_FAILED,
        CORRUPT_ROW,
        PROJECTION_MIGRATIONS_NOT_RUN,
        PROJECTION_MIGRATION_FAILED,
        PROJECTION_QUERY_FAILED,
        INVALID_TABLE_NAME,
        DOCUMENT_TABLE_MISSING,
        PROJECTION_CORRUPT_ROW,
        CHECKPOINT_CONFLICT,
    ];
}

/// What can go wrong in the PostgreSQL backend. Its `Display` starts with
/// the code, e.g. `[CR-E0103] ...`, and says what happened and what to do.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum PostgresError {
    /// A schema name was rejected (`CR-E0101`).
    InvalidSchemaName {
        /// The rejected name.
        name: String,
        /// Why it was rejected.
        reason: &'static str,
    },
    /// PostgreSQL could not be reached, or the connection broke (`CR-E0102`).
    Unreachable {
        /// What sqlx reported.
        source: Arc<sqlx::Error>,
    },
    /// The tables are missing: `migrate()` has not run for this schema
    /// (`CR-E0103`).
    MigrationsNotRun {
        /// The schema the store uses.
        schema: String,
        /// What PostgreSQL reported (`undefined_table`, 42P01).
        source: Arc<sqlx::Error>,
    },
    /// A query failed for another reason (`CR-E0104`).
    Query {
        /// What the store was doing, e.g. `"append events"`.
        operation: &'static str,
        /// What sqlx reported.
        source: Arc<sqlx::Error>,
    },
    /// Running the embedded migrations failed (`CR-E0105`).
    Migration {
        /// The schema being migrated.
        schema: String,
        /// What the migrator reported.
        source: Arc<sqlx::migrate::MigrateError>,
    },
    /// A row holds a value the store never writes, e.g. a negative version
    /// (`CR-E0106`).
    CorruptRow {
        /// What the store was doing.
        operation: &'static str,
        /// What is wrong with the row.
        reason: String,
    },
    /// The projection store's tables are missing: its `migrate()` has not
    /// run for this schema (`CR-E0107`).
    ProjectionMigrationsNotRun {
        /// The schema the projection store uses.
        schema: String,
        /// What PostgreSQL reported (`undefined_table`, 42P01).
        source: Arc<sqlx::Error>,
    },
    /// Running the projection store's migrations failed (`CR-E0108`).
    ProjectionMigration {
        /// The schema being migrated.
        schema: String,
        /// What the migrator reported.
        source: Arc<sqlx::migrate::MigrateError>,
    },
    /// A projection store query failed for another reason (`CR-E0109`).
    ProjectionQuery {
        /// What the store was doing, e.g. `"commit a unit of work"`.
        operation: &'static str,
        /// What sqlx reported.
        source: Arc<sqlx::Error>,
    },
    /// A document table name was rejected (`CR-E0110`).
    InvalidTableName {
        /// The rejected name.
        name: String,
        /// Why it was rejected.
        reason: &'static str,
    },
    /// A document table does not exist: `DocumentTable::ensure()` has not
    /// run (`CR-E0111`).
    DocumentTableMissing {
        /// The table, schema-qualified.
        table: String,
        /// What PostgreSQL reported.
        source: Arc<sqlx::Error>,
    },
    /// A projection store row holds a value the store never writes, e.g. a
    /// negative checkpoint, or a position too large to store (`CR-E0112`).
    ProjectionCorruptRow {
        /// What the store was doing.
        operation: &'static str,
        /// What is wrong with the value.
        reason: String,
    },
    /// Another manager of the same projection moved its checkpoint to or
    /// past this batch's position while the batch ran; the batch was not
    /// committed (`CR-E0113`).
    CheckpointConflict {
        /// The projection.
        projection: String,
    },
}

impl PostgresError {
    /// What happened and what to do, without the code prefix.
    pub fn message(&self) -> String {
        match self {
            Self::InvalidSchemaName { name, reason } => format!(
                "`{name}` is not a valid PostgreSQL schema name: {reason}; use 1 to 56 \
                 characters from a-z, 0-9 and _, starting with a letter or _ and not with pg_, \
                 e.g. \"composable_rust\""
            ),
            Self::Unreachable { source } => format!(
                "could not reach PostgreSQL: {source}; check that the server is running and that \
                 the URL or the pool's options (host, port, user, database) are right, e.g. \
                 DATABASE_URL=postgres://postgres@localhost:5432/postgres"
            ),
            Self::MigrationsNotRun { schema, source } => format!(
                "the event store's tables do not exist in schema `{schema}` ({source}); call \
                 PostgresEventStore::migrate() once at startup, before using the store"
            ),
            Self::Query { operation, source } => format!(
                "PostgreSQL failed to {operation}: {source}; if the tables were changed by hand, \
                 restore them or run PostgresEventStore::migrate() on a fresh schema"
            ),
            Self::Migration { schema, source } => format!(
                "the event store's migrations failed in schema `{schema}`: {source}; check that \
                 the database user may create schemas and tables, and that no migration that \
                 already ran was edited"
            ),
            Self::CorruptRow { operation, reason } => format!(
                "a row read to {operation} holds an impossible value: {reason}; it was probably \
                 written outside the event store: fix or remove that row"
            ),
            Self::ProjectionMigrationsNotRun { schema, source } => format!(
                "the projection store's tables do not exist in schema `{schema}` ({source}); call \
                 PostgresProjectionStore::migrate() once at startup, before using the store"
            ),
            Self::ProjectionMigration { schema, source } => format!(
                "the projection store's migrations failed in schema `{schema}`: {source}; check \
                 that the database user may create schemas and tables, and that no migration \
                 that already ran was edited"
            ),
            Self::ProjectionQuery { operation, source } => format!(
                "PostgreSQL failed to {operation}: {source}; if the statement is a projection's \
                 own SQL, fix it (data PostgreSQL rejects sends the event to the dead letters); \
                 if tables were changed by hand, restore them or rebuild the projection"
            ),
            Self::InvalidTableName { name, reason } => format!(
                "`{name}` is not a valid document table name: {reason}; use 1 to 54 characters \
                 from a-z, 0-9 and _, starting with a letter or _, not with pg_, and not the \
                 name of one of the stores' own tables, e.g. \"order_history\""
            ),
            Self::DocumentTableMissing { table, source } => format!(
                "the document table {table} does not exist ({source}); call \
                 DocumentTable::ensure() once at startup, after PostgresProjectionStore::migrate()"
            ),
            Self::ProjectionCorruptRow { operation, reason } => format!(
                "a value read or written to {operation} is impossible: {reason}; a row was \
                 probably written outside the projection store: fix or remove it (a rebuild \
                 rewrites a projection's read model and checkpoint)"
            ),
            Self::CheckpointConflict { projection } => format!(
                "the checkpoint of projection `{projection}` was moved by someone else while a \
                 batch ran, so the batch was rolled back to avoid applying events twice; run \
                 one ProjectionManager per projection (the manager reloads the checkpoint and \
                 carries on)"
            ),
        }
    }

    /// Classifies a sqlx error that happened while doing `operation` in
    /// `schema`.
    pub(crate) fn from_sqlx(error: sqlx::Error, operation: &'static str, schema: &str) -> Self {
        let source = Arc::new(error);
        match kind(&source) {
            Kind::Unreachable => Self::Unreachable { source },
            Kind::MissingTable => Self::MigrationsNotRun {
                schema: schema.to_owned(),
                source,
            },
            Kind::Other => Self::Query { operation, source },
        }
    }

    /// Classifies a sqlx error of the projection store while doing
    /// `operation` in `schema`: a missing table is
    /// [`DocumentTableMissing`](Self::DocumentTableMissing) when `table`
    /// (a document table, qualified) is given, otherwise
    /// [`ProjectionMigrationsNotRun`](Self::ProjectionMigrationsNotRun).
    pub(crate) fn from_sqlx_projection(
        error: sqlx::Error,
        operation: &'static str,
        schema: &str,
        table: Option<&str>,
    ) -> Self {
        let source = Arc::new(error);
        match (kind(&source), table) {
            (Kind::Unreachable, _) => Self::Unreachable { source },
            (Kind::MissingTable, Some(table)) => Self::DocumentTableMissing {
                table: table.to_owned(),
                source,
            },
            (Kind::MissingTable, None) => Self::ProjectionMigrationsNotRun {
                schema: schema.to_owned(),
                source,
            },
            (Kind::Other, _) => Self::ProjectionQuery { operation, source },
        }
    }

    /// The underlying error, shareable.
    pub(crate) fn shared_source(&self) -> Option<Arc<dyn std::error::Error + Send + Sync>> {
        match self {
            Self::Unreachable { source }
            | Self::MigrationsNotRun { source, .. }
            | Self::Query { source, .. }
            | Self::ProjectionMigrationsNotRun { source, .. }
            | Self::ProjectionQuery { source, .. }
            | Self::DocumentTableMissing { source, .. } => Some(source.clone()),
            Self::Migration { source, .. } | Self::ProjectionMigration { source, .. } => {
                Some(source.clone())
            }
            Self::InvalidSchemaName { .. }
            | Self::CorruptRow { .. }
            | Self::InvalidTableName { .. }
            | Self::ProjectionCorruptRow { .. }
            | Self::CheckpointConflict { .. } => None,
        }
    }

    /// A [`CorruptRow`](Self::CorruptRow) error.
    pub(crate) fn corrupt(operation: &'static str, reason: impl Into<String>) -> Self {
        Self::CorruptRow {
            operation,
            reason: reason.into(),
        }
    }
}

enum Kind {
    Unreachable,
    MissingTable,
    Other,
}

fn kind(error: &sqlx::Error) -> Kind {
    match error {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Configuration(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => Kind::Unreachable,
        sqlx::Error::Database(database) => match database.code().as_deref() {
            // undefined_table; invalid_schema_name
            Some("42P01" | "3F000") => Kind::MissingTable,
            // connection_exception (08), invalid_authorization (28),
            // operator intervention (57P0x), invalid_catalog_name (the
            // database does not exist), too_many_connections
            Some(code)
                if code.starts_with("08")
                    || code.starts_with("28")
                    || code.starts_with("57P")
                    || code == "3D000"
                    || code == "53300" =>
            {
                Kind::Unreachable
            }
            _ => Kind::Other,
        },
        _ => Kind::Other,
    }
}

impl fmt::Display for PostgresError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}] {}", self.code(), self.message())
    }
}

impl std::error::Error for PostgresError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Unreachable { source }
            | Self::MigrationsNotRun { source, .. }
            | Self::Query { source, .. }
            | Self::ProjectionMigrationsNotRun { source, .. }
            | Self::ProjectionQuery { source, .. }
            | Self::DocumentTableMissing { source, .. } => Some(source.as_ref()),
            Self::Migration { source, .. } | Self::ProjectionMigration { source, .. } => {
                Some(source.as_ref())
            }
            Self::InvalidSchemaName { .. }
            | Self::CorruptRow { .. }
            | Self::InvalidTableName { .. }
            | Self::ProjectionCorruptRow { .. }
            | Self::CheckpointConflict { .. } => None,
        }
    }
}

impl CodedError for PostgresError {
    fn code(&self) -> ErrorCode {
        match self {
            Self::InvalidSchemaName { .. } => codes::INVALID_SCHEMA_NAME,
            Self::Unreachable { .. } => codes::DATABASE_UNREACHABLE,
            Self::MigrationsNotRun { .. } => codes::MIGRATIONS_NOT_RUN,
            Self::Query { .. } => codes::QUERY_FAILED,
            Self::Migration { .. } => codes::MIGRATION_FAILED,
            Self::CorruptRow { .. } => codes::CORRUPT_ROW,
            Self::ProjectionMigrationsNotRun { .. } => codes::PROJECTION_MIGRATIONS_NOT_RUN,
            Self::ProjectionMigration { .. } => codes::PROJECTION_MIGRATION_FAILED,
            Self::ProjectionQuery { .. } => codes::PROJECTION_QUERY_FAILED,
            Self::InvalidTableName { .. } => codes::INVALID_TABLE_NAME,
            Self::DocumentTableMissing { .. } => codes::DOCUMENT_TABLE_MISSING,
            Self::ProjectionCorruptRow { .. } => codes::PROJECTION_CORRUPT_ROW,
            Self::CheckpointConflict { .. } => codes::CHECKPOINT_CONFLICT,
        }
    }
}

impl From<PostgresError> for EventStoreError {
    fn from(error: PostgresError) -> Self {
        let source = error.shared_source();
        EventStoreError::Backend {
            code: error.code(),
            message: error.message(),
            source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_well_formed_and_in_the_postgres_range() {
        let mut seen = std::collections::HashSet::new();
        for code in codes::ALL {
            assert!(seen.insert(code.as_str()), "duplicate {code}");
            let digits = code.as_str().strip_prefix("CR-E01").expect("CR-E01xx");
            assert_eq!(digits.len(), 2);
            assert!(digits.chars().all(|c| c.is_ascii_digit()));
        }
    }

    #[test]
    fn messages_start_with_their_code_and_survive_conversion() {
        let errors = [
            PostgresError::InvalidSchemaName {
                name: "Bad".into(),
                reason: "it has upper-case letters",
            },
            PostgresError::from_sqlx(sqlx::Error::PoolTimedOut, "append events", "s"),
            PostgresError::from_sqlx(sqlx::Error::RowNotFound, "append events", "s"),
            PostgresError::corrupt("load a stream", "negative version -1"),
        ];
        for error in errors {
            let text = error.to_string();
            assert!(text.starts_with(&format!("[{}] ", error.code())), "{text}");
            let code = error.code();
            let converted = EventStoreError::from(error);
            assert_eq!(converted.code(), code);
            assert_eq!(converted.to_string(), text);
        }
    }
}
