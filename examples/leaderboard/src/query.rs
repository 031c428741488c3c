//! The read side: the top N players and one player's standing. It only
//! reads Redis; it never touches the events or the projection.

use std::fmt;

use composable_rust::ProjectionError;
use composable_rust::redis::{Ranked, RedisProjectionStore};

use crate::projection::{SCORES, games_key};

/// A player's place on the leaderboard.
#[derive(Debug, Clone, PartialEq)]
pub struct Standing {
    /// 1 for the leader.
    pub rank: u64,
    pub player: String,
    pub points: u64,
    pub games: i64,
}

impl fmt::Display for Standing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "#{} {:<6} {:>3} points in {} games",
            self.rank, self.player, self.points, self.games
        )
    }
}

/// The `n` players with the most points, leader first.
pub async fn top(store: &RedisProjectionStore, n: u64) -> Result<Vec<Standing>, ProjectionError> {
    let mut standings = Vec::new();
    for Ranked {
        rank,
        member,
        score,
    } in store.sorted_set(SCORES).top(n).await?
    {
        standings.push(with_games(store, rank, member, score).await?);
    }
    Ok(standings)
}

/// `player`'s standing, or `None` if they have not played yet.
pub async fn standing(
    store: &RedisProjectionStore,
    player: &str,
) -> Result<Option<Standing>, ProjectionError> {
    let scores = store.sorted_set(SCORES);
    let (Some(rank), Some(score)) = (scores.rank(player).await?, scores.score(player).await?)
    else {
        return Ok(None);
    };
    Ok(Some(
        with_games(store, rank, player.to_owned(), score).await?,
    ))
}

/// A standing from Redis' 0-based rank and the score, with the player's
/// games counter.
async fn with_games(
    store: &RedisProjectionStore,
    rank: u64,
    player: String,
    score: f64,
) -> Result<Standing, ProjectionError> {
    let games = store.counter(&games_key(&player)).await?;
    Ok(Standing {
        rank: rank + 1,
        player,
        points: score as u64, // sums of whole points
        games,
    })
}
