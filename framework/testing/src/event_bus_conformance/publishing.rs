//! The checks of the suite that put a bus between an event store and its
//! readers: the [`EventPublisher`] publishes every appended event even
//! when it dies (before or after publishing a page, or at random moments
//! while writers append), duplicates carry their event id, and a
//! projection fed by the bus (a [`SubscriptionSource`]) ends with the same
//! read model as one fed by the event store. The event store, checkpoints
//! and read model are in memory; only the bus varies.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use composable_rust_core::event_bus::{
    BusMessage, EventBus, EventBusError, EventPublisher, MessageId, PendingMessage,
    PublisherConfig, SubscribeOptions, Subscription, SubscriptionSource, Topic,
};
use composable_rust_core::projection::{ProjectionConfig, ProjectionTx, ProjectionTxExt};
use composable_rust_core::{
    BackendError, CodedError, ErrorClass, ErrorCode, EventStore, ExpectedVersion,
    InMemoryEventStore, InMemoryProjectionStore, NewEvent, Position, Projection, ProjectionError,
    ProjectionManager, ProjectionStore, StoredEvent, StreamId,
};
use serde_json::json;

use super::{BusFixture, topic};
use crate::faults::{BusOperation, FaultyEventBus};

fn new_event(n: i64) -> NewEvent {
    NewEvent::new("Added", json!({ "n": n }))
}

/// Appends `count` events in appends of `per_append` over a few streams;
/// returns the last position.
async fn append(events: &InMemoryEventStore, count: i64, per_append: i64) -> Position {
    let mut last = Position::START;
    let mut n = 0;
    while n < count {
        let stream = StreamId::new(format!("account-{}", n % 4)).expect("valid stream id");
        let batch: Vec<_> = (n..(n + per_append).min(count)).map(new_event).collect();
        n += batch.len() as i64;
        last = events
            .append(&stream, ExpectedVersion::Any, batch)
            .await
            .expect("append")
            .last_position;
    }
    last
}

fn small_pages() -> PublisherConfig {
    PublisherConfig {
        batch_size: 7,
        failure_backoff: Duration::from_millis(10),
        idle_poll_interval: Duration::from_millis(50),
        ..PublisherConfig::default()
    }
}

