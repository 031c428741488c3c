//! [`RedisBlueGreenError`]: what can go wrong in a blue/green rebuild of a
//! Redis read model (codes `CR-E0208` to `CR-E0213`). Every one of them
//! leaves the live version, and the readers on it, as they were.

use composable_rust_core::error::{BackendError, coded_error};
use composable_rust_core::{Position, ProjectionError};
use uuid::Uuid;

use crate::error::{RedisStoreError, codes};

/// What can go wrong versioning, loading and switching a projection's
/// Redis read model. An error means readers still see the version they saw.
#[coded_error]
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum RedisBlueGreenError {
    /// The base prefix was rejected (`CR-E0208`).
    #[code(codes::INVALID_BLUE_GREEN_BASE, configuration)]
    #[error(
        "`{base}` cannot be the base prefix of a blue/green Redis read model: {reason}; use 1 to \
         116 characters from A-Z, a-z, 0-9 and _ - : / (versions are the key prefixes \
         `<base>.v<n>`, so a base never contains a dot), e.g. \"myapp:orders\""
    )]
    InvalidBase {
        /// The rejected prefix.
        base: String,
        /// Why it was rejected.
        reason: &'static str,
    },
    /// An event failed while loading the new version (`CR-E0209`).
    #[code(codes::BLUE_GREEN_REBUILD_FAILED, class = source.class())]
    #[error(
        "rebuilding `{projection}` into version {version} failed{}: {source}; the version was \
         marked failed and its keys deleted, and the live version still serves every reader: \
         fix the projection (or the event) and run the rebuild again",
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
    /// The live version changed while the rebuild ran, so readers were
    /// not switched (`CR-E0210`).
    #[code(codes::BLUE_GREEN_SWITCH_REFUSED, transient)]
    #[error(
        "readers of `{base}` were not switched to version {version}: {reason}; the version was \
         marked failed and its keys deleted, and the live version is the one someone else chose: \
         look at RedisBlueGreen::versions(), and run the rebuild again if it is still needed"
    )]
    SwitchRefused {
        /// The base prefix.
        base: String,
        /// The version that was loaded.
        version: u32,
        /// What the switch found, e.g. "the live version is 1, not 2 as when the rebuild began".
        reason: String,
    },
    /// Another rebuild of the same read model holds its lock (`CR-E0211`).
    #[code(codes::BLUE_GREEN_REBUILD_RUNNING, transient)]
    #[error(
        "another rebuild of blue/green read model `{base}` is running (it holds the lock \
         `{lock}`, which it renews while it runs and which expires 30 s after its process \
         dies); wait for it to finish, or retry later"
    )]
    RebuildRunning {
        /// The base prefix.
        base: String,
        /// The lock's Redis key.
        lock: String,
    },
    /// There is no live version yet (`CR-E0212`).
    #[code(codes::BLUE_GREEN_NO_LIVE_VERSION, configuration)]
    #[error(
        "blue/green read model `{base}` has no live version yet; run RedisBlueGreen::rebuild \
         once to create and switch to version 1"
    )]
    NoLiveVersion {
        /// The base prefix.
        base: String,
    },
    /// The new version kept falling behind the live one (`CR-E0213`).
    #[code(codes::BLUE_GREEN_CATCH_UP_TIMED_OUT, transient)]
    #[error(
        "version {version} of `{base}` was still behind the live version after {attempts} \
         catch-up rounds, so readers were not switched; the version was marked failed and its \
         keys deleted: retry when fewer events are being written"
    )]
    CatchUpTimedOut {
        /// The base prefix.
        base: String,
        /// The version that was loaded.
        version: u32,
        /// Rounds tried.
        attempts: u32,
    },
    /// Redis failed, or the registry holds a value this type did not
    /// write; code and class are the store's (`CR-E0203`, `CR-E0204`,
    /// `CR-E0206`).
    #[code(transparent)]
    #[error(transparent)]
    Store(#[from] RedisStoreError),
}

fn at_event(event_id: Option<Uuid>, position: Option<Position>) -> String {
    match (event_id, position) {
        (Some(id), Some(position)) => format!(" at event {id} (position {position})"),
        _ => String::new(),
    }
}

impl From<RedisBlueGreenError> for ProjectionError {
    fn from(error: RedisBlueGreenError) -> Self {
        ProjectionError::Backend(BackendError::new(error))
    }
}
