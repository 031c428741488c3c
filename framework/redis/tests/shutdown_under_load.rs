//! Graceful shutdown under load, on the Redis Streams bus and on the
//! in-memory bus, in three acts on one consumer group:
//!
//! 1. a bus-fed projection is stopped by a `ShutdownGroup` while messages
//!    keep arriving: it finishes its batch, and every message acknowledged
//!    was applied exactly once (nothing applied is left pending);
//! 2. the next consumer is cut off by the deadline in the middle of a batch
//!    (an event it cannot get past): the batch commits nothing, and its
//!    messages stay pending, unacknowledged;
//! 3. the consumer after it gets those messages again, and in the end every
//!    event was applied exactly once.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use composable_rust_core::error::CodedError;
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
use tokio::sync::Notify;

/// Events published before the first consumer starts.
const EVENTS: u64 = 300;

/// Counts how often each event was applied (key `applied:EVENT_ID`); can
/// hang on one position, to be cut off there.
#[derive(Default)]
struct CountApplications {
    hang_at: Option<Position>,
    hanging: Arc<Notify>,
}

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
        if self.hang_at == Some(event.position) {
            self.hanging.notify_one();
            std::future::pending::<()>().await;
        }
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
    projection: CountApplications,
    store: &Arc<InMemoryProjectionStore>,
    source: SubscriptionSource,
) -> ProjectionManager<CountApplications> {
    let config = ProjectionConfig {
        batch_size: 20,
        ..ProjectionConfig::default()
    };
    ProjectionManager::builder(projection, Arc::clone(store), source)
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
    let pending = async || -> Vec<Position> {
        let ids: Vec<String> = bus
            .pending(&topic, "count-applications")
            .await
            .unwrap()
            .into_iter()
            .map(|message| message.id.to_string())
            .collect();
        let messages = bus.read(&topic, None, EVENTS as usize).await.unwrap();
        messages
            .iter()
            .filter(|message| ids.contains(&message.id.to_string()))
            .map(|message| message.event.position)
            .collect()
    };

    // 1. Stopped gracefully while about a third of the events are applied.
    let first = manager(CountApplications::default(), &store, first_source);
    let running = first.start();
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
    assert!(checkpoint < events[199].position, "stopped under load");
    assert_eq!(pending().await, [], "everything applied was acknowledged");
    for event in &events {
        let expected = u64::from(event.position <= checkpoint);
        assert_eq!(applied(&store, event).await, expected, "{}", event.position);
    }

    // 2. Cut off by the deadline in the middle of a batch.
    let hang_at = events[219].position;
    let hanging = Arc::new(Notify::new());
    let projection = CountApplications {
        hang_at: Some(hang_at),
        hanging: Arc::clone(&hanging),
    };
    let second = manager(projection, &store, source(&bus, &topic, "consumer-2").await);
    let running = second.start();
    hanging.notified().await;
    let mut group = ShutdownGroup::new();
    group.add("projection", second.clone());
    let error = group
        .shutdown(Duration::from_millis(200))
        .await
        .unwrap_err();
    assert_eq!(error.code().as_str(), "CR-E0050");
    running.abort(); // what the process's exit does
    let _ = running.await;
    let cut_off_at = second.position();
    assert!(cut_off_at < hang_at);
    let unacknowledged = pending().await;
    assert!(
        unacknowledged.contains(&hang_at),
        "the batch in flight stays pending"
    );
    assert!(unacknowledged.iter().all(|position| *position > cut_off_at));
    for event in &events {
        let expected = u64::from(event.position <= cut_off_at);
        assert_eq!(applied(&store, event).await, expected, "{}", event.position);
    }

    // 3. The next consumer gets the rest, the unacknowledged first.
    let third = manager(
        CountApplications::default(),
        &store,
        source(&bus, &topic, "consumer-3").await,
    );
    let running = third.start();
    third
        .wait_for(
            events[EVENTS as usize - 1].position,
            Duration::from_secs(30),
        )
        .await
        .unwrap();
    let outcome = third.shutdown_within(Duration::from_secs(10)).await;
    assert_eq!(outcome, RunnerOutcome::Finished);
    running.await.unwrap().unwrap();
    for event in &events {
        assert_eq!(applied(&store, event).await, 1, "{}", event.position);
    }
    assert_eq!(pending().await, []);
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
