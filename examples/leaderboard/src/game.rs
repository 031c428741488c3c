//! The `Match` aggregate: a game between players, finished once with each
//! player's points. Its stream is `match-<id>`.

use composable_rust::prelude::*;
use serde::{Deserialize, Serialize};

/// What happened in a match: one event per player when it finishes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
pub enum MatchEvent {
    MatchFinished { player: String, points: u32 },
}

/// What a match can be asked to do.
#[derive(Debug, Clone)]
pub enum MatchCommand {
    /// Ends the match with each player's points.
    Finish { points: Vec<(String, u32)> },
}

/// Why a command is refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MatchError {
    #[error("the match is already finished")]
    AlreadyFinished,
    #[error("a match needs at least one player")]
    NoPlayers,
}

/// What the rules need: whether the match is over.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Match {
    pub finished: bool,
}

impl Aggregate for Match {
    const KIND: &'static str = "match";
    type Event = MatchEvent;
    type Command = MatchCommand;
    type Error = MatchError;
    type Environment = ();

    fn decide(&self, command: MatchCommand, _env: &()) -> Result<Vec<MatchEvent>, MatchError> {
        let MatchCommand::Finish { points } = command;
        if self.finished {
            return Err(MatchError::AlreadyFinished);
        }
        if points.is_empty() {
            return Err(MatchError::NoPlayers);
        }
        Ok(points
            .into_iter()
            .map(|(player, points)| MatchEvent::MatchFinished { player, points })
            .collect())
    }

    fn apply(&mut self, event: &MatchEvent) {
        let MatchEvent::MatchFinished { .. } = event;
        self.finished = true;
    }
}
