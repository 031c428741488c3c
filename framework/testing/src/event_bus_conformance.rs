//! One conformance suite for every [`EventBus`]: the promises of the trait
//! (consumer groups, acknowledgement, redelivery, dead letters, bounded
//! topics), and those of the [`EventPublisher`](composable_rust_core::event_bus::EventPublisher)
//! and of a projection fed by the bus
//! ([`SubscriptionSource`](composable_rust_core::event_bus::SubscriptionSource)),
//! which hold on any bus (no event lost when a publisher dies, duplicates
//! harmless), checked the same way against the in-memory bus and Redis
//! Streams.
//!
//! Generate the tests for your bus with
//! [`event_bus_conformance_tests!`](crate::event_bus_conformance_tests),
//! passing an async function that takes a topic length bound and returns
//! a [`BusFixture`]: a fresh, empty, isolated bus keeping about that many
//! messages per topic, and how to let time pass for it. The suite asks for
//! [`BOUNDED`] messages to check trimming, and [`UNBOUNDED`] for the
//! checks that must find every published message on the bus.
//!
//! ```
//! use composable_rust_core::InMemoryEventBus;
//! use composable_rust_testing::event_bus_conformance::BusFixture;
//!
//! async fn fresh_bus(max_len: u64) -> BusFixture<InMemoryEventBus> {
//!     BusFixture::in_memory(max_len)
//! }
//!
//! composable_rust_testing::event_bus_conformance_tests!(fresh_bus);
//! # fn main() {}
//! ```
//!
//! # Buses that promise less: [`BusDifferences`]
//!
//! Some buses cannot keep every promise of the trait the way Redis
//! Streams and the in-memory bus do: a Kafka-protocol bus orders messages
//! per partition (per stream), moves a dead member's messages by
//! rebalancing the group rather than after a visibility timeout, and
//! bounds topics by retention time or size rather than by a message count.
//! Such a bus declares its differences, and the suite then checks the
//! weaker promise in their place (each check's documentation says what
//! it checks instead), never silently less:
//!
//! ```
//! # use composable_rust_core::InMemoryEventBus;
//! use composable_rust_testing::event_bus_conformance::{BusDifferences, BusFixture};
//! # async fn fresh_bus(max_len: u64) -> BusFixture<InMemoryEventBus> {
//! #     BusFixture::in_memory(max_len)
//! # }
//!
//! composable_rust_testing::event_bus_conformance_tests!(
//!     fresh_bus,
//!     differences = BusDifferences::KAFKA
//! );
//! # fn main() {}
//! ```

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use composable_rust_core::event_bus::{
    BusMessage, EventBus, InMemoryEventBus, MessageId, StartFrom, SubscribeOptions, Subscription,
    Topic,
};
use composable_rust_core::{Position, StoredEvent, StreamId, TestClock};
use serde_json::json;
use uuid::Uuid;

mod publishing;

pub use publishing::{
    a_bus_outage_is_retried_and_never_skips_an_event,
    a_failing_read_model_leaves_messages_pending_until_it_recovers,
    a_projection_fed_by_the_bus_ends_with_the_read_model_of_one_fed_by_the_store,
    a_publisher_killed_after_publishing_and_before_its_checkpoint_publishes_the_page_again,
    a_publisher_killed_at_random_moments_while_writers_append_loses_nothing,
    events_appended_while_no_publisher_runs_are_published_when_one_starts,
    the_publisher_publishes_every_event_once_and_resumes_from_its_checkpoint,
    the_router_picks_topics_and_can_skip_events, wait_for_times_out_with_a_coded_error,
};

/// The length bound of the buses of the checks about the bus itself
/// (small, so [`topics_are_bounded`] is quick).
pub const BOUNDED: u64 = 50;

/// The length bound of the buses of the publisher and projection checks:
/// more than they ever publish to a topic, so every message stays.
pub const UNBOUNDED: u64 = 1_000_000;

