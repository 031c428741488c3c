//! The write side of the read model: [`Leaderboard`] keeps, under
//! `leaderboard:`,
//!
//! - `scores`: a sorted set, player → total points;
//! - `games:<player>`: a counter of the player's games;
//! - `applied:<player>`: the position of the last event applied for the
//!   player (the `apply_once` marker).

use async_trait::async_trait;
use composable_rust::event::decode;
use composable_rust::prelude::*;
use composable_rust::redis::{RedisProjectionStore, RedisTx};
use composable_rust::{ProjectionError, Upcasters};

use crate::game::MatchEvent;

/// The sorted set of total points.
pub const SCORES: &str = "leaderboard:scores";

/// The key of a player's games-played counter.
pub fn games_key(player: &str) -> String {
    format!("leaderboard:games:{player}")
}

/// Projects `MatchFinished` events into a sorted set and counters.
#[derive(Debug)]
pub struct Leaderboard;

#[async_trait]
impl Projection for Leaderboard {
    type Store = RedisProjectionStore;

    fn name(&self) -> &str {
        "leaderboard"
    }

    fn handles(&self, event: &StoredEvent) -> bool {
        event.stream_id.as_str().starts_with("match-")
    }

    async fn apply(&self, event: &StoredEvent, tx: &mut RedisTx) -> Result<(), ProjectionError> {
        // No upcasters: every match event is still at its first version.
        let Some(MatchEvent::MatchFinished { player, points }) = decode(event, &Upcasters::new())?
        else {
            return Ok(());
        };
        // ZINCRBY and INCRBY add to what is there: applied twice, they
        // count twice. Redis delivers at least once (after a crash or a
        // lost reply a batch is applied again), so guard them: `apply_once`
        // says yes only if this event's position is past the player's
        // marker, and moves the marker in the same atomic commit as the
        // increments. A redelivered event finds the marker at or past it,
        // and is skipped.
        if tx
            .apply_once(&format!("leaderboard:applied:{player}"), event.position)
            .await?
        {
            tx.zincr_by(SCORES, &player, f64::from(points))?;
            tx.incr_by(&games_key(&player), 1)?;
        }
        Ok(())
    }

    /// Deletes the scores, the counters and the markers (a rebuild that
    /// kept the markers would skip every event).
    async fn reset(&self, tx: &mut RedisTx) -> Result<(), ProjectionError> {
        tx.delete_prefix("leaderboard:").await.map(|_| ())
    }
}
