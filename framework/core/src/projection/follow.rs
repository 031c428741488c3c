//! How a reader that follows an [`EventSource`](super::EventSource) page
//! by page (a projection manager, the event publisher) waits between
//! pages: the one place that decides when to read again.
//!
//! - A **full** page: read again at once, more are waiting.
//! - A **short** page (some events, fewer than asked for): the reader has
//!   caught up while events are arriving. It lingers for `linger` (0 by
//!   default: not at all), then reads again, so under a steady stream of
//!   single-event appends the next read and commit take several events
//!   instead of one each. (That read also lets a source that acknowledges
//!   on the next read, such as a bus subscription, acknowledge the page.)
//! - An **empty** page: idle. It waits for the source's notification and
//!   reads at once, so the first event after a quiet spell is not delayed.
//!
//! Without a notification (one was missed, or the source cannot notify)
//! it reads again after `idle_poll`; shutdown ends every wait.

use std::time::Duration;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// What one read of a following reader came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Page {
    /// Nothing after the reader's position.
    Empty,
    /// Fewer events than asked for: the reader caught up.
    Short(u64),
    /// A full page, or one cut short by something other than the end (an
    /// unreadable event set aside): read again at once.
    More(u64),
}

impl Page {
    /// A page of `read` events when `limit` were asked for, all handled.
    pub(crate) fn of(read: usize, limit: usize) -> Self {
        Self::handled(read, limit, read as u64)
    }

    /// A page of `read` events when `limit` were asked for, of which
    /// `handled` were handled (fewer when a shutdown stopped it half-way):
    /// what it says about the source comes from `read`, the count it
    /// carries is `handled`.
    pub(crate) fn handled(read: usize, limit: usize, handled: u64) -> Self {
        match read {
            0 => Self::Empty,
            read if read < limit => Self::Short(handled),
            _ => Self::More(handled),
        }
    }
}

/// The waits of a reader following a source; see the module documentation.
pub(crate) struct Follow {
    notifications: watch::Receiver<u64>,
    idle_poll: Duration,
    linger: Duration,
}

impl Follow {
    /// Follows `notifications` (the source's
    /// [`subscribe`](super::EventSource::subscribe)).
    pub(crate) fn new(
        notifications: watch::Receiver<u64>,
        idle_poll: Duration,
        linger: Duration,
    ) -> Self {
        Self {
            notifications,
            idle_poll,
            linger,
        }
    }

    /// Marks every notification so far as seen: call it right before
    /// reading a page, so an event appended after this wakes the next
    /// [`after_page`](Self::after_page).
    pub(crate) fn before_read(&mut self) {
        self.notifications.borrow_and_update();
    }

    /// Waits after `page` as the module documentation says.
    pub(crate) async fn after_page(&mut self, page: Page, shutdown: &CancellationToken) {
        match page {
            Page::More(_) => {}
            Page::Short(_) => {
                if !self.linger.is_zero() {
                    pause(self.linger, shutdown).await;
                }
            }
            Page::Empty => {
                tokio::select! {
                    changed = self.notifications.changed() => {
                        if changed.is_err() {
                            // The source stopped notifying: fall back to polling.
                            pause(self.idle_poll, shutdown).await;
                        }
                    }
                    () = tokio::time::sleep(self.idle_poll) => {}
                    () = shutdown.cancelled() => {}
                }
            }
        }
    }
}

/// Sleeps for `duration`, or until `shutdown`.
pub(crate) async fn pause(duration: Duration, shutdown: &CancellationToken) {
    tokio::select! {
        () = tokio::time::sleep(duration) => {}
        () = shutdown.cancelled() => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMIT: usize = 10;

    #[test]
    fn pages_are_told_apart_by_what_they_held() {
        assert_eq!(Page::of(0, LIMIT), Page::Empty);
        assert_eq!(Page::of(3, LIMIT), Page::Short(3));
        assert_eq!(Page::of(10, LIMIT), Page::More(10));
        // A page stopped half-way counts what was handled, and is still
        // as full or as short as what was read.
        assert_eq!(Page::handled(10, LIMIT, 4), Page::More(4));
        assert_eq!(Page::handled(3, LIMIT, 0), Page::Short(0));
    }

    fn follower(linger: Duration) -> (watch::Sender<u64>, Follow) {
        let (sender, receiver) = watch::channel(0);
        (
            sender,
            Follow::new(receiver, Duration::from_secs(60), linger),
        )
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_page_reads_again_at_once() {
        let (_sender, mut follow) = follower(Duration::from_millis(5));
        let started = tokio::time::Instant::now();
        follow
            .after_page(Page::of(10, LIMIT), &CancellationToken::new())
            .await;
        assert_eq!(started.elapsed(), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn a_short_page_lingers_then_reads_again_without_news() {
        let (_sender, mut follow) = follower(Duration::from_millis(5));
        follow.before_read();
        let started = tokio::time::Instant::now();
        follow
            .after_page(Page::of(3, LIMIT), &CancellationToken::new())
            .await;
        assert_eq!(started.elapsed(), Duration::from_millis(5));
        // Without linger (the default), at once.
        let (_sender, mut follow) = follower(Duration::ZERO);
        let started = tokio::time::Instant::now();
        follow
            .after_page(Page::of(3, LIMIT), &CancellationToken::new())
            .await;
        assert_eq!(started.elapsed(), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn an_empty_page_reads_as_soon_as_news_arrive() {
        let (sender, mut follow) = follower(Duration::from_millis(5));
        follow.before_read();
        let notify = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(30)).await;
            sender.send_replace(1);
            sender
        });
        let started = tokio::time::Instant::now();
        follow
            .after_page(Page::of(0, LIMIT), &CancellationToken::new())
            .await;
        // At the news, without lingering.
        assert_eq!(started.elapsed(), Duration::from_millis(30));
        drop(notify.await);
    }

    #[tokio::test(start_paused = true)]
    async fn news_before_the_wait_are_not_missed() {
        let (sender, mut follow) = follower(Duration::from_millis(5));
        follow.before_read();
        // Appended while the (empty) page was being read.
        sender.send_replace(1);
        let started = tokio::time::Instant::now();
        follow
            .after_page(Page::of(0, LIMIT), &CancellationToken::new())
            .await;
        assert_eq!(started.elapsed(), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn without_news_it_polls_and_shutdown_ends_the_wait() {
        let (sender, mut follow) = follower(Duration::from_millis(5));
        follow.before_read();
        let started = tokio::time::Instant::now();
        follow
            .after_page(Page::of(0, LIMIT), &CancellationToken::new())
            .await;
        assert_eq!(started.elapsed(), Duration::from_secs(60));
        let shutdown = CancellationToken::new();
        shutdown.cancel();
        let started = tokio::time::Instant::now();
        follow.after_page(Page::of(3, LIMIT), &shutdown).await;
        follow.after_page(Page::of(0, LIMIT), &shutdown).await;
        assert_eq!(started.elapsed(), Duration::ZERO);
        drop(sender);
    }
}
