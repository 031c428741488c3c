//! [`BlueGreenError`]: what can go wrong in a blue/green rebuild (codes
//! `CR-E0130` to `CR-E0136`). Every one of them leaves the live version
//! and its readers as they were.

use std::sync::Arc;

use composable_rust_core::error::{BackendError, ErrorClass, coded_error};
use composable_rust_core::{Position, ProjectionError};
use uuid::Uuid;

use crate::error::{PostgresError, codes, sqlx_error_class};

/// What can go wrong versioning, loading and switching a projection's
/// read model. An error means readers still see the version they saw.
#[coded_error]
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum BlueGreenError {
    /// The base name was rejected (`CR-E0130`).
    #[code(codes::INVALID_BLUE_GREEN_NAME, configuration)]
    #[error(
        "`{name}` cannot name a blue/green read model: {reason}; use 1 to 48 characters from \
         a-z, 0-9 and _, starting with a letter or _ and not with pg_ (versions are named \
         `<name>_v<n>`), e.g. \"orders_read\""
    )]
    InvalidName {
        /// The rejected name.
        name: String,
        /// Why it was rejected.
        reason: &'static str,
    },
    /// An event failed while loading the new version (`CR-E0131`).
    #[code(codes::BLUE_GREEN_REBUILD_FAILED, class = source.class())]
    #[error(
        "rebuilding `{projection}` into version {version} failed{}: {source}; the unfinished \
         version was dropped and the live version still serves every reader: fix the \
         projection (or the event) and run the rebuild again",
        at_event(*event_id, *position)
    )]
    RebuildFailed {
        /// The projection being rebuilt.
        projection: String,
        /// The version that was being loaded.
        version: u32,
        /// The event that failed, when one did.
        event_id: Option<Uuid>,
        /// Its position.
        position: Option<Position>,
        /// Why (boxed: it is large, and errors travel in `Result`s).
        source: Box<ProjectionError>,
    },
    /// A statement on the versions or their views failed (`CR-E0132`);
    /// the class follows the SQLSTATE.
    #[code(codes::BLUE_GREEN_QUERY_FAILED, class = sqlx_error_class(source))]
    #[error(
        "PostgreSQL failed to {operation} for blue/green read model `{base}`: {source}; \
         nothing was switched: {}",
        query_advice(source)
    )]
    Query {
        /// The base name.
        base: String,
        /// What was being done.
        operation: &'static str,
        /// What sqlx reported.
        source: Arc<sqlx::Error>,
    },
    /// Another rebuild of the same read model is running (`CR-E0133`).
    #[code(codes::BLUE_GREEN_REBUILD_RUNNING, transient)]
    #[error(
        "another rebuild of blue/green read model `{base}` is running (it holds its advisory \
         lock); wait for it to finish, or retry later"
    )]
    RebuildRunning {
        /// The base name.
        base: String,
    },
    /// The new version kept falling behind the live one (`CR-E0134`).
    #[code(codes::BLUE_GREEN_CATCH_UP_TIMED_OUT, transient)]
    #[error(
        "version {version} of `{base}` was still behind the live version after {attempts} \
         catch-up rounds, so readers were not switched; the version was dropped: retry when \
         fewer events are being written"
    )]
    CatchUpTimedOut {
        /// The base name.
        base: String,
        /// The version that was loaded.
        version: u32,
        /// Rounds tried.
        attempts: u32,
    },
    /// There is no live version yet (`CR-E0135`).
    #[code(codes::BLUE_GREEN_NO_LIVE_VERSION, configuration)]
    #[error(
        "blue/green read model `{base}` has no live version yet; run BlueGreen::rebuild once \
         to create and switch to version 1"
    )]
    NoLiveVersion {
        /// The base name.
        base: String,
    },
    /// The catalog holds a name the switch will not splice into SQL
    /// (`CR-E0136`).
    #[code(codes::BLUE_GREEN_UNEXPECTED_NAME, configuration)]
    #[error(
        "`{schema}`.`{name}` cannot be switched: {reason}; a version's tables (and the \
         read model's views) must have names from a-z, 0-9 and _: rename or drop it"
    )]
    UnexpectedName {
        /// The schema holding it.
        schema: String,
        /// The table or view.
        name: String,
        /// Why it was rejected.
        reason: &'static str,
    },
    /// Creating a version's tables failed; code and class are the store's.
    #[code(transparent)]
    #[error(transparent)]
    Store(#[from] PostgresError),
}

fn query_advice(source: &sqlx::Error) -> &'static str {
    if sqlx_error_class(source) == ErrorClass::Transient {
        "retry when the server is back"
    } else {
        "check the server log, the privileges (CREATE on the database), and that no view of \
         your own depends on the read model's views"
    }
}

fn at_event(event_id: Option<Uuid>, position: Option<Position>) -> String {
    match (event_id, position) {
        (Some(id), Some(position)) => format!(" at event {id} (position {position})"),
        _ => String::new(),
    }
}

impl From<BlueGreenError> for ProjectionError {
    fn from(error: BlueGreenError) -> Self {
        ProjectionError::Backend(BackendError::new(error))
    }
}
