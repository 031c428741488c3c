//! A `ProjectionManager` running a leaderboard on `RedisProjectionStore`
//! over an `InMemoryEventStore`: catch-up, resume, rebuild, dead letters.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use composable_rust_core::projection::{
    ProjectionCheckpoint, ProjectionConfig, ProjectionStore, ProjectionStoreExt, ProjectionTx,
    ProjectionTxExt, RetryPolicy,
};
use composable_rust_core::{
    EventStore, ExpectedVersion, InMemoryEventStore, NewEvent, Position, Projection,
    ProjectionError, ProjectionManager, StoredEvent, StreamId,
};
use composable_rust_redis::{RedisProjectionStore, RedisTx};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::support::{dump, fresh_store};

/// Points per player in a sorted set, events counted, a profile per
/// player; guarded by a per-player `apply_once` marker when `guarded`.
pub(crate) struct Leaderboard {
    /// Fail every event whose payload has `"poison": true`, while set.
    pub poison_fails: AtomicBool,
    /// Use `apply_once` (idempotent apply).
    pub guarded: bool,
}

impl Leaderboard {
    pub(crate) fn guarded() -> Self {
        Self {
            poison_fails: AtomicBool::new(true),
            guarded: true,
        }
    }

    pub(crate) fn naive() -> Self {
        Self {
            poison_fails: AtomicBool::new(true),
            guarded: false,
        }
    }
}

#[derive(Debug, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Profile {
    pub games: u32,
    pub points: f64,
}

#[async_trait]
impl Projection for Leaderboard {
    type Store = RedisProjectionStore;

    fn name(&self) -> &str {
        "leaderboard"
    }

    async fn apply(&self, event: &StoredEvent, tx: &mut RedisTx) -> Result<(), ProjectionError> {
        if event.payload["poison"] == json!(true) && self.poison_fails.load(Ordering::SeqCst) {
            return Err(ProjectionError::apply("cannot handle poison"));
        }
        let player = event.stream_id.as_str();
        if self.guarded
            && !tx
                .apply_once(&format!("lb:applied:{player}"), event.position)
                .await?
        {
            return Ok(());
        }
        let points = event.payload["points"].as_f64().unwrap_or(0.0);
        tx.zincr_by("lb:scores", player, points)?;
        tx.incr_by("lb:events", 1)?;
        let key = format!("lb:player:{player}");
        let mut profile: Profile = tx.get_json(&key).await?.unwrap_or_default();
        profile.games += 1;
        profile.points += points;
        tx.save_json(&key, &profile).await
    }

    async fn reset(&self, tx: &mut RedisTx) -> Result<(), ProjectionError> {
        tx.delete_prefix("lb:").await.map(|_| ())
    }
}

pub(crate) fn scored(points: i64) -> NewEvent {
    NewEvent::new("Scored", json!({ "points": points }))
}

fn poison() -> NewEvent {
    NewEvent::new("Scored", json!({ "points": 1000, "poison": true }))
}

pub(crate) async fn append(
    events: &InMemoryEventStore,
    player: &str,
    batch: Vec<NewEvent>,
) -> Position {
    events
        .append(&StreamId::new(player).unwrap(), ExpectedVersion::Any, batch)
        .await
        .unwrap()
        .last_position
}

/// 30 events: alice 1..=10, bob 10 × 5, carol 10 × 2.
pub(crate) async fn thirty_events(events: &InMemoryEventStore) -> Position {
    append(events, "alice", (1..=10).map(scored).collect()).await;
    append(events, "bob", (0..10).map(|_| scored(5)).collect()).await;
    append(events, "carol", (0..10).map(|_| scored(2)).collect()).await
}

pub(crate) fn config() -> ProjectionConfig {
    ProjectionConfig {
        batch_size: 10,
        retry: RetryPolicy {
            max_attempts: 3,
            initial_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(2),
        },
        failure_backoff: Duration::from_millis(5),
        idle_poll_interval: Duration::from_millis(50),
        ..ProjectionConfig::default()
    }
}

pub(crate) fn manager(
    events: &InMemoryEventStore,
    store: &RedisProjectionStore,
    projection: Leaderboard,
) -> ProjectionManager<Leaderboard> {
    ProjectionManager::builder(projection, Arc::new(store.clone()), events.clone())
        .with_config(config())
        .build()
}

async fn profile(store: &RedisProjectionStore, player: &str) -> Option<Profile> {
    store
        .get_json(&format!("lb:player:{player}"))
        .await
        .unwrap()
}

