//! Errors of the PostgreSQL backend, with stable codes in the `CR-E01xx`
//! range (core owns `CR-E00xx`).
//!
//! Constructors and [`PostgresEventStore::migrate`](crate::PostgresEventStore::migrate)
//! return a [`PostgresError`]. Through the [`EventStore`](composable_rust_core::EventStore)
//! and projection traits the same error arrives as a
//! [`composable_rust_core::BackendError`] with the same code,
//! class and message; `downcast_ref::<PostgresError>()` gets it back.
//!
//! Whether retrying can help follows PostgreSQL's SQLSTATE class, mapped
//! explicitly in [`sqlstate_class`] (and tested one mapping at a time).

use std::sync::Arc;

use composable_rust_core::error::{BackendError, ErrorClass, coded_error};
use composable_rust_core::{EventStoreError, ProjectionError};

/// The codes owned by `composable-rust-postgres`.
pub mod codes {
    composable_rust_core::error_codes! {
        /// A schema name was rejected.
        INVALID_SCHEMA_NAME = ("CR-E0101", "invalid PostgreSQL schema name");
        /// PostgreSQL could not be reached, or the connection was lost.
        DATABASE_UNREACHABLE = ("CR-E0102", "PostgreSQL could not be reached");
        /// The event store's tables do not exist: `migrate()` was not called.
        MIGRATIONS_NOT_RUN = ("CR-E0103", "event store tables missing: call PostgresEventStore::migrate()");
        /// A query failed for another reason.
        QUERY_FAILED = ("CR-E0104", "a PostgreSQL query failed");
        /// Running the embedded migrations failed.
        MIGRATION_FAILED = ("CR-E0105", "running the event store migrations failed");
        /// A stored row holds a value the store never writes.
        CORRUPT_ROW = ("CR-E0106", "a stored row holds an impossible value");
        /// The projection store's tables do not exist: `migrate()` was not called.
        PROJECTION_MIGRATIONS_NOT_RUN = ("CR-E0107", "projection store tables missing: call PostgresProjectionStore::migrate()");
        /// Running the projection store's embedded migrations failed.
        PROJECTION_MIGRATION_FAILED = ("CR-E0108", "running the projection store migrations failed");
        /// A projection store query failed for another reason.
        PROJECTION_QUERY_FAILED = ("CR-E0109", "a projection store query failed");
        /// A document table name was rejected.
        INVALID_TABLE_NAME = ("CR-E0110", "invalid document table name");
        /// A document table does not exist: `ensure()` was not called.
        DOCUMENT_TABLE_MISSING = ("CR-E0111", "document table missing: call DocumentTable::ensure()");
        /// A projection store row holds a value the store never writes.
        PROJECTION_CORRUPT_ROW = ("CR-E0112", "a projection store row holds an impossible value");
        /// Another manager moved a projection's checkpoint during a batch.
        CHECKPOINT_CONFLICT = ("CR-E0113", "another manager moved the projection's checkpoint");
        /// A blue/green read model's base name was rejected.
        INVALID_BLUE_GREEN_NAME = ("CR-E0130", "invalid blue/green read model name");
        /// An event failed while a blue/green rebuild loaded the new version.
        BLUE_GREEN_REBUILD_FAILED = ("CR-E0131", "a blue/green rebuild failed; the live version is untouched");
        /// A statement on blue/green versions or their views failed.
        BLUE_GREEN_QUERY_FAILED = ("CR-E0132", "a blue/green versioning query failed");
        /// Another rebuild of the same blue/green read model is running.
        BLUE_GREEN_REBUILD_RUNNING = ("CR-E0133", "another blue/green rebuild is running");
        /// The new version kept falling behind the live one.
        BLUE_GREEN_CATCH_UP_TIMED_OUT = ("CR-E0134", "the new version could not catch up with the live one");
        /// A blue/green read model has no live version yet.
        BLUE_GREEN_NO_LIVE_VERSION = ("CR-E0135", "no live blue/green version yet");
        /// A table or view name the blue/green switch will not splice into SQL.
        BLUE_GREEN_UNEXPECTED_NAME = ("CR-E0136", "a version holds a table whose name cannot be switched");
        /// Stored events carry transaction ids this server has not reached
        /// (they were copied from another server by a logical dump).
        TRANSACTION_IDS_AHEAD = ("CR-E0114", "stored events carry transaction ids ahead of the server's");
        /// The partition lease tables do not exist: `PartitionLeases::migrate()` was not called.
        LEASE_TABLES_MISSING = ("CR-E0120", "partition lease tables missing: call PartitionLeases::migrate()");
        /// A worker lost a partition's lease; its unit of work was rolled back.
        LEASE_LOST = ("CR-E0121", "a worker no longer holds a partition's lease (fenced)");
        /// Workers of one projection were configured with different partition counts.
        PARTITION_COUNT_CHANGED = ("CR-E0122", "the partition count differs from the one recorded");
        /// A partitioned worker's settings were rejected.
        INVALID_PARTITIONING = ("CR-E0123", "invalid partitioned worker settings");
        /// A query on the partition lease tables failed.
        LEASE_QUERY_FAILED = ("CR-E0124", "a partition lease query failed");
        /// Running the partition lease migrations failed.
        LEASE_MIGRATION_FAILED = ("CR-E0125", "running the partition lease migrations failed");
    }
}

