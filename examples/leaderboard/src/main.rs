//! A game leaderboard in Redis: three matches, the top three, one player's
//! standing, and every event delivered a second time without counting
//! anything twice.
//!
//! Needs `REDIS_URL`. Each run works under a key prefix of its own and
//! deletes its keys at the end, so it can run again and again.

use std::sync::Arc;

use composable_rust::redis::RedisProjectionStore;
use composable_rust::{
    AggregateRepository, InMemoryEventStore, ProjectionError, ProjectionManager,
};
use leaderboard::{
    Leaderboard, Match, MatchCommand, fresh_prefix, redis_url, rewind, standing, top,
};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let store = RedisProjectionStore::connect(&redis_url()?, &fresh_prefix()).await?;
    let result = run(&store).await;
    store.clear().await?; // this run's keys, and only them; even after a failure
    result
}

async fn run(store: &RedisProjectionStore) -> Result<(), Box<dyn std::error::Error>> {
    let events = InMemoryEventStore::new();
    let matches = AggregateRepository::<Match, _>::new(events.clone(), ());
    let results = [
        (1, vec![("alice", 30), ("bob", 20), ("carol", 10)]),
        (2, vec![("bob", 50), ("dave", 5)]),
        (3, vec![("alice", 25), ("carol", 40), ("dave", 15)]),
    ];
    for (id, points) in &results {
        let points = points.iter().map(|(p, n)| (p.to_string(), *n)).collect();
        matches
            .execute(&matches.stream_id(id)?, MatchCommand::Finish { points })
            .await?;
    }
    let again = MatchCommand::Finish {
        points: vec![("bob".into(), 50)],
    };
    if let Err(refused) = matches.execute(&matches.stream_id(2)?, again).await {
        println!("recording match 2 twice: {refused}");
    }

    let board = ProjectionManager::new(Leaderboard, Arc::new(store.clone()), events.clone());
    let applied = board.catch_up().await?;
    println!("after 3 matches ({applied} events):");
    show(store).await?;

    // What Redis' at-least-once delivery can do after a crash: the
    // checkpoint is lost, and a restarted manager delivers every event
    // again. The apply_once markers make the second delivery a no-op.
    rewind(store, board.name()).await?;
    let restarted = ProjectionManager::new(Leaderboard, Arc::new(store.clone()), events);
    let redelivered = restarted.catch_up().await?;
    println!("the same {redelivered} events delivered again, nothing counted twice:");
    show(store).await?;
    Ok(())
}

async fn show(store: &RedisProjectionStore) -> Result<(), ProjectionError> {
    for standing in top(store, 3).await? {
        println!("  {standing}");
    }
    if let Some(dave) = standing(store, "dave").await? {
        println!("  ...\n  {dave}");
    }
    Ok(())
}
