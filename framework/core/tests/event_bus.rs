//! The event publisher and the bus as a projection source, on the
//! in-memory backends: every appended event reaches the bus even when the
//! publisher dies (before or after publishing a page), duplicates carry
//! their event id, and a projection fed by the bus ends with the same read
//! model as one fed by the event store. (The bus semantics themselves are
//! checked by the conformance suite in composable-rust-testing.)

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use composable_rust_core::event_bus::{
    BusMessage, EventBus, EventBusError, EventPublisher, InMemoryEventBus, MessageId,
    PendingMessage, PublisherConfig, SubscribeOptions, Subscription, SubscriptionSource, Topic,
};
use composable_rust_core::projection::{ProjectionConfig, ProjectionTx, ProjectionTxExt};
use composable_rust_core::{
    CodedError, ErrorCode, EventStore, ExpectedVersion, InMemoryEventStore,
    InMemoryProjectionStore, NewEvent, Position, Projection, ProjectionError, ProjectionManager,
    ProjectionStore, StoredEvent, StreamId,
};
use serde_json::json;

fn new_event(n: i64) -> NewEvent {
    NewEvent::new("Added", json!({ "n": n }))
}

/// Appends `count` events in appends of `per_append` over a few streams.
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

fn small_pages() -> PublisherConfig {
    PublisherConfig {
        batch_size: 7,
        failure_backoff: Duration::from_millis(5),
        idle_poll_interval: Duration::from_millis(50),
    }
}

fn publisher(
    events: &InMemoryEventStore,
    bus: impl EventBus,
    checkpoints: &Arc<InMemoryProjectionStore>,
) -> EventPublisher<InMemoryProjectionStore> {
    let topic = orders();
    EventPublisher::builder(
        "bus-publisher",
        events.clone(),
        bus,
        Arc::clone(checkpoints),
        move |_: &StoredEvent| Some(topic.clone()),
    )
    .with_config(small_pages())
    .build()
}

/// Every message of `topic`, oldest first.
async fn everything(bus: &InMemoryEventBus, topic: &Topic) -> Vec<BusMessage> {
    bus.read(topic, None, usize::MAX).await.unwrap()
}

/// Asserts that every event of `events` is on the bus, that copies are
/// identical, and that first copies come in position order; returns how
/// many duplicates there are.
async fn assert_every_event_published(
    events: &InMemoryEventStore,
    bus: &InMemoryEventBus,
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
        assert_eq!(
            &message.event, original,
            "a copy is the stored event, id and position included"
        );
        if seen.insert(message.event.event_id) {
            first_copies.push(message.event.position);
        }
    }
    assert_eq!(
        seen.len(),
        stored.len(),
        "every stored event reached the bus"
    );
    assert!(
        first_copies.windows(2).all(|w| w[0] < w[1]),
        "first copies arrive in position order"
    );
    published.len() - stored.len()
}

#[tokio::test]
async fn the_publisher_publishes_every_event_once_and_resumes_from_its_checkpoint() {
    let events = InMemoryEventStore::new();
    let bus = InMemoryEventBus::new();
    let checkpoints = Arc::new(InMemoryProjectionStore::new());
    let last = append(&events, 20, 3).await;

    let first = publisher(&events, bus.clone(), &checkpoints);
    assert_eq!(first.publish_pending().await.unwrap(), 20);
    assert_eq!(first.position(), last);
    assert_eq!(assert_every_event_published(&events, &bus).await, 0);

    // A new instance (a restart) resumes after the checkpoint.
    let last = append(&events, 5, 5).await;
    let second = publisher(&events, bus.clone(), &checkpoints);
    assert_eq!(second.publish_pending().await.unwrap(), 5);
    assert_eq!(second.published(), 5);
    assert_eq!(second.position(), last);
    assert_eq!(assert_every_event_published(&events, &bus).await, 0);
}

#[tokio::test]
async fn events_appended_while_no_publisher_runs_are_published_when_one_starts() {
    let events = InMemoryEventStore::new();
    let bus = InMemoryEventBus::new();
    let checkpoints = Arc::new(InMemoryProjectionStore::new());
    let running = publisher(&events, bus.clone(), &checkpoints);
    let task = running.start();
    let last = append(&events, 10, 2).await;
    running
        .wait_for(last, Duration::from_secs(5))
        .await
        .unwrap();
    // The process dies right after the next appends, before publishing.
    task.abort();
    let _ = task.await;
    let last = append(&events, 10, 2).await;
    assert_eq!(bus.topic_len(&orders()).await.unwrap(), 10);

    let restarted = publisher(&events, bus.clone(), &checkpoints);
    let task = restarted.start();
    restarted
        .wait_for(last, Duration::from_secs(5))
        .await
        .unwrap();
    restarted.shutdown();
    task.await.unwrap().unwrap();
    assert_eq!(assert_every_event_published(&events, &bus).await, 0);
}

