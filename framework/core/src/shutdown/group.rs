//! [`ShutdownGroup`]: the runners of a service, stopped in order within
//! one deadline.

use std::future::Future;
use std::time::Duration;

use async_trait::async_trait;
use serde::Serialize;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::ShutdownError;
use super::runners::{GracefulShutdown, RunnerOutcome};

/// How long after the deadline a runner that ignores it is cut off.
const CUT_OFF_GRACE: Duration = Duration::from_millis(50);

/// The runners of a service, in the order they stop.
///
/// Register intake first (the [`Store`](crate::Store) that takes
/// commands), then what follows the event store (the publisher, the saga
/// runtime, the projections, the bus consumers): each one stops after the
/// ones before it, so the events the store's last effects append can still
/// be published and applied by a runner that has not been stopped yet.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use std::time::Duration;
/// use composable_rust_core::shutdown::{RunnerOutcome, ShutdownGroup};
///
/// let mut group = ShutdownGroup::new();
/// // A loop of your own (e.g. a bus consumer) watches the token.
/// group.spawn("heartbeat", |token| async move {
///     loop {
///         tokio::select! {
///             () = token.cancelled() => break,
///             () = tokio::time::sleep(Duration::from_millis(10)) => { /* beat */ }
///         }
///     }
/// });
/// let report = group.shutdown(Duration::from_secs(5)).await?;
/// assert_eq!(report.runners[0].name, "heartbeat");
/// assert_eq!(report.runners[0].outcome, RunnerOutcome::Finished);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Default)]
pub struct ShutdownGroup {
    runners: Vec<(String, Box<dyn GracefulShutdown>)>,
}

/// What [`ShutdownGroup::shutdown`] did, runner by runner, in stop order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ShutdownReport {
    /// One entry per registered runner.
    pub runners: Vec<RunnerReport>,
}

impl ShutdownReport {
    /// The runners whose outcome is not [`RunnerOutcome::Finished`].
    pub fn unfinished(&self) -> impl Iterator<Item = &RunnerReport> {
        self.runners
            .iter()
            .filter(|runner| !matches!(runner.outcome, RunnerOutcome::Finished))
    }
}

/// How one runner stopped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RunnerReport {
    /// The name it was registered under.
    pub name: String,
    /// How it went.
    #[serde(flatten)]
    pub outcome: RunnerOutcome,
    /// How long its shutdown took.
    pub took: Duration,
}

impl ShutdownGroup {
    /// An empty group.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers `runner` under `name` (for the report); it stops after
    /// the runners registered before it.
    pub fn add(&mut self, name: impl Into<String>, runner: impl GracefulShutdown) -> &mut Self {
        self.runners.push((name.into(), Box::new(runner)));
        self
    }

