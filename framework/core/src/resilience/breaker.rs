//! [`CircuitBreaker`]: stops calling a dependency that keeps failing, and
//! lets one trial call through after a cool-down to see whether it is back.
//!
//! ```text
//! Closed --(failure_threshold transient failures in a row)--> Open
//! Open --(cool_down passed, next call)--> HalfOpen (that call is the trial)
//! HalfOpen --(trial succeeds)--> Closed
//! HalfOpen --(trial fails)--> Open (cool-down starts again)
//! ```
//!
//! Only transient failures count: a permanent error (a declined card, a
//! malformed key) means the dependency answered, so it counts as a success.

use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::ResilienceError;
use super::metrics::{record_initial_state, record_rejection, record_transition};
use crate::clock::{Clock, SystemClock};
use crate::error::CodedError;

/// Where a [`CircuitBreaker`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CircuitState {
    /// Calls go through; transient failures in a row are counted.
    Closed,
    /// Calls are refused with [`ResilienceError::CircuitOpen`] until the
    /// cool-down has passed.
    Open,
    /// One trial call is let through; its outcome closes or reopens the
    /// breaker. Other calls are refused meanwhile.
    HalfOpen,
}

impl CircuitState {
    /// `"closed"`, `"open"` or `"half_open"`, for logs and metric labels.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Closed => "closed",
            Self::Open => "open",
            Self::HalfOpen => "half_open",
        }
    }

    /// The value of the state gauge: 0 closed, 1 open, 2 half-open.
    pub const fn gauge(self) -> f64 {
        match self {
            Self::Closed => 0.0,
            Self::Open => 1.0,
            Self::HalfOpen => 2.0,
        }
    }
}

