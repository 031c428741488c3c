//! The checks the core provides: a closure, an event bus, a projection, a
//! circuit breaker.

use std::future::Future;

use async_trait::async_trait;

use super::{HealthCheck, HealthLevel, HealthStatus};
use crate::event_bus::{EventBus, Topic};
use crate::projection::{Projection, ProjectionHealth, ProjectionManager};
use crate::resilience::{CircuitBreaker, CircuitState};

/// A check made of a closure: for anything without a check of its own
/// (a circuit breaker's state, a feature flag service, a file).
///
/// ```
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicBool, Ordering};
/// use composable_rust_core::health::{FnCheck, HealthStatus};
///
/// let maintenance = Arc::new(AtomicBool::new(false));
/// let flag = Arc::clone(&maintenance);
/// let check = FnCheck::new("maintenance", move || {
///     let on = flag.load(Ordering::Relaxed);
///     async move {
///         if on { HealthStatus::unhealthy("in maintenance") } else { HealthStatus::healthy() }
///     }
/// });
/// # let _ = check;
/// ```
pub struct FnCheck<F> {
    name: String,
    check: F,
}

impl<F, Fut> FnCheck<F>
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = HealthStatus> + Send + 'static,
{
    /// A check named `name` that answers what `check` returns.
    pub fn new(name: impl Into<String>, check: F) -> Self {
        Self {
            name: name.into(),
            check,
        }
    }
}

impl<F> std::fmt::Debug for FnCheck<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FnCheck")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl<F, Fut> HealthCheck for FnCheck<F>
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = HealthStatus> + Send + 'static,
{
    fn name(&self) -> &str {
        &self.name
    }

    async fn check(&self) -> HealthStatus {
        (self.check)().await
    }
}

/// Whether an [`EventBus`] answers: asks it for the length of a topic, a
/// cheap read on every bus (an in-memory map lookup, `XLEN` on Redis
/// Streams, the partitions' watermarks from the Kafka broker).
#[derive(Debug)]
pub struct EventBusCheck<B> {
    bus: B,
    topic: Topic,
}

impl<B: EventBus> EventBusCheck<B> {
    /// A check named `"event-bus"` that reads the length of `topic` (one
    /// the service publishes to or consumes).
    pub fn new(bus: B, topic: Topic) -> Self {
        Self { bus, topic }
    }
}

#[async_trait]
impl<B: EventBus> HealthCheck for EventBusCheck<B> {
    fn name(&self) -> &str {
        "event-bus"
    }

    async fn check(&self) -> HealthStatus {
        match self.bus.topic_len(&self.topic).await {
            Ok(_) => HealthStatus::healthy(),
            Err(error) => HealthStatus::unhealthy(error.to_string()),
        }
    }
}

/// A [`ProjectionManager`]'s health, named `projection:NAME`.
///
/// - [`lag`](Self::lag), for **readiness**: unhealthy when the manager is
///   more than a given number of events behind its source, is retrying a
///   transient failure (its store or source is down), or has stopped;
///   the lag is the one the manager reports as a metric.
/// - [`alive`](Self::alive), for **liveness**: unhealthy only when the
///   manager has stopped on a failure retrying cannot fix; degraded while
///   it retries.
pub struct ProjectionCheck<P: Projection> {
    manager: ProjectionManager<P>,
    name: String,
    max_events_behind: Option<u64>,
}

impl<P: Projection> ProjectionCheck<P> {
    /// Readiness: unhealthy when more than `max_events_behind` events
    /// behind, retrying, or stopped.
    pub fn lag(manager: ProjectionManager<P>, max_events_behind: u64) -> Self {
        let name = format!("projection:{}", manager.name());
        Self {
            manager,
            name,
            max_events_behind: Some(max_events_behind),
        }
    }

    /// Liveness: unhealthy when stopped.
    pub fn alive(manager: ProjectionManager<P>) -> Self {
        let name = format!("projection:{}", manager.name());
        Self {
            manager,
            name,
            max_events_behind: None,
        }
    }
}

impl<P: Projection> std::fmt::Debug for ProjectionCheck<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProjectionCheck")
            .field("name", &self.name)
            .field("max_events_behind", &self.max_events_behind)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl<P: Projection> HealthCheck for ProjectionCheck<P> {
    fn name(&self) -> &str {
        &self.name
    }

    async fn check(&self) -> HealthStatus {
        let retrying = match self.manager.health() {
            ProjectionHealth::Stopped { error, .. } => {
                return HealthStatus::unhealthy(format!("stopped: {error}"));
            }
            ProjectionHealth::Retrying {
                attempts, error, ..
            } => Some(format!("retrying ({attempts} failed attempts): {error}")),
            _ => None,
        };
        let Some(max) = self.max_events_behind else {
            return retrying.map_or_else(HealthStatus::healthy, HealthStatus::degraded);
        };
        if let Some(reason) = retrying {
            return HealthStatus::unhealthy(reason);
        }
        match self.manager.lag().await {
            Ok(lag) if lag.events_behind > max => HealthStatus::unhealthy(format!(
                "{} events behind, over the threshold of {max}",
                lag.events_behind
            )),
            Ok(_) => HealthStatus::healthy(),
            Err(error) => HealthStatus::unhealthy(format!("cannot read the lag: {error}")),
        }
    }
}

/// A [`CircuitBreaker`]'s state, named `circuit:NAME`, for **readiness**:
/// half-open is degraded; open is unhealthy ([`new`](Self::new)), or only
/// degraded for a dependency the service works without, such as a cache
/// ([`degrading`](Self::degrading)).
#[derive(Debug)]
pub struct CircuitBreakerCheck {
    breaker: CircuitBreaker,
    name: String,
    open: HealthLevel,
}

impl CircuitBreakerCheck {
    /// Unhealthy while `breaker` is open.
    pub fn new(breaker: CircuitBreaker) -> Self {
        Self::with_open_level(breaker, HealthLevel::Unhealthy)
    }

    /// Only degraded while `breaker` is open: the service still serves
    /// without the dependency behind it.
    pub fn degrading(breaker: CircuitBreaker) -> Self {
        Self::with_open_level(breaker, HealthLevel::Degraded)
    }

    fn with_open_level(breaker: CircuitBreaker, open: HealthLevel) -> Self {
        let name = format!("circuit:{}", breaker.name());
        Self {
            breaker,
            name,
            open,
        }
    }
}

#[async_trait]
impl HealthCheck for CircuitBreakerCheck {
    fn name(&self) -> &str {
        &self.name
    }

    async fn check(&self) -> HealthStatus {
        let name = self.breaker.name();
        match self.breaker.state() {
            CircuitState::Closed => HealthStatus::healthy(),
            CircuitState::HalfOpen => {
                HealthStatus::degraded(format!("circuit {name} is half-open: trying one call"))
            }
            CircuitState::Open => HealthStatus {
                level: self.open,
                reason: Some(format!(
                    "circuit {name} is open: calls to it are refused until its cool-down has passed"
                )),
            },
        }
    }
}
