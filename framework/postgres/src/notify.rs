//! Waking followers with LISTEN/NOTIFY instead of tight polling.
//!
//! Writing: the migration installs a statement-level trigger on `events`
//! that calls `pg_notify('<schema>_events', '')`, so every committed
//! append, by any process and through any code path, notifies the
//! channel. The notification is part of the appending transaction:
//! PostgreSQL delivers it at commit, and not at all on rollback.
//!
//! Reading: [`Notifier::subscribe`] hands out a [`watch::Receiver`] whose
//! value is bumped
//!
//! - at once by this store's own appends (no round trip through the
//!   server);
//! - by a background task that `LISTEN`s on the channel, for appends made
//!   by other store instances and other processes. The first `subscribe()`
//!   spawns it on the current tokio runtime; it uses its own one-connection
//!   pool (it never takes a connection from yours), reconnects with
//!   backoff when the connection fails, and bumps the value after every
//!   (re)connect, because notifications sent while it was not listening
//!   are lost. It stops when the store (its last clone) is dropped or when
//!   your pool is closed.
//!
//! - a little later when a read found committed events held back by an
//!   older transaction still in flight (see `read_all` in `src/read.rs`),
//!   because that transaction may end without any notification.
//!
//! A bump means "new events may be readable": read again with
//! `read_all`. Bumps can be spurious, and several appends can share one.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::{PgListener, PgPoolOptions};
use tokio::sync::watch;
use tokio::task::AbortHandle;

/// The first pause after the listener's connection fails.
const MIN_BACKOFF: Duration = Duration::from_millis(100);
/// The longest pause between reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// The wake-up signal of one store and its (lazily started) listener.
#[derive(Debug)]
pub(crate) struct Notifier {
    sender: Arc<watch::Sender<u64>>,
    channel: String,
    listener: Mutex<Option<AbortHandle>>,
    /// Whether a delayed bump is already scheduled.
    bump_pending: Arc<AtomicBool>,
}

impl Notifier {
    /// A notifier for `channel`; no task runs until the first subscriber.
    pub(crate) fn new(channel: String) -> Self {
        let (sender, _) = watch::channel(0);
        Self {
            sender: Arc::new(sender),
            channel,
            listener: Mutex::new(None),
            bump_pending: Arc::new(AtomicBool::new(false)),
        }
    }

    /// The channel this notifier listens on.
    pub(crate) fn channel(&self) -> &str {
        &self.channel
    }

    /// Wakes this store's subscribers (after its own append).
    pub(crate) fn bump(&self) {
        bump(&self.sender);
    }

    /// Wakes subscribers after `delay` (at most one such wake-up pending at
    /// a time); used when events are held back by a transaction that may
    /// end without a NOTIFY.
    pub(crate) fn bump_later(&self, delay: Duration) {
        if self.bump_pending.swap(true, Ordering::AcqRel) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            self.bump_pending.store(false, Ordering::Release);
            self.bump();
            return;
        };
        let (sender, pending) = (Arc::clone(&self.sender), Arc::clone(&self.bump_pending));
        runtime.spawn(async move {
            tokio::time::sleep(delay).await;
            pending.store(false, Ordering::Release);
            bump(&sender);
        });
    }

    /// A receiver bumped whenever new events may be readable; starts the
    /// listener task if it is not running.
    pub(crate) fn subscribe(&self, pool: &PgPool) -> watch::Receiver<u64> {
        let receiver = self.sender.subscribe();
        self.ensure_listening(pool);
        receiver
    }

    fn ensure_listening(&self, pool: &PgPool) {
        let mut listener = self.listener.lock().unwrap_or_else(PoisonError::into_inner);
        if listener.as_ref().is_some_and(|task| !task.is_finished()) {
            return;
        }
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                let task = runtime.spawn(listen(
                    pool.clone(),
                    self.channel.clone(),
                    Arc::clone(&self.sender),
                ));
                *listener = Some(task.abort_handle());
            }
            Err(_) => tracing::warn!(
                channel = %self.channel,
                "PostgresEventStore::subscribe() was called outside a tokio runtime, so no \
                 LISTEN task was started; only this store's own appends will wake the \
                 receiver. Call subscribe() from within the runtime."
            ),
        }
    }
}

impl Drop for Notifier {
    fn drop(&mut self) {
        let listener = self
            .listener
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(task) = listener.take() {
            task.abort();
        }
    }
}

fn bump(sender: &watch::Sender<u64>) {
    sender.send_modify(|count| *count = count.wrapping_add(1));
}

/// The listener task: LISTEN on `channel` and bump `sender` for every
/// notification, forever, until the user's pool closes.
async fn listen(user_pool: PgPool, channel: String, sender: Arc<watch::Sender<u64>>) {
    let options = user_pool.connect_options().as_ref().clone();
    let own_pool = PgPoolOptions::new()
        .max_connections(1)
        .min_connections(0)
        .connect_lazy_with(options);
    tokio::select! {
        () = follow(&own_pool, &channel, &sender) => {}
        () = user_pool.close_event() => {
            tracing::debug!(%channel, "the store's pool was closed; LISTEN task stops");
        }
    }
    own_pool.close().await;
}

async fn follow(pool: &PgPool, channel: &str, sender: &watch::Sender<u64>) {
    let mut backoff = MIN_BACKOFF;
    loop {
        match listen_once(pool, channel).await {
            Ok(mut listener) => {
                backoff = MIN_BACKOFF;
                // Anything appended while we were not listening was not
                // announced to us: tell subscribers to read again.
                bump(sender);
                loop {
                    match listener.try_recv().await {
                        Ok(Some(_)) => bump(sender),
                        // The connection dropped and was re-established:
                        // notifications may have been lost meanwhile.
                        Ok(None) => bump(sender),
                        Err(error) => {
                            tracing::warn!(%channel, %error, "LISTEN connection failed; reconnecting");
                            break;
                        }
                    }
                }
            }
            Err(error) => {
                tracing::warn!(%channel, %error, ?backoff, "could not LISTEN; retrying");
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

async fn listen_once(pool: &PgPool, channel: &str) -> Result<PgListener, sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen(channel).await?;
    Ok(listener)
}
