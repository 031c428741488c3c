//! Sessions cached in Redis with a TTL, kept up to date from events.
//!
//! - [`session`]: the `Session` aggregate (sign in, refresh, sign out);
//! - [`projection`]: `SessionCache`, which writes each live session to
//!   Redis with a TTL: set on sign-in, slid on refresh, deleted on sign-out;
//! - [`query`]: `current_session`, the read side, which only reads Redis.

pub mod projection;
pub mod query;
pub mod session;

pub use projection::{SESSION_TTL, SessionCache};
pub use query::{CurrentSession, current_session};
pub use session::{Session, SessionCommand, SessionError, SessionEvent};

/// `REDIS_URL`, or an error that says how to set it.
pub fn redis_url() -> Result<String, String> {
    std::env::var("REDIS_URL")
        .ok()
        .filter(|url| !url.is_empty())
        .ok_or_else(|| {
            "this needs a Redis server: set REDIS_URL, e.g. REDIS_URL=redis://127.0.0.1:6379".into()
        })
}

/// A key prefix of this run's own, e.g. `example:session-cache:3f2a…`:
/// every key the store writes starts with it, so runs never see each
/// other's keys, and `RedisProjectionStore::clear` deletes just this run's.
pub fn fresh_prefix() -> String {
    format!("example:session-cache:{}", uuid::Uuid::new_v4().simple())
}
