//! Health reports for liveness and readiness probes.
//!
//! An orchestrator asks a service two different questions:
//!
//! - **Liveness**: is the process working at all? It runs, and its
//!   runners (projection managers, the publisher) are alive rather than
//!   stopped on a failure retrying cannot fix. A failing liveness probe
//!   gets the process restarted, so only put there what a restart fixes.
//! - **Readiness**: can it serve traffic now? Its dependencies (the
//!   database, Redis, the bus) answer, its projections are not too far
//!   behind, no circuit breaker is open. A failing readiness probe takes
//!   the instance out of the load balancer until it passes again.
//!
//! A [`HealthCheck`] answers one question about one thing with a
//! [`HealthStatus`] and a reason. A [`HealthRegistry`] holds the checks of
//! each probe and runs them concurrently, each within a time limit (a
//! check that does not answer in time is unhealthy), into a
//! [`HealthReport`] that serializes to JSON for an HTTP endpoint.
//!
//! Checks provided: [`EventBusCheck`] (any bus: in memory, Redis Streams,
//! Kafka), [`ProjectionCheck`] (lag over a threshold for readiness, stopped
//! for liveness), [`CircuitBreakerCheck`] (a breaker open), [`FnCheck`]
//! (a closure: anything else); `PostgresHealthCheck` in `composable-rust-postgres`
//! and `RedisHealthCheck` in `composable-rust-redis`.

mod checks;
mod registry;

pub use checks::{CircuitBreakerCheck, EventBusCheck, FnCheck, ProjectionCheck};
pub use registry::{CheckReport, HealthRegistry, HealthReport, Probe};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

/// How healthy something is, from best to worst (so the worst of several
/// is their maximum).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HealthLevel {
    /// Working as it should.
    Healthy,
    /// Working, but worse than it should (slow, retrying): the probe still
    /// passes, and the report says why.
    Degraded,
    /// Not working: the probe fails.
    Unhealthy,
}

/// The answer of a [`HealthCheck`]: a level and, unless healthy, why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthStatus {
    /// How healthy.
    pub level: HealthLevel,
    /// Why it is not healthy (what failed, what to look at).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl HealthStatus {
    /// Healthy, no reason needed.
    pub fn healthy() -> Self {
        Self {
            level: HealthLevel::Healthy,
            reason: None,
        }
    }

    /// Working, but worse than it should, because of `reason`.
    pub fn degraded(reason: impl Into<String>) -> Self {
        Self {
            level: HealthLevel::Degraded,
            reason: Some(reason.into()),
        }
    }

    /// Not working, because of `reason`.
    pub fn unhealthy(reason: impl Into<String>) -> Self {
        Self {
            level: HealthLevel::Unhealthy,
            reason: Some(reason.into()),
        }
    }

    /// Whether a probe passes with this status (healthy or degraded).
    pub fn is_passing(&self) -> bool {
        self.level != HealthLevel::Unhealthy
    }
}

/// One question about one dependency or runner, answered with a
/// [`HealthStatus`]. Register it with a [`HealthRegistry`] for the
/// liveness or the readiness probe.
///
/// A check should be cheap (a `SELECT 1`, a `PING`, a read of a gauge):
/// probes run every few seconds. It need not time itself out: the
/// registry does.
///
/// # Examples
///
/// ```
/// use async_trait::async_trait;
/// use composable_rust_core::health::{HealthCheck, HealthRegistry, HealthStatus};
///
/// /// Unhealthy while the disk is nearly full.
/// #[derive(Debug)]
/// struct DiskSpace {
///     free_percent: u8,
/// }
///
/// #[async_trait]
/// impl HealthCheck for DiskSpace {
///     fn name(&self) -> &str {
///         "disk"
///     }
///
///     async fn check(&self) -> HealthStatus {
///         if self.free_percent < 5 {
///             HealthStatus::unhealthy(format!("only {}% of the disk is free", self.free_percent))
///         } else {
///             HealthStatus::healthy()
///         }
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let registry = HealthRegistry::new().with_readiness(DiskSpace { free_percent: 3 });
/// let report = registry.readiness().await;
/// assert!(!report.is_passing());
/// assert_eq!(report.checks[0].status.reason.as_deref(), Some("only 3% of the disk is free"));
/// # }
/// ```
#[async_trait]
pub trait HealthCheck: Send + Sync + 'static {
    /// The check's name in reports (e.g. `"postgres"`).
    fn name(&self) -> &str;

    /// Looks and answers.
    async fn check(&self) -> HealthStatus;
}

impl std::fmt::Debug for dyn HealthCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("dyn HealthCheck")
            .field(&self.name())
            .finish()
    }
}
