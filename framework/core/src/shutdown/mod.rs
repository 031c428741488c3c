//! Graceful shutdown of every runner of a service within **one deadline**.
//!
//! A service runs several things at once: a [`Store`](crate::Store) whose
//! effects append events, [`ProjectionManager`](crate::ProjectionManager)s,
//! an [`EventPublisher`](crate::EventPublisher), a
//! [`SagaRuntime`](crate::SagaRuntime), and loops of its own that consume
//! bus subscriptions. When the process is told to stop (Ctrl-C, a
//! Kubernetes `SIGTERM`), each of them must stop taking new work, finish
//! what it has started, save its checkpoint, and do all of it before the
//! orchestrator's grace period runs out.
//!
//! A [`ShutdownGroup`] holds every runner, in the order they should stop
//! (intake first: the store, then what follows the event store), and
//! [`ShutdownGroup::shutdown`] stops them one after the other, sharing one
//! deadline. Every runner implements [`GracefulShutdown`], the one
//! signature they share. What did not finish by the deadline is named in
//! the [`ShutdownReport`] carried by [`ShutdownError::Unfinished`]
//! (`CR-E0050`).
//!
//! Nothing is acknowledged that was not processed: a projection fed by the
//! bus acknowledges a message only after the batch holding it has
//! committed, and a consumer loop spawned with [`ShutdownGroup::spawn`]
//! is only told to stop (through its [`CancellationToken`]), so it can
//! finish the message in hand; whatever it had received and not
//! acknowledged when the deadline cut it off is delivered again to the
//! next consumer.

mod activity;
mod group;
mod runners;

pub(crate) use activity::Activity;
pub use group::{RunnerReport, ShutdownGroup, ShutdownReport};
pub use runners::{GracefulShutdown, RunnerOutcome};
/// The token a consumer loop spawned with [`ShutdownGroup::spawn`] watches.
pub use tokio_util::sync::CancellationToken;

use crate::error::{coded_error, codes};

/// A [`ShutdownGroup::shutdown`] that did not stop everything cleanly.
/// Whatever stopped, stopped; the report says which runner did what.
#[coded_error]
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ShutdownError {
    /// Runners were still busy when the deadline passed; their remaining
    /// work was cancelled (and whatever they had not acknowledged will be
    /// delivered again). A configuration error: the deadline is too short
    /// for the work, and retrying the shutdown cannot help.
    #[code(codes::SHUTDOWN_UNFINISHED, configuration)]
    #[error(
        "{unfinished} did not finish within the shutdown deadline of {deadline:?}; \
         their unfinished work was cancelled and nothing of it was acknowledged. \
         Give the shutdown a longer deadline (and the orchestrator a longer grace period), \
         or make that work finish sooner"
    )]
    Unfinished {
        /// The names of the runners that did not finish, comma-separated.
        unfinished: String,
        /// The deadline that passed.
        deadline: std::time::Duration,
        /// What each runner did.
        report: ShutdownReport,
    },
    /// A runner failed while stopping (a consumer task panicked).
    #[code(codes::SHUTDOWN_RUNNER_FAILED, permanent)]
    #[error(
        "{failed} failed while shutting down: {reason}; \
         the other runners were stopped; see the runner's logs for the cause"
    )]
    RunnerFailed {
        /// The names of the runners that failed, comma-separated.
        failed: String,
        /// The first failure's message.
        reason: String,
        /// What each runner did.
        report: ShutdownReport,
    },
}

impl ShutdownError {
    /// What each runner did.
    pub fn report(&self) -> &ShutdownReport {
        match self {
            Self::Unfinished { report, .. } | Self::RunnerFailed { report, .. } => report,
        }
    }
}