/// Generates one `#[test]` per conformance check, each on a fresh
/// [`BusFixture`] from `$make`, an async fn taking the topic length bound
/// the check needs ([`BOUNDED`] or [`UNBOUNDED`]). An optional
/// `differences = EXPR` ([`BusDifferences`]) declares the promises the bus
/// keeps in a weaker form (default [`BusDifferences::NONE`]).
#[macro_export]
macro_rules! event_bus_conformance_tests {
    ($make:ident) => {
        $crate::event_bus_conformance_tests!(
            $make,
            differences = $crate::event_bus_conformance::BusDifferences::NONE
        );
    };
    ($make:ident, differences = $differences:expr) => {
        mod event_bus_conformance {
            $crate::event_bus_conformance_tests!(@tests $make, $differences,
                $crate::event_bus_conformance::UNBOUNDED;
                the_publisher_publishes_every_event_once_and_resumes_from_its_checkpoint,
                events_appended_while_no_publisher_runs_are_published_when_one_starts,
                a_publisher_killed_after_publishing_and_before_its_checkpoint_publishes_the_page_again,
                a_publisher_killed_at_random_moments_while_writers_append_loses_nothing,
                a_bus_outage_is_retried_and_never_skips_an_event,
                the_router_picks_topics_and_can_skip_events,
                wait_for_times_out_with_a_coded_error,
                a_projection_fed_by_the_bus_ends_with_the_read_model_of_one_fed_by_the_store,
                a_failing_read_model_leaves_messages_pending_until_it_recovers,
            );
            $crate::event_bus_conformance_tests!(@tests $make, $differences,
                $crate::event_bus_conformance::BOUNDED;
                published_events_are_delivered_in_order,
                a_waiting_receiver_gets_a_later_message,
                a_new_group_starts_where_asked,
                members_of_a_group_split_the_work,
                every_group_gets_every_message,
                acknowledged_messages_leave_the_pending_list,
                a_dead_consumers_messages_are_redelivered_and_handled_once,
                a_consumer_restarting_under_its_name_gets_its_messages_back_first,
                a_take_over_subscription_gets_the_whole_groups_messages_first,
                poison_messages_go_to_the_dead_letter_topic,
                receive_returns_at_most_max_across_topics,
                topics_are_bounded,
            );
        }
    };
    (@tests $make:ident, $differences:expr, $max_len:expr; $($check:ident),* $(,)?) => {
        $(
            #[test]
            fn $check() {
                $crate::event_bus_conformance::run_with($differences, || async {
                    let fixture = super::$make($max_len).await;
                    $crate::event_bus_conformance::$check(fixture).await;
                });
            }
        )*
    };
}

/// Runs the future `check` makes on a thread and a multi-threaded tokio
/// runtime of its own (used by the generated tests, so callers need no
/// tokio macros); a check still running after
/// [`CHECK_DEADLINE`](crate::CHECK_DEADLINE) fails instead of hanging the
/// test run.
pub fn run<F: std::future::Future<Output = ()>>(check: impl FnOnce() -> F + Send + 'static) {
    crate::check_runtime::run_check(crate::check_runtime::CHECK_DEADLINE, check);
}

/// Runs `check` like [`run`], with `differences` declared for the bus
/// under test: the checks read them with [`differences`].
pub fn run_with<F: std::future::Future<Output = ()>>(
    differences: BusDifferences,
    check: impl FnOnce() -> F + Send + 'static,
) {
    run(move || DIFFERENCES.scope(differences, check()));
}

tokio::task_local! {
    static DIFFERENCES: BusDifferences;
}

/// The differences declared for the bus under test (by
/// [`run_with`], which the generated tests call);
/// [`BusDifferences::NONE`] outside it.
pub fn differences() -> BusDifferences {
    DIFFERENCES
        .try_with(|differences| *differences)
        .unwrap_or(BusDifferences::NONE)
}

/// The promises of [`EventBus`] a bus keeps in a weaker form; the suite
/// checks the weaker promise instead of the full one, and says so in each
/// check's documentation. [`NONE`](Self::NONE) for the in-memory and
/// Redis Streams buses, [`KAFKA`](Self::KAFKA) for a Kafka-protocol bus.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct BusDifferences {
    /// Messages keep their publish order only within a stream (Kafka:
    /// within a partition, records keyed by stream id), not across a
    /// topic: checks compare orders per stream, and contents as sets.
    pub order_per_stream_only: bool,
    /// A consumer's unacknowledged messages move to another member of the
    /// group when the group rebalances (at once when the consumer leaves,
    /// after the session timeout when it crashes), not after the
    /// visibility timeout while it is still a member; and a consumer
    /// (re)joining a group gets messages only once the rebalance is done,
    /// not on its first receive. The visibility timeout still applies to
    /// the messages a live consumer holds.
    pub redelivery_by_rebalance: bool,
    /// Topics are bounded by retention (time or size), not by a message
    /// count: [`topics_are_bounded`] checks instead that nothing is
    /// trimmed by count.
    pub bounded_by_retention: bool,
}

impl BusDifferences {
    /// Every promise in full (the in-memory and Redis Streams buses).
    pub const NONE: Self = Self {
        order_per_stream_only: false,
        redelivery_by_rebalance: false,
        bounded_by_retention: false,
    };

    /// A Kafka-protocol bus (Apache Kafka, Redpanda): per-stream order,
    /// redelivery by rebalance, topics bounded by retention.
    pub const KAFKA: Self = Self {
        order_per_stream_only: true,
        redelivery_by_rebalance: true,
        bounded_by_retention: true,
    };
}

