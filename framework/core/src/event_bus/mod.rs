//! The [`EventBus`]: events published to topics and delivered to consumer
//! groups, at least once, with explicit acknowledgement.
//!
//! The event store is the source of truth; the bus carries its events to
//! other processes (sagas, integrations, projections in other services).
//!
//! ```text
//!  event store ──► EventPublisher ──► topic "orders" ──┬─► group "billing":  billing-1, billing-2 (split the work)
//!   (global      (checkpointed,        (bounded)        └─► group "shipping": shipping-1         (gets every message too)
//!    stream)      at least once)
//! ```
//!
//! - **Topics** ([`Topic`]) hold [`StoredEvent`]s in publish order, trimmed
//!   to a bounded length (the oldest go first).
//! - **Consumer groups**: every group gets every message of the topics it
//!   subscribes to; within a group each message goes to one member
//!   (a [`Subscription`] with its own consumer name), so members split the
//!   work.
//! - **At least once**: a delivered message stays *pending* for its
//!   consumer until it is acknowledged ([`Subscription::ack`]). A message
//!   pending longer than the subscription's *visibility timeout* (its
//!   consumer died, or is stuck) is delivered again, to whichever member
//!   asks next. So a message can arrive more than once: handle it
//!   idempotently, keyed by [`StoredEvent::event_id`], which every copy
//!   carries.
//! - **Dead letters**: a message that has been delivered
//!   [`max_deliveries`](SubscribeOptions::max_deliveries) times without being
//!   acknowledged (a *poison* message that crashes or stalls every consumer)
//!   is moved to the topic's dead-letter topic ([`Topic::dead_letter`])
//!   instead of being delivered again, with a [`DeadLetterInfo`] saying
//!   where it came from.
//! - **A consumer that restarts under the same name** gets its own pending
//!   messages back first, in order, before anything new.
//!
//! Implementations: [`InMemoryEventBus`] here (examples, fast tests) and
//! `RedisStreamsEventBus` in `composable-rust-redis`. Both pass the same
//! conformance suite (`composable_rust_testing::event_bus_conformance`).
//!
//! Two adapters connect the bus to the rest of the framework:
//!
//! - [`EventPublisher`] follows the event store's global stream with a
//!   checkpoint and publishes every event, so an event appended to the
//!   store reaches the bus even if the process dies right after the
//!   append.
//! - [`SubscriptionSource`] turns a subscription into an
//!   [`EventSource`](crate::projection::EventSource), so a
//!   [`ProjectionManager`](crate::ProjectionManager) can be fed by the bus.
//!
//! # Example
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use std::collections::HashSet;
//! use std::time::Duration;
//! use composable_rust_core::event_bus::{EventBus, InMemoryEventBus, SubscribeOptions, Topic};
//! # use composable_rust_core::{EventMetadata, Position, StoredEvent, StreamId};
//! # let event = StoredEvent {
//! #     event_id: uuid::Uuid::new_v4(), stream_id: StreamId::new("order-1")?, stream_version: 1,
//! #     position: Position::new(1, 1), event_type: "OrderPlaced".into(), schema_version: 1,
//! #     payload: serde_json::json!({}), metadata: EventMetadata::default(), recorded_at: chrono::Utc::now(),
//! # };
//!
//! let bus = InMemoryEventBus::new();
//! let orders = Topic::new("orders")?;
//! let mut billing = bus
//!     .subscribe(SubscribeOptions::new(orders.clone(), "billing", "billing-1")?)
//!     .await?;
//!
//! bus.publish(&orders, &event).await?; // `event`: a StoredEvent read from the event store
//!
//! let mut handled = HashSet::new(); // in production: a table keyed by event id
//! for message in billing.receive(10, Duration::from_secs(1)).await? {
//!     if handled.insert(message.event.event_id) {
//!         // ... do the work once per event id ...
//!     }
//!     billing.ack(&message).await?; // done: never delivered again
//! }
//! # Ok(())
//! # }
//! ```

