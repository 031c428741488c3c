//! Reliability on real Redis: a consumer killed before acknowledging
//! (its events are redelivered to another member and take effect once),
//! a publisher killed at random moments (every appended event reaches the
//! bus), and a projection fed by the bus that ends with the same read
//! model as one fed by the event store.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use composable_rust_core::event_bus::{
    BusMessage, EventBus, EventPublisher, PublisherConfig, SubscribeOptions, Subscription,
    SubscriptionSource, Topic,
};
use composable_rust_core::projection::{ProjectionConfig, ProjectionTx, ProjectionTxExt};
use composable_rust_core::{
    EventStore, ExpectedVersion, InMemoryEventStore, InMemoryProjectionStore, NewEvent, Position,
    Projection, ProjectionError, ProjectionManager, ProjectionStore, StoredEvent, StreamId,
};
use composable_rust_redis::redis as redis_rs;
use composable_rust_redis::{RedisProjectionStore, RedisStreamsEventBus};
use serde_json::json;

use super::bus_support::{VISIBILITY_TIMEOUT, fresh_bus};

fn new_event(n: i64) -> NewEvent {
    NewEvent::new("Added", json!({ "n": n }))
}

async fn append(events: &InMemoryEventStore, count: i64, per_append: i64) -> Position {
    let mut last = Position::START;
    let mut n = 0;
    while n < count {
        let stream = StreamId::new(format!("account-{}", n % 4)).unwrap();
        let batch: Vec<_> = (n..(n + per_append).min(count)).map(new_event).collect();
        n += batch.len() as i64;
        last = events
            .append(&stream, ExpectedVersion::Any, batch)
            .await
            .unwrap()
            .last_position;
    }
    last
}

fn orders() -> Topic {
    Topic::new("orders").unwrap()
}

async fn everything(bus: &RedisStreamsEventBus, topic: &Topic) -> Vec<BusMessage> {
    bus.read(topic, None, 1_000_000).await.unwrap()
}

// ---------------------------------------------------------------------
// A consumer killed before acknowledging.

/// Handles `message` the way a real consumer would: `SET NX` of an
/// idempotency key per event id and, only the first time, the effect (a
/// counter per event id), atomically (one script: a consumer killed
/// between the two would leave the event marked handled without its
/// effect). Then acknowledges.
async fn handle(
    connection: &mut redis_rs::aio::ConnectionManager,
    prefix: &str,
    message: &BusMessage,
) {
    let id = message.event.event_id;
    let _: i64 = redis_rs::cmd("EVAL")
        .arg(
            "if redis.call('SET', KEYS[1], 1, 'NX') then \
                 return redis.call('HINCRBY', KEYS[2], ARGV[1], 1) \
             end \
             return 0",
        )
        .arg(2)
        .arg(format!("{{{prefix}}}:handled:{id}"))
        .arg(format!("{{{prefix}}}:effects"))
        .arg(id.to_string())
        .query_async(connection)
        .await
        .unwrap();
}

async fn worker(
    mut subscription: Box<dyn Subscription>,
    mut connection: redis_rs::aio::ConnectionManager,
    prefix: String,
    slow: bool,
) {
    loop {
        let batch = subscription
            .receive(5, Duration::from_millis(200))
            .await
            .unwrap();
        for message in &batch {
            handle(&mut connection, &prefix, message).await;
            if slow {
                // Killed somewhere in here: handled, not acknowledged.
                tokio::time::sleep(Duration::from_millis(3)).await;
            }
            subscription.ack(message).await.unwrap();
        }
    }
}