impl Default for BusDifferences {
    fn default() -> Self {
        Self::NONE
    }
}

/// How time passes for a bus's visibility timeout.
#[derive(Debug, Clone)]
pub enum BusTime {
    /// The bus measures idle time on this test clock: the suite advances
    /// it (instant tests).
    Test(TestClock),
    /// The bus measures idle time in real time (e.g. on the Redis
    /// server): the suite sleeps.
    Real,
}

/// A fresh, isolated bus and what the suite needs to know about it.
#[derive(Debug)]
pub struct BusFixture<B: EventBus> {
    /// The bus, with no topics yet (or topics nobody else uses).
    pub bus: B,
    /// How to let a visibility timeout pass.
    pub time: BusTime,
    /// The visibility timeout the suite subscribes with (short for a
    /// real-time bus).
    pub visibility_timeout: Duration,
    /// The length bound the bus was built with (the one the suite asked
    /// for).
    pub max_len: u64,
    /// How many messages above `max_len` a topic may hold (approximate
    /// trimming, e.g. Redis' `MAXLEN ~`); 0 for exact trimming.
    pub trim_slack: u64,
    /// Dropped when the check ends (even after a panic): clean up there,
    /// e.g. delete a test's Redis keys.
    pub guard: Option<Box<dyn std::any::Any + Send>>,
}

impl BusFixture<InMemoryEventBus> {
    /// An [`InMemoryEventBus`] on a [`TestClock`], keeping `max_len`
    /// messages per topic.
    pub fn in_memory(max_len: u64) -> Self {
        let clock = TestClock::new();
        Self {
            bus: InMemoryEventBus::builder()
                .with_clock(Arc::new(clock.clone()))
                .with_max_len(usize::try_from(max_len).unwrap_or(usize::MAX))
                .build(),
            time: BusTime::Test(clock),
            visibility_timeout: Duration::from_secs(30),
            max_len,
            trim_slack: 0,
            guard: None,
        }
    }
}

impl<B: EventBus> BusFixture<B> {
    /// Lets `duration` pass as the bus measures idle time.
    pub async fn pass(&self, duration: Duration) {
        match &self.time {
            BusTime::Test(clock) => {
                clock.advance(duration);
                tokio::task::yield_now().await;
            }
            BusTime::Real => tokio::time::sleep(duration).await,
        }
    }

    /// Lets the visibility timeout pass, with a margin.
    pub async fn pass_visibility_timeout(&self) {
        self.pass(self.visibility_timeout + self.visibility_timeout / 2)
            .await;
    }

    /// Options for `consumer` of `group` on `topic` with the fixture's
    /// visibility timeout.
    pub fn options(&self, topic: &Topic, group: &str, consumer: &str) -> SubscribeOptions {
        SubscribeOptions::new(topic.clone(), group, consumer)
            .expect("valid names")
            .with_visibility_timeout(self.visibility_timeout)
    }

    /// Subscribes with [`options`](Self::options).
    pub async fn subscribe(
        &self,
        topic: &Topic,
        group: &str,
        consumer: &str,
    ) -> Box<dyn Subscription> {
        self.bus
            .subscribe(self.options(topic, group, consumer))
            .await
            .expect("subscribe")
    }
}

/// How long a check waits for messages it expects.
const EXPECT: Duration = Duration::from_secs(5);

fn topic(name: &str) -> Topic {
    Topic::new(format!("{name}-{}", Uuid::new_v4().simple())).expect("valid topic")
}

/// A stored event with position `n/n`, as if read from an event store.
pub fn stored_event(n: u64) -> StoredEvent {
    StoredEvent::builder("Happened", json!({ "n": n, "text": format!("event {n}") }))
        .with_stream(
            StreamId::new(format!("conformance-{}", n % 3)).expect("valid stream id"),
            n,
        )
        .with_position(Position::new(n, n))
        .with_recorded_at(Utc::now())
        .build()
}

fn events(range: std::ops::RangeInclusive<u64>) -> Vec<StoredEvent> {
    range.map(stored_event).collect()
}

/// Receives until `count` messages arrived (failing after a while).
async fn receive_exactly(subscription: &mut dyn Subscription, count: usize) -> Vec<BusMessage> {
    let mut received = Vec::new();
    let deadline = tokio::time::Instant::now() + EXPECT * 2;
    while received.len() < count {
        assert!(
            tokio::time::Instant::now() < deadline,
            "expected {count} messages, got {}: {:?}",
            received.len(),
            positions(&received)
        );
        let batch = subscription
            .receive(count - received.len(), EXPECT)
            .await
            .expect("receive");
        received.extend(batch);
    }
    assert_eq!(received.len(), count, "received more than expected");
    received
}

