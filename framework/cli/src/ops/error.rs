//! [`OpsError`]: what the operations commands report. The stores' own
//! errors (an unreachable server, a bad schema name, a corrupt row...)
//! pass through unchanged, with their codes; the codes here are for what
//! only the command line knows (a missing URL, a schema that is not
//! there, a dead letter that does not exist).

use composable_rust_core::error::coded_error;
use composable_rust_core::{ErrorClass, EventStoreError, ProjectionError};
use composable_rust_postgres::{BlueGreenError, PostgresError};
use composable_rust_redis::RedisStoreError;
use uuid::Uuid;

use super::codes;

/// An error of an operations command; its `Display` starts with the code.
#[coded_error]
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpsError {
    /// No database URL (`CR-E0301`).
    #[code(codes::MISSING_DATABASE_URL, configuration)]
    #[error(
        "no PostgreSQL URL: pass --database-url postgres://user@host:5432/database, or set \
         DATABASE_URL"
    )]
    MissingDatabaseUrl,
    /// The schema does not exist (`CR-E0302`).
    #[code(codes::SCHEMA_NOT_FOUND, configuration)]
    #[error("the database has no schema `{schema}`; {}", elsewhere(others))]
    SchemaNotFound {
        /// The schema asked for.
        schema: String,
        /// The schemas that hold event stores.
        others: Vec<String>,
    },
    /// The schema holds no event store (`CR-E0303`).
    #[code(codes::NO_EVENT_TABLES, configuration)]
    #[error(
        "schema `{schema}` holds no event store tables (events, snapshots): the service \
         creates them with PostgresEventStore::migrate() when it starts; {}",
        elsewhere(others)
    )]
    NoEventTables {
        /// The schema asked for.
        schema: String,
        /// The schemas that hold event stores.
        others: Vec<String>,
    },
    /// The schema holds no projection store (`CR-E0304`).
    #[code(codes::NO_PROJECTION_TABLES, configuration)]
    #[error(
        "schema `{schema}` holds no projection store tables (projection_checkpoints, \
         projection_dead_letters): pass the schema of the projection store with \
         --projection-schema, or --key-prefix for a Redis projection store; the service \
         creates the tables with PostgresProjectionStore::migrate()"
    )]
    NoProjectionTables {
        /// The schema asked for.
        schema: String,
    },
    /// The projection store predates requests (`CR-E0311`).
    #[code(codes::NO_REQUEST_TABLE, configuration)]
    #[error(
        "the projection store in schema `{schema}` has no projection_requests table: it was \
         migrated by a release of Composable Rust before operator requests (retry, reset); \
         deploy the service with this release and start it once (its \
         PostgresProjectionStore::migrate() adds the table), then run the command again"
    )]
    NoRequestTable {
        /// The projection store's schema.
        schema: String,
    },
    /// No Redis URL (`CR-E0305`).
    #[code(codes::MISSING_REDIS_URL, configuration)]
    #[error(
        "--key-prefix `{prefix}` names a Redis projection store, but there is no Redis URL: \
         pass --redis-url redis://host:6379, or set REDIS_URL"
    )]
    MissingRedisUrl {
        /// The key prefix given.
        prefix: String,
    },
    /// The stream has no events (`CR-E0306`).
    #[code(codes::STREAM_NOT_FOUND, permanent)]
    #[error(
        "stream `{stream}` has no events in schema `{schema}`; list the streams with \
         `composable events list`"
    )]
    StreamNotFound {
        /// The stream asked for.
        stream: String,
        /// The event store's schema.
        schema: String,
    },
    /// No such dead letter (`CR-E0307`).
    #[code(codes::DEAD_LETTER_NOT_FOUND, permanent)]
    #[error(
        "projection `{projection}` has no dead letter for event {event_id} (it was retried or \
         discarded already, or the id is wrong); list them with `composable dead-letters list`"
    )]
    DeadLetterNotFound {
        /// The projection.
        projection: String,
        /// The event id asked for.
        event_id: Uuid,
    },
    /// No such projection (`CR-E0308`).
    #[code(codes::UNKNOWN_PROJECTION, permanent)]
    #[error(
        "no projection `{projection}` has a checkpoint in this store; {}",
        known_projections(known)
    )]
    UnknownProjection {
        /// The projection asked for.
        projection: String,
        /// The projections that have checkpoints.
        known: Vec<String>,
    },
    /// A bad position (`CR-E0309`).
    #[code(codes::INVALID_POSITION, permanent)]
    #[error(
        "`{text}` is not a position: write it as commit/sequence, as the commands print it \
         (e.g. 1045/17), or 0/0 for the start"
    )]
    InvalidPosition {
        /// What was given.
        text: String,
    },
    /// Writing the output failed (`CR-E0310`); retrying helps only if the
    /// operating system says so ([`ErrorClass::of_io`]).
    #[code(codes::IO, class = ErrorClass::of_io(source))]
    #[error("could not {operation}: {source}; check that the output is writable")]
    Io {
        /// What the command was doing.
        operation: &'static str,
        /// What the OS reported.
        source: std::io::Error,
    },
    /// `--base` has no blue/green registry (`CR-E0312`).
    #[code(codes::NO_BLUE_GREEN_REGISTRY, configuration)]
    #[error(
        "schema `{base}` holds no blue/green registry (table {base}.blue_green_versions): \
         --base must name the base schema given to BlueGreen::new, in the database of \
         --database-url; the service creates the registry with BlueGreen::migrate() when it \
         starts, so start it once (or check --base and --database-url) and run the command \
         again"
    )]
    NoBlueGreenRegistry {
        /// The base asked for.
        base: String,
    },
    /// `--watch` ran out of time (`CR-E0313`); the rebuild goes on.
    #[code(codes::WATCH_TIMED_OUT, transient)]
    #[error(
        "version {version} of `{base}` was still building after --timeout {timeout} \
         ({progress}); the rebuild goes on: watch it again, or pass a longer --timeout \
         (e.g. --timeout 4h)"
    )]
    WatchTimedOut {
        /// The base.
        base: String,
        /// The building version.
        version: u32,
        /// The timeout, as given.
        timeout: String,
        /// How far it got.
        progress: String,
    },
    /// A blue/green read model's registry could not be read, or the base
    /// name is invalid; code and class are the postgres crate's.
    #[code(transparent)]
    #[error(transparent)]
    BlueGreen(#[from] BlueGreenError),
    /// A PostgreSQL store failed; code and class are the store's.
    #[code(transparent)]
    #[error(transparent)]
    Postgres(#[from] PostgresError),
    /// The Redis store failed; code and class are the store's.
    #[code(transparent)]
    #[error(transparent)]
    Redis(#[from] RedisStoreError),
    /// Reading events failed; code and class are the event store's.
    #[code(transparent)]
    #[error(transparent)]
    EventStore(#[from] EventStoreError),
    /// A projection store operation failed; code and class are the store's.
    #[code(transparent)]
    #[error(transparent)]
    Projection(#[from] ProjectionError),
}

impl OpsError {
    /// An [`Io`](Self::Io) error while writing the output.
    pub(crate) fn write(source: std::io::Error) -> Self {
        Self::Io {
            operation: "write the output",
            source,
        }
    }
}

/// Where else to look, for a schema without an event store.
fn elsewhere(others: &[String]) -> String {
    if others.is_empty() {
        "no schema of this database holds an event store: check --database-url (or \
         DATABASE_URL)"
            .to_owned()
    } else {
        format!(
            "pass --schema with one that holds an event store: {}",
            others.join(", ")
        )
    }
}

fn known_projections(known: &[String]) -> String {
    if known.is_empty() {
        "this store has no checkpoints at all: is it the service's projection store \
         (--projection-schema, --key-prefix)?"
            .to_owned()
    } else {
        format!("the store has: {}", known.join(", "))
    }
}