/// A publisher of every event of `events` to `topic`, in pages of 7.
fn publisher(
    events: &InMemoryEventStore,
    bus: impl EventBus,
    checkpoints: &Arc<InMemoryProjectionStore>,
    topic: &Topic,
) -> EventPublisher<InMemoryProjectionStore> {
    let topic = topic.clone();
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
async fn everything(bus: &impl EventBus, topic: &Topic) -> Vec<BusMessage> {
    bus.read(topic, None, 1_000_000).await.expect("read")
}

/// Asserts that every event of `events` is on `topic`, that copies are
/// identical, and that first copies come in position order; returns how
/// many duplicates there are.
async fn assert_every_event_published(
    events: &InMemoryEventStore,
    bus: &impl EventBus,
    topic: &Topic,
) -> usize {
    let stored = events
        .read_all(Position::START, usize::MAX)
        .await
        .expect("read_all");
    let published = everything(bus, topic).await;
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

/// The publisher publishes every event once, and a new instance (a
/// restart) resumes after the checkpoint.
pub async fn the_publisher_publishes_every_event_once_and_resumes_from_its_checkpoint(
    fixture: BusFixture<impl EventBus>,
) {
    let topic = topic("published");
    let bus = Arc::new(fixture.bus);
    let events = InMemoryEventStore::new();
    let checkpoints = Arc::new(InMemoryProjectionStore::new());
    let last = append(&events, 20, 3).await;

    let first = publisher(&events, Arc::clone(&bus), &checkpoints, &topic);
    assert_eq!(first.publish_pending().await.unwrap(), 20);
    assert_eq!(first.position(), last);
    assert_eq!(assert_every_event_published(&events, &bus, &topic).await, 0);

    let last = append(&events, 5, 5).await;
    let second = publisher(&events, Arc::clone(&bus), &checkpoints, &topic);
    assert_eq!(second.publish_pending().await.unwrap(), 5);
    assert_eq!(second.published(), 5);
    assert_eq!(second.position(), last);
    assert_eq!(assert_every_event_published(&events, &bus, &topic).await, 0);
}

/// Events appended after the publisher died are published by the next
/// one, and not before.
pub async fn events_appended_while_no_publisher_runs_are_published_when_one_starts(
    fixture: BusFixture<impl EventBus>,
) {
    let topic = topic("restarted");
    let bus = Arc::new(fixture.bus);
    let events = InMemoryEventStore::new();
    let checkpoints = Arc::new(InMemoryProjectionStore::new());
    let running = publisher(&events, Arc::clone(&bus), &checkpoints, &topic);
    let task = running.start();
    let last = append(&events, 10, 2).await;
    running
        .wait_for(last, Duration::from_secs(10))
        .await
        .unwrap();
    // The process dies; events are appended while none runs.
    task.abort();
    let _ = task.await;
    let last = append(&events, 10, 2).await;
    assert_eq!(bus.topic_len(&topic).await.unwrap(), 10);

    let restarted = publisher(&events, Arc::clone(&bus), &checkpoints, &topic);
    let task = restarted.start();
    restarted
        .wait_for(last, Duration::from_secs(10))
        .await
        .unwrap();
    restarted.shutdown();
    task.await.unwrap().unwrap();
    assert_eq!(assert_every_event_published(&events, &bus, &topic).await, 0);
}

/// A bus that publishes, then hangs forever on the `hang_on`-th call: the
/// publisher dies after publishing and before saving its checkpoint.
struct HangsAfterPublishing<B> {
    bus: Arc<B>,
    calls: AtomicU32,
    hang_on: u32,
}

#[async_trait]
impl<B: EventBus> EventBus for HangsAfterPublishing<B> {
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

/// A publisher killed after a page reached the bus and before its
/// checkpoint was saved publishes that page again when restarted: a
/// duplicate, never a gap.
pub async fn a_publisher_killed_after_publishing_and_before_its_checkpoint_publishes_the_page_again(
    fixture: BusFixture<impl EventBus>,
) {
    let topic = topic("hangs");
    let bus = Arc::new(fixture.bus);
    let events = InMemoryEventStore::new();
    let checkpoints = Arc::new(InMemoryProjectionStore::new());
    let last = append(&events, 20, 4).await;

    let dying = publisher(
        &events,
        HangsAfterPublishing {
            bus: Arc::clone(&bus),
            calls: AtomicU32::new(0),
            hang_on: 2,
        },
        &checkpoints,
        &topic,
    );
    let task = dying.start();
    // Page 1 is checkpointed; page 2 is on the bus, its checkpoint is not.
    tokio::time::timeout(Duration::from_secs(10), async {
        while bus.topic_len(&topic).await.unwrap() < 14 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    })
    .await
    .expect("two pages reach the bus");
    task.abort();
    let _ = task.await;
    assert_eq!(
        dying.position(),
        Position::new(2, 7),
        "only page 1 was checkpointed"
    );

    let restarted = publisher(&events, Arc::clone(&bus), &checkpoints, &topic);
    restarted.publish_pending().await.unwrap();
    assert_eq!(restarted.position(), last);
    let duplicates = assert_every_event_published(&events, &bus, &topic).await;
    assert_eq!(duplicates, 7, "page 2 was published twice");
}

/// Publishers killed at random moments while writers append, then events
/// appended while none runs: the next publisher brings every event to the
/// bus.
pub async fn a_publisher_killed_at_random_moments_while_writers_append_loses_nothing(
    fixture: BusFixture<impl EventBus>,
) {
    let topic = topic("killed");
    let bus = Arc::new(fixture.bus);
    let events = InMemoryEventStore::new();
    let checkpoints = Arc::new(InMemoryProjectionStore::new());
    let writer = {
        let events = events.clone();
        tokio::spawn(async move {
            for _ in 0..60 {
                append(&events, 5, 2).await;
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        })
    };
    // Kill publishers as long as the writer writes (at least 25 times).
    let mut kills = 0_u64;
    while kills < 25 || !writer.is_finished() {
        let instance = publisher(&events, Arc::clone(&bus), &checkpoints, &topic);
        let task = instance.start();
        tokio::time::sleep(Duration::from_micros(300 * (kills % 9))).await;
        task.abort();
        let _ = task.await;
        kills += 1;
    }
    writer.await.unwrap();
    // Appended while no publisher runs: published by the next one.
    let last = append(&events, 20, 3).await;
    let restarted = publisher(&events, Arc::clone(&bus), &checkpoints, &topic);
    let task = restarted.start();
    restarted
        .wait_for(last, Duration::from_secs(10))
        .await
        .unwrap();
    restarted.shutdown();
    task.await.unwrap().unwrap();

    assert_eq!(events.len(), 320);
    assert_every_event_published(&events, &bus, &topic).await;
}

/// A bus that fails to publish is retried, from the checkpoint, without
/// skipping an event; the failure's class comes through.
pub async fn a_bus_outage_is_retried_and_never_skips_an_event(fixture: BusFixture<impl EventBus>) {
    let topic = topic("outage");
    let bus = Arc::new(fixture.bus);
    let events = InMemoryEventStore::new();
    let checkpoints = Arc::new(InMemoryProjectionStore::new());
    let flaky = FaultyEventBus::new(Arc::clone(&bus));
    flaky.fail_next(BusOperation::Publish, ErrorClass::Transient, 3);
    let publishing = publisher(&events, flaky, &checkpoints, &topic);
    let last = append(&events, 15, 5).await;
    let error = publishing.publish_pending().await.unwrap_err();
    assert!(error.is_transient(), "{error}");
    assert_eq!(error.code().as_str(), "CR-E0099", "{error}");
    let task = publishing.start();
    publishing
        .wait_for(last, Duration::from_secs(10))
        .await
        .unwrap();
    publishing.shutdown();
    task.await.unwrap().unwrap();
    assert_eq!(assert_every_event_published(&events, &bus, &topic).await, 0);
}

/// The router picks each event's topic; an event routed nowhere is
/// skipped, and the checkpoint still moves past it.
pub async fn the_router_picks_topics_and_can_skip_events(fixture: BusFixture<impl EventBus>) {
    let (even, odd) = (topic("even"), topic("odd"));
    let events = InMemoryEventStore::new();
    let checkpoints = Arc::new(InMemoryProjectionStore::new());
    let router = {
        let (even, odd) = (even.clone(), odd.clone());
        move |event: &StoredEvent| match event.payload["n"].as_i64() {
            Some(n) if n % 3 == 0 => None,
            Some(n) if n % 2 == 0 => Some(even.clone()),
            _ => Some(odd.clone()),
        }
    };
    let bus = Arc::new(fixture.bus);
    let routed = EventPublisher::builder(
        "router",
        events.clone(),
        Arc::clone(&bus),
        checkpoints,
        router,
    )
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
    assert_eq!(numbers(everything(&bus, &even).await), [2, 4, 8, 10]);
    assert_eq!(numbers(everything(&bus, &odd).await), [1, 5, 7, 11]);
}

/// `wait_for` a position the publisher never reaches gives up with a
/// coded error.
pub async fn wait_for_times_out_with_a_coded_error(fixture: BusFixture<impl EventBus>) {
    let events = InMemoryEventStore::new();
    let checkpoints = Arc::new(InMemoryProjectionStore::new());
    let idle = publisher(&events, fixture.bus, &checkpoints, &topic("idle"));
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
    /// Whether any event was applied.
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
        if self.broken.load(Ordering::SeqCst) {
            return Err(ProjectionError::Backend(BackendError::from_message(
                ErrorCode::new("CR-E9999", "test"),
                ErrorClass::Transient,
                "the read database is down",
            )));
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

/// The read model of `History` fed by the event store itself.
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

/// The projection's source: group `history` on `topic`, taking over what
/// a previous run left pending. The visibility timeout is long, so only
/// the take-over brings messages back.
async fn bus_source(bus: &impl EventBus, topic: &Topic) -> SubscriptionSource {
    let options = SubscribeOptions::new(topic.clone(), "history", "history")
        .expect("valid names")
        .with_visibility_timeout(Duration::from_secs(30))
        .with_take_over_pending(true)
        .with_max_deliveries(u32::MAX);
    SubscriptionSource::new(bus.subscribe(options).await.expect("subscribe"))
        .with_wait(Duration::from_millis(50))
}

/// A projection fed by the bus, despite re-published stretches (as after
/// a publisher crash), a publisher running alongside and a first run that
/// dies mid-batch, ends with the read model of one fed by the store, and
/// leaves nothing pending.
pub async fn a_projection_fed_by_the_bus_ends_with_the_read_model_of_one_fed_by_the_store(
    fixture: BusFixture<impl EventBus>,
) {
    let topic = topic("history");
    let bus = Arc::new(fixture.bus);
    let events = InMemoryEventStore::new();
    let checkpoints = Arc::new(InMemoryProjectionStore::new());
    append(&events, 30, 4).await;
    publisher(&events, Arc::clone(&bus), &checkpoints, &topic)
        .publish_pending()
        .await
        .unwrap();
    // As after a publisher crash: a stretch of old events published again.
    let replayed = events.read_all(Position::new(2, 4), 9).await.unwrap();
    bus.publish_batch(&topic, &replayed).await.unwrap();
    let last = append(&events, 30, 3).await;
    let live = publisher(&events, Arc::clone(&bus), &checkpoints, &topic);
    let publishing = live.start();

    let read_model = Arc::new(InMemoryProjectionStore::new());
    let first = ProjectionManager::builder(
        History {
            hang_at: Some(20),
            ..History::default()
        },
        Arc::clone(&read_model),
        bus_source(&bus, &topic).await,
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
    assert!(
        !bus.pending(&topic, "history").await.unwrap().is_empty(),
        "the dead run held unacknowledged messages"
    );

    // The restart (same group, same store) finishes the job.
    let second = ProjectionManager::builder(
        History::default(),
        Arc::clone(&read_model),
        bus_source(&bus, &topic).await,
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

    assert_eq!(
        read_model.scan_prefix("history:"),
        store_fed_read_model(&events).await,
        "same read model as from the event store"
    );
    // One more read acknowledges the last batch; nothing is left pending.
    second.catch_up().await.unwrap();
    assert!(bus.pending(&topic, "history").await.unwrap().is_empty());
    assert_eq!(second.lag().await.unwrap().events_behind, 0);
}

/// While the read model fails, the projection's messages stay pending on
/// the bus; once it recovers they are applied and acknowledged.
pub async fn a_failing_read_model_leaves_messages_pending_until_it_recovers(
    fixture: BusFixture<impl EventBus>,
) {
    let topic = topic("failing");
    let bus = Arc::new(fixture.bus);
    let events = InMemoryEventStore::new();
    let checkpoints = Arc::new(InMemoryProjectionStore::new());
    let last = append(&events, 10, 2).await;
    publisher(&events, Arc::clone(&bus), &checkpoints, &topic)
        .publish_pending()
        .await
        .unwrap();
    let read_model = Arc::new(InMemoryProjectionStore::new());
    let manager = ProjectionManager::builder(
        History::default(),
        Arc::clone(&read_model),
        bus_source(&bus, &topic).await,
    )
    .with_config(fast())
    .build();
    manager.projection().broken.store(true, Ordering::SeqCst);
    let error = manager.catch_up().await.unwrap_err();
    assert!(error.is_transient(), "{error}");
    assert_eq!(bus.pending(&topic, "history").await.unwrap().len(), 5);
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
    assert!(bus.pending(&topic, "history").await.unwrap().is_empty());
}