mod error;
mod in_memory;
mod publisher;
mod source;
pub mod wire;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

pub use error::EventBusError;
pub use in_memory::{InMemoryEventBus, InMemoryEventBusBuilder};
pub use publisher::{EventPublisher, EventPublisherBuilder, PublisherConfig};
pub use source::SubscriptionSource;

use crate::event::StoredEvent;

/// The longest topic, group or consumer name accepted, in bytes.
pub const MAX_NAME_LEN: usize = 200;

/// What a dead-letter topic's name adds to its topic's name.
pub const DEAD_LETTER_SUFFIX: &str = ".dead-letter";

/// Checks a topic, group or consumer name: 1 to [`MAX_NAME_LEN`] bytes of
/// ASCII letters, digits and `. _ - : /`.
fn validate_name(kind: &'static str, name: &str) -> Result<(), EventBusError> {
    let reason = if name.is_empty() {
        Some("it is empty")
    } else if name.len() > MAX_NAME_LEN {
        Some("it is longer than 200 bytes")
    } else if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b':' | b'/'))
    {
        Some("it contains a character other than ASCII letters, digits and . _ - : /")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(EventBusError::InvalidName {
            kind,
            name: name.escape_debug().to_string(),
            reason,
        }),
        None => Ok(()),
    }
}

/// The name of a topic: 1 to 200 bytes of ASCII letters, digits and
/// `. _ - : /`, e.g. `orders` or `billing.payments`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Topic(String);

impl Topic {
    /// Validates `name` as a topic name.
    ///
    /// # Errors
    ///
    /// [`EventBusError::InvalidName`] (`CR-E0015`) saying what is wrong.
    pub fn new(name: impl Into<String>) -> Result<Self, EventBusError> {
        let name = name.into();
        validate_name("topic", &name)?;
        Ok(Self(name))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The topic that receives this topic's poison messages:
    /// `<topic>.dead-letter`.
    #[must_use]
    pub fn dead_letter(&self) -> Topic {
        Topic(format!("{}{DEAD_LETTER_SUFFIX}", self.0))
    }
}

impl fmt::Display for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for Topic {
    type Error = EventBusError;
    fn try_from(name: String) -> Result<Self, Self::Error> {
        Self::new(name)
    }
}

impl From<Topic> for String {
    fn from(topic: Topic) -> Self {
        topic.0
    }
}

/// The id a bus gave a message in its topic (a Redis stream entry id such
/// as `1700000000000-0`; the in-memory bus uses `<sequence>-0`). Opaque:
/// compare ids only for equality.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct MessageId(String);

impl MessageId {
    /// An id as the bus wrote it.
    pub fn new(id: impl Into<String>) -> Self {
        Self(id.into())
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One message of a topic: a stored event, plus where and how often it was
/// delivered.
#[derive(Debug, Clone, PartialEq)]
pub struct BusMessage {
    /// The topic it was read from.
    pub topic: Topic,
    /// Its id in that topic (what [`Subscription::ack`] acknowledges).
    pub id: MessageId,
    /// The event. Its [`event_id`](StoredEvent::event_id) is the same in
    /// every copy (redeliveries, and events the publisher published twice
    /// after a crash), so consumers de-duplicate by it; its
    /// [`position`](StoredEvent::position) is its place in the event
    /// store's global order.
    pub event: StoredEvent,
    /// How many times it has been delivered to the group, counting this
    /// delivery: 1 the first time, more on redeliveries. Messages read with
    /// [`EventBus::read`] (not a delivery) say 0.
    pub deliveries: u32,
    /// On a dead-letter topic: where the message came from and why it is
    /// here; `None` elsewhere.
    pub dead_letter: Option<DeadLetterInfo>,
}

/// Where a dead-lettered message came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadLetterInfo {
    /// The topic it was published to.
    pub topic: Topic,
    /// The consumer group that could not process it.
    pub group: String,
    /// The consumer that held it last.
    pub consumer: String,
    /// Its id in `topic`.
    pub message_id: MessageId,
    /// How many times it was delivered without being acknowledged.
    pub deliveries: u32,
}

/// A message delivered to a group and not yet acknowledged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingMessage {
    /// Its id in the topic.
    pub id: MessageId,
    /// The consumer that holds it.
    pub consumer: String,
    /// How long ago it was last delivered.
    pub idle: Duration,
    /// How many times it has been delivered.
    pub deliveries: u32,
}

/// Where a consumer group starts reading when the subscription creates it.
/// An existing group keeps its place.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StartFrom {
    /// From the oldest message the topic still holds (the default: nothing
    /// published before the group existed is missed, within the topic's
    /// length bound).
    #[default]
    Beginning,
    /// Only messages published after the group was created.
    Latest,
}

