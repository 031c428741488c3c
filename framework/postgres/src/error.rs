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

    /// Every code this crate owns, in order.
    pub const ALL: &[ErrorCode] = &[
        INVALID_SCHEMA_NAME,
        DATABASE_UNREACHABLE,
        MIGRATIONS_NOT_RUN,
        QUERY_FAILED,
        MIGRATION_FAILED,
        CORRUPT_ROW,
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
}

impl PostgresError {
    /// What happened and what to do, without the code prefix.
    pub fn message(&self) -> String {
        match self {
            Self::InvalidSchemaName { name, reason } => format!(
                "`{name}` is not a valid schema name for the event store: {reason}; use 1 to 56 \
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
            | Self::Query { source, .. } => Some(source.as_ref()),
            Self::Migration { source, .. } => Some(source.as_ref()),
            Self::InvalidSchemaName { .. } | Self::CorruptRow { .. } => None,
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
        }
    }
}

impl From<PostgresError> for EventStoreError {
    fn from(error: PostgresError) -> Self {
        let source: Option<Arc<dyn std::error::Error + Send + Sync>> = match &error {
            PostgresError::Unreachable { source }
            | PostgresError::MigrationsNotRun { source, .. }
            | PostgresError::Query { source, .. } => Some(source.clone()),
            PostgresError::Migration { source, .. } => Some(source.clone()),
            PostgresError::InvalidSchemaName { .. } | PostgresError::CorruptRow { .. } => None,
        };
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