#[tokio::test]
async fn catch_up_applies_every_event_and_a_new_manager_resumes_from_the_checkpoint() {
    let events = InMemoryEventStore::new();
    let last = thirty_events(&events).await;
    let store = fresh_store().await;

    let first = manager(&events, &store, Leaderboard::guarded());
    assert_eq!(first.catch_up().await.unwrap(), 30);
    assert_eq!(first.stats().batches, 3, "batches of 10");
    assert_eq!(
        store.load_position("leaderboard").await.unwrap(),
        Some(last)
    );
    let top: Vec<_> = store
        .sorted_set("lb:scores")
        .top(3)
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.member, r.score))
        .collect();
    assert_eq!(
        top,
        [
            ("alice".into(), 55.0),
            ("bob".into(), 50.0),
            ("carol".into(), 20.0)
        ]
    );
    assert_eq!(store.counter("lb:events").await.unwrap(), 30);
    assert_eq!(
        profile(&store, "bob").await,
        Some(Profile {
            games: 10,
            points: 50.0
        })
    );

    // A restart: a new manager resumes after the checkpoint.
    let newer = append(&events, "carol", vec![scored(100)]).await;
    let restarted = manager(&events, &store, Leaderboard::guarded());
    assert_eq!(restarted.catch_up().await.unwrap(), 1);
    assert_eq!(restarted.position(), newer);
    assert_eq!(store.counter("lb:events").await.unwrap(), 31);
    assert_eq!(
        store.sorted_set("lb:scores").rank("carol").await.unwrap(),
        Some(0)
    );
}

#[tokio::test]
async fn a_rebuild_resets_and_replays_to_the_same_read_model_as_a_fresh_run() {
    let events = InMemoryEventStore::new();
    thirty_events(&events).await;
    let store = fresh_store().await;
    let running = manager(&events, &store, Leaderboard::guarded());
    running.catch_up().await.unwrap();

    // Damage the read model, then rebuild.
    let mut tx = store.begin().await.unwrap();
    tx.zadd("lb:scores", "mallory", 1e9).unwrap();
    tx.save("lb:player:alice", b"{\"games\":0,\"points\":0.0}")
        .await
        .unwrap();
    tx.incr_by("lb:stale", 1).unwrap();
    store.commit(tx).await.unwrap();
    append(&events, "dave", vec![scored(7)]).await;
    assert_eq!(running.rebuild().await.unwrap(), 31);

    let fresh = fresh_store().await;
    manager(&events, &fresh, Leaderboard::guarded())
        .catch_up()
        .await
        .unwrap();
    let rebuilt = dump(&store).await;
    assert_eq!(rebuilt, dump(&fresh).await);
    assert!(rebuilt.contains_key("lb:scores"));
    assert!(!rebuilt.contains_key("lb:stale"));
    assert_eq!(
        store.load_position("leaderboard").await.unwrap(),
        fresh.load_position("leaderboard").await.unwrap()
    );
}

#[tokio::test]
async fn a_poison_event_is_dead_lettered_and_can_be_retried_or_discarded() {
    let events = InMemoryEventStore::new();
    append(&events, "alice", vec![scored(1), poison(), scored(2)]).await;
    append(&events, "bob", vec![poison(), scored(3)]).await;
    let store = fresh_store().await;
    let running = manager(&events, &store, Leaderboard::guarded());

    assert_eq!(
        running.catch_up().await.unwrap(),
        5,
        "the checkpoint moves past poison"
    );
    let letters = running.dead_letters().await.unwrap();
    assert_eq!(letters.len(), 2);
    assert_eq!(letters[0].event.stream_id.as_str(), "alice", "oldest first");
    assert_eq!(letters[1].event.stream_id.as_str(), "bob");
    assert_eq!(letters[0].attempts, 3);
    assert!(
        letters[0].error.contains("cannot handle poison"),
        "{}",
        letters[0].error
    );
    assert_eq!(letters[0].projection, "leaderboard");
    assert_eq!(running.stats().dead_letters, 2);
    // Every later event was applied.
    assert_eq!(
        store.sorted_set("lb:scores").score("alice").await.unwrap(),
        Some(3.0)
    );
    assert_eq!(
        store.sorted_set("lb:scores").score("bob").await.unwrap(),
        Some(3.0)
    );

    // Fixed: alice's poison is retried, and applied late. (An `apply_once`
    // marker would skip an event older than the marker, so this projection
    // would need a rebuild instead; the naive variant applies it.)
    let fixed = manager(&events, &store, Leaderboard::naive());
    fixed
        .projection()
        .poison_fails
        .store(false, Ordering::SeqCst);
    fixed
        .retry_dead_letter(letters[0].event.event_id)
        .await
        .unwrap();
    assert_eq!(
        store.sorted_set("lb:scores").score("alice").await.unwrap(),
        Some(1003.0)
    );

    fixed
        .discard_dead_letter(letters[1].event.event_id)
        .await
        .unwrap();
    assert!(fixed.dead_letters().await.unwrap().is_empty());
    assert_eq!(
        store.sorted_set("lb:scores").score("bob").await.unwrap(),
        Some(3.0)
    );
    let missing = fixed
        .discard_dead_letter(letters[1].event.event_id)
        .await
        .unwrap_err();
    assert!(
        matches!(missing, ProjectionError::DeadLetterNotFound { .. }),
        "{missing:?}"
    );
}