/// A bus that publishes, then hangs forever on the `hang_on`-th call: the
/// publisher dies after publishing and before saving its checkpoint.
struct HangsAfterPublishing {
    bus: InMemoryEventBus,
    calls: AtomicU32,
    hang_on: u32,
}

#[async_trait]
impl EventBus for HangsAfterPublishing {
    async fn publish_batch(
        &self,
        topic: &Topic,
        events: &[StoredEvent],
    ) -> Result<Vec<MessageId>, EventBusError> {
        let ids = self.bus.publish_batch(topic, events).await?;
        if self.calls.fetch_add(1, Ordering::SeqCst) + 1 == self.hang_on {
            std::future::pending::<()>().await;
        }
        Ok(ids)
    }
    async fn subscribe(
        &self,
        options: SubscribeOptions,
    ) -> Result<Box<dyn Subscription>, EventBusError> {
        self.bus.subscribe(options).await
    }
    async fn read(
        &self,
        topic: &Topic,
        after: Option<&MessageId>,
        limit: usize,
    ) -> Result<Vec<BusMessage>, EventBusError> {
        self.bus.read(topic, after, limit).await
    }
    async fn topic_len(&self, topic: &Topic) -> Result<u64, EventBusError> {
        self.bus.topic_len(topic).await
    }
    async fn pending(
        &self,
        topic: &Topic,
        group: &str,
    ) -> Result<Vec<PendingMessage>, EventBusError> {
        self.bus.pending(topic, group).await
    }
}

#[tokio::test]
async fn a_publisher_killed_after_publishing_and_before_its_checkpoint_publishes_the_page_again() {
    let events = InMemoryEventStore::new();
    let bus = InMemoryEventBus::new();
    let checkpoints = Arc::new(InMemoryProjectionStore::new());
    let last = append(&events, 20, 4).await;

    let dying = publisher(
        &events,
        HangsAfterPublishing {
            bus: bus.clone(),
            calls: AtomicU32::new(0),
            hang_on: 2,
        },
        &checkpoints,
    );
    let task = dying.start();
    // Page 1 is checkpointed; page 2 is on the bus, its checkpoint is not.
    tokio::time::timeout(Duration::from_secs(5), async {
        while bus.topic_len(&orders()).await.unwrap() < 14 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    })
    .await
    .unwrap();
    task.abort();
    let _ = task.await;
    assert_eq!(
        dying.position(),
        Position::new(2, 7),
        "only page 1 was checkpointed"
    );

    let restarted = publisher(&events, bus.clone(), &checkpoints);
    restarted.publish_pending().await.unwrap();
    assert_eq!(restarted.position(), last);
    let duplicates = assert_every_event_published(&events, &bus).await;
    assert_eq!(duplicates, 7, "page 2 was published twice");
}

#[tokio::test]
async fn a_publisher_killed_at_random_moments_while_writers_append_loses_nothing() {
    let events = InMemoryEventStore::new();
    let bus = InMemoryEventBus::new();
    let checkpoints = Arc::new(InMemoryProjectionStore::new());
    let writer = {
        let events = events.clone();
        tokio::spawn(async move {
            for _ in 0..40 {
                append(&events, 5, 2).await;
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        })
    };
    for round in 0..20_u64 {
        let instance = publisher(&events, bus.clone(), &checkpoints);
        let task = instance.start();
        tokio::time::sleep(Duration::from_micros(300 * (round % 7))).await;
        task.abort();
        let _ = task.await;
    }
    writer.await.unwrap();
    let last = publisher(&events, bus.clone(), &checkpoints);
    last.publish_pending().await.unwrap();
    assert_eq!(events.len(), 200);
    assert_every_event_published(&events, &bus).await;
}

/// A bus that fails its first `failures` publishes with a backend error.
struct FlakyBus {
    bus: InMemoryEventBus,
    failures: AtomicU32,
}

#[async_trait]
impl EventBus for FlakyBus {
    async fn publish_batch(
        &self,
        topic: &Topic,
        events: &[StoredEvent],
    ) -> Result<Vec<MessageId>, EventBusError> {
        if self
            .failures
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Err(EventBusError::Backend(
                composable_rust_core::BackendError::from_message(
                    ErrorCode::new("CR-E0203", "unreachable"),
                    composable_rust_core::ErrorClass::Transient,
                    "the test bus is down",
                ),
            ));
        }
        self.bus.publish_batch(topic, events).await
    }
    async fn subscribe(
        &self,
        options: SubscribeOptions,
    ) -> Result<Box<dyn Subscription>, EventBusError> {
        self.bus.subscribe(options).await
    }
    async fn read(
        &self,
        topic: &Topic,
        after: Option<&MessageId>,
        limit: usize,
    ) -> Result<Vec<BusMessage>, EventBusError> {
        self.bus.read(topic, after, limit).await
    }
    async fn topic_len(&self, topic: &Topic) -> Result<u64, EventBusError> {
        self.bus.topic_len(topic).await
    }
    async fn pending(
        &self,
        topic: &Topic,
        group: &str,
    ) -> Result<Vec<PendingMessage>, EventBusError> {
        self.bus.pending(topic, group).await
    }
}

