//! [`HealthRegistry`]: the checks of each probe, run concurrently with a
//! time limit each, into a [`HealthReport`].

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::{HealthCheck, HealthLevel, HealthStatus};

/// The default time limit of one check.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);

/// Which question a report answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Probe {
    /// Is the process working at all (a failure gets it restarted)?
    Liveness,
    /// Can it serve traffic now (a failure takes it out of the load
    /// balancer)?
    Readiness,
}

/// The checks of a service, for each probe.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use std::time::Duration;
/// use composable_rust_core::health::{FnCheck, HealthLevel, HealthRegistry, HealthStatus};
///
/// let registry = HealthRegistry::new()
///     .with_timeout(Duration::from_millis(500))
///     .with_liveness(FnCheck::new("process", || async { HealthStatus::healthy() }))
///     .with_readiness(FnCheck::new("search-index", || async {
///         HealthStatus::degraded("the index is rebuilding; results may be incomplete")
///     }));
///
/// let ready = registry.readiness().await;
/// assert!(ready.is_passing(), "degraded still serves");
/// assert_eq!(ready.status, HealthLevel::Degraded);
/// assert_eq!(registry.liveness().await.status, HealthLevel::Healthy);
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct HealthRegistry {
    liveness: Vec<Arc<dyn HealthCheck>>,
    readiness: Vec<Arc<dyn HealthCheck>>,
    timeout: Duration,
}

impl Default for HealthRegistry {
    fn default() -> Self {
        Self::new()
    }
}

/// What one check answered, and how long it took.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckReport {
    /// The check's name.
    pub name: String,
    /// Its answer (or unhealthy, when it did not answer in time).
    #[serde(flatten)]
    pub status: HealthStatus,
    /// How long it took, in milliseconds.
    pub elapsed_ms: u64,
}

/// The answer to one probe: the worst level of its checks, and each
/// check's answer, in registration order.
///
/// Serialized for an HTTP endpoint, e.g.:
///
/// ```text
/// {"probe":"readiness","status":"unhealthy","checks":[
///   {"name":"postgres","level":"healthy","elapsed_ms":1},
///   {"name":"projection:balances","level":"unhealthy","reason":"5200 events behind, over the threshold of 1000","elapsed_ms":0}]}
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthReport {
    /// The probe answered.
    pub probe: Probe,
    /// The worst level of the checks (healthy when there are none).
    pub status: HealthLevel,
    /// Every check's answer.
    pub checks: Vec<CheckReport>,
}

impl HealthReport {
    /// Whether the probe passes: no check is unhealthy.
    pub fn is_passing(&self) -> bool {
        self.status != HealthLevel::Unhealthy
    }

    /// The HTTP status code to answer the probe with: 200 when it passes,
    /// 503 (Service Unavailable) when it does not.
    pub fn http_status(&self) -> u16 {
        if self.is_passing() { 200 } else { 503 }
    }

    /// The report as JSON.
    pub fn to_json(&self) -> String {
        // A report is strings, numbers and enums: serializing cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}

impl HealthRegistry {
    /// A registry without checks, with a time limit of 2 s per check.
    pub fn new() -> Self {
        Self {
            liveness: Vec::new(),
            readiness: Vec::new(),
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// How long one check may take before it counts as unhealthy (default
    /// 2 s). Keep it below the probe's own timeout.
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Adds a check to the liveness probe.
    #[must_use]
    pub fn with_liveness(mut self, check: impl HealthCheck) -> Self {
        self.liveness.push(Arc::new(check));
        self
    }

    /// Adds a check to the readiness probe.
    #[must_use]
    pub fn with_readiness(mut self, check: impl HealthCheck) -> Self {
        self.readiness.push(Arc::new(check));
        self
    }

    /// Runs the liveness checks.
    pub async fn liveness(&self) -> HealthReport {
        self.report(Probe::Liveness).await
    }

    /// Runs the readiness checks.
    pub async fn readiness(&self) -> HealthReport {
        self.report(Probe::Readiness).await
    }

    /// Runs the checks of `probe`, concurrently, each within the time
    /// limit.
    pub async fn report(&self, probe: Probe) -> HealthReport {
        let checks = match probe {
            Probe::Liveness => &self.liveness,
            Probe::Readiness => &self.readiness,
        };
        let mut running = JoinSet::new();
        for (index, check) in checks.iter().enumerate() {
            let check = Arc::clone(check);
            let timeout = self.timeout;
            running.spawn(async move {
                let started = Instant::now();
                let status = match tokio::time::timeout(timeout, check.check()).await {
                    Ok(status) => status,
                    Err(_) => HealthStatus::unhealthy(format!(
                        "the check did not answer within {timeout:?}"
                    )),
                };
                let elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
                (index, status, elapsed_ms)
            });
        }
        let mut answers: Vec<Option<(HealthStatus, u64)>> = vec![None; checks.len()];
        while let Some(joined) = running.join_next().await {
            // A panicking check answers nothing: it is reported below.
            if let Ok((index, status, elapsed_ms)) = joined {
                answers[index] = Some((status, elapsed_ms));
            }
        }
        let checks: Vec<CheckReport> = checks
            .iter()
            .zip(answers)
            .map(|(check, answer)| {
                let (status, elapsed_ms) =
                    answer.unwrap_or_else(|| (HealthStatus::unhealthy("the check panicked"), 0));
                CheckReport {
                    name: check.name().to_owned(),
                    status,
                    elapsed_ms,
                }
            })
            .collect();
        let status = checks
            .iter()
            .map(|check| check.status.level)
            .max()
            .unwrap_or(HealthLevel::Healthy);
        if status == HealthLevel::Unhealthy {
            let failing: Vec<&str> = checks
                .iter()
                .filter(|check| !check.status.is_passing())
                .map(|check| check.name.as_str())
                .collect();
            tracing::warn!(?probe, ?failing, "health probe failing");
        }
        HealthReport {
            probe,
            status,
            checks,
        }
    }
}