/// Asserts that nothing is delivered right now.
async fn assert_nothing(subscription: &mut dyn Subscription) {
    let extra = subscription
        .receive(100, Duration::ZERO)
        .await
        .expect("receive");
    assert!(
        extra.is_empty(),
        "expected no message, got {:?}",
        positions(&extra)
    );
}

fn positions(messages: &[BusMessage]) -> Vec<u64> {
    messages.iter().map(|m| m.event.position.sequence).collect()
}

fn event_ids(messages: &[BusMessage]) -> Vec<Uuid> {
    messages.iter().map(|m| m.event.event_id).collect()
}

/// `messages`' positions, sorted when the bus orders per stream only
/// (then the order was checked per stream by [`assert_stream_order`]).
fn positions_as_promised(messages: &[BusMessage]) -> Vec<u64> {
    assert_stream_order(messages);
    let mut positions = positions(messages);
    if differences().order_per_stream_only {
        positions.sort_unstable();
    }
    positions
}

/// `messages`' event ids, sorted when the bus orders per stream only.
fn event_ids_as_promised(messages: &[BusMessage]) -> Vec<Uuid> {
    let mut ids = event_ids(messages);
    if differences().order_per_stream_only {
        ids.sort_unstable();
    }
    ids
}

/// Asserts that the first copy of each event comes after every earlier
/// event of its stream (what every bus promises).
fn assert_stream_order(messages: &[BusMessage]) {
    let mut last: HashMap<&str, u64> = HashMap::new();
    let mut seen = HashSet::new();
    for message in messages {
        if !seen.insert(message.event.event_id) {
            continue;
        }
        let stream = message.event.stream_id.as_str();
        let position = message.event.position.sequence;
        if let Some(&before) = last.get(stream) {
            assert!(
                before < position,
                "stream {stream}: {position} arrived after {before}: {:?}",
                positions(messages)
            );
        }
        last.insert(stream, position);
    }
}

/// Published events arrive whole, in publish order, once, with delivery
/// count 1; `read` and `topic_len` see them without delivering them, and
/// `read` after a message continues where the full read goes on.
///
/// With [`BusDifferences::order_per_stream_only`]: in publish order within
/// each stream, and `read` in the bus's own order.
pub async fn published_events_are_delivered_in_order(fixture: BusFixture<impl EventBus>) {
    let topic = topic("orders");
    let mut consumer = fixture.subscribe(&topic, "billing", "billing-1").await;
    let mut sent = events(1..=3);
    let mut ids = fixture.bus.publish_batch(&topic, &sent).await.unwrap();
    for event in events(4..=5) {
        ids.push(fixture.bus.publish(&topic, &event).await.unwrap());
        sent.push(event);
    }
    assert_eq!(
        ids.iter().collect::<HashSet<_>>().len(),
        5,
        "ids are unique"
    );

    let received = receive_exactly(&mut *consumer, 5).await;
    assert_eq!(positions_as_promised(&received), [1, 2, 3, 4, 5]);
    for message in &received {
        let index = sent
            .iter()
            .position(|event| event.event_id == message.event.event_id)
            .expect("a published event");
        assert_eq!(message.event, sent[index], "the event arrives whole");
        assert_eq!(message.id, ids[index]);
        assert_eq!(message.topic, topic);
        assert_eq!(message.deliveries, 1);
        assert_eq!(message.dead_letter, None);
    }
    assert_nothing(&mut *consumer).await;

    assert_eq!(fixture.bus.topic_len(&topic).await.unwrap(), 5);
    let read = fixture.bus.read(&topic, None, 10).await.unwrap();
    assert_eq!(
        event_ids_as_promised(&read),
        event_ids_as_promised(&received)
    );
    assert_stream_order(&read);
    assert!(read.iter().all(|m| m.deliveries == 0));
    let tail = fixture
        .bus
        .read(&topic, Some(&read[1].id), 2)
        .await
        .unwrap();
    assert_eq!(event_ids(&tail), event_ids(&read[2..4]));
    if !differences().order_per_stream_only {
        assert_eq!(positions(&tail), [3, 4]);
    }
    assert_eq!(
        fixture
            .bus
            .topic_len(&Topic::new("never-used").unwrap())
            .await
            .unwrap(),
        0
    );
}

/// A receiver waiting for messages gets one published while it waits,
/// without waiting out its whole wait.
pub async fn a_waiting_receiver_gets_a_later_message(fixture: BusFixture<impl EventBus>) {
    let topic = topic("later");
    let mut consumer = fixture.subscribe(&topic, "g", "c").await;
    let started = tokio::time::Instant::now();
    let (received, ()) = tokio::join!(consumer.receive(10, Duration::from_secs(20)), async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        fixture.bus.publish(&topic, &stored_event(1)).await.unwrap();
    });
    assert_eq!(positions(&received.unwrap()), [1]);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the receiver was not woken by the publish"
    );
}

