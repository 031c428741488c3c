//! [`RetryPolicy`]: try an operation again after transient failures,
//! waiting a [`Backoff`] between attempts, within a number of attempts and
//! an elapsed-time budget. Waits go through a [`Clock`], so a test with a
//! [`TestClock`](crate::TestClock) decides when they end.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use super::Backoff;
use crate::clock::Clock;
use crate::error::CodedError;

/// When and how often to try a failed operation again.
///
/// Only errors that say retrying can help are retried
/// ([`CodedError::is_transient`]): a permanent or configuration error is
/// returned at once. Retrying stops after `max_attempts` attempts in all,
/// or when the next wait would end past `max_elapsed` since the first
/// attempt began; the last error is returned as it is.
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicU32, Ordering};
/// use std::time::Duration;
/// use composable_rust_core::error::{BackendError, ErrorClass, ErrorCode};
/// use composable_rust_core::resilience::{Backoff, RetryPolicy};
/// use composable_rust_core::{Clock, TestClock};
///
/// const BUSY: ErrorCode = ErrorCode::new("APP-E0001", "service busy");
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let clock = TestClock::new();
/// let policy = RetryPolicy::new(Backoff::new(Duration::from_millis(100), Duration::from_secs(1)))
///     .with_max_attempts(3);
/// let calls = Arc::new(AtomicU32::new(0));
///
/// let retrying = tokio::spawn({
///     let clock: Arc<dyn Clock> = Arc::new(clock.clone());
///     let calls = Arc::clone(&calls);
///     async move {
///         policy
///             .retry(&clock, || async {
///                 match calls.fetch_add(1, Ordering::SeqCst) {
///                     0 => Err(BackendError::from_message(BUSY, ErrorClass::Transient, "busy")),
///                     _ => Ok("done"),
///                 }
///             })
///             .await
///     }
/// });
/// while clock.pending_sleepers() == 0 {
///     tokio::task::yield_now().await;
/// }
/// clock.advance(Duration::from_millis(100)); // the one wait, instantly
/// assert_eq!(retrying.await.unwrap().unwrap(), "done");
/// assert_eq!(calls.load(Ordering::SeqCst), 2);
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    backoff: Backoff,
    max_attempts: u32,
    max_elapsed: Option<Duration>,
}

impl RetryPolicy {
    /// Retries waiting `backoff` between attempts, 5 attempts in all, with
    /// no elapsed-time limit.
    pub fn new(backoff: Backoff) -> Self {
        Self {
            backoff,
            max_attempts: 5,
            max_elapsed: None,
        }
    }

    /// Attempts in all, the first included (at least 1; 1 never retries).
    #[must_use]
    pub fn with_max_attempts(mut self, max_attempts: u32) -> Self {
        self.max_attempts = max_attempts.max(1);
        self
    }

    /// Gives up when the next wait would end more than `max_elapsed` after
    /// the first attempt began.
    #[must_use]
    pub fn with_max_elapsed(mut self, max_elapsed: Duration) -> Self {
        self.max_elapsed = Some(max_elapsed);
        self
    }

    /// The waits between attempts.
    pub fn backoff(&self) -> Backoff {
        self.backoff
    }

    /// Attempts in all, the first included.
    pub fn max_attempts(&self) -> u32 {
        self.max_attempts
    }

    /// The elapsed-time budget, if any.
    pub fn max_elapsed(&self) -> Option<Duration> {
        self.max_elapsed
    }

    /// The wait before the next attempt, after `failed` attempts have
    /// failed transiently and `elapsed` has passed since the first began;
    /// `None` when the policy gives up.
    pub fn next_delay(&self, failed: u32, elapsed: Duration) -> Option<Duration> {
        if failed >= self.max_attempts {
            return None;
        }
        let delay = self.backoff.delay(failed);
        match self.max_elapsed {
            Some(budget) if elapsed.saturating_add(delay) > budget => None,
            _ => Some(delay),
        }
    }

    /// Runs `operation` until it succeeds, fails with an error that is not
    /// transient, or the policy gives up; returns its last result. Each
    /// retry is logged (`warn`) with the attempt, the wait and the error.
    ///
    /// # Errors
    ///
    /// The operation's last error.
    pub async fn retry<T, E, F, Fut>(&self, clock: &Arc<dyn Clock>, operation: F) -> Result<T, E>
    where
        E: CodedError,
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        self.retry_when(clock, operation, CodedError::is_transient)
            .await
    }

    /// [`retry`](Self::retry) for errors that classify themselves some other
    /// way (the saga dispatchers' `DispatchError`).
    pub(crate) async fn retry_when<T, E, F, Fut>(
        &self,
        clock: &Arc<dyn Clock>,
        mut operation: F,
        is_transient: impl Fn(&E) -> bool,
    ) -> Result<T, E>
    where
        E: std::fmt::Display,
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let started = clock.now();
        let mut failed = 0;
        loop {
            let error = match operation().await {
                Ok(value) => return Ok(value),
                Err(error) if is_transient(&error) => error,
                Err(error) => return Err(error),
            };
            failed += 1;
            let elapsed = (clock.now() - started).to_std().unwrap_or_default();
            let Some(delay) = self.next_delay(failed, elapsed) else {
                return Err(error);
            };
            tracing::warn!(attempt = failed, ?delay, %error, "transient failure; retrying");
            clock.sleep(delay).await;
        }
    }
}

impl Default for RetryPolicy {
    /// 5 attempts, waiting 100 ms doubling up to 10 s with half jitter, at
    /// most 30 s in all.
    fn default() -> Self {
        Self::new(Backoff::default().with_jitter(0.5)).with_max_elapsed(Duration::from_secs(30))
    }
}