#[tokio::test]
async fn a_bus_outage_is_retried_and_never_skips_an_event() {
    let events = InMemoryEventStore::new();
    let bus = InMemoryEventBus::new();
    let checkpoints = Arc::new(InMemoryProjectionStore::new());
    let flaky = publisher(
        &events,
        FlakyBus {
            bus: bus.clone(),
            failures: AtomicU32::new(3),
        },
        &checkpoints,
    );
    let last = append(&events, 15, 5).await;
    let error = flaky.publish_pending().await.unwrap_err();
    assert!(error.is_transient(), "{error}");
    assert_eq!(error.code().as_str(), "CR-E0203");
    let task = flaky.start();
    flaky.wait_for(last, Duration::from_secs(5)).await.unwrap();
    flaky.shutdown();
    task.await.unwrap().unwrap();
    assert_eq!(assert_every_event_published(&events, &bus).await, 0);
}

#[tokio::test]
async fn the_router_picks_topics_and_can_skip_events() {
    let events = InMemoryEventStore::new();
    let bus = InMemoryEventBus::new();
    let checkpoints = Arc::new(InMemoryProjectionStore::new());
    let router = |event: &StoredEvent| match event.payload["n"].as_i64() {
        Some(n) if n % 3 == 0 => None,
        Some(n) if n % 2 == 0 => Some(Topic::new("even").unwrap()),
        _ => Some(Topic::new("odd").unwrap()),
    };
    let routed =
        EventPublisher::builder("router", events.clone(), bus.clone(), checkpoints, router)
            .with_config(small_pages())
            .build();
    let last = append(&events, 12, 12).await;
    assert_eq!(routed.publish_pending().await.unwrap(), 12);
    assert_eq!(routed.position(), last);
    let numbers = |messages: Vec<BusMessage>| -> Vec<i64> {
        messages
            .iter()
            .map(|m| m.event.payload["n"].as_i64().unwrap())
            .collect()
    };
    let even = Topic::new("even").unwrap();
    let odd = Topic::new("odd").unwrap();
    assert_eq!(numbers(everything(&bus, &even).await), [2, 4, 8, 10]);
    assert_eq!(numbers(everything(&bus, &odd).await), [1, 5, 7, 11]);
}

#[tokio::test]
async fn wait_for_times_out_with_a_coded_error() {
    let events = InMemoryEventStore::new();
    let checkpoints = Arc::new(InMemoryProjectionStore::new());
    let idle = publisher(&events, InMemoryEventBus::new(), &checkpoints);
    let error = idle
        .wait_for(Position::new(1, 1), Duration::from_millis(20))
        .await
        .unwrap_err();
    assert_eq!(error.code().as_str(), "CR-E0017");
    assert!(error.to_string().starts_with("[CR-E0017]"), "{error}");
}

/// Keeps, per stream, the `n` of every event in the order applied; not
/// idempotent on purpose, so a duplicate or a reordering shows.
#[derive(Default)]
struct History {
    /// Fail every apply (as a backend error) while set.
    broken: AtomicBool,
    /// Hang forever on the event with this global sequence (a process
    /// stuck mid-batch, about to be killed).
    hang_at: Option<u64>,
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
        if self.broken.load(Ordering::SeqCst) {
            return Err(ProjectionError::Backend(
                composable_rust_core::BackendError::from_message(
                    ErrorCode::new("CR-E9999", "test"),
                    composable_rust_core::ErrorClass::Transient,
                    "the read database is down",
                ),
            ));
        }
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
        failure_backoff: Duration::from_millis(5),
        idle_poll_interval: Duration::from_millis(50),
        ..ProjectionConfig::default()
    }
}