/// Which topics to subscribe to, as which group and consumer, and how
/// redelivery works.
///
/// ```
/// use std::time::Duration;
/// use composable_rust_core::event_bus::{SubscribeOptions, Topic};
///
/// let options = SubscribeOptions::new(Topic::new("orders")?, "billing", "billing-1")?
///     .with_topic(Topic::new("refunds")?)
///     .with_visibility_timeout(Duration::from_secs(60))
///     .with_max_deliveries(3);
/// assert_eq!(options.topics().len(), 2);
/// # Ok::<(), composable_rust_core::event_bus::EventBusError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscribeOptions {
    topics: Vec<Topic>,
    group: String,
    consumer: String,
    visibility_timeout: Duration,
    max_deliveries: u32,
    start: StartFrom,
    take_over_pending: bool,
}

impl SubscribeOptions {
    /// Subscribes consumer `consumer` of group `group` to `topic`, with a
    /// visibility timeout of 30 s and at most 5 deliveries per message.
    ///
    /// Give each live consumer of a group its own name, and keep the name
    /// across restarts (e.g. the host name plus a slot number): a consumer
    /// that comes back under its name first gets back what it held.
    ///
    /// # Errors
    ///
    /// [`EventBusError::InvalidName`] (`CR-E0015`) for a bad group or
    /// consumer name (same rules as [`Topic`]).
    pub fn new(topic: Topic, group: &str, consumer: &str) -> Result<Self, EventBusError> {
        validate_name("consumer group", group)?;
        validate_name("consumer", consumer)?;
        Ok(Self {
            topics: vec![topic],
            group: group.to_owned(),
            consumer: consumer.to_owned(),
            visibility_timeout: Duration::from_secs(30),
            max_deliveries: 5,
            start: StartFrom::Beginning,
            take_over_pending: false,
        })
    }

    /// Subscribes to `topic` too (a topic given twice counts once).
    #[must_use]
    pub fn with_topic(mut self, topic: Topic) -> Self {
        if !self.topics.contains(&topic) {
            self.topics.push(topic);
        }
        self
    }

    /// How long a delivered message may stay unacknowledged before it is
    /// delivered again, to any member of the group (default 30 s). Longer
    /// than the slowest handling of one message; shorter means faster
    /// recovery from a dead consumer.
    #[must_use]
    pub fn with_visibility_timeout(mut self, timeout: Duration) -> Self {
        self.visibility_timeout = timeout;
        self
    }

    /// How many deliveries a message gets before it is moved to the
    /// dead-letter topic instead of being delivered again (default 5; at
    /// least 1).
    #[must_use]
    pub fn with_max_deliveries(mut self, deliveries: u32) -> Self {
        self.max_deliveries = deliveries.max(1);
        self
    }

    /// Where a group created by this subscription starts (default
    /// [`StartFrom::Beginning`]).
    #[must_use]
    pub fn with_start(mut self, start: StartFrom) -> Self {
        self.start = start;
        self
    }