/// What can go wrong in the PostgreSQL backend. Its `Display` starts with
/// the code, e.g. `[CR-E0103] ...`, and says what happened and what to do;
/// [`class`](composable_rust_core::CodedError::class) says whether
/// retrying can help.
#[coded_error]
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum PostgresError {
    /// A schema name was rejected (`CR-E0101`).
    #[code(codes::INVALID_SCHEMA_NAME, configuration)]
    #[error(
        "`{name}` is not a valid PostgreSQL schema name: {reason}; use 1 to 56 characters from \
         a-z, 0-9 and _, starting with a letter or _ and not with pg_, e.g. \"composable_rust\""
    )]
    InvalidSchemaName {
        /// The rejected name.
        name: String,
        /// Why it was rejected.
        reason: &'static str,
    },
    /// PostgreSQL could not be reached, refused the login, or the
    /// connection broke (`CR-E0102`). Transient unless the server said the
    /// login or database is wrong (configuration).
    #[code(codes::DATABASE_UNREACHABLE, class = sqlx_error_class(source))]
    #[error(
        "could not reach PostgreSQL: {source}; check that the server is running and that the \
         URL or the pool's options (host, port, user, password, database) are right, e.g. \
         DATABASE_URL=postgres://postgres@localhost:5432/postgres"
    )]
    Unreachable {
        /// What sqlx reported.
        source: Arc<sqlx::Error>,
    },
    /// The tables are missing: `migrate()` has not run for this schema
    /// (`CR-E0103`).
    #[code(codes::MIGRATIONS_NOT_RUN, configuration)]
    #[error(
        "the event store's tables do not exist in schema `{schema}` ({source}); call \
         PostgresEventStore::migrate() once at startup, before using the store"
    )]
    MigrationsNotRun {
        /// The schema the store uses.
        schema: String,
        /// What PostgreSQL reported (`undefined_table`, 42P01).
        source: Arc<sqlx::Error>,
    },
    /// A query failed for another reason (`CR-E0104`); the class follows
    /// the SQLSTATE.
    #[code(codes::QUERY_FAILED, class = sqlx_error_class(source))]
    #[error(
        "PostgreSQL failed to {operation}: {source} ({}); {}",
        sqlx_error_class(source),
        advice(
            sqlx_error_class(source),
            "restore them or run PostgresEventStore::migrate() on a fresh schema"
        )
    )]
    Query {
        /// What the store was doing, e.g. `"append events"`.
        operation: &'static str,
        /// What sqlx reported.
        source: Arc<sqlx::Error>,
    },
    /// Running the embedded migrations failed (`CR-E0105`).
    #[code(codes::MIGRATION_FAILED, configuration)]
    #[error(
        "the event store's migrations failed in schema `{schema}`: {source}; check that the \
         database user may create schemas and tables, and that no migration that already ran \
         was edited"
    )]
    Migration {
        /// The schema being migrated.
        schema: String,
        /// What the migrator reported.
        source: Arc<sqlx::migrate::MigrateError>,
    },
    /// A row holds a value the store never writes, e.g. a negative version
    /// (`CR-E0106`).
    #[code(codes::CORRUPT_ROW, permanent)]
    #[error(
        "a row read to {operation} holds an impossible value: {reason}; it was probably written \
         outside the event store: fix or remove that row"
    )]
    CorruptRow {
        /// What the store was doing.
        operation: &'static str,
        /// What is wrong with the row.
        reason: String,
    },
    /// The projection store's tables are missing: its `migrate()` has not
    /// run for this schema (`CR-E0107`).
    #[code(codes::PROJECTION_MIGRATIONS_NOT_RUN, configuration)]
    #[error(
        "the projection store's tables do not exist in schema `{schema}` ({source}); call \
         PostgresProjectionStore::migrate() once at startup, before using the store"
    )]
    ProjectionMigrationsNotRun {
        /// The schema the projection store uses.
        schema: String,
        /// What PostgreSQL reported (`undefined_table`, 42P01).
        source: Arc<sqlx::Error>,
    },
    /// Running the projection store's migrations failed (`CR-E0108`).
    #[code(codes::PROJECTION_MIGRATION_FAILED, configuration)]
    #[error(
        "the projection store's migrations failed in schema `{schema}`: {source}; check that \
         the database user may create schemas and tables, and that no migration that already \
         ran was edited"
    )]
    ProjectionMigration {
        /// The schema being migrated.
        schema: String,
        /// What the migrator reported.
        source: Arc<sqlx::migrate::MigrateError>,
    },
    /// A projection store query failed for another reason (`CR-E0109`);
    /// the class follows the SQLSTATE.
    #[code(codes::PROJECTION_QUERY_FAILED, class = sqlx_error_class(source))]
    #[error(
        "PostgreSQL failed to {operation}: {source} ({}); {}",
        sqlx_error_class(source),
        advice(sqlx_error_class(source), "restore them or rebuild the projection")
    )]
    ProjectionQuery {
        /// What the store was doing, e.g. `"commit a unit of work"`.
        operation: &'static str,
        /// What sqlx reported.
        source: Arc<sqlx::Error>,
    },
    /// A document table name was rejected (`CR-E0110`).
    #[code(codes::INVALID_TABLE_NAME, configuration)]
    #[error(
        "`{name}` is not a valid document table name: {reason}; use 1 to 54 characters from \
         a-z, 0-9 and _, starting with a letter or _, not with pg_, and not the name of one of \
         the stores' own tables, e.g. \"order_history\""
    )]
    InvalidTableName {
        /// The rejected name.
        name: String,
        /// Why it was rejected.
        reason: &'static str,
    },
    /// A document table does not exist: `DocumentTable::ensure()` has not
    /// run (`CR-E0111`).
    #[code(codes::DOCUMENT_TABLE_MISSING, configuration)]
    #[error(
        "the document table {table} does not exist ({source}); call DocumentTable::ensure() \
         once at startup, after PostgresProjectionStore::migrate()"
    )]
    DocumentTableMissing {
        /// The table, schema-qualified.
        table: String,
        /// What PostgreSQL reported.
        source: Arc<sqlx::Error>,
    },
    /// A projection store row holds a value the store never writes, e.g. a
    /// negative checkpoint, or a position too large to store (`CR-E0112`).
    #[code(codes::PROJECTION_CORRUPT_ROW, permanent)]
    #[error(
        "a value read or written to {operation} is impossible: {reason}; a row was probably \
         written outside the projection store: fix or remove it (a rebuild rewrites a \
         projection's read model and checkpoint)"
    )]
    ProjectionCorruptRow {
        /// What the store was doing.
        operation: &'static str,
        /// What is wrong with the value.
        reason: String,
    },
    /// Another manager of the same projection moved its checkpoint to or
    /// past this batch's position while the batch ran; the batch was not
    /// committed (`CR-E0113`).
    #[code(codes::CHECKPOINT_CONFLICT, transient)]
    #[error(
        "the checkpoint of projection `{projection}` was moved by someone else while a batch \
         ran, so the batch was rolled back to avoid applying events twice; run one \
         ProjectionManager per projection (the manager reloads the checkpoint and carries on)"
    )]
    CheckpointConflict {
        /// The projection.
        projection: String,
    },
    /// The events table holds events whose transaction id (the first part
    /// of their position) is at or beyond the next transaction id this
    /// server will hand out (`CR-E0114`). They were copied from another
    /// server, typically by a logical dump and restore (`pg_dump`), which
    /// keeps the column's values but not the server's transaction
    /// counter. Readers only return events of transactions older than the
    /// oldest one still running, so they would never return these, and
    /// every new event would sort before them.
    #[code(codes::TRANSACTION_IDS_AHEAD, configuration)]
    #[error(
        "the events table in schema `{schema}` holds events written by transaction {stored}, \
         but this server's next transaction id is {next}: the events were copied from another \
         server (a logical dump and restore, or an INSERT ... SELECT that copied \
         transaction_id) and keep that server's transaction ids. Readers would never deliver \
         them and new events would sort before them, so the store refuses to run. Move event \
         stores with physical replication or pg_basebackup (they keep transaction ids), or \
         renumber the copied events' positions as the runbook (\"Moving an event store between \
         servers\") shows, then rebuild the projections"
    )]
    TransactionIdsAhead {
        /// The store's schema.
        schema: String,
        /// The largest transaction id stored in the events table.
        stored: u64,
        /// The next transaction id the server will assign (the `xmax` of
        /// the current snapshot).
        next: u64,
    },
}

