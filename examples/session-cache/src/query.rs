//! The read side: who is signed in on a session, and for how long. It only
//! reads Redis, never the events.

use std::time::Duration;

use composable_rust::ProjectionError;
use composable_rust::prelude::*;
use composable_rust::redis::RedisProjectionStore;

use crate::projection::{CachedSession, session_key};

/// A live session.
#[derive(Debug, Clone, PartialEq)]
pub struct CurrentSession {
    pub user: String,
    pub device: String,
    /// Until Redis deletes it, unless it is refreshed.
    pub expires_in: Duration,
}

/// The session `session_id`, or `None` if it never existed, was signed out
/// or has expired.
pub async fn current_session(
    store: &RedisProjectionStore,
    session_id: &str,
) -> Result<Option<CurrentSession>, ProjectionError> {
    let key = session_key(session_id);
    let Some(CachedSession { user, device }) = store.get_json(&key).await? else {
        return Ok(None);
    };
    // The key can expire between the two reads: then it is gone.
    let expires_in = store.ttl(&key).await?;
    Ok(expires_in.map(|expires_in| CurrentSession {
        user,
        device,
        expires_in,
    }))
}