    /// On its first receive, take over every message pending in the group,
    /// whatever consumer holds it and however recently, instead of only
    /// this consumer's own. For groups that must have a single consumer
    /// that processes messages in order (a projection fed by the bus, see
    /// [`SubscriptionSource`]): after a restart under a *new* name, the old
    /// name's messages come back first, in order, rather than after the
    /// visibility timeout, behind newer ones.
    #[must_use]
    pub fn with_take_over_pending(mut self, take_over: bool) -> Self {
        self.take_over_pending = take_over;
        self
    }

    /// The topics, in the order given.
    pub fn topics(&self) -> &[Topic] {
        &self.topics
    }

    /// The consumer group.
    pub fn group(&self) -> &str {
        &self.group
    }

    /// The consumer's name within the group.
    pub fn consumer(&self) -> &str {
        &self.consumer
    }

    /// The visibility timeout.
    pub fn visibility_timeout(&self) -> Duration {
        self.visibility_timeout
    }

    /// The most deliveries a message gets.
    pub fn max_deliveries(&self) -> u32 {
        self.max_deliveries
    }

    /// Where a new group starts.
    pub fn start(&self) -> StartFrom {
        self.start
    }

    /// Whether the first receive takes over the whole group's pending
    /// messages.
    pub fn takes_over_pending(&self) -> bool {
        self.take_over_pending
    }
}

/// A bus of topics with consumer groups; see the [module docs](self).
///
/// Dyn-compatible: hold an `Arc<dyn EventBus>` in an environment and swap
/// the Redis bus for the in-memory one in tests.
///
/// # Examples
///
/// Code that publishes takes the bus as `&dyn EventBus` (or an
/// `Arc<dyn EventBus>`), so a test passes the [`InMemoryEventBus`] and
/// production the Redis one:
///
/// ```
/// use composable_rust_core::event_bus::{EventBus, EventBusError, InMemoryEventBus, Topic};
/// use composable_rust_core::StoredEvent;
///
/// async fn announce(bus: &dyn EventBus, event: &StoredEvent) -> Result<(), EventBusError> {
///     bus.publish(&Topic::new("orders")?, event).await?;
///     Ok(())
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), EventBusError> {
/// let bus = InMemoryEventBus::new();
/// let placed = StoredEvent::builder("OrderPlaced", serde_json::json!({ "order": 1 })).build();
/// announce(&bus, &placed).await?;
///
/// let orders = Topic::new("orders")?;
/// assert_eq!(bus.topic_len(&orders).await?, 1);
/// let messages = bus.read(&orders, None, 10).await?; // no group: nothing becomes pending
/// assert_eq!(messages[0].event.event_type, "OrderPlaced");
/// # Ok(())
/// # }
/// ```
#[async_trait]
pub trait EventBus: Send + Sync + 'static {
    /// Publishes `events` to `topic`, in order; returns their message ids.
    /// Creates the topic if needed, and trims it to the bus's length bound
    /// (the oldest messages go, even if a group has not read them yet).
    async fn publish_batch(
        &self,
        topic: &Topic,
        events: &[StoredEvent],
    ) -> Result<Vec<MessageId>, EventBusError>;

    /// Publishes one event to `topic`; returns its message id.
    async fn publish(
        &self,
        topic: &Topic,
        event: &StoredEvent,
    ) -> Result<MessageId, EventBusError> {
        let mut ids = self
            .publish_batch(topic, std::slice::from_ref(event))
            .await?;
        ids.pop().ok_or_else(|| EventBusError::Decode {
            topic: topic.to_string(),
            message_id: "(none)".to_owned(),
            reason: "the bus returned no message id for a published event".to_owned(),
        })
    }

    /// Joins `options.group()` as `options.consumer()`, creating the
    /// topics and the group where they do not exist yet (a new group starts
    /// at [`options.start()`](SubscribeOptions::start)).
    async fn subscribe(
        &self,
        options: SubscribeOptions,
    ) -> Result<Box<dyn Subscription>, EventBusError>;

    /// Up to `limit` messages of `topic` after `after` (from the oldest
    /// when `None`), without a group: nothing is delivered or marked
    /// pending. For inspection (e.g. of a dead-letter topic) and tests.
    async fn read(
        &self,
        topic: &Topic,
        after: Option<&MessageId>,
        limit: usize,
    ) -> Result<Vec<BusMessage>, EventBusError>;

    /// How many messages `topic` holds (0 if it does not exist).
    async fn topic_len(&self, topic: &Topic) -> Result<u64, EventBusError>;

    /// The messages of `topic` delivered to `group` and not yet
    /// acknowledged, oldest first.
    async fn pending(
        &self,
        topic: &Topic,
        group: &str,
    ) -> Result<Vec<PendingMessage>, EventBusError>;
}

