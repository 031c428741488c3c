//! [`ProjectionHealth`]: whether a manager is keeping up, waiting out a
//! transient failure, or stopped on one that retrying cannot fix.

use chrono::{DateTime, Utc};

use crate::error::{CodedError, ErrorCode};

/// What a [`ProjectionManager`](super::ProjectionManager) is doing about
/// failures, for health checks and dashboards (also the
/// [`HEALTH`](super::metrics::HEALTH) gauge).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ProjectionHealth {
    /// No failure since the last successful batch.
    #[default]
    Running,
    /// Transient failures in a row (the store or the source is
    /// unavailable); the manager retries with growing backoff and has
    /// applied nothing since `since`.
    Retrying {
        /// When the first failure of the run happened.
        since: DateTime<Utc>,
        /// Failed attempts so far.
        attempts: u32,
        /// The code of the last failure.
        code: ErrorCode,
        /// The last failure's message.
        error: String,
    },
    /// Stopped on a failure retrying cannot fix (configuration, or a
    /// permanent failure that no single event explains): fix it and start
    /// the manager again.
    Stopped {
        /// The code of the failure.
        code: ErrorCode,
        /// Its message, which says what to fix.
        error: String,
    },
}

impl ProjectionHealth {
    /// Whether the manager is applying events normally.
    pub fn is_running(&self) -> bool {
        matches!(self, Self::Running)
    }

    /// The value of the health gauge: 0 running, 1 retrying, 2 stopped.
    pub(super) fn gauge(&self) -> f64 {
        match self {
            Self::Running => 0.0,
            Self::Retrying { .. } => 1.0,
            Self::Stopped { .. } => 2.0,
        }
    }

    pub(super) fn retrying(previous: &Self, now: DateTime<Utc>, error: &dyn CodedError) -> Self {
        let (since, attempts) = match previous {
            Self::Retrying {
                since, attempts, ..
            } => (*since, attempts + 1),
            _ => (now, 1),
        };
        Self::Retrying {
            since,
            attempts,
            code: error.code(),
            error: error.to_string(),
        }
    }
}