async fn store_fed_read_model(events: &InMemoryEventStore) -> Vec<(String, Vec<u8>)> {
    let store = Arc::new(InMemoryProjectionStore::new());
    ProjectionManager::builder(History::default(), Arc::clone(&store), events.clone())
        .with_config(fast())
        .build()
        .catch_up()
        .await
        .unwrap();
    store.scan_prefix("history:")
}

async fn bus_source(bus: &InMemoryEventBus) -> SubscriptionSource {
    let options = SubscribeOptions::new(orders(), "history", "history")
        .unwrap()
        .with_take_over_pending(true)
        .with_max_deliveries(u32::MAX);
    SubscriptionSource::new(bus.subscribe(options).await.unwrap())
        .with_wait(Duration::from_millis(20))
}

#[tokio::test]
async fn a_projection_fed_by_the_bus_matches_one_fed_by_the_store_despite_duplicates_and_crashes() {
    let events = InMemoryEventStore::new();
    let bus = InMemoryEventBus::new();
    let checkpoints = Arc::new(InMemoryProjectionStore::new());
    append(&events, 30, 4).await;
    publisher(&events, bus.clone(), &checkpoints)
        .publish_pending()
        .await
        .unwrap();
    // A publisher crash re-publishes a stretch of old events.
    let replayed = events.read_all(Position::new(2, 4), 9).await.unwrap();
    bus.publish_batch(&orders(), &replayed).await.unwrap();
    let last = append(&events, 20, 3).await;
    publisher(&events, bus.clone(), &checkpoints)
        .publish_pending()
        .await
        .unwrap();

    let read_model = Arc::new(InMemoryProjectionStore::new());
    // A first run applies part of the stream, then dies mid-way.
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
    assert!(
        !bus.pending(&orders(), "history").await.unwrap().is_empty(),
        "the dead run held unacknowledged messages"
    );

    // The restart (same group, same store) finishes the job.
    let second = ProjectionManager::builder(
        History::default(),
        Arc::clone(&read_model),
        bus_source(&bus).await,
    )
    .with_config(fast())
    .build();
    let task = second.start();
    second.wait_for(last, Duration::from_secs(5)).await.unwrap();
    second.shutdown();
    task.await.unwrap().unwrap();

    assert_eq!(
        read_model.scan_prefix("history:"),
        store_fed_read_model(&events).await,
        "same read model as from the event store"
    );
    // One more read acknowledges the last batch; nothing is left pending.
    second.catch_up().await.unwrap();
    assert!(bus.pending(&orders(), "history").await.unwrap().is_empty());
}

#[tokio::test]
async fn a_failing_read_model_leaves_messages_pending_until_it_recovers() {
    let events = InMemoryEventStore::new();
    let bus = InMemoryEventBus::new();
    let checkpoints = Arc::new(InMemoryProjectionStore::new());
    let last = append(&events, 10, 2).await;
    publisher(&events, bus.clone(), &checkpoints)
        .publish_pending()
        .await
        .unwrap();
    let read_model = Arc::new(InMemoryProjectionStore::new());
    let manager = ProjectionManager::builder(
        History::default(),
        Arc::clone(&read_model),
        bus_source(&bus).await,
    )
    .with_config(fast())
    .build();
    manager.projection().broken.store(true, Ordering::SeqCst);
    let error = manager.catch_up().await.unwrap_err();
    assert!(error.is_transient(), "{error}");
    assert_eq!(bus.pending(&orders(), "history").await.unwrap().len(), 5);
    assert!(read_model.scan_prefix("history:").is_empty());

    manager.projection().broken.store(false, Ordering::SeqCst);
    assert_eq!(manager.catch_up().await.unwrap(), 10);
    assert_eq!(manager.position(), last);
    assert_eq!(
        read_model.scan_prefix("history:"),
        store_fed_read_model(&events).await
    );
    let lag = manager.lag().await.unwrap();
    assert_eq!(lag.events_behind, 0);
    assert!(bus.pending(&orders(), "history").await.unwrap().is_empty());
}