impl std::fmt::Debug for dyn EventBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("dyn EventBus")
    }
}

/// One consumer of a group: receives messages and acknowledges them.
///
/// Dropping a subscription without acknowledging what it received is what
/// a crash looks like: those messages are delivered again after the
/// visibility timeout (or at once, when a consumer with the same name
/// subscribes again).
///
/// # Examples
///
/// Receive, handle, acknowledge; what is not acknowledged comes back:
///
/// ```
/// use std::time::Duration;
/// use composable_rust_core::event_bus::{
///     EventBus, EventBusError, InMemoryEventBus, SubscribeOptions, Subscription, Topic,
/// };
/// use composable_rust_core::StoredEvent;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), EventBusError> {
/// let bus = InMemoryEventBus::new();
/// let orders = Topic::new("orders")?;
/// let options = SubscribeOptions::new(orders.clone(), "billing", "billing-1")?;
/// let mut billing = bus.subscribe(options).await?;
/// assert_eq!(billing.options().group(), "billing");
///
/// for n in 1..=2 {
///     let event = StoredEvent::builder("OrderPlaced", serde_json::json!({ "order": n })).build();
///     bus.publish(&orders, &event).await?;
/// }
///
/// let messages = billing.receive(10, Duration::ZERO).await?;
/// assert_eq!(messages.len(), 2);
/// billing.ack(&messages[0]).await?; // the second stays pending until acknowledged
/// assert_eq!(bus.pending(&orders, "billing").await?.len(), 1);
/// # Ok(())
/// # }
/// ```
#[async_trait]
pub trait Subscription: Send + 'static {
    /// The topics, group and consumer this subscription is for.
    fn options(&self) -> &SubscribeOptions;

    /// Up to `max` messages, waiting up to `wait` for the first one
    /// (`Duration::ZERO`: do not wait). In this order: on the first call,
    /// messages this consumer held before a restart (or the whole group's,
    /// with [`with_take_over_pending`](SubscribeOptions::with_take_over_pending));
    /// messages pending longer than the visibility timeout (of any
    /// consumer, this one included); then new messages. Messages that have
    /// reached the delivery limit are moved to the dead-letter topic
    /// instead of being returned.
    async fn receive(
        &mut self,
        max: usize,
        wait: Duration,
    ) -> Result<Vec<BusMessage>, EventBusError>;

    /// Acknowledges `messages`: they are done and leave the group's pending
    /// list. Acknowledging a message twice, or one already redelivered
    /// elsewhere, is not an error.
    async fn ack_many(&mut self, messages: &[BusMessage]) -> Result<(), EventBusError>;

    /// Acknowledges one message.
    async fn ack(&mut self, message: &BusMessage) -> Result<(), EventBusError> {
        self.ack_many(std::slice::from_ref(message)).await
    }

    /// How many messages of the subscribed topics the group has not been
    /// delivered yet, if the bus can tell (for lag).
    async fn backlog(&mut self) -> Result<Option<u64>, EventBusError> {
        Ok(None)
    }
}

impl std::fmt::Debug for dyn Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("dyn Subscription")
    }
}