#[tokio::test]
async fn a_consumer_killed_before_acknowledging_has_its_events_handled_once_by_another() {
    let (bus, guard) = fresh_bus(100_000).await;
    let topic = orders();
    let options = |name: &str| {
        SubscribeOptions::new(topic.clone(), "payments", name)
            .unwrap()
            .with_visibility_timeout(VISIBILITY_TIMEOUT)
    };
    let doomed = bus.subscribe(options("payments-a")).await.unwrap();
    let survivor = bus.subscribe(options("payments-b")).await.unwrap();
    let sent: Vec<StoredEvent> = (1..=200)
        .map(composable_rust_testing::event_bus_conformance::stored_event)
        .collect();
    for chunk in sent.chunks(20) {
        bus.publish_batch(&topic, chunk).await.unwrap();
    }

    let killed = tokio::spawn(worker(doomed, bus.connection(), guard.0.clone(), true));
    tokio::time::sleep(Duration::from_millis(60)).await;
    killed.abort();
    let _ = killed.await;
    let held = bus.pending(&topic, "payments").await.unwrap();
    assert!(
        held.iter().any(|p| p.consumer == "payments-a"),
        "the killed consumer held unacknowledged messages: {held:?}"
    );

    let survivor = tokio::spawn(worker(survivor, bus.connection(), guard.0.clone(), false));
    let mut connection = bus.connection();
    let effects_key = format!("{{{}}}:effects", guard.0);
    let done = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            let effects: HashMap<String, i64> = redis_rs::cmd("HGETALL")
                .arg(&effects_key)
                .query_async(&mut connection)
                .await
                .unwrap();
            let pending = bus.pending(&topic, "payments").await.unwrap();
            if effects.len() == sent.len() && pending.is_empty() {
                return effects;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("every event handled and acknowledged");
    survivor.abort();
    let _ = survivor.await;
    assert!(
        done.values().all(|&n| n == 1),
        "each event took effect once: {:?}",
        done.iter().filter(|(_, n)| **n != 1).collect::<Vec<_>>()
    );
    let ids: HashSet<String> = sent.iter().map(|e| e.event_id.to_string()).collect();
    assert_eq!(done.keys().cloned().collect::<HashSet<_>>(), ids);
}

// ---------------------------------------------------------------------
// A publisher killed at random moments.

fn publisher(
    events: &InMemoryEventStore,
    bus: &RedisStreamsEventBus,
    checkpoints: &Arc<RedisProjectionStore>,
) -> EventPublisher<RedisProjectionStore> {
    let topic = orders();
    EventPublisher::builder(
        "bus-publisher",
        events.clone(),
        bus.clone(),
        Arc::clone(checkpoints),
        move |_: &StoredEvent| Some(topic.clone()),
    )
    .with_config(PublisherConfig {
        batch_size: 7,
        failure_backoff: Duration::from_millis(10),
        idle_poll_interval: Duration::from_millis(50),
    })
    .build()
}

async fn checkpoint_store(prefix: &str) -> Arc<RedisProjectionStore> {
    Arc::new(
        RedisProjectionStore::connect(
            &super::support::redis_url(),
            &format!("{prefix}:checkpoints"),
        )
        .await
        .unwrap(),
    )
}

/// Every stored event is on the bus, copies are identical, first copies
/// come in position order; returns the number of duplicates.
async fn assert_every_event_published(
    events: &InMemoryEventStore,
    bus: &RedisStreamsEventBus,
) -> usize {
    let stored = events.read_all(Position::START, usize::MAX).await.unwrap();
    let published = everything(bus, &orders()).await;
    let mut seen = HashSet::new();
    let mut first_copies = Vec::new();
    for message in &published {
        let original = stored
            .iter()
            .find(|event| event.event_id == message.event.event_id)
            .expect("only stored events are published");
        assert_eq!(&message.event, original);
        if seen.insert(message.event.event_id) {
            first_copies.push(message.event.position);
        }
    }
    assert_eq!(
        seen.len(),
        stored.len(),
        "every stored event reached the bus"
    );
    assert!(first_copies.windows(2).all(|w| w[0] < w[1]));
    published.len() - stored.len()
}

#[tokio::test]
async fn a_publisher_killed_at_random_moments_loses_no_event() {
    let (bus, guard) = fresh_bus(100_000).await;
    let checkpoints = checkpoint_store(&guard.0).await;
    let _checkpoint_keys = super::bus_support::PrefixGuard(format!("{}:checkpoints", guard.0));
    let events = InMemoryEventStore::new();
    let writer = {
        let events = events.clone();
        tokio::spawn(async move {
            for _ in 0..60 {
                append(&events, 5, 2).await;
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        })
    };
    for round in 0..25_u64 {
        let instance = publisher(&events, &bus, &checkpoints);
        let task = instance.start();
        tokio::time::sleep(Duration::from_millis(round % 9)).await;
        task.abort();
        let _ = task.await;
    }
    writer.await.unwrap();
    // Appended while no publisher ran: published by the next one.
    let last = append(&events, 20, 3).await;
    let restarted = publisher(&events, &bus, &checkpoints);
    let task = restarted.start();
    restarted
        .wait_for(last, Duration::from_secs(10))
        .await
        .unwrap();
    restarted.shutdown();
    task.await.unwrap().unwrap();

    assert_eq!(events.len(), 320);
    let duplicates = assert_every_event_published(&events, &bus).await;
    eprintln!("{duplicates} duplicate(s) after 25 kills");
}

// ---------------------------------------------------------------------
// A projection fed by the bus.

/// Per stream, the `n` of every event in the order applied; not idempotent
/// on purpose, so a duplicate or a reordering shows.
#[derive(Default)]
struct History {
    /// Hang forever on the event with this global sequence (a process
    /// stuck mid-batch, about to be killed).
    hang_at: Option<u64>,
    applied_any: AtomicBool,
}

#[async_trait]
impl Projection for History {
    type Store = InMemoryProjectionStore;

    fn name(&self) -> &str {
        "history"
    }

    async fn apply(
        &self,
        event: &StoredEvent,
        tx: &mut <Self::Store as ProjectionStore>::Tx,
    ) -> Result<(), ProjectionError> {
        if self.hang_at == Some(event.position.sequence) {
            std::future::pending::<()>().await;
        }
        self.applied_any.store(true, Ordering::SeqCst);
        let key = format!("history:{}", event.stream_id);
        let mut seen: Vec<i64> = tx.get_json(&key).await?.unwrap_or_default();
        seen.push(event.payload["n"].as_i64().unwrap_or(-1));
        tx.save_json(&key, &seen).await
    }

    async fn reset(
        &self,
        tx: &mut <Self::Store as ProjectionStore>::Tx,
    ) -> Result<(), ProjectionError> {
        tx.delete_prefix("history:").await.map(|_| ())
    }
}

fn fast() -> ProjectionConfig {
    ProjectionConfig {
        batch_size: 5,
        failure_backoff: Duration::from_millis(10),
        idle_poll_interval: Duration::from_millis(50),
        ..ProjectionConfig::default()
    }
}

async fn bus_source(bus: &RedisStreamsEventBus) -> SubscriptionSource {
    let options = SubscribeOptions::new(orders(), "history", "history")
        .unwrap()
        .with_visibility_timeout(Duration::from_secs(30))
        .with_take_over_pending(true)
        .with_max_deliveries(u32::MAX);
    SubscriptionSource::new(bus.subscribe(options).await.unwrap())
        .with_wait(Duration::from_millis(50))
}

#[tokio::test]
async fn a_projection_fed_by_the_bus_ends_with_the_read_model_of_one_fed_by_the_store() {
    let (bus, guard) = fresh_bus(100_000).await;
    let checkpoints = checkpoint_store(&guard.0).await;
    let _checkpoint_keys = super::bus_support::PrefixGuard(format!("{}:checkpoints", guard.0));
    let events = InMemoryEventStore::new();
    append(&events, 30, 4).await;
    publisher(&events, &bus, &checkpoints)
        .publish_pending()
        .await
        .unwrap();
    // As after a publisher crash: a stretch of old events published again.
    let replayed = events.read_all(Position::new(2, 4), 9).await.unwrap();
    bus.publish_batch(&orders(), &replayed).await.unwrap();
    let last = append(&events, 30, 3).await;
    let live = publisher(&events, &bus, &checkpoints);
    let publishing = live.start();

    let read_model = Arc::new(InMemoryProjectionStore::new());
    let first = ProjectionManager::builder(
        History {
            hang_at: Some(20),
            ..History::default()
        },
        Arc::clone(&read_model),
        bus_source(&bus).await,
    )
    .with_config(fast())
    .build();
    let task = first.start();
    // It applies the first batches, then gets stuck in the batch holding
    // event 20, with that batch's messages received and unacknowledged.
    tokio::time::timeout(Duration::from_secs(10), async {
        while first.position() < Position::new(4, 13) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("the first run applies the first batches");
    tokio::time::sleep(Duration::from_millis(50)).await;
    task.abort(); // the projection process dies mid-batch
    let _ = task.await;
    assert!(first.projection().applied_any.load(Ordering::SeqCst));
    assert!(!bus.pending(&orders(), "history").await.unwrap().is_empty());

    let second = ProjectionManager::builder(
        History::default(),
        Arc::clone(&read_model),
        bus_source(&bus).await,
    )
    .with_config(fast())
    .build();
    let task = second.start();
    second
        .wait_for(last, Duration::from_secs(10))
        .await
        .unwrap();
    second.shutdown();
    task.await.unwrap().unwrap();
    live.shutdown();
    publishing.await.unwrap().unwrap();

    let from_store = Arc::new(InMemoryProjectionStore::new());
    ProjectionManager::builder(History::default(), Arc::clone(&from_store), events.clone())
        .with_config(fast())
        .build()
        .catch_up()
        .await
        .unwrap();
    assert_eq!(
        read_model.scan_prefix("history:"),
        from_store.scan_prefix("history:"),
        "same read model as from the event store"
    );
    second.catch_up().await.unwrap();
    assert!(bus.pending(&orders(), "history").await.unwrap().is_empty());
    assert_eq!(second.lag().await.unwrap().events_behind, 0);
}
