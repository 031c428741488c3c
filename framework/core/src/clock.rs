//! Time as a dependency: [`Clock`], the real [`SystemClock`], and the
//! controllable [`TestClock`].
//!
//! Reducers read the time through their environment's clock and the runtime
//! waits for [`Effect::delay`](crate::Effect::delay) on the store's clock, so a
//! test that swaps in a [`TestClock`] controls time completely: a five-minute
//! timeout passes the moment the test calls [`TestClock::advance`].

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use tokio::sync::oneshot;

use crate::effect::BoxFuture;

/// A source of the current time and of sleeping.
///
/// # Examples
///
/// An environment holds an `Arc<dyn Clock>`: the [`SystemClock`] in
/// production, a [`TestClock`] in tests, which the test moves by hand.
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use chrono::{DateTime, Utc};
/// use composable_rust_core::{Clock, SystemClock, TestClock};
///
/// struct Environment {
///     clock: Arc<dyn Clock>,
/// }
///
/// fn expires_at(env: &Environment) -> DateTime<Utc> {
///     env.clock.now() + chrono::Duration::minutes(5)
/// }
///
/// let _production = Environment { clock: Arc::new(SystemClock) };
///
/// let clock = TestClock::new();
/// let env = Environment { clock: Arc::new(clock.clone()) };
/// let first = expires_at(&env);
/// clock.advance(Duration::from_secs(60));
/// assert_eq!(expires_at(&env) - first, chrono::Duration::minutes(1));
/// ```
pub trait Clock: Send + Sync + 'static {
    /// The current time.
    fn now(&self) -> DateTime<Utc>;

    /// A future that completes once `duration` has passed on this clock.
    fn sleep(&self, duration: Duration) -> BoxFuture<()>;
}

impl std::fmt::Debug for dyn Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "dyn Clock (now {})", self.now())
    }
}

/// The wall clock, backed by the system time and tokio's timer.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }

    fn sleep(&self, duration: Duration) -> BoxFuture<()> {
        Box::pin(tokio::time::sleep(duration))
    }
}

/// A clock that only moves when a test tells it to.
///
/// Cloning a `TestClock` gives another handle to the same clock, so the test,
/// the environment and the runtime can share one.
///
/// ```
/// use std::time::Duration;
/// use composable_rust_core::{Clock, TestClock};
///
/// let clock = TestClock::new();
/// let start = clock.now();
/// clock.advance(Duration::from_secs(90));
/// assert_eq!(clock.now() - start, chrono::Duration::seconds(90));
/// ```
#[derive(Clone)]
pub struct TestClock {
    inner: Arc<Mutex<TestClockState>>,
}

struct TestClockState {
    now: DateTime<Utc>,
    sleepers: Vec<(DateTime<Utc>, oneshot::Sender<()>)>,
}

impl TestClock {
    /// A clock that starts at 2025-01-01T00:00:00Z, so test output is stable.
    pub fn new() -> Self {
        Self::starting_at(Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap())
    }

    /// A clock that starts at `now`.
    pub fn starting_at(now: DateTime<Utc>) -> Self {
        Self {
            inner: Arc::new(Mutex::new(TestClockState {
                now,
                sleepers: Vec::new(),
            })),
        }
    }

    /// Moves time forward by `duration` and wakes every sleeper whose
    /// deadline has been reached.
    pub fn advance(&self, duration: Duration) {
        let mut state = self.lock();
        state.now += to_chrono(duration);
        let now = state.now;
        let (due, waiting): (Vec<_>, Vec<_>) = state
            .sleepers
            .drain(..)
            .partition(|(deadline, _)| *deadline <= now);
        state.sleepers = waiting;
        drop(state);
        for (_, wake) in due {
            // The sleeper may have been dropped (cancelled); that is fine.
            let _ = wake.send(());
        }
    }

    /// How many sleepers are waiting for time to move on.
    pub fn pending_sleepers(&self) -> usize {
        let mut state = self.lock();
        state.sleepers.retain(|(_, wake)| !wake.is_closed());
        state.sleepers.len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, TestClockState> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Default for TestClock {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for TestClock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.lock();
        f.debug_struct("TestClock")
            .field("now", &state.now)
            .field("sleepers", &state.sleepers.len())
            .finish()
    }
}

impl Clock for TestClock {
    fn now(&self) -> DateTime<Utc> {
        self.lock().now
    }

    fn sleep(&self, duration: Duration) -> BoxFuture<()> {
        if duration.is_zero() {
            return Box::pin(std::future::ready(()));
        }
        let (wake, woken) = oneshot::channel();
        {
            let mut state = self.lock();
            let deadline = state.now + to_chrono(duration);
            state.sleepers.push((deadline, wake));
        }
        Box::pin(async move {
            // If the clock is dropped, the sender goes away and the sleeper
            // would wait forever; finishing early is the lesser surprise.
            let _ = woken.await;
        })
    }
}

fn to_chrono(duration: Duration) -> chrono::Duration {
    chrono::Duration::from_std(duration).unwrap_or(chrono::Duration::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn sleepers_wake_only_when_their_deadline_is_reached() {
        let clock = TestClock::new();
        let short = tokio::spawn(clock.sleep(Duration::from_secs(10)));
        let long = tokio::spawn(clock.sleep(Duration::from_secs(60)));
        tokio::task::yield_now().await;
        assert_eq!(clock.pending_sleepers(), 2);

        clock.advance(Duration::from_secs(10));
        short.await.unwrap();
        assert!(!long.is_finished());
        assert_eq!(clock.pending_sleepers(), 1);

        clock.advance(Duration::from_secs(50));
        long.await.unwrap();
        assert_eq!(clock.pending_sleepers(), 0);
    }

    #[tokio::test]
    async fn zero_sleep_completes_immediately() {
        TestClock::new().sleep(Duration::ZERO).await;
    }

    #[test]
    fn clones_share_time() {
        let a = TestClock::new();
        let b = a.clone();
        a.advance(Duration::from_secs(5));
        assert_eq!(a.now(), b.now());
    }
}
