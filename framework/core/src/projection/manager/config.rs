//! How a [`ProjectionManager`](super::ProjectionManager) behaves: batch
//! size, retries, polling.

use std::sync::Arc;
use std::time::Duration;

use crate::clock::{Clock, SystemClock};
use crate::resilience::Backoff;

/// Retries of an event that fails to apply, before it is dead-lettered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, including the first (at least 1).
    pub max_attempts: u32,
    /// The wait after the first failure.
    pub initial_backoff: Duration,
    /// The longest wait between attempts; waits double up to it.
    pub max_backoff: Duration,
}

impl RetryPolicy {
    /// The wait after failed attempt number `attempt` (1-based): the
    /// framework's one [`Backoff`], without jitter.
    pub fn backoff(&self, attempt: u32) -> Duration {
        Backoff::new(self.initial_backoff, self.max_backoff).delay(attempt)
    }
}

impl Default for RetryPolicy {
    /// 5 attempts, waiting 100 ms, 200 ms, 400 ms, 800 ms (capped at 30 s).
    fn default() -> Self {
        Self {
            max_attempts: 5,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(30),
        }
    }
}

/// Settings of a projection manager.
#[derive(Clone)]
pub struct ProjectionConfig {
    /// Events read and committed per unit of work (default 500).
    pub batch_size: usize,
    /// Retries of a failing event before it is dead-lettered.
    pub retry: RetryPolicy,
    /// How long to wait after the first transient failure (database down)
    /// before trying again (default 1 s); the wait doubles with every
    /// failure in a row, up to `max_failure_backoff`.
    pub failure_backoff: Duration,
    /// The longest wait between retries of a transient failure (default
    /// 30 s).
    pub max_failure_backoff: Duration,
    /// The longest wait for new events without a notification; a safety
    /// net for missed notifications (default 5 s).
    pub idle_poll_interval: Duration,
    /// How long to wait after a batch shorter than `batch_size` (caught up
    /// while events keep arriving) before reading again (default 0: at
    /// once). A few milliseconds let each read and commit take several
    /// events instead of one under a steady stream of single-event appends,
    /// for that much more lag; the first event after a quiet spell is read
    /// as soon as it is notified either way.
    pub linger: Duration,
    /// How often the lag metrics are refreshed while running (default 1 s).
    pub lag_interval: Duration,
    /// Where backoff waits and "seconds behind" get their time.
    pub clock: Arc<dyn Clock>,
}

impl Default for ProjectionConfig {
    fn default() -> Self {
        Self {
            batch_size: 500,
            retry: RetryPolicy::default(),
            failure_backoff: Duration::from_secs(1),
            max_failure_backoff: Duration::from_secs(30),
            idle_poll_interval: Duration::from_secs(5),
            linger: Duration::ZERO,
            lag_interval: Duration::from_secs(1),
            clock: Arc::new(SystemClock),
        }
    }
}

impl std::fmt::Debug for ProjectionConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProjectionConfig")
            .field("batch_size", &self.batch_size)
            .field("retry", &self.retry)
            .field("failure_backoff", &self.failure_backoff)
            .field("idle_poll_interval", &self.idle_poll_interval)
            .field("linger", &self.linger)
            .field("lag_interval", &self.lag_interval)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let policy = RetryPolicy {
            max_attempts: 10,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(500),
        };
        let waits: Vec<_> = (1..=5).map(|a| policy.backoff(a).as_millis()).collect();
        assert_eq!(waits, [100, 200, 400, 500, 500]);
    }
}