impl std::fmt::Display for CircuitState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A circuit breaker guarding one named dependency (a payment gateway,
/// Redis). Cloning gives another handle to the same breaker, so every
/// caller of the dependency shares its state; the settings are fixed when
/// it is built.
///
/// Each state change sets the gauge
/// [`CIRCUIT_STATE`](super::metrics::CIRCUIT_STATE)`{breaker}`, counts
/// [`CIRCUIT_TRANSITIONS`](super::metrics::CIRCUIT_TRANSITIONS)`{breaker, to}`
/// and logs a tracing event (`warn` on opening, `info` otherwise).
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use composable_rust_core::error::{BackendError, ErrorClass, ErrorCode};
/// use composable_rust_core::resilience::{CircuitBreaker, CircuitState, ResilienceError};
/// use composable_rust_core::{CodedError, TestClock};
///
/// const DOWN: ErrorCode = ErrorCode::new("APP-E0001", "gateway down");
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let clock = TestClock::new();
/// let breaker = CircuitBreaker::builder("payment-gateway")
///     .with_failure_threshold(2)
///     .with_cool_down(Duration::from_secs(30))
///     .with_clock(Arc::new(clock.clone()))
///     .build();
///
/// let down = || async { Err::<(), _>(BackendError::from_message(DOWN, ErrorClass::Transient, "down")) };
/// for _ in 0..2 {
///     let permit = breaker.acquire().unwrap();
///     permit.record(&down().await);
/// }
/// assert_eq!(breaker.state(), CircuitState::Open);
/// assert!(matches!(breaker.acquire(), Err(ResilienceError::CircuitOpen { .. })));
///
/// clock.advance(Duration::from_secs(30));
/// let trial = breaker.acquire().expect("one trial call after the cool-down");
/// assert_eq!(breaker.state(), CircuitState::HalfOpen);
/// trial.record(&Ok::<(), BackendError>(()));
/// assert_eq!(breaker.state(), CircuitState::Closed);
/// # }
/// ```
#[derive(Clone)]
pub struct CircuitBreaker {
    shared: Arc<Shared>,
}

struct Shared {
    name: String,
    failure_threshold: u32,
    cool_down: Duration,
    clock: Arc<dyn Clock>,
    inner: Mutex<Inner>,
}

struct Inner {
    state: CircuitState,
    /// Transient failures in a row while closed; the count that opened it
    /// while open or half-open.
    failures: u32,
    opened_at: DateTime<Utc>,
    /// Half-open and the trial call is in flight.
    trial_in_flight: bool,
}

impl CircuitBreaker {
    /// A breaker named `name` with the defaults of
    /// [`builder`](Self::builder): opens after 5 transient failures in a
    /// row, tries again after 30 s, on the [`SystemClock`].
    pub fn new(name: impl Into<String>) -> Self {
        Self::builder(name).build()
    }

    /// Configures a breaker named `name` (the dependency it guards; the
    /// `breaker` label of its metrics).
    pub fn builder(name: impl Into<String>) -> CircuitBreakerBuilder {
        CircuitBreakerBuilder {
            name: name.into(),
            failure_threshold: 5,
            cool_down: Duration::from_secs(30),
            clock: Arc::new(SystemClock),
        }
    }

    /// The dependency this breaker guards.
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// Where the breaker is. An open breaker whose cool-down has passed
    /// reports `Open` until the next call becomes its trial.
    pub fn state(&self) -> CircuitState {
        self.lock().state
    }

    /// Transient failures in a row (while closed), or the count that
    /// opened it.
    pub fn failures(&self) -> u32 {
        self.lock().failures
    }

    /// Asks to make one call. Report its outcome on the permit
    /// ([`record`](CircuitPermit::record)); a permit dropped without an
    /// outcome (the call was cancelled) counts as neither.
    ///
    /// # Errors
    ///
    /// [`ResilienceError::CircuitOpen`] while the breaker is open, or
    /// half-open with its trial call in flight: do not make the call.
    pub fn acquire(&self) -> Result<CircuitPermit, ResilienceError> {
        let now = self.shared.clock.now();
        let mut inner = self.lock();
        let trial = match inner.state {
            CircuitState::Closed => false,
            CircuitState::HalfOpen if !inner.trial_in_flight => {
                inner.trial_in_flight = true;
                true
            }
            CircuitState::HalfOpen => {
                let failures = inner.failures;
                drop(inner);
                return Err(self.refuse(failures, Duration::ZERO));
            }
            CircuitState::Open => {
                let since = (now - inner.opened_at).to_std().unwrap_or_default();
                if since < self.shared.cool_down {
                    let failures = inner.failures;
                    drop(inner);
                    return Err(self.refuse(failures, self.shared.cool_down - since));
                }
                // Taken under the lock: exactly one caller becomes the trial.
                inner.state = CircuitState::HalfOpen;
                inner.trial_in_flight = true;
                drop(inner);
                self.transitioned(CircuitState::Open, CircuitState::HalfOpen);
                return Ok(self.permit(true));
            }
        };
        drop(inner);
        Ok(self.permit(trial))
    }

    fn permit(&self, trial: bool) -> CircuitPermit {
        CircuitPermit {
            breaker: self.clone(),
            trial,
            settled: false,
        }
    }

    /// Makes the call `operation` returns if the breaker allows it, and
    /// records its outcome.
    ///
    /// # Errors
    ///
    /// The operation's error, or [`ResilienceError::CircuitOpen`] (converted
    /// with `From`) when the call was refused and not made.
    pub async fn call<T, E, F, Fut>(&self, operation: F) -> Result<T, E>
    where
        E: CodedError + From<ResilienceError>,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let permit = self.acquire()?;
        let result = operation().await;
        permit.record(&result);
        result
    }

    fn refuse(&self, failures: u32, retry_in: Duration) -> ResilienceError {
        record_rejection(self.name());
        ResilienceError::CircuitOpen {
            breaker: self.shared.name.clone(),
            failures,
            retry_in,
        }
    }

    fn settle(&self, trial: bool, outcome: Option<bool>) {
        let now = self.shared.clock.now();
        let mut inner = self.lock();
        if trial {
            inner.trial_in_flight = false;
        }
        let from = inner.state;
        let to = match (outcome, from) {
            // Cancelled: the next call becomes the trial.
            (None, _) => return,
            (Some(true), CircuitState::Closed) => {
                inner.failures = 0;
                return;
            }
            (Some(true), CircuitState::HalfOpen) if trial => {
                inner.failures = 0;
                CircuitState::Closed
            }
            (Some(false), CircuitState::Closed) => {
                inner.failures += 1;
                if inner.failures < self.shared.failure_threshold {
                    return;
                }
                inner.opened_at = now;
                CircuitState::Open
            }
            (Some(false), CircuitState::HalfOpen) if trial => {
                inner.opened_at = now;
                CircuitState::Open
            }
            // A call that began before the breaker opened ends after it did:
            // the trial decides, not this call.
            _ => return,
        };
        inner.state = to;
        drop(inner);
        self.transitioned(from, to);
    }

    fn transitioned(&self, from: CircuitState, to: CircuitState) {
        record_transition(self.name(), to);
        let breaker = self.name();
        match to {
            CircuitState::Open => tracing::warn!(
                breaker,
                %from,
                %to,
                failures = self.failures(),
                cool_down = ?self.shared.cool_down,
                "circuit breaker opened: calls are refused until the cool-down has passed"
            ),
            CircuitState::HalfOpen => {
                tracing::info!(breaker, %from, %to, "circuit breaker half-open: one trial call goes through");
            }
            CircuitState::Closed => {
                tracing::info!(breaker, %from, %to, "circuit breaker closed: the dependency answers again");
            }
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.shared
            .inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl std::fmt::Debug for CircuitBreaker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CircuitBreaker")
            .field("name", &self.name())
            .field("state", &self.state())
            .field("failure_threshold", &self.shared.failure_threshold)
            .field("cool_down", &self.shared.cool_down)
            .finish_non_exhaustive()
    }
}

/// Settings of a [`CircuitBreaker`]; from [`CircuitBreaker::builder`].
#[derive(Debug)]
pub struct CircuitBreakerBuilder {
    name: String,
    failure_threshold: u32,
    cool_down: Duration,
    clock: Arc<dyn Clock>,
}

impl CircuitBreakerBuilder {
    /// Transient failures in a row that open the breaker (default 5, at
    /// least 1).
    #[must_use]
    pub fn with_failure_threshold(mut self, failures: u32) -> Self {
        self.failure_threshold = failures.max(1);
        self
    }

    /// How long an open breaker refuses calls before it lets a trial call
    /// through (default 30 s).
    #[must_use]
    pub fn with_cool_down(mut self, cool_down: Duration) -> Self {
        self.cool_down = cool_down;
        self
    }

    /// The clock the cool-down is measured on (default: the
    /// [`SystemClock`]).
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The breaker, closed.
    pub fn build(self) -> CircuitBreaker {
        let now = self.clock.now();
        record_initial_state(&self.name);
        CircuitBreaker {
            shared: Arc::new(Shared {
                name: self.name,
                failure_threshold: self.failure_threshold,
                cool_down: self.cool_down,
                clock: self.clock,
                inner: Mutex::new(Inner {
                    state: CircuitState::Closed,
                    failures: 0,
                    opened_at: now,
                    trial_in_flight: false,
                }),
            }),
        }
    }
}

/// Leave to make one call through a [`CircuitBreaker`]; tell it how the call
/// went with [`record`](Self::record), [`succeeded`](Self::succeeded) or
/// [`failed`](Self::failed).
#[derive(Debug)]
#[must_use = "make the call, then record its outcome on the permit"]
pub struct CircuitPermit {
    breaker: CircuitBreaker,
    trial: bool,
    settled: bool,
}

impl CircuitPermit {
    /// Records a call's result: a transient error is a failure, anything
    /// else (success, or a permanent or configuration error: the dependency
    /// answered) a success.
    pub fn record<T, E: CodedError>(self, result: &Result<T, E>) {
        match result {
            Err(error) if error.is_transient() => self.failed(),
            _ => self.succeeded(),
        }
    }

    /// The dependency answered.
    pub fn succeeded(mut self) {
        self.settled = true;
        self.breaker.settle(self.trial, Some(true));
    }

    /// The dependency failed (unreachable, timed out, overloaded).
    pub fn failed(mut self) {
        self.settled = true;
        self.breaker.settle(self.trial, Some(false));
    }

    /// Whether this call is the half-open breaker's trial.
    pub fn is_trial(&self) -> bool {
        self.trial
    }
}

impl Drop for CircuitPermit {
    fn drop(&mut self) {
        if !self.settled {
            self.breaker.settle(self.trial, None);
        }
    }
}