/// What to do about a failed query, by class; `tables` is the advice for
/// tables changed by hand.
fn advice(class: ErrorClass, tables: &str) -> String {
    match class {
        ErrorClass::Transient => "retrying can help: the operation is retried with backoff \
                                  (check the server's health if it keeps failing)"
            .to_owned(),
        ErrorClass::Permanent => "PostgreSQL refused this data, so retrying the same \
                                  statement cannot help: a projection sends the event to the \
                                  dead letters; fix the event or the projection's SQL"
            .to_owned(),
        ErrorClass::Configuration => format!(
            "the database is not set up as the store expects (permissions, missing objects, a \
             read-only server); fix the setup; if tables were changed by hand, {tables}"
        ),
    }
}

impl PostgresError {
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

    /// A [`CorruptRow`](Self::CorruptRow) error.
    pub(crate) fn corrupt(operation: &'static str, reason: impl Into<String>) -> Self {
        Self::CorruptRow {
            operation,
            reason: reason.into(),
        }
    }

    /// The SQLSTATE PostgreSQL reported, if the error came from the server.
    pub fn sqlstate(&self) -> Option<String> {
        let source = match self {
            Self::Unreachable { source }
            | Self::MigrationsNotRun { source, .. }
            | Self::Query { source, .. }
            | Self::ProjectionMigrationsNotRun { source, .. }
            | Self::ProjectionQuery { source, .. }
            | Self::DocumentTableMissing { source, .. } => source,
            _ => return None,
        };
        source
            .as_database_error()
            .and_then(|database| database.code())
            .map(|code| code.into_owned())
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

/// Whether retrying can help after `error`.
pub(crate) fn sqlx_error_class(error: &sqlx::Error) -> ErrorClass {
    match error {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::Protocol(_) => ErrorClass::Transient,
        // A closed pool or a bad URL stays that way: retrying cannot help.
        sqlx::Error::Configuration(_) | sqlx::Error::PoolClosed => ErrorClass::Configuration,
        sqlx::Error::Database(database) => match database.code() {
            Some(code) => sqlstate_class(&code),
            None => ErrorClass::Permanent,
        },
        // A value that does not decode, a row that is not there, a type
        // mismatch: the same query on the same data fails the same way.
        _ => ErrorClass::Permanent,
    }
}

/// Whether retrying can help after PostgreSQL answered with `sqlstate`
/// (see <https://www.postgresql.org/docs/current/errcodes-appendix.html>).
///
/// Transient: the connection, the server's resources, or concurrency;
/// configuration: the database is not set up as expected; permanent: this
/// data or statement is refused and always will be. An unknown class is
/// permanent, so a failure nobody understands is dead-lettered rather than
/// retried forever.
pub fn sqlstate_class(sqlstate: &str) -> ErrorClass {
    use ErrorClass::{Configuration, Permanent, Transient};
    match sqlstate {
        // serialization_failure, deadlock_detected, lock_not_available,
        // query_canceled (statement timeout), admin/crash shutdown,
        // cannot_connect_now, idle session timeout
        "40001" | "40P01" | "55P03" | "57014" | "57P01" | "57P02" | "57P03" | "57P05" => Transient,
        // database_dropped
        "57P04" => Configuration,
        // read_only_sql_transaction: a standby, or a read-only default
        "25006" => Configuration,
        // undefined_table, undefined_column, undefined_function,
        // insufficient_privilege and the rest of class 42
        code if code.starts_with("42") => Configuration,
        _ => match sqlstate.get(..2) {
            // connection exception; insufficient resources (disk full, out
            // of memory, too many connections); system error (I/O);
            // transaction rollback (40002..)
            Some("08" | "53" | "58" | "40") => Transient,
            // invalid authorization; invalid catalog (the database does not
            // exist); invalid schema name; feature not supported;
            // configuration file error; invalid grantor; invalid role
            Some("28" | "3D" | "3F" | "0A" | "F0" | "0L" | "0P") => Configuration,
            // data exception (bad values, 22); integrity constraint (23);
            // program limit exceeded (a key too long for an index, 54);
            // invalid transaction state (25); internal error (XX)
            _ => Permanent,
        },
    }
}

impl From<PostgresError> for EventStoreError {
    fn from(error: PostgresError) -> Self {
        EventStoreError::Backend(BackendError::new(error))
    }
}

impl From<PostgresError> for ProjectionError {
    fn from(error: PostgresError) -> Self {
        ProjectionError::Backend(BackendError::new(error))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use composable_rust_core::CodedError;

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
            let (code, class) = (error.code(), error.class());
            let converted = EventStoreError::from(error);
            assert_eq!(converted.code(), code);
            assert_eq!(converted.class(), class);
            assert_eq!(converted.to_string(), text);
            let EventStoreError::Backend(backend) = &converted else {
                panic!("{converted:?}");
            };
            assert!(backend.is::<PostgresError>());
        }
    }

    #[test]
    fn every_sqlstate_class_maps_to_the_documented_retry_class() {
        use ErrorClass::{Configuration, Permanent, Transient};
        let cases = [
            ("08006", Transient, "connection_failure"),
            (
                "08001",
                Transient,
                "sqlclient_unable_to_establish_sqlconnection",
            ),
            ("40001", Transient, "serialization_failure"),
            ("40P01", Transient, "deadlock_detected"),
            ("55P03", Transient, "lock_not_available"),
            ("57014", Transient, "query_canceled"),
            ("57P01", Transient, "admin_shutdown"),
            ("57P03", Transient, "cannot_connect_now"),
            ("53100", Transient, "disk_full"),
            ("53200", Transient, "out_of_memory"),
            ("53300", Transient, "too_many_connections"),
            ("58030", Transient, "io_error"),
            ("57P04", Configuration, "database_dropped"),
            ("25006", Configuration, "read_only_sql_transaction"),
            ("42P01", Configuration, "undefined_table"),
            ("42703", Configuration, "undefined_column"),
            ("42501", Configuration, "insufficient_privilege"),
            ("42601", Configuration, "syntax_error"),
            ("28P01", Configuration, "invalid_password"),
            ("3D000", Configuration, "invalid_catalog_name"),
            ("3F000", Configuration, "invalid_schema_name"),
            ("0A000", Configuration, "feature_not_supported"),
            ("22001", Permanent, "string_data_right_truncation"),
            ("22P02", Permanent, "invalid_text_representation"),
            (
                "22P05",
                Permanent,
                "untranslatable_character (\\u0000 in jsonb)",
            ),
            ("23505", Permanent, "unique_violation"),
            ("23503", Permanent, "foreign_key_violation"),
            (
                "54000",
                Permanent,
                "program_limit_exceeded (index row too large)",
            ),
            ("54001", Permanent, "statement_too_complex"),
            ("25P02", Permanent, "in_failed_sql_transaction"),
            ("XX000", Permanent, "internal_error"),
            ("ZZ999", Permanent, "unknown class"),
        ];
        for (sqlstate, class, name) in cases {
            assert_eq!(sqlstate_class(sqlstate), class, "{sqlstate} {name}");
        }
    }

    #[test]
    fn driver_errors_map_to_their_retry_class() {
        assert_eq!(
            sqlx_error_class(&sqlx::Error::PoolTimedOut),
            ErrorClass::Transient
        );
        assert_eq!(
            sqlx_error_class(&sqlx::Error::Io(std::io::ErrorKind::ConnectionReset.into())),
            ErrorClass::Transient
        );
        assert_eq!(
            sqlx_error_class(&sqlx::Error::PoolClosed),
            ErrorClass::Configuration
        );
        assert_eq!(
            sqlx_error_class(&sqlx::Error::RowNotFound),
            ErrorClass::Permanent
        );
    }
}
