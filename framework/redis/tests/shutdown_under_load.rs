//! Graceful shutdown under load, on the Redis Streams bus and on the
//! in-memory bus: a bus-fed projection is stopped by a `ShutdownGroup`
//! while many messages are in flight. Afterwards every message the group
//! acknowledged was applied exactly once, and the next consumer gets the
//! rest (the unacknowledged ones redelivered), so that in the end every
//! event is applied exactly once.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use composable_rust_core::event_bus::{
    EventBus, InMemoryEventBus, SubscribeOptions, SubscriptionSource, Topic,
};
use composable_rust_core::projection::{
    ProjectionConfig, ProjectionStoreExt, ProjectionTx, ProjectionTxExt,
};
use composable_rust_core::shutdown::{GracefulShutdown, RunnerOutcome, ShutdownGroup};
use composable_rust_core::{
    InMemoryProjectionStore, Position, Projection, ProjectionError, ProjectionManager,
    ProjectionStore, StoredEvent,
};
use composable_rust_redis::{RedisBusOptions, RedisStreamsEventBus};
use composable_rust_testing::fixtures::TestKeyPrefix;

/// Events published before the first consumer starts.
const EVENTS: u64 = 300;

/// Counts how often each event was applied (key `applied:EVENT_ID`).
struct CountApplications;

#[async_trait]
impl Projection for CountApplications {
    type Store = InMemoryProjectionStore;

    fn name(&self) -> &str {
        "count-applications"
    }

    async fn apply(
        &self,
        event: &StoredEvent,
        tx: &mut <Self::Store as ProjectionStore>::Tx,
    ) -> Result<(), ProjectionError> {
        // Slow enough that batches are in flight when the shutdown comes.
        tokio::time::sleep(Duration::from_millis(1)).await;
        let key = format!("applied:{}", event.event_id);
        let count: u64 = tx.get_json(&key).await?.unwrap_or(0);
        tx.save_json(&key, &(count + 1)).await
    }

    async fn reset(
        &self,
        tx: &mut <Self::Store as ProjectionStore>::Tx,
    ) -> Result<(), ProjectionError> {
        tx.delete_prefix("applied:").await.map(|_| ())
    }
}

fn manager(
    store: &Arc<InMemoryProjectionStore>,
    source: SubscriptionSource,
) -> ProjectionManager<CountApplications> {
    let config = ProjectionConfig {
        batch_size: 20,
        ..ProjectionConfig::default()
    };
    ProjectionManager::builder(CountApplications, Arc::clone(store), source)
        .with_config(config)
        .build()
}

async fn source(bus: &Arc<dyn EventBus>, topic: &Topic, consumer: &str) -> SubscriptionSource {
    let options = SubscribeOptions::new(topic.clone(), "count-applications", consumer)
        .unwrap()
        .with_take_over_pending(true)
        .with_max_deliveries(u32::MAX)
        .with_visibility_timeout(Duration::from_secs(60));
    SubscriptionSource::new(bus.subscribe(options).await.unwrap())
        .with_wait(Duration::from_millis(100))
}

async fn applied(store: &InMemoryProjectionStore, event: &StoredEvent) -> u64 {
    store
        .get_json(&format!("applied:{}", event.event_id))
        .await
        .unwrap()
        .unwrap_or(0)
}

async fn shut_down_under_load(bus: Arc<dyn EventBus>, topic: Topic) {
    let events: Vec<StoredEvent> = (1..=EVENTS)
        .map(|n| {
            StoredEvent::builder("Happened", serde_json::json!({ "n": n }))
                .with_position(Position::new(n, 0))
                .build()
        })
        .collect();
    // The group exists before the first message, so it gets them all.
    let first_source = source(&bus, &topic, "consumer-1").await;
    for page in events.chunks(50) {
        bus.publish_batch(&topic, page).await.unwrap();
    }

    let store = Arc::new(InMemoryProjectionStore::new());
    let first = manager(&store, first_source);
    let running = first.start();
    // Stop while about a third of the events are applied, the rest in
    // flight (buffered, being applied) or not yet delivered.
    first
        .wait_for(events[99].position, Duration::from_secs(30))
        .await
        .unwrap();
    let mut group = ShutdownGroup::new();
    group.add("projection", first.clone());
    let report = group.shutdown(Duration::from_secs(10)).await.unwrap();
    assert_eq!(report.runners[0].outcome, RunnerOutcome::Finished);
    running.await.unwrap().unwrap();

    let checkpoint = first.position();
    assert!(
        checkpoint < events[EVENTS as usize - 1].position,
        "stopped under load"
    );
    let pending: Vec<String> = bus
        .pending(&topic, "count-applications")
        .await
        .unwrap()
        .into_iter()
        .map(|message| message.id.to_string())
        .collect();
    assert!(
        !pending.is_empty(),
        "messages were in flight at the shutdown"
    );
    // Committed means applied once; not committed means not applied at all
    // (and so, below, never acknowledged).
    for event in &events {
        let expected = u64::from(event.position <= checkpoint);
        assert_eq!(applied(&store, event).await, expected, "{}", event.position);
    }

    // The next consumer takes over what was not acknowledged and goes on.
    let second = manager(&store, source(&bus, &topic, "consumer-2").await);
    let running = second.start();
    second
        .wait_for(
            events[EVENTS as usize - 1].position,
            Duration::from_secs(30),
        )
        .await
        .unwrap();
    let outcome = second.shutdown_within(Duration::from_secs(10)).await;
    assert_eq!(outcome, RunnerOutcome::Finished);
    running.await.unwrap().unwrap();
    for event in &events {
        assert_eq!(applied(&store, event).await, 1, "{}", event.position);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_the_redis_streams_bus_nothing_acknowledged_was_left_unapplied() {
    let prefix = TestKeyPrefix::new();
    let bus: RedisStreamsEventBus = RedisBusOptions::new(prefix.as_str())
        .unwrap()
        .connect(prefix.url())
        .await
        .unwrap_or_else(|error| panic!("cannot connect to REDIS_URL={}: {error}", prefix.url()));
    shut_down_under_load(Arc::new(bus), Topic::new("happenings").unwrap()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_the_in_memory_bus_nothing_acknowledged_was_left_unapplied() {
    shut_down_under_load(
        Arc::new(InMemoryEventBus::new()),
        Topic::new("happenings").unwrap(),
    )
    .await;
}
