//! Resilience primitives: how a service degrades instead of failing when a
//! dependency is slow or down. Each works on any future, so a reducer's
//! effect, a saga dispatcher or a backend can use them.
//!
//! | primitive | what it does | error |
//! |---|---|---|
//! | [`RetryPolicy`] | tries a call again after transient failures, waiting a [`Backoff`] (exponential, capped, jittered), within a number of attempts and an elapsed-time budget | the call's last error |
//! | [`CircuitBreaker`] | after N transient failures in a row, refuses calls to the dependency for a cool-down, then lets one trial call through | [`ResilienceError::CircuitOpen`] |
//! | [`timeout`] | cancels a call that takes longer than a limit | [`ResilienceError::TimedOut`] |
//! | [`Bulkhead`] | runs at most N calls at once, queues a bounded number more, refuses the rest | [`ResilienceError::BulkheadFull`] |
//!
//! All waiting goes through a [`Clock`](crate::Clock): with a
//! [`TestClock`](crate::TestClock), a test moves time by hand and no test
//! sleeps. Combine them from the inside out: a timeout on each attempt,
//! the breaker around it (a timed-out attempt counts as a failure), the
//! retry outermost (a refused call is transient, so it waits and tries
//! again, and gives up within its budget).
//!
//! The framework's runners use the same [`Backoff`]: the projection
//! manager between retries of a failing batch or event, the event
//! publisher between retries of a page, [`RetryingDispatcher`] for saga
//! commands; the cached projection store puts its cache behind a
//! [`CircuitBreaker`].
//!
//! [`RetryingDispatcher`]: crate::saga::RetryingDispatcher

mod backoff;
mod breaker;
mod bulkhead;
mod error;
pub mod metrics;
mod retry;
mod timeout;

pub use backoff::Backoff;
pub use breaker::{CircuitBreaker, CircuitBreakerBuilder, CircuitPermit, CircuitState};
pub use bulkhead::{Bulkhead, BulkheadBuilder, BulkheadPermit};
pub use error::ResilienceError;
pub use retry::RetryPolicy;
pub use timeout::timeout;