    /// Spawns a loop of your own (a bus consumer, a timer) on tokio and
    /// registers it under `name`. `task` gets a [`CancellationToken`] that
    /// is cancelled when the loop's turn to stop comes: it should stop
    /// taking work (stop receiving), finish and acknowledge what it holds,
    /// and return. A loop still running at the deadline is aborted.
    ///
    /// Must be called within a tokio runtime.
    pub fn spawn<F, Fut>(&mut self, name: impl Into<String>, task: F) -> &mut Self
    where
        F: FnOnce(CancellationToken) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let token = CancellationToken::new();
        let handle = tokio::spawn(task(token.clone()));
        self.add(
            name,
            SpawnedTask {
                token,
                handle: tokio::sync::Mutex::new(Some(handle)),
            },
        )
    }

    /// The registered runners' names, in stop order.
    pub fn names(&self) -> Vec<&str> {
        self.runners.iter().map(|(name, _)| name.as_str()).collect()
    }

    /// Stops every runner, in registration order, each with what is left
    /// of `deadline`. A runner whose turn comes after the deadline is still
    /// asked to stop (it stops taking work at once) and is reported
    /// unfinished if it does not stop right away.
    ///
    /// # Errors
    ///
    /// [`ShutdownError::Unfinished`] (`CR-E0050`) when a runner was still
    /// busy at the deadline, else [`ShutdownError::RunnerFailed`]
    /// (`CR-E0051`) when one failed; both carry the full report.
    pub async fn shutdown(self, deadline: Duration) -> Result<ShutdownReport, ShutdownError> {
        let started = Instant::now();
        let ends_at = started + deadline;
        let mut report = ShutdownReport {
            runners: Vec::with_capacity(self.runners.len()),
        };
        tracing::info!(
            runners = self.runners.len(),
            ?deadline,
            "graceful shutdown started"
        );
        for (name, runner) in self.runners {
            let began = Instant::now();
            let remaining = ends_at.saturating_duration_since(began);
            // `timeout_at` polls the shutdown once even when no time is
            // left, so a late runner still stops taking work. The cut-off
            // comes a moment after the deadline, so a runner that honours
            // its deadline can still say what it left unfinished.
            let outcome =
                tokio::time::timeout_at(ends_at + CUT_OFF_GRACE, runner.shutdown_within(remaining))
                    .await
                    .unwrap_or_else(|_| RunnerOutcome::Unfinished {
                        left: "still stopping at the deadline".to_owned(),
                    });
            match &outcome {
                RunnerOutcome::Finished => tracing::info!(runner = %name, "runner stopped"),
                other => {
                    tracing::warn!(runner = %name, outcome = ?other, "runner did not stop cleanly")
                }
            }
            report.runners.push(RunnerReport {
                name,
                outcome,
                took: began.elapsed(),
            });
        }
        let names = |keep: fn(&RunnerOutcome) -> bool| {
            report
                .runners
                .iter()
                .filter(|runner| keep(&runner.outcome))
                .map(|runner| runner.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let unfinished = names(|outcome| matches!(outcome, RunnerOutcome::Unfinished { .. }));
        let failed = names(|outcome| matches!(outcome, RunnerOutcome::Failed { .. }));
        if !unfinished.is_empty() {
            return Err(ShutdownError::Unfinished {
                unfinished,
                deadline,
                report,
            });
        }
        if !failed.is_empty() {
            let reason = report
                .runners
                .iter()
                .find_map(|runner| match &runner.outcome {
                    RunnerOutcome::Failed { reason } => Some(reason.clone()),
                    _ => None,
                })
                .unwrap_or_default();
            return Err(ShutdownError::RunnerFailed {
                failed,
                reason,
                report,
            });
        }
        tracing::info!(took = ?started.elapsed(), "graceful shutdown finished");
        Ok(report)
    }
}

/// A loop registered with [`ShutdownGroup::spawn`].
#[derive(Debug)]
struct SpawnedTask {
    token: CancellationToken,
    handle: tokio::sync::Mutex<Option<JoinHandle<()>>>,
}

#[async_trait]
impl GracefulShutdown for SpawnedTask {
    async fn shutdown_within(&self, deadline: Duration) -> RunnerOutcome {
        self.token.cancel();
        let mut slot = self.handle.lock().await;
        let Some(handle) = slot.as_mut() else {
            return RunnerOutcome::Finished;
        };
        let outcome = match tokio::time::timeout(deadline, &mut *handle).await {
            Ok(Ok(())) => RunnerOutcome::Finished,
            Ok(Err(error)) => RunnerOutcome::Failed {
                reason: format!("the task failed: {error}"),
            },
            Err(_) => {
                handle.abort();
                RunnerOutcome::Unfinished {
                    left: "the task was still running and was aborted".to_owned(),
                }
            }
        };
        *slot = None;
        outcome
    }
}

impl Drop for SpawnedTask {
    fn drop(&mut self) {
        // A group dropped without a shutdown (or cut off at the deadline)
        // leaves no loop running behind it.
        if let Ok(mut slot) = self.handle.try_lock()
            && let Some(handle) = slot.take()
        {
            handle.abort();
        }
    }
}
