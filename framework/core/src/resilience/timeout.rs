//! [`timeout`]: a time limit on a future, measured on a [`Clock`], so a
//! test with a [`TestClock`](crate::TestClock) makes it fire instantly.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use super::ResilienceError;
use crate::clock::Clock;

/// Runs `future` until it completes or `limit` has passed on `clock`,
/// whichever comes first; on time out, `future` is dropped (cancelled).
///
/// A remote call cancelled here may still have been carried out on the
/// other side: retry only idempotent calls.
///
/// # Errors
///
/// [`ResilienceError::TimedOut`] when the limit passed first.
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use composable_rust_core::resilience::{ResilienceError, timeout};
/// use composable_rust_core::{Clock, TestClock};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let clock = TestClock::new();
/// let shared: Arc<dyn Clock> = Arc::new(clock.clone());
/// let limit = Duration::from_secs(2);
/// let waiting = tokio::spawn(async move {
///     timeout(&shared, limit, std::future::pending::<()>()).await
/// });
/// while clock.pending_sleepers() == 0 {
///     tokio::task::yield_now().await;
/// }
/// clock.advance(limit);
/// assert_eq!(waiting.await.unwrap(), Err(ResilienceError::TimedOut { after: limit }));
/// # }
/// ```
pub async fn timeout<F: Future>(
    clock: &Arc<dyn Clock>,
    limit: Duration,
    future: F,
) -> Result<F::Output, ResilienceError> {
    let deadline = clock.sleep(limit);
    tokio::select! {
        // A future that is ready when the limit passes still counts.
        biased;
        output = future => Ok(output),
        () = deadline => Err(ResilienceError::TimedOut { after: limit }),
    }
}
