//! The write side: [`SessionCache`] keeps one key per live session,
//! `session:<id>`, that expires when the session does.

use std::time::Duration;

use async_trait::async_trait;
use composable_rust::SystemClock;
use composable_rust::event::decode;
use composable_rust::prelude::*;
use composable_rust::redis::{RedisProjectionStore, RedisTx};
use composable_rust::{ProjectionError, Upcasters};
use serde::{Deserialize, Serialize};

use crate::session::SessionEvent;

/// How long a session lives after its last sign-in or refresh.
pub const SESSION_TTL: Duration = Duration::from_secs(30 * 60);

/// The read-model key of a session.
pub fn session_key(session_id: &str) -> String {
    format!("session:{session_id}")
}

/// What the cache keeps of a live session (Redis keeps its TTL).
#[derive(Debug, Serialize, Deserialize)]
pub struct CachedSession {
    pub user: String,
    pub device: String,
}

/// Projects `Session` events into Redis keys with a TTL.
#[derive(Debug)]
pub struct SessionCache {
    /// How long a session lives after its last activity.
    pub ttl: Duration,
}

impl SessionCache {
    /// What is left of a session whose last activity is `event`, or `None`
    /// if it is over. Counted from when the event was *recorded*, not when
    /// it is applied: applying it again later, or in a rebuild, gives the
    /// same expiry time and never revives an expired session.
    fn time_left(&self, event: &StoredEvent) -> Option<Duration> {
        let left = (event.recorded_at + self.ttl - SystemClock.now()).to_std();
        left.ok().filter(|left| !left.is_zero())
    }
}

#[async_trait]
impl Projection for SessionCache {
    type Store = RedisProjectionStore;

    fn name(&self) -> &str {
        "session-cache"
    }

    async fn apply(&self, event: &StoredEvent, tx: &mut RedisTx) -> Result<(), ProjectionError> {
        // A session's events are its stream, `session-<id>`; skip others.
        let Some(session_id) = event.stream_id.as_str().strip_prefix("session-") else {
            return Ok(());
        };
        // No upcasters: every session event is still at its first version.
        let Some(session_event) = decode::<SessionEvent>(event, &Upcasters::new())? else {
            return Ok(());
        };
        let key = session_key(session_id);
        // Redis delivers at least once: after a crash or a lost reply, a
        // batch can be applied twice. Every write here is idempotent, so
        // that is harmless: a sign-in *sets* a value computed from the event
        // alone, a refresh *sets* the TTL (it does not add to it), a
        // sign-out deletes, and the TTL counts from the event's own time.
        // No `apply_once` marker needed (increments need one).
        match (session_event, self.time_left(event)) {
            (SessionEvent::SignedIn { user, device }, Some(ttl)) => {
                tx.save_json(&key, &CachedSession { user, device }).await?;
                tx.expire(&key, ttl) // in the same atomic commit as the save
            }
            // Sliding expiry. An expired session stays gone: PEXPIRE of a
            // missing key does nothing.
            (SessionEvent::SessionRefreshed, Some(ttl)) => tx.expire(&key, ttl),
            _ => tx.delete(&key).await, // signed out, or already over
        }
    }

    async fn reset(&self, tx: &mut RedisTx) -> Result<(), ProjectionError> {
        tx.delete_prefix("session:").await.map(|_| ())
    }
}