#[async_trait]
impl<B: EventBus + ?Sized> EventBus for Arc<B> {
    async fn publish_batch(
        &self,
        topic: &Topic,
        events: &[StoredEvent],
    ) -> Result<Vec<MessageId>, EventBusError> {
        (**self).publish_batch(topic, events).await
    }

    async fn publish(
        &self,
        topic: &Topic,
        event: &StoredEvent,
    ) -> Result<MessageId, EventBusError> {
        (**self).publish(topic, event).await
    }

    async fn subscribe(
        &self,
        options: SubscribeOptions,
    ) -> Result<Box<dyn Subscription>, EventBusError> {
        (**self).subscribe(options).await
    }

    async fn read(
        &self,
        topic: &Topic,
        after: Option<&MessageId>,
        limit: usize,
    ) -> Result<Vec<BusMessage>, EventBusError> {
        (**self).read(topic, after, limit).await
    }

    async fn topic_len(&self, topic: &Topic) -> Result<u64, EventBusError> {
        (**self).topic_len(topic).await
    }

    async fn pending(
        &self,
        topic: &Topic,
        group: &str,
    ) -> Result<Vec<PendingMessage>, EventBusError> {
        (**self).pending(topic, group).await
    }
}

#[async_trait]
impl<S: Subscription + ?Sized> Subscription for Box<S> {
    fn options(&self) -> &SubscribeOptions {
        (**self).options()
    }

    async fn receive(
        &mut self,
        max: usize,
        wait: Duration,
    ) -> Result<Vec<BusMessage>, EventBusError> {
        (**self).receive(max, wait).await
    }

    async fn ack_many(&mut self, messages: &[BusMessage]) -> Result<(), EventBusError> {
        (**self).ack_many(messages).await
    }

    async fn ack(&mut self, message: &BusMessage) -> Result<(), EventBusError> {
        (**self).ack(message).await
    }

    async fn backlog(&mut self) -> Result<Option<u64>, EventBusError> {
        (**self).backlog().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::CodedError;

    #[test]
    fn names_are_validated() {
        for good in ["orders", "billing.payments", "a:b/c-d_e", &"x".repeat(200)] {
            assert_eq!(Topic::new(good).unwrap().as_str(), good);
        }
        for (bad, reason) in [
            ("", "empty"),
            (&*"x".repeat(201), "longer"),
            ("a b", "character"),
            ("a*", "character"),
            ("é", "character"),
            ("{a}", "character"),
        ] {
            let error = Topic::new(bad).unwrap_err();
            assert_eq!(error.code().as_str(), "CR-E0015");
            let text = error.to_string();
            assert!(text.starts_with("[CR-E0015]"), "{text}");
            assert!(text.contains(reason), "{bad:?}: {text}");
        }
        let topic = Topic::new("orders").unwrap();
        assert!(SubscribeOptions::new(topic.clone(), "", "c").is_err());
        assert!(SubscribeOptions::new(topic, "g", "c 1").is_err());
    }

    #[test]
    fn dead_letter_topics_are_named_after_their_topic() {
        let topic = Topic::new("orders").unwrap();
        assert_eq!(topic.dead_letter().as_str(), "orders.dead-letter");
    }

    #[test]
    fn topics_deserialize_through_validation() {
        let ok: Topic = serde_json::from_str("\"orders\"").unwrap();
        assert_eq!(ok.as_str(), "orders");
        assert!(serde_json::from_str::<Topic>("\"a b\"").is_err());
    }

    #[test]
    fn options_dedupe_topics_and_clamp_deliveries() {
        let orders = Topic::new("orders").unwrap();
        let options = SubscribeOptions::new(orders.clone(), "g", "c")
            .unwrap()
            .with_topic(orders)
            .with_max_deliveries(0);
        assert_eq!(options.topics().len(), 1);
        assert_eq!(options.max_deliveries(), 1);
    }
}
