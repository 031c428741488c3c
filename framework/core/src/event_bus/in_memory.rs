//! [`InMemoryEventBus`]: the event bus in memory, with the same semantics
//! as the Redis Streams bus (consumer groups, pending messages,
//! redelivery after the visibility timeout, dead letters, bounded topics).
//!
//! Idle time is measured on the bus's [`Clock`], so a test that builds the
//! bus with a [`TestClock`](crate::TestClock) makes a visibility timeout pass
//! with `clock.advance(..)`, instantly. (How long `receive` waits for new
//! messages is real time.)

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio::sync::watch;

use super::{
    BusMessage, DeadLetterInfo, EventBus, EventBusError, MessageId, PendingMessage, StartFrom,
    SubscribeOptions, Subscription, Topic,
};
use crate::clock::{Clock, SystemClock};
use crate::event::StoredEvent;
use crate::metrics::{BACKEND_IN_MEMORY, BusMetrics};

/// What this bus records (see [`crate::metrics`]).
const METRICS: BusMetrics = BusMetrics::new(BACKEND_IN_MEMORY);

/// How many messages a topic keeps by default.
const DEFAULT_MAX_LEN: usize = 10_000;

/// An event bus in memory. Clones share the same topics.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), composable_rust_core::event_bus::EventBusError> {
/// use std::sync::Arc;
/// use std::time::Duration;
/// use composable_rust_core::TestClock;
/// use composable_rust_core::event_bus::{EventBus, InMemoryEventBus, SubscribeOptions, Topic};
///
/// let clock = TestClock::new();
/// let bus = InMemoryEventBus::builder()
///     .with_clock(Arc::new(clock.clone()))
///     .with_max_len(1_000)
///     .build();
/// let topic = Topic::new("orders")?;
/// let options = SubscribeOptions::new(topic, "billing", "billing-1")?
///     .with_visibility_timeout(Duration::from_secs(30));
/// let mut consumer = bus.subscribe(options).await?;
/// // ... publish, receive without acknowledging, then:
/// clock.advance(Duration::from_secs(30)); // unacknowledged messages are due again
/// # let _ = consumer.receive(10, Duration::ZERO).await?;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct InMemoryEventBus {
    shared: Arc<Shared>,
}

struct Shared {
    state: Mutex<State>,
    clock: Arc<dyn Clock>,
    max_len: usize,
    /// Bumped on every publish, so waiting receivers look again.
    changed: watch::Sender<u64>,
}

#[derive(Default)]
struct State {
    topics: HashMap<Topic, TopicLog>,
}

#[derive(Default)]
struct TopicLog {
    /// The messages still held, in sequence order (contiguous sequences).
    entries: VecDeque<Entry>,
    /// The sequence of the last message ever published (1-based).
    last_seq: u64,
    groups: HashMap<String, Group>,
}

struct Entry {
    seq: u64,
    event: StoredEvent,
    dead_letter: Option<DeadLetterInfo>,
}

#[derive(Default)]
struct Group {
    /// The sequence of the last message delivered to the group.
    delivered: u64,
    /// Delivered, unacknowledged messages by sequence.
    pending: BTreeMap<u64, Pending>,
}

struct Pending {
    consumer: String,
    delivered_at: DateTime<Utc>,
    deliveries: u32,
}

impl TopicLog {
    fn push(&mut self, event: StoredEvent, dead_letter: Option<DeadLetterInfo>, max_len: usize) {
        self.last_seq += 1;
        self.entries.push_back(Entry {
            seq: self.last_seq,
            event,
            dead_letter,
        });
        while self.entries.len() > max_len.max(1) {
            self.entries.pop_front();
        }
    }

    fn message(topic: &Topic, entry: &Entry, deliveries: u32) -> BusMessage {
        BusMessage {
            topic: topic.clone(),
            id: message_id(entry.seq),
            event: entry.event.clone(),
            deliveries,
            dead_letter: entry.dead_letter.clone(),
        }
    }
}

fn message_id(seq: u64) -> MessageId {
    MessageId::new(format!("{seq}-0"))
}

fn parse_id(id: &MessageId) -> Option<u64> {
    id.as_str().split_once('-')?.0.parse().ok()
}