/// A group created with `StartFrom::Beginning` gets what was published
/// before it existed; with `StartFrom::Latest`, only what comes after.
pub async fn a_new_group_starts_where_asked(fixture: BusFixture<impl EventBus>) {
    let topic = topic("start");
    fixture
        .bus
        .publish_batch(&topic, &events(1..=2))
        .await
        .unwrap();
    let mut from_start = fixture.subscribe(&topic, "replay", "c").await;
    let mut from_now = fixture
        .bus
        .subscribe(
            fixture
                .options(&topic, "live", "c")
                .with_start(StartFrom::Latest),
        )
        .await
        .unwrap();
    fixture.bus.publish(&topic, &stored_event(3)).await.unwrap();
    assert_eq!(
        positions_as_promised(&receive_exactly(&mut *from_start, 3).await),
        [1, 2, 3]
    );
    assert_eq!(positions(&receive_exactly(&mut *from_now, 1).await), [3]);
}

/// Members of one group split the messages: each goes to exactly one.
///
/// With [`BusDifferences::redelivery_by_rebalance`]: the members receive
/// at the same time (a group rebalances only while its members poll), and
/// the messages are published one by one meanwhile, each to a stream of
/// its own (a partition belongs to one member; those published before
/// the group has rebalanced go to the member that was first).
pub async fn members_of_a_group_split_the_work(fixture: BusFixture<impl EventBus>) {
    let topic = topic("split");
    let mut a = fixture.subscribe(&topic, "workers", "worker-a").await;
    let mut b = fixture.subscribe(&topic, "workers", "worker-b").await;
    let mut got_a = Vec::new();
    let mut got_b = Vec::new();
    if differences().redelivery_by_rebalance {
        // Members share a group by rebalancing it, which needs every
        // member to keep receiving: run both at once, as two processes
        // would, while the messages are published one by one.
        let done = std::sync::atomic::AtomicUsize::new(0);
        tokio::join!(
            work_until(&mut *a, &mut got_a, &done, 12),
            work_until(&mut *b, &mut got_b, &done, 12),
            async {
                for mut event in events(1..=12) {
                    // A stream each: spread over the partitions, whoever
                    // owns which.
                    event.stream_id = StreamId::new(format!("split-{}", event.position.sequence))
                        .expect("valid stream id");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    fixture.bus.publish(&topic, &event).await.unwrap();
                }
            }
        );
    } else {
        fixture
            .bus
            .publish_batch(&topic, &events(1..=12))
            .await
            .unwrap();
    }
    while got_a.len() + got_b.len() < 12 {
        let batch = a.receive(3, EXPECT).await.unwrap();
        a.ack_many(&batch).await.unwrap();
        got_a.extend(positions(&batch));
        let batch = b.receive(3, Duration::ZERO).await.unwrap();
        b.ack_many(&batch).await.unwrap();
        got_b.extend(positions(&batch));
    }
    assert!(!got_a.is_empty() && !got_b.is_empty(), "both members work");
    let a_set: HashSet<_> = got_a.iter().collect();
    assert!(
        got_b.iter().all(|p| !a_set.contains(p)),
        "no message went to both: {got_a:?} / {got_b:?}"
    );
    let mut all: Vec<_> = got_a.into_iter().chain(got_b).collect();
    all.sort_unstable();
    assert_eq!(all, (1..=12).collect::<Vec<_>>());
    assert_nothing(&mut *a).await;
    assert_nothing(&mut *b).await;
}

/// Receives and acknowledges until `done` (shared by the members of a
/// group) reaches `total`.
async fn work_until(
    member: &mut dyn Subscription,
    got: &mut Vec<u64>,
    done: &std::sync::atomic::AtomicUsize,
    total: usize,
) {
    use std::sync::atomic::Ordering;
    let deadline = tokio::time::Instant::now() + EXPECT * 6;
    while done.load(Ordering::SeqCst) < total {
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {done:?} of {total} received"
        );
        let batch = member.receive(3, Duration::from_millis(100)).await.unwrap();
        member.ack_many(&batch).await.unwrap();
        done.fetch_add(batch.len(), Ordering::SeqCst);
        got.extend(positions(&batch));
    }
}

