//! [`Activity`]: counts the loops of a runner that are running, so that a
//! graceful shutdown can wait until the last one has returned.

use tokio::sync::watch;

/// How many of a runner's loops (`run`, `catch_up`, ...) are running.
#[derive(Debug)]
pub(crate) struct Activity(watch::Sender<usize>);

impl Activity {
    pub(crate) fn new() -> Self {
        Self(watch::channel(0).0)
    }

    /// Counts one loop until the guard is dropped (also when its future is
    /// dropped half-way).
    pub(crate) fn enter(&self) -> ActivityGuard<'_> {
        self.0.send_modify(|n| *n += 1);
        ActivityGuard(&self.0)
    }

    /// Returns once no loop is running.
    pub(crate) async fn idle(&self) {
        let mut count = self.0.subscribe();
        // The sender lives as long as `self`: this cannot fail.
        let _ = count.wait_for(|n| *n == 0).await;
    }
}

/// Returned by [`Activity::enter`].
#[derive(Debug)]
pub(crate) struct ActivityGuard<'a>(&'a watch::Sender<usize>);

impl Drop for ActivityGuard<'_> {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n = n.saturating_sub(1));
    }
}