impl InMemoryEventBus {
    /// An empty bus on the system clock, keeping up to 10 000 messages per
    /// topic; [`builder`](Self::builder) sets either.
    pub fn new() -> Self {
        Self::builder().build()
    }

    /// Settings for a new bus: its clock and how many messages a topic
    /// keeps. They are fixed when the bus is built, so every clone shares
    /// them.
    pub fn builder() -> InMemoryEventBusBuilder {
        InMemoryEventBusBuilder {
            clock: Arc::new(SystemClock),
            max_len: DEFAULT_MAX_LEN,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.shared.lock()
    }
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn max_len(&self) -> usize {
        self.max_len
    }
}

/// Builds an [`InMemoryEventBus`]: `InMemoryEventBus::builder()
/// .with_clock(clock).with_max_len(100).build()`.
#[derive(Clone)]
pub struct InMemoryEventBusBuilder {
    clock: Arc<dyn Clock>,
    max_len: usize,
}

impl InMemoryEventBusBuilder {
    /// Measures idle time (for redelivery) on `clock` instead of the system
    /// clock.
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Keeps at most `max_len` messages per topic (at least 1): publishing
    /// more drops the oldest, exactly (default 10 000).
    #[must_use]
    pub fn with_max_len(mut self, max_len: usize) -> Self {
        self.max_len = max_len.max(1);
        self
    }

    /// The bus.
    pub fn build(self) -> InMemoryEventBus {
        let (changed, _) = watch::channel(0);
        InMemoryEventBus {
            shared: Arc::new(Shared {
                state: Mutex::new(State::default()),
                clock: self.clock,
                max_len: self.max_len,
                changed,
            }),
        }
    }
}

impl std::fmt::Debug for InMemoryEventBusBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InMemoryEventBusBuilder")
            .field("max_len", &self.max_len)
            .finish_non_exhaustive()
    }
}

