//! Tests of the leaderboard against a real Redis (`REDIS_URL`), and of the
//! `Match` aggregate's rules (no Redis needed).
//!
//! Each Redis test works under its own random key prefix and deletes its
//! keys when it ends, even if it fails, so tests run in parallel and leave
//! nothing behind.

use std::sync::Arc;

use composable_rust::Position;
use composable_rust::prelude::*;
use composable_rust::redis::{RedisProjectionStore, RedisTx};
use composable_rust::{AggregateRepository, InMemoryEventStore, ProjectionManager};
use composable_rust_testing::fixtures::TestKeyPrefix;
use leaderboard::projection::{SCORES, games_key};
use leaderboard::{
    Leaderboard, Match, MatchCommand, MatchError, MatchEvent, Standing, rewind, standing, top,
};

/// A leaderboard on a test key prefix (its keys are deleted when the
/// fixture is dropped), fed by an in-memory event store.
struct Fixture {
    store: RedisProjectionStore,
    events: InMemoryEventStore,
    matches: AggregateRepository<Match, InMemoryEventStore>,
    _prefix: TestKeyPrefix,
}

impl Fixture {
    async fn new() -> Self {
        let prefix = TestKeyPrefix::new();
        let store = RedisProjectionStore::connect(prefix.url(), prefix.as_str())
            .await
            .unwrap_or_else(|error| {
                panic!("cannot connect to REDIS_URL={}: {error}", prefix.url())
            });
        let events = InMemoryEventStore::new();
        Self {
            matches: AggregateRepository::new(events.clone(), ()),
            store,
            events,
            _prefix: prefix,
        }
    }

    async fn finish(&self, id: u32, points: &[(&str, u32)]) {
        let points = points.iter().map(|(p, n)| (p.to_string(), *n)).collect();
        let stream = self.matches.stream_id(id).unwrap();
        self.matches
            .execute(&stream, MatchCommand::Finish { points })
            .await
            .unwrap();
    }

    /// A new manager, as after a restart: it starts from the checkpoint in
    /// Redis.
    fn manager(&self) -> ProjectionManager<Leaderboard> {
        ProjectionManager::new(
            Leaderboard,
            Arc::new(self.store.clone()),
            self.events.clone(),
        )
    }

    async fn catch_up(&self) -> u64 {
        self.manager().catch_up().await.unwrap()
    }

    async fn board(&self) -> Vec<Standing> {
        top(&self.store, 100).await.unwrap()
    }

    async fn play_three_matches(&self) {
        self.finish(1, &[("alice", 30), ("bob", 20), ("carol", 10)])
            .await;
        self.finish(2, &[("bob", 50), ("dave", 5)]).await;
        self.finish(3, &[("alice", 25), ("carol", 40), ("dave", 15)])
            .await;
    }
}

fn row(rank: u64, player: &str, points: u64, games: i64) -> Standing {
    Standing {
        rank,
        player: player.into(),
        points,
        games,
    }
}

fn expected_board() -> Vec<Standing> {
    vec![
        row(1, "bob", 70, 2),
        row(2, "alice", 55, 2),
        row(3, "carol", 50, 2),
        row(4, "dave", 20, 2),
    ]
}

#[tokio::test]
async fn points_and_games_add_up_across_matches() {
    let fx = Fixture::new().await;
    fx.play_three_matches().await;
    assert_eq!(fx.catch_up().await, 8);

    assert_eq!(fx.board().await, expected_board());
    assert_eq!(
        top(&fx.store, 2).await.unwrap(),
        expected_board()[..2].to_vec()
    );
}

#[tokio::test]
async fn a_player_s_rank_and_score() {
    let fx = Fixture::new().await;
    fx.play_three_matches().await;
    fx.catch_up().await;

    assert_eq!(
        standing(&fx.store, "carol").await.unwrap(),
        Some(row(3, "carol", 50, 2))
    );
    assert_eq!(standing(&fx.store, "nobody").await.unwrap(), None);
    assert_eq!(
        row(3, "carol", 50, 2).to_string(),
        "#3 carol   50 points in 2 games"
    );
}

