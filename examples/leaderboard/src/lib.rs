//! A game leaderboard in Redis, kept up to date from events.
//!
//! - [`game`]: the `Match` aggregate; finishing a match records one
//!   `MatchFinished { player, points }` event per player;
//! - [`projection`]: `Leaderboard`, which adds each player's points to a
//!   sorted set and counts their games, once per event (`apply_once`);
//! - [`query`]: the read side: the top N, and one player's standing.

pub mod game;
pub mod projection;
pub mod query;

pub use game::{Match, MatchCommand, MatchError, MatchEvent};
pub use projection::Leaderboard;
pub use query::{Standing, standing, top};

use composable_rust::prelude::*;
use composable_rust::redis::RedisProjectionStore;
use composable_rust::{Position, ProjectionError};

/// `REDIS_URL`, or an error that says how to set it.
pub fn redis_url() -> Result<String, String> {
    std::env::var("REDIS_URL")
        .ok()
        .filter(|url| !url.is_empty())
        .ok_or_else(|| {
            "this needs a Redis server: set REDIS_URL, e.g. REDIS_URL=redis://127.0.0.1:6379".into()
        })
}

/// A key prefix of this run's own, e.g. `example:leaderboard:3f2a…`:
/// every key the store writes starts with it, so runs never see each
/// other's keys, and `RedisProjectionStore::clear` deletes just this run's.
pub fn fresh_prefix() -> String {
    format!("example:leaderboard:{}", uuid::Uuid::new_v4().simple())
}

/// Moves `projection`'s checkpoint back to the start, as a crash that lost
/// it would: a manager started afterwards delivers every event again. The
/// demo and the tests use it to show that nothing is counted twice.
pub async fn rewind(store: &RedisProjectionStore, projection: &str) -> Result<(), ProjectionError> {
    let mut tx = store.begin().await?;
    store
        .save_position(&mut tx, projection, Position::START)
        .await?;
    store.commit(tx).await
}