impl Default for InMemoryEventBus {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for InMemoryEventBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InMemoryEventBus")
            .field("topics", &self.lock().topics.len())
            .field("max_len", &self.shared.max_len())
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl EventBus for InMemoryEventBus {
    async fn publish_batch(
        &self,
        topic: &Topic,
        events: &[StoredEvent],
    ) -> Result<Vec<MessageId>, EventBusError> {
        let max_len = self.shared.max_len();
        let ids = {
            let mut state = self.lock();
            let log = state.topics.entry(topic.clone()).or_default();
            events
                .iter()
                .map(|event| {
                    log.push(event.clone(), None, max_len);
                    message_id(log.last_seq)
                })
                .collect()
        };
        self.shared.changed.send_modify(|n| *n += 1);
        METRICS.published(topic.as_str(), events.len());
        Ok(ids)
    }

    async fn subscribe(
        &self,
        options: SubscribeOptions,
    ) -> Result<Box<dyn Subscription>, EventBusError> {
        {
            let mut state = self.lock();
            for topic in options.topics() {
                let log = state.topics.entry(topic.clone()).or_default();
                let start = match options.start() {
                    StartFrom::Beginning => 0,
                    StartFrom::Latest => log.last_seq,
                };
                log.groups
                    .entry(options.group().to_owned())
                    .or_insert_with(|| Group {
                        delivered: start,
                        pending: BTreeMap::new(),
                    });
            }
        }
        Ok(Box::new(InMemorySubscription {
            shared: Arc::clone(&self.shared),
            options,
            recovered: false,
            recovery_cursor: HashMap::new(),
        }))
    }

    async fn read(
        &self,
        topic: &Topic,
        after: Option<&MessageId>,
        limit: usize,
    ) -> Result<Vec<BusMessage>, EventBusError> {
        let after = after.and_then(parse_id).unwrap_or(0);
        let state = self.lock();
        let Some(log) = state.topics.get(topic) else {
            return Ok(Vec::new());
        };
        Ok(log
            .entries
            .iter()
            .filter(|entry| entry.seq > after)
            .take(limit)
            .map(|entry| TopicLog::message(topic, entry, 0))
            .collect())
    }

    async fn topic_len(&self, topic: &Topic) -> Result<u64, EventBusError> {
        Ok(self
            .lock()
            .topics
            .get(topic)
            .map_or(0, |log| log.entries.len() as u64))
    }

    async fn pending(
        &self,
        topic: &Topic,
        group: &str,
    ) -> Result<Vec<PendingMessage>, EventBusError> {
        let now = self.shared.clock.now();
        let state = self.lock();
        let Some(pending) = state
            .topics
            .get(topic)
            .and_then(|log| log.groups.get(group))
        else {
            METRICS.pending(topic.as_str(), group, 0);
            return Ok(Vec::new());
        };
        METRICS.pending(topic.as_str(), group, pending.pending.len());
        Ok(pending
            .pending
            .iter()
            .map(|(seq, pending)| PendingMessage {
                id: message_id(*seq),
                consumer: pending.consumer.clone(),
                idle: (now - pending.delivered_at).to_std().unwrap_or_default(),
                deliveries: pending.deliveries,
            })
            .collect())
    }
}

/// One consumer of a group of an [`InMemoryEventBus`].
struct InMemorySubscription {
    shared: Arc<Shared>,
    options: SubscribeOptions,
    /// Whether the messages held before subscribing have been taken back.
    recovered: bool,
    /// Per topic, the last sequence taken back while recovering.
    recovery_cursor: HashMap<Topic, u64>,
}

/// What one look at the topics found.
struct Poll {
    messages: Vec<BusMessage>,
    /// When the next pending message becomes due for redelivery.
    next_due: Option<Duration>,
}

impl InMemorySubscription {
    /// Takes up to `max` messages: first those held before this
    /// subscription (recovery) and those idle past the visibility timeout,
    /// in sequence order per topic; then, once recovery is complete, new
    /// ones.
    fn poll(&mut self, max: usize) -> Poll {
        let now = self.shared.clock.now();
        let timeout = chrono::Duration::from_std(self.options.visibility_timeout())
            .unwrap_or(chrono::Duration::MAX);
        let max_len = self.shared.max_len();
        let me = self.options.consumer().to_owned();
        let group_name = self.options.group().to_owned();
        let mut messages = Vec::new();
        let mut dead: Vec<(Topic, StoredEvent, DeadLetterInfo)> = Vec::new();
        let mut recovery_complete = true;
        let mut state = self.shared.lock();

        for topic in self.options.topics() {
            let Some(log) = state.topics.get_mut(topic) else {
                continue;
            };
            let TopicLog {
                entries, groups, ..
            } = log;
            let group = groups.entry(group_name.clone()).or_default();
            let cursor = self.recovery_cursor.get(topic).copied().unwrap_or(0);
            let due: Vec<(u64, bool)> = group
                .pending
                .iter()
                .filter_map(|(&seq, pending)| {
                    let recover = !self.recovered
                        && seq > cursor
                        && (self.options.takes_over_pending() || pending.consumer == me);
                    (recover || now - pending.delivered_at >= timeout).then_some((seq, recover))
                })
                .collect();
            for (seq, recover) in due {
                if messages.len() >= max {
                    recovery_complete = false;
                    break;
                }
                if recover {
                    self.recovery_cursor.insert(topic.clone(), seq);
                }
                let Some(entry) = lookup(entries, seq) else {
                    // Trimmed away while pending: nothing left to deliver.
                    group.pending.remove(&seq);
                    continue;
                };
                let Some(pending) = group.pending.get_mut(&seq) else {
                    continue;
                };
                if pending.deliveries >= self.options.max_deliveries() {
                    let info = DeadLetterInfo {
                        topic: topic.clone(),
                        group: group_name.clone(),
                        consumer: pending.consumer.clone(),
                        message_id: message_id(seq),
                        deliveries: pending.deliveries,
                    };
                    dead.push((topic.dead_letter(), entry.event.clone(), info));
                    group.pending.remove(&seq);
                    continue;
                }
                pending.consumer.clone_from(&me);
                pending.deliveries += 1;
                pending.delivered_at = now;
                messages.push(TopicLog::message(topic, entry, pending.deliveries));
            }
        }
        if recovery_complete {
            self.recovered = true;
            for topic in self.options.topics() {
                let Some(log) = state.topics.get_mut(topic) else {
                    continue;
                };
                let TopicLog {
                    entries,
                    last_seq,
                    groups,
                } = log;
                let group = groups.entry(group_name.clone()).or_default();
                while messages.len() < max && group.delivered < *last_seq {
                    let first = entries.front().map_or(*last_seq, |entry| entry.seq);
                    let seq = (group.delivered + 1).max(first);
                    group.delivered = seq;
                    let Some(entry) = lookup(entries, seq) else {
                        break;
                    };
                    group.pending.insert(
                        seq,
                        Pending {
                            consumer: me.clone(),
                            delivered_at: now,
                            deliveries: 1,
                        },
                    );
                    messages.push(TopicLog::message(topic, entry, 1));
                }
            }
        }

        let mut next_due: Option<chrono::Duration> = None;
        for topic in self.options.topics() {
            let pending = state
                .topics
                .get(topic)
                .and_then(|log| log.groups.get(&group_name))
                .map(|group| group.pending.values());
            for pending in pending.into_iter().flatten() {
                let due_in = pending.delivered_at + timeout - now;
                next_due = Some(next_due.map_or(due_in, |next| next.min(due_in)));
            }
        }
        let dead_lettered = !dead.is_empty();
        for (dead_letter_topic, event, info) in dead {
            METRICS.dead_lettered(info.topic.as_str(), &info.group, 1);
            state
                .topics
                .entry(dead_letter_topic)
                .or_default()
                .push(event, Some(info), max_len);
        }
        drop(state);
        if dead_lettered {
            self.shared.changed.send_modify(|n| *n += 1);
        }
        Poll {
            messages,
            next_due: next_due.map(|due| due.to_std().unwrap_or_default()),
        }
    }
}

/// The held message with sequence `seq`, if it was not trimmed.
fn lookup(entries: &VecDeque<Entry>, seq: u64) -> Option<&Entry> {
    let first = entries.front()?.seq;
    entries.get(usize::try_from(seq.checked_sub(first)?).ok()?)
}

#[async_trait]
impl Subscription for InMemorySubscription {
    fn options(&self) -> &SubscribeOptions {
        &self.options
    }