#[tokio::test]
async fn delivering_every_event_again_does_not_double_count() {
    let fx = Fixture::new().await;
    fx.play_three_matches().await;
    fx.catch_up().await;

    // The checkpoint is lost; a restarted manager delivers all 8 events
    // again, and apply_once skips every one of them.
    rewind(&fx.store, "leaderboard").await.unwrap();
    assert_eq!(fx.catch_up().await, 8, "delivered again");
    assert_eq!(fx.board().await, expected_board());
}

#[tokio::test]
async fn a_redelivered_batch_mixed_with_new_events_counts_only_the_new_ones() {
    let fx = Fixture::new().await;
    fx.play_three_matches().await;
    fx.catch_up().await;

    // One more match, then the checkpoint goes back to the start: the next
    // catch-up delivers 8 old events (skipped) and 2 new ones (applied).
    fx.finish(4, &[("dave", 100), ("erin", 1)]).await;
    rewind(&fx.store, "leaderboard").await.unwrap();
    assert_eq!(fx.catch_up().await, 10);

    let mut expected = vec![row(1, "dave", 120, 3)];
    expected.extend(
        expected_board()[..3]
            .iter()
            .map(|s| row(s.rank + 1, &s.player, s.points, s.games)),
    );
    expected.push(row(5, "erin", 1, 1));
    assert_eq!(fx.board().await, expected);
}

#[tokio::test]
async fn the_same_event_twice_in_one_unit_of_work_counts_once() {
    let fx = Fixture::new().await;
    fx.finish(1, &[("alice", 30)]).await;
    let event = fx.events.read_all(Position::START, 10).await.unwrap()[0].clone();

    let projection = Leaderboard;
    let mut tx: RedisTx = fx.store.begin().await.unwrap();
    projection.apply(&event, &mut tx).await.unwrap();
    projection.apply(&event, &mut tx).await.unwrap();
    fx.store.commit(tx).await.unwrap();

    assert_eq!(
        fx.store.sorted_set(SCORES).score("alice").await.unwrap(),
        Some(30.0)
    );
    assert_eq!(fx.store.counter(&games_key("alice")).await.unwrap(), 1);
}

#[tokio::test]
async fn a_rebuild_starts_the_markers_over() {
    // If `reset` kept the apply_once markers, a rebuild would skip every
    // event and leave the leaderboard empty.
    let fx = Fixture::new().await;
    fx.play_three_matches().await;
    let manager = fx.manager();
    manager.catch_up().await.unwrap();

    assert_eq!(manager.rebuild().await.unwrap(), 8);
    assert_eq!(fx.board().await, expected_board());
}

// The aggregate's rules: pure functions, no Redis.

#[test]
fn finishing_a_match_records_each_player_s_points() {
    AggregateTest::<Match>::new(())
        .when(MatchCommand::Finish {
            points: vec![("alice".into(), 30), ("bob".into(), 20)],
        })
        .then_events([
            MatchEvent::MatchFinished {
                player: "alice".into(),
                points: 30,
            },
            MatchEvent::MatchFinished {
                player: "bob".into(),
                points: 20,
            },
        ]);
}

#[test]
fn a_match_finishes_once_and_needs_players() {
    let finished = MatchEvent::MatchFinished {
        player: "alice".into(),
        points: 30,
    };
    AggregateTest::<Match>::new(())
        .given([finished])
        .when(MatchCommand::Finish {
            points: vec![("alice".into(), 30)],
        })
        .then_rejected(MatchError::AlreadyFinished);
    AggregateTest::<Match>::new(())
        .when(MatchCommand::Finish { points: vec![] })
        .then_rejected(MatchError::NoPlayers);
}