/// Two groups each get every message.
pub async fn every_group_gets_every_message(fixture: BusFixture<impl EventBus>) {
    let topic = topic("fanout");
    let mut billing = fixture.subscribe(&topic, "billing", "billing-1").await;
    let mut shipping = fixture.subscribe(&topic, "shipping", "shipping-1").await;
    fixture
        .bus
        .publish_batch(&topic, &events(1..=6))
        .await
        .unwrap();
    let to_billing = receive_exactly(&mut *billing, 6).await;
    billing.ack_many(&to_billing).await.unwrap();
    let to_shipping = receive_exactly(&mut *shipping, 6).await;
    assert_eq!(
        event_ids_as_promised(&to_billing),
        event_ids_as_promised(&to_shipping)
    );
    assert_eq!(positions_as_promised(&to_shipping), [1, 2, 3, 4, 5, 6]);
    // One group's acknowledgements do not touch the other's pending list.
    assert!(
        fixture
            .bus
            .pending(&topic, "billing")
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        fixture.bus.pending(&topic, "shipping").await.unwrap().len(),
        6
    );
}

/// A delivered message is pending for its consumer until acknowledged;
/// acknowledging removes exactly it; acknowledging again is harmless.
pub async fn acknowledged_messages_leave_the_pending_list(fixture: BusFixture<impl EventBus>) {
    let topic = topic("acks");
    let mut consumer = fixture.subscribe(&topic, "g", "c-1").await;
    fixture
        .bus
        .publish_batch(&topic, &events(1..=5))
        .await
        .unwrap();
    let received = receive_exactly(&mut *consumer, 5).await;
    let pending = fixture.bus.pending(&topic, "g").await.unwrap();
    let ids_as_promised = |ids: Vec<&MessageId>| {
        let mut ids: Vec<String> = ids.into_iter().map(ToString::to_string).collect();
        if differences().order_per_stream_only {
            ids.sort_unstable();
        }
        ids
    };
    assert_eq!(
        ids_as_promised(pending.iter().map(|p| &p.id).collect()),
        ids_as_promised(received.iter().map(|m| &m.id).collect())
    );
    assert!(
        pending
            .iter()
            .all(|p| p.consumer == "c-1" && p.deliveries == 1)
    );

    consumer.ack_many(&received[..3]).await.unwrap();
    let pending = fixture.bus.pending(&topic, "g").await.unwrap();
    assert_eq!(
        ids_as_promised(pending.iter().map(|p| &p.id).collect()),
        ids_as_promised(vec![&received[3].id, &received[4].id])
    );
    consumer.ack(&received[0]).await.unwrap(); // again: harmless
    consumer.ack_many(&received[3..]).await.unwrap();
    assert!(fixture.bus.pending(&topic, "g").await.unwrap().is_empty());

    // Acknowledged messages are never delivered again, even after the
    // visibility timeout.
    fixture.pass_visibility_timeout().await;
    assert_nothing(&mut *consumer).await;
}

