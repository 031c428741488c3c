//! [`GracefulShutdown`]: the one signature every runner stops with, and
//! its implementations for the framework's runners.

use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::StoreError;
use crate::event_bus::EventPublisher;
use crate::projection::{Projection, ProjectionCheckpoint, ProjectionManager};
use crate::reducer::Reducer;
use crate::saga::{Saga, SagaRuntime};
use crate::store::Store;

/// How one runner's shutdown went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
#[non_exhaustive]
pub enum RunnerOutcome {
    /// It stopped taking work, finished what it had started and saved its
    /// checkpoint.
    Finished,
    /// It was still busy at the deadline; `left` says with what. Its
    /// unfinished work was cancelled and was not acknowledged.
    Unfinished {
        /// What was left (e.g. "3 effect(s) still running").
        left: String,
    },
    /// It failed while stopping.
    Failed {
        /// Why.
        reason: String,
    },
}

/// Something that runs in the background and can stop gracefully: stop
/// taking new work, let the work in flight finish, save its checkpoint,
/// all within `deadline`. A [`ShutdownGroup`](super::ShutdownGroup) calls
/// it for every runner registered with it, sharing one deadline.
///
/// Implemented by [`Store`], [`ProjectionManager`], [`EventPublisher`] and
/// [`SagaRuntime`] (a manager or publisher stops after the batch in
/// progress has committed, whether it runs `run` or `catch_up`); a loop of
/// your own is registered with [`ShutdownGroup::spawn`](super::ShutdownGroup::spawn).
/// An implementation must return [`RunnerOutcome::Unfinished`] rather
/// than wait past `deadline` (the group cuts it off there anyway).
///
/// # Examples
///
/// A runner of your own, e.g. one that flushes a buffer before it stops:
///
/// ```
/// use std::time::Duration;
/// use async_trait::async_trait;
/// use composable_rust_core::shutdown::{GracefulShutdown, RunnerOutcome, ShutdownGroup};
///
/// #[derive(Debug)]
/// struct AuditBuffer;
///
/// #[async_trait]
/// impl GracefulShutdown for AuditBuffer {
///     async fn shutdown_within(&self, deadline: Duration) -> RunnerOutcome {
///         match tokio::time::timeout(deadline, async { /* flush */ }).await {
///             Ok(()) => RunnerOutcome::Finished,
///             Err(_) => RunnerOutcome::Unfinished { left: "the buffer was not flushed".into() },
///         }
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let mut group = ShutdownGroup::new();
/// group.add("audit-buffer", AuditBuffer);
/// let report = group.shutdown(Duration::from_secs(10)).await?;
/// assert_eq!(report.runners[0].outcome, RunnerOutcome::Finished);
/// # Ok(())
/// # }
/// ```
#[async_trait]
pub trait GracefulShutdown: Send + Sync + 'static {
    /// Stops within `deadline` and says how it went.
    async fn shutdown_within(&self, deadline: Duration) -> RunnerOutcome;
}

impl std::fmt::Debug for dyn GracefulShutdown {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("dyn GracefulShutdown")
    }
}

/// Refuses new actions, waits for the running effects (and the actions
/// they feed back); cancels those still running at the deadline.
#[async_trait]
impl<R> GracefulShutdown for Store<R>
where
    R: Reducer + Send + Sync + 'static,
    R::State: Send + Sync + 'static,
    R::Action: Clone + Send + 'static,
    R::Environment: Send + Sync + 'static,
{
    async fn shutdown_within(&self, deadline: Duration) -> RunnerOutcome {
        match self.shutdown(deadline).await {
            Ok(()) => RunnerOutcome::Finished,
            Err(StoreError::ShutdownTimedOut { in_flight, .. }) => RunnerOutcome::Unfinished {
                left: format!("{in_flight} effect(s) still running"),
            },
            Err(error) => RunnerOutcome::Failed {
                reason: error.to_string(),
            },
        }
    }
}

/// Asks `run` (and `catch_up`) to stop after the batch in progress, and
/// waits until that batch and its checkpoint have committed.
#[async_trait]
impl<P: Projection> GracefulShutdown for ProjectionManager<P> {
    async fn shutdown_within(&self, deadline: Duration) -> RunnerOutcome {
        self.shutdown();
        match tokio::time::timeout(deadline, self.stopped()).await {
            Ok(()) => RunnerOutcome::Finished,
            Err(_) => RunnerOutcome::Unfinished {
                left: format!(
                    "a batch after position {} was still being applied",
                    self.position()
                ),
            },
        }
    }
}

/// Asks `run` (and `publish_pending`) to stop after the page in progress,
/// and waits until that page is published and checkpointed.
#[async_trait]
impl<C: ProjectionCheckpoint> GracefulShutdown for EventPublisher<C> {
    async fn shutdown_within(&self, deadline: Duration) -> RunnerOutcome {
        self.shutdown();
        match tokio::time::timeout(deadline, self.stopped()).await {
            Ok(()) => RunnerOutcome::Finished,
            Err(_) => RunnerOutcome::Unfinished {
                left: format!(
                    "a page after position {} was still being published",
                    self.position()
                ),
            },
        }
    }
}

/// Refuses further events, disarms the timeouts (they are recorded, so the
/// next runtime arms them again) and waits for the steps in progress.
#[async_trait]
impl<S: Saga> GracefulShutdown for SagaRuntime<S> {
    async fn shutdown_within(&self, deadline: Duration) -> RunnerOutcome {
        match tokio::time::timeout(deadline, self.shutdown()).await {
            Ok(()) => RunnerOutcome::Finished,
            Err(_) => RunnerOutcome::Unfinished {
                left: "saga steps still running".to_owned(),
            },
        }
    }
}