    async fn receive(
        &mut self,
        max: usize,
        wait: Duration,
    ) -> Result<Vec<BusMessage>, EventBusError> {
        let deadline = tokio::time::Instant::now() + wait;
        let mut changed = self.shared.changed.subscribe();
        loop {
            changed.borrow_and_update();
            let poll = self.poll(max.max(1));
            if !poll.messages.is_empty() {
                METRICS.delivered(self.options.group(), &poll.messages);
                return Ok(poll.messages);
            }
            if tokio::time::Instant::now() >= deadline {
                return Ok(Vec::new());
            }
            let clock = Arc::clone(&self.shared.clock);
            let due = async move {
                match poll.next_due {
                    // Asleep on the bus's clock, so a test clock's advance
                    // wakes the receiver when a message falls due.
                    Some(due) => clock.sleep(due.max(Duration::from_millis(1))).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = changed.changed() => {}
                () = tokio::time::sleep_until(deadline) => {}
                () = due => {}
            }
        }
    }

    async fn ack_many(&mut self, messages: &[BusMessage]) -> Result<(), EventBusError> {
        METRICS.acked(self.options.group(), messages);
        let mut state = self.shared.lock();
        for message in messages {
            let Some(seq) = parse_id(&message.id) else {
                continue;
            };
            if let Some(group) = state
                .topics
                .get_mut(&message.topic)
                .and_then(|log| log.groups.get_mut(self.options.group()))
            {
                group.pending.remove(&seq);
            }
        }
        Ok(())
    }

    async fn backlog(&mut self) -> Result<Option<u64>, EventBusError> {
        let state = self.shared.lock();
        let mut backlog = 0;
        for topic in self.options.topics() {
            if let Some(log) = state.topics.get(topic) {
                let delivered = log
                    .groups
                    .get(self.options.group())
                    .map_or(0, |group| group.delivered);
                backlog += log
                    .entries
                    .iter()
                    .filter(|entry| entry.seq > delivered)
                    .count() as u64;
            }
        }
        METRICS.lag(self.options.group(), backlog);
        Ok(Some(backlog))
    }
}
