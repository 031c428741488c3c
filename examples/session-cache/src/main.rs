//! Sessions cached in Redis with a TTL: sign-ins, a refresh, a sign-out
//! and a rebuild, read back with `current_session`.
//!
//! Needs `REDIS_URL`. Each run works under a key prefix of its own and
//! deletes its keys at the end, so it can run again and again.

use std::sync::Arc;
use std::time::Duration;

use composable_rust::prelude::*;
use composable_rust::redis::RedisProjectionStore;
use composable_rust::{
    AggregateRepository, InMemoryEventStore, ProjectionError, ProjectionManager, SystemClock,
    TestClock,
};
use session_cache::{SESSION_TTL, Session, SessionCache, SessionCommand, current_session};

const MINUTE: Duration = Duration::from_secs(60);

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = session_cache::redis_url()?;
    let store = RedisProjectionStore::connect(&url, &session_cache::fresh_prefix()).await?;
    let result = run(&store).await;
    store.clear().await?; // this run's keys, and only them, even after a failure
    result
}

async fn run(store: &RedisProjectionStore) -> Result<(), Box<dyn std::error::Error>> {
    // The event store's clock starts 40 minutes ago, so the story can span
    // 40 minutes without waiting; the projection and Redis use real time.
    let clock = TestClock::starting_at(SystemClock.now() - 40 * MINUTE);
    let events = InMemoryEventStore::new().with_clock(Arc::new(clock.clone()));
    let cache = SessionCache { ttl: SESSION_TTL };
    let cache = ProjectionManager::new(cache, Arc::new(store.clone()), events.clone());
    let sessions = AggregateRepository::<Session, _>::new(events, ());
    let execute =
        async |id: &str, command| sessions.execute(&sessions.stream_id(id)?, command).await;
    let sign_in = |user: &str, device: &str| SessionCommand::SignIn {
        user: user.into(),
        device: device.into(),
    };

    execute("s1", sign_in("carol", "tablet")).await?;
    clock.advance(20 * MINUTE);
    execute("s2", sign_in("alice", "laptop")).await?;
    execute("s3", sign_in("bob", "phone")).await?;
    clock.advance(20 * MINUTE); // now
    cache.catch_up().await?;
    println!("sessions last 30 minutes; carol signed in 40 minutes ago, alice and bob 20:");
    show(store, &["s1", "s2", "s3"]).await?;

    execute("s2", SessionCommand::Refresh).await?;
    execute("s3", SessionCommand::SignOut).await?;
    cache.catch_up().await?;
    println!("alice's session is refreshed, bob signs out:");
    show(store, &["s2", "s3"]).await?;
    if let Err(refused) = execute("s3", SessionCommand::Refresh).await {
        println!("refreshing bob's session: {refused}");
    }

    let replayed = cache.rebuild().await?;
    println!("rebuilt from {replayed} events, the same answers:");
    show(store, &["s1", "s2", "s3"]).await?;
    Ok(())
}

async fn show(store: &RedisProjectionStore, ids: &[&str]) -> Result<(), ProjectionError> {
    for id in ids {
        match current_session(store, id).await? {
            // Rounded to the minute, so the output is the same every run.
            Some(s) => println!(
                "  {id}: {} on {}, expires in ~{} min",
                s.user,
                s.device,
                (s.expires_in.as_secs() + 30) / 60
            ),
            None => println!("  {id}: no session"),
        }
    }
    Ok(())
}