/// A consumer that dies holding unacknowledged messages: after the
/// visibility timeout (not before) another member gets them, with a higher
/// delivery count, and an idempotent handler (de-duplicating by event id)
/// applies each event once.
///
/// With [`BusDifferences::redelivery_by_rebalance`]: the other member
/// joins after the first one died (so one member held every partition
/// first), and gets the messages once the group has rebalanced.
pub async fn a_dead_consumers_messages_are_redelivered_and_handled_once(
    fixture: BusFixture<impl EventBus>,
) {
    let topic = topic("redeliver");
    let by_rebalance = differences().redelivery_by_rebalance;
    let mut a = fixture.subscribe(&topic, "payments", "payments-a").await;
    let mut b = if by_rebalance {
        None
    } else {
        Some(fixture.subscribe(&topic, "payments", "payments-b").await)
    };
    let sent = events(1..=3);
    fixture.bus.publish_batch(&topic, &sent).await.unwrap();

    // The handler's effects, and its idempotency records, per event id.
    let mut effects: HashMap<Uuid, u32> = HashMap::new();
    let mut handled: HashSet<Uuid> = HashSet::new();
    let mut handle = |message: &BusMessage| {
        if handled.insert(message.event.event_id) {
            *effects.entry(message.event.event_id).or_default() += 1;
        }
    };

    let held = receive_exactly(&mut *a, 3).await;
    handle(&held[0]);
    a.ack(&held[0]).await.unwrap();
    handle(&held[1]); // handled, then the process dies before the ack
    drop(a); // ... and held[2] was never handled

    let mut b = match b.take() {
        Some(mut b) => {
            assert_nothing(&mut *b).await; // not before the visibility timeout
            fixture.pass_visibility_timeout().await;
            b
        }
        None => fixture.subscribe(&topic, "payments", "payments-b").await,
    };
    let redelivered = receive_exactly(&mut *b, 2).await;
    let mut expected: Vec<u64> = positions(&held[1..]);
    if by_rebalance {
        expected.sort_unstable();
    }
    assert_eq!(positions_as_promised(&redelivered), expected);
    assert!(
        redelivered.iter().all(|m| m.deliveries == 2),
        "{redelivered:?}"
    );
    let again = redelivered
        .iter()
        .find(|m| m.event.event_id == held[1].event.event_id)
        .expect("the handled, unacknowledged message comes back");
    assert!(sent.contains(&again.event));
    for message in &redelivered {
        handle(message);
        b.ack(message).await.unwrap();
    }
    assert!(
        fixture
            .bus
            .pending(&topic, "payments")
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(effects.len(), 3);
    assert!(
        effects.values().all(|&n| n == 1),
        "each event handled once: {effects:?}"
    );
    fixture.pass_visibility_timeout().await;
    assert_nothing(&mut *b).await;
}

/// A consumer that subscribes again under the same name gets back the
/// messages it held, at once and before new ones.
///
/// With [`BusDifferences::redelivery_by_rebalance`]: once it has rejoined
/// the group rather than at once, and before the new ones of the same
/// stream (with [`BusDifferences::order_per_stream_only`]).
pub async fn a_consumer_restarting_under_its_name_gets_its_messages_back_first(
    fixture: BusFixture<impl EventBus>,
) {
    let topic = topic("restart");
    let mut first = fixture.subscribe(&topic, "g", "worker-1").await;
    fixture
        .bus
        .publish_batch(&topic, &events(1..=3))
        .await
        .unwrap();
    let held = receive_exactly(&mut *first, 3).await;
    first.ack(&held[0]).await.unwrap();
    drop(first);
    fixture
        .bus
        .publish_batch(&topic, &events(4..=5))
        .await
        .unwrap();

    let mut again = fixture.subscribe(&topic, "g", "worker-1").await;
    let held_back: HashSet<u64> = positions(&held[1..]).into_iter().collect();
    if differences().redelivery_by_rebalance {
        let all = receive_exactly(&mut *again, 4).await;
        // What was held back (whichever two of 1..=3 did not arrive first:
        // on a bus ordered per stream only, the first to arrive need not
        // be event 1) and the two new ones.
        let mut expected: Vec<u64> = held_back.iter().copied().chain([4, 5]).collect();
        expected.sort_unstable();
        let mut got = positions_as_promised(&all);
        got.sort_unstable();
        assert_eq!(got, expected);
        for message in &all {
            let was_held = held_back.contains(&message.event.position.sequence);
            assert_eq!(
                message.deliveries,
                if was_held { 2 } else { 1 },
                "{message:?}"
            );
        }
    } else {
        let back = again.receive(2, Duration::ZERO).await.unwrap();
        assert_eq!(
            positions(&back),
            [2, 3],
            "held messages first, without waiting"
        );
        assert!(back.iter().all(|m| m.deliveries == 2));
        let new = receive_exactly(&mut *again, 2).await;
        assert_eq!(positions(&new), [4, 5]);
        assert!(new.iter().all(|m| m.deliveries == 1));
    }
    // Recovered messages are not recovered a second time.
    assert_nothing(&mut *again).await;
}

/// With `take_over_pending`, a consumer under a new name first takes every
/// message the group has pending, in order.
///
/// With [`BusDifferences::order_per_stream_only`]: in order within each
/// stream (what the old name held need not be the first two published).
pub async fn a_take_over_subscription_gets_the_whole_groups_messages_first(
    fixture: BusFixture<impl EventBus>,
) {
    let topic = topic("take-over");
    let mut old = fixture.subscribe(&topic, "projection", "old-name").await;
    fixture
        .bus
        .publish_batch(&topic, &events(1..=4))
        .await
        .unwrap();
    let held = receive_exactly(&mut *old, 2).await;
    if !differences().order_per_stream_only {
        assert_eq!(positions(&held), [1, 2]);
    }
    let held: HashSet<u64> = positions(&held).into_iter().collect();
    drop(old);

    let mut new = fixture
        .bus
        .subscribe(
            fixture
                .options(&topic, "projection", "new-name")
                .with_take_over_pending(true),
        )
        .await
        .unwrap();
    let all = receive_exactly(&mut *new, 4).await;
    assert_eq!(
        positions_as_promised(&all),
        [1, 2, 3, 4],
        "the old name's messages first, in order"
    );
    for message in &all {
        let was_held = held.contains(&message.event.position.sequence);
        assert_eq!(
            message.deliveries,
            if was_held { 2 } else { 1 },
            "{message:?}"
        );
    }
    let pending = fixture.bus.pending(&topic, "projection").await.unwrap();
    assert!(pending.iter().all(|p| p.consumer == "new-name"));
}

/// A message delivered `max_deliveries` times without an acknowledgement
/// goes to the dead-letter topic, with where it came from, and leaves the
/// pending list; messages after it still flow.
pub async fn poison_messages_go_to_the_dead_letter_topic(fixture: BusFixture<impl EventBus>) {
    let topic = topic("poison");
    let options = fixture
        .options(&topic, "mailer", "mailer-1")
        .with_max_deliveries(3);
    let mut consumer = fixture.bus.subscribe(options).await.unwrap();
    let poison = stored_event(1);
    let id = fixture.bus.publish(&topic, &poison).await.unwrap();

    for attempt in 1..=3 {
        let got = receive_exactly(&mut *consumer, 1).await;
        assert_eq!(got[0].deliveries, attempt);
        assert_eq!(got[0].id, id);
        // The handler fails: no ack.
        fixture.pass_visibility_timeout().await;
    }
    assert_nothing(&mut *consumer).await;

    let dead = fixture
        .bus
        .read(&topic.dead_letter(), None, 10)
        .await
        .unwrap();
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(dead[0].event, poison);
    let info = dead[0].dead_letter.as_ref().expect("dead-letter info");
    assert_eq!(info.topic, topic);
    assert_eq!(info.group, "mailer");
    assert_eq!(info.consumer, "mailer-1");
    assert_eq!(info.message_id, id);
    assert_eq!(info.deliveries, 3);
    assert!(
        fixture
            .bus
            .pending(&topic, "mailer")
            .await
            .unwrap()
            .is_empty()
    );

    fixture.bus.publish(&topic, &stored_event(2)).await.unwrap();
    let healthy = receive_exactly(&mut *consumer, 1).await;
    assert_eq!(positions(&healthy), [2]);
    assert_eq!(healthy[0].deliveries, 1);
    consumer.ack(&healthy[0]).await.unwrap();
}

/// `receive(max, ..)` never returns more than `max` messages, even from
/// several topics; nothing is lost between calls.
pub async fn receive_returns_at_most_max_across_topics(fixture: BusFixture<impl EventBus>) {
    let first = topic("multi-a");
    let second = topic("multi-b");
    let options = fixture.options(&first, "g", "c").with_topic(second.clone());
    let mut consumer = fixture.bus.subscribe(options).await.unwrap();
    fixture
        .bus
        .publish_batch(&first, &events(1..=5))
        .await
        .unwrap();
    fixture
        .bus
        .publish_batch(&second, &events(6..=10))
        .await
        .unwrap();
    let mut all = Vec::new();
    while all.len() < 10 {
        let batch = consumer.receive(3, EXPECT).await.unwrap();
        assert!(!batch.is_empty() && batch.len() <= 3, "{}", batch.len());
        consumer.ack_many(&batch).await.unwrap();
        all.extend(batch);
    }
    let mut got = positions(&all);
    got.sort_unstable();
    assert_eq!(got, (1..=10).collect::<Vec<_>>());
    assert!(all.iter().all(|m| {
        let expected = if m.event.position.sequence <= 5 {
            &first
        } else {
            &second
        };
        &m.topic == expected
    }));
    assert_nothing(&mut *consumer).await;
}

/// A topic keeps at most its bound (plus the bus's trimming slack),
/// dropping the oldest messages and keeping the newest.
///
/// With [`BusDifferences::bounded_by_retention`]: nothing is trimmed by
/// count; the topic keeps every message, in order per stream.
pub async fn topics_are_bounded(fixture: BusFixture<impl EventBus>) {
    let topic = topic("bounded");
    let total = fixture.max_len * 4;
    let sent = events(1..=total);
    for chunk in sent.chunks(25) {
        fixture.bus.publish_batch(&topic, chunk).await.unwrap();
    }
    let len = fixture.bus.topic_len(&topic).await.unwrap();
    if differences().bounded_by_retention {
        assert_eq!(len, total, "nothing is trimmed by count");
        let held = fixture
            .bus
            .read(&topic, None, usize::try_from(total).unwrap())
            .await
            .unwrap();
        assert_eq!(
            positions_as_promised(&held),
            (1..=total).collect::<Vec<_>>()
        );
        return;
    }
    assert!(
        len >= fixture.max_len && len <= fixture.max_len + fixture.trim_slack,
        "{len} messages for a bound of {} (slack {})",
        fixture.max_len,
        fixture.trim_slack
    );
    let held = fixture
        .bus
        .read(&topic, None, usize::try_from(len).unwrap())
        .await
        .unwrap();
    assert_eq!(held.len() as u64, len);
    let expected: Vec<u64> = (total - len + 1..=total).collect();
    assert_eq!(positions(&held), expected, "the newest are kept, in order");
}
