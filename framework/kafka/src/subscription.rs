//! A subscription: one member of a Kafka consumer group, with its own
//! in-flight set, visibility timeout and dead-lettering.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use composable_rust_core::event_bus::{
    BusMessage, DeadLetterInfo, EventBusError, SubscribeOptions, Subscription, Topic,
};
use rdkafka::client::ClientContext;
use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer,
};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Message, OwnedHeaders};
use rdkafka::producer::FutureRecord;
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

use crate::{CommitMetadata, KafkaBusError, KafkaEventBus, METRICS, blocking, wire};

/// The most messages one receive returns.
const MAX_RECEIVE: usize = 10_000;

/// Delivery counts kept in an offset's metadata, at most.
const MAX_COUNTS: usize = 64;

/// What the consumer's rebalance callbacks saw, for the subscription to
/// act on after the poll that ran them.
#[derive(Debug)]
enum Rebalanced {
    Assigned(Vec<(String, i32)>),
    Revoked(Vec<(String, i32)>),
}

/// Records rebalances, and applies them without asking librdkafka which
/// rebalance protocol runs.
pub(crate) struct Context {
    events: Mutex<Vec<Rebalanced>>,
    /// Whether the group uses the cooperative protocol (incremental
    /// assignments), as the consumer's configuration says.
    cooperative: bool,
}

impl Context {
    /// The context of a consumer built from `config`.
    pub(crate) fn new(config: &ClientConfig) -> Self {
        Self {
            events: Mutex::default(),
            cooperative: config
                .get("partition.assignment.strategy")
                .is_some_and(|strategy| strategy.contains("cooperative")),
        }
    }
}

fn partitions(list: &TopicPartitionList) -> Vec<(String, i32)> {
    list.elements()
        .iter()
        .map(|e| (e.topic().to_owned(), e.partition()))
        .collect()
}

impl ClientContext for Context {}

impl ConsumerContext for Context {
    /// rdkafka's default asks librdkafka for the rebalance protocol
    /// (`rd_kafka_rebalance_protocol`), a call that never returns when the
    /// rebalance is the one closing the consumer runs (librdkafka #4041,
    /// rust-rdkafka #509): dropping a subscription then hung its thread
    /// for good. The protocol is known from the configuration instead.
    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        partitions: &mut TopicPartitionList,
    ) {
        let partitions = &*partitions;
        let rebalance = match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => Rebalance::Assign(partitions),
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => Rebalance::Revoke(partitions),
            other => Rebalance::Error(KafkaError::Rebalance(other.into())),
        };
        self.pre_rebalance(consumer, &rebalance);
        let assign = err == RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS;
        let applied = match (assign, self.cooperative) {
            (true, true) => consumer.incremental_assign(partitions),
            (true, false) => consumer.assign(partitions),
            (false, true) => consumer.incremental_unassign(partitions),
            (false, false) => consumer.unassign(),
        };
        if let Err(error) = applied {
            tracing::warn!(%error, "could not apply a consumer group rebalance");
        }
        self.post_rebalance(consumer, &rebalance);
    }

    fn pre_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(list) = rebalance {
            self.events
                .lock()
                .expect("lock")
                .push(Rebalanced::Revoked(partitions(list)));
        }
    }

    fn post_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(list) => self
                .events
                .lock()
                .expect("lock")
                .push(Rebalanced::Assigned(partitions(list))),
            Rebalance::Error(error) => tracing::warn!(%error, "consumer group rebalance failed"),
            Rebalance::Revoke(_) => {}
        }
    }
}

/// A message delivered and not yet acknowledged.
struct InFlight {
    message: BusMessage,
    since: Instant,
}

/// What the subscription knows of a partition it owns.
struct PartitionState {
    /// Where the group's offset stands (what was last committed), if known.
    committed: Option<i64>,
    /// One past the highest offset delivered by this subscription (or, at
    /// assignment, by the previous owner, from the offset's metadata).
    delivered_to: Option<i64>,
    /// Offsets below this were delivered by a previous owner.
    previously_delivered_to: i64,
    /// Their delivery counts above 1, from the offset's metadata.
    previous_counts: BTreeMap<i64, u32>,
    in_flight: BTreeMap<i64, InFlight>,
}

impl PartitionState {
    /// The offset to commit: the oldest in flight, else one past the last
    /// delivered.
    fn commit_point(&self) -> Option<i64> {
        self.in_flight
            .keys()
            .next()
            .copied()
            .or(self.delivered_to)
            .or(self.committed)
    }
}

/// One consumer of a group on a Kafka-protocol broker.
pub(crate) struct KafkaSubscription {
    bus: KafkaEventBus,
    options: SubscribeOptions,
    consumer: Arc<StreamConsumer<Context>>,
    /// The subscribed topics and their Kafka names.
    topics: Vec<(Topic, String)>,
    /// The Kafka consumer group (prefixed).
    group: String,
    owned: HashMap<(usize, i32), PartitionState>,
    /// Whether the group has given this consumer an assignment yet.
    joined: bool,
}

impl KafkaSubscription {
    pub(crate) fn new(
        bus: KafkaEventBus,
        options: SubscribeOptions,
        topics: Vec<(Topic, String)>,
        group: &str,
    ) -> Result<Self, KafkaBusError> {
        let mut config = bus.shared.options.consumer_config(Some(group));
        config.set("client.id", options.consumer());
        let consumer: StreamConsumer<Context> = config
            .create_with_context(Context::new(&config))
            .map_err(|error| KafkaBusError::InvalidConfig {
            what: "consumer",
            source: Arc::new(error),
        })?;
        let names: Vec<&str> = topics.iter().map(|(_, name)| name.as_str()).collect();
        consumer
            .subscribe(&names)
            .map_err(|error| bus.shared.error(error, "subscribe"))?;
        Ok(Self {
            bus,
            options,
            consumer: Arc::new(consumer),
            topics,
            group: group.to_owned(),
            owned: HashMap::new(),
            joined: false,
        })
    }

    fn topic_index(&self, name: &str) -> Option<usize> {
        self.topics.iter().position(|(_, n)| n == name)
    }

    /// Applies the rebalances the last poll ran: forgets revoked
    /// partitions (dropping their messages from `out`: they go to the new
    /// owner) and learns where assigned ones stand.
    async fn apply_rebalances(&mut self, out: &mut Vec<BusMessage>) -> Result<(), EventBusError> {
        let events: Vec<Rebalanced> =
            std::mem::take(&mut *self.consumer.context().events.lock().expect("lock"));
        for event in events {
            match event {
                Rebalanced::Revoked(list) => {
                    for (name, partition) in list {
                        let Some(index) = self.topic_index(&name) else {
                            continue;
                        };
                        self.owned.remove(&(index, partition));
                        let topic = self.topics[index].0.clone();
                        out.retain(|m| {
                            m.topic != topic
                                || wire::parse_message_id(&m.id).map(|(p, _)| p) != Some(partition)
                        });
                        tracing::debug!(topic = %topic, partition, consumer = self.options.consumer(), "partition revoked");
                    }
                }
                Rebalanced::Assigned(list) => {
                    self.joined = true;
                    let list: Vec<(usize, String, i32)> = list
                        .into_iter()
                        .filter_map(|(name, p)| Some((self.topic_index(&name)?, name, p)))
                        .collect();
                    if list.is_empty() {
                        continue;
                    }
                    let consumer = Arc::clone(&self.consumer);
                    let shared = Arc::clone(&self.bus.shared);
                    let group = self.group.clone();
                    let timeout = self.bus.shared.options.timeout.min(Duration::from_secs(5));
                    let asked: Vec<(String, i32)> =
                        list.iter().map(|(_, n, p)| (n.clone(), *p)).collect();
                    let committed = blocking(move || {
                        let mut tpl = TopicPartitionList::new();
                        for (name, partition) in &asked {
                            tpl.add_partition(name, *partition);
                        }
                        consumer.committed_offsets(tpl, timeout).map(|tpl| {
                            tpl.elements()
                                .iter()
                                .map(|e| {
                                    (
                                        e.partition(),
                                        e.topic().to_owned(),
                                        match e.offset() {
                                            Offset::Offset(o) => Some(o),
                                            _ => None,
                                        },
                                        match e.offset() {
                                            Offset::Offset(o) => shared.commit_metadata(
                                                &group,
                                                e.topic(),
                                                e.partition(),
                                                o,
                                                e.metadata(),
                                            ),
                                            _ => None,
                                        },
                                    )
                                })
                                .collect::<Vec<_>>()
                        })
                    })
                    .await;
                    // Best effort: the committed offsets only say what a
                    // previous owner delivered (delivery counts, backlog).
                    // Without them the partition is still consumed from
                    // the group's committed offset by librdkafka itself.
                    let committed = committed.unwrap_or_else(|error| {
                        tracing::warn!(%error, "could not read the group's committed offsets at assignment; delivery counts restart at 1");
                        list.iter()
                            .map(|(_, name, partition)| (*partition, name.clone(), None, None))
                            .collect()
                    });
                    for (partition, name, offset, metadata) in committed {
                        let Some(index) = self.topic_index(&name) else {
                            continue;
                        };
                        let metadata = metadata.unwrap_or_default();
                        self.owned.insert(
                            (index, partition),
                            PartitionState {
                                committed: offset,
                                delivered_to: None,
                                previously_delivered_to: metadata.delivered_to,
                                previous_counts: metadata.deliveries,
                                in_flight: BTreeMap::new(),
                            },
                        );
                        tracing::debug!(topic = %self.topics[index].0, partition, ?offset, consumer = self.options.consumer(), "partition assigned");
                    }
                }
            }
        }
        Ok(())
    }

    /// Commits the commit point of each partition in `touched`, with
    /// metadata saying what was delivered. A commit refused because the
    /// partition moved to another member is not an error: that member
    /// delivers the messages again.
    async fn commit(&mut self, touched: &[(usize, i32)]) -> Result<(), EventBusError> {
        let mut tpl = TopicPartitionList::new();
        let now = chrono::Utc::now().timestamp_millis();
        let mut commits = Vec::new();
        for key in touched {
            let Some(state) = self.owned.get(key) else {
                continue;
            };
            let Some(point) = state.commit_point() else {
                continue;
            };
            let metadata = CommitMetadata {
                consumer: self.options.consumer().to_owned(),
                delivered_to: state.delivered_to.unwrap_or(point).max(point),
                at_ms: now,
                deliveries: state
                    .in_flight
                    .iter()
                    .filter(|(_, f)| f.message.deliveries > 1)
                    .take(MAX_COUNTS)
                    .map(|(o, f)| (*o, f.message.deliveries))
                    .collect(),
            };
            let name = &self.topics[key.0].1;
            tpl.add_partition_offset(name, key.1, Offset::Offset(point))
                .map_err(|error| self.bus.shared.error(error, "commit offsets"))?;
            if let Some(mut element) = tpl.find_partition(name, key.1) {
                element.set_metadata(serde_json::to_string(&metadata).unwrap_or_default());
            }
            commits.push((*key, point, metadata));
        }
        if commits.is_empty() {
            return Ok(());
        }
        let consumer = Arc::clone(&self.consumer);
        match blocking(move || consumer.commit(&tpl, CommitMode::Sync)).await {
            Ok(()) => {
                let mut registry = self.bus.shared.commits.lock().expect("lock");
                for (key, point, metadata) in commits {
                    if let Some(state) = self.owned.get_mut(&key) {
                        state.committed = Some(point);
                    }
                    registry.insert(
                        (self.group.clone(), self.topics[key.0].1.clone(), key.1),
                        (point, metadata),
                    );
                }
                Ok(())
            }
            Err(error)
                if matches!(
                    error.rdkafka_error_code(),
                    Some(
                        RDKafkaErrorCode::IllegalGeneration
                            | RDKafkaErrorCode::UnknownMemberId
                            | RDKafkaErrorCode::RebalanceInProgress
                            | RDKafkaErrorCode::State
                            | RDKafkaErrorCode::AssignmentLost
                    )
                ) =>
            {
                tracing::debug!(%error, "commit refused: the partitions moved to another member");
                Ok(())
            }
            Err(error) => Err(self.bus.shared.error(error, "commit offsets").into()),
        }
    }

    /// Moves a message to its topic's dead-letter topic.
    #[allow(clippy::too_many_arguments)]
    async fn dead_letter(
        &self,
        index: usize,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: Option<&OwnedHeaders>,
        message_id: &composable_rust_core::event_bus::MessageId,
        deliveries: u32,
        error: Option<String>,
    ) -> Result<(), EventBusError> {
        let topic = &self.topics[index].0;
        let dead_letter = topic.dead_letter();
        let name = self.bus.kafka_topic(&dead_letter)?;
        self.bus.ensure_topic(&name).await?;
        let info = DeadLetterInfo {
            topic: topic.clone(),
            group: self.options.group().to_owned(),
            consumer: self.options.consumer().to_owned(),
            message_id: message_id.clone(),
            deliveries,
        };
        let headers = wire::dead_letter_headers(headers, &info, error.as_deref());
        let mut record: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(&name).headers(headers);
        if let Some(key) = key {
            record = record.key(key);
        }
        if let Some(value) = value {
            record = record.payload(value);
        }
        self.bus
            .shared
            .producer
            .send(record, self.bus.shared.options.timeout)
            .await
            .map_err(|(error, _)| {
                self.bus
                    .shared
                    .error(error, "publish to a dead-letter topic")
            })?;
        tracing::warn!(
            topic = %topic,
            group = self.options.group(),
            message_id = %message_id,
            deliveries,
            "message moved to the dead-letter topic"
        );
        METRICS.dead_lettered(topic.as_str(), self.options.group(), 1);
        Ok(())
    }

    /// Messages in flight past the visibility timeout: delivered again,
    /// or dead-lettered at the delivery limit.
    async fn redeliver_expired(
        &mut self,
        max: usize,
        out: &mut Vec<BusMessage>,
        touched: &mut Vec<(usize, i32)>,
    ) -> Result<(), EventBusError> {
        let timeout = self.options.visibility_timeout();
        let limit = self.options.max_deliveries();
        let now = Instant::now();
        let mut keys: Vec<(usize, i32)> = self.owned.keys().copied().collect();
        keys.sort_unstable();
        for key in keys {
            let expired: Vec<i64> = self.owned[&key]
                .in_flight
                .iter()
                .filter(|(_, f)| now.duration_since(f.since) >= timeout)
                .map(|(o, _)| *o)
                .collect();
            for offset in expired {
                if out.len() >= max {
                    return Ok(());
                }
                let Some(state) = self.owned.get_mut(&key) else {
                    break;
                };
                let Some(flight) = state.in_flight.get_mut(&offset) else {
                    continue;
                };
                if flight.message.deliveries >= limit {
                    let message = flight.message.clone();
                    state.in_flight.remove(&offset);
                    let record = wire::encode(&message.topic, &message.event)?;
                    self.dead_letter(
                        key.0,
                        Some(record.key.as_bytes()),
                        Some(&record.value),
                        Some(&record.headers),
                        &message.id,
                        message.deliveries,
                        None,
                    )
                    .await?;
                } else {
                    flight.message.deliveries += 1;
                    flight.since = now;
                    out.push(flight.message.clone());
                }
                if !touched.contains(&key) {
                    touched.push(key);
                }
            }
        }
        Ok(())
    }
}

#[async_trait]
impl Subscription for KafkaSubscription {
    fn options(&self) -> &SubscribeOptions {
        &self.options
    }

    async fn receive(
        &mut self,
        max: usize,
        wait: Duration,
    ) -> Result<Vec<BusMessage>, EventBusError> {
        let max = max.clamp(1, MAX_RECEIVE);
        // Until the group has given this consumer its first assignment,
        // a receive waits for the join (up to the session timeout), so a
        // first receive after subscribing finds the messages already
        // there, as on the other buses.
        let wait = if self.joined {
            wait
        } else {
            wait.max(self.bus.shared.options.session_timeout)
        };
        let deadline = tokio::time::Instant::now() + wait;
        let mut out = Vec::new();
        let mut touched = Vec::new();
        self.apply_rebalances(&mut out).await?;
        self.redeliver_expired(max, &mut out, &mut touched).await?;
        let limit = self.options.max_deliveries();
        while out.len() < max {
            let now = tokio::time::Instant::now();
            let budget = if out.is_empty() {
                deadline.saturating_duration_since(now)
            } else {
                Duration::ZERO
            };
            let received = {
                let consumer = Arc::clone(&self.consumer);
                let next = tokio::time::timeout(budget, async move {
                    consumer.recv().await.map(|m| m.detach())
                })
                .await;
                match next {
                    Ok(Ok(record)) => Some(record),
                    Ok(Err(error)) => {
                        return Err(self.bus.shared.error(error, "receive messages").into());
                    }
                    Err(_) => None,
                }
            };
            self.apply_rebalances(&mut out).await?;
            let Some(record) = received else {
                break;
            };
            if !self.joined {
                self.joined = true;
            }
            let Some(index) = self.topic_index(record.topic()) else {
                continue;
            };
            let key = (index, record.partition());
            let Some(state) = self.owned.get_mut(&key) else {
                // A record of a partition revoked meanwhile.
                continue;
            };
            let offset = record.offset();
            if state.in_flight.contains_key(&offset) {
                continue; // fetched again after a seek: already in flight
            }
            let deliveries = if offset < state.previously_delivered_to {
                state.previous_counts.get(&offset).copied().unwrap_or(1) + 1
            } else {
                1
            };
            state.delivered_to = Some(state.delivered_to.unwrap_or(offset + 1).max(offset + 1));
            if !touched.contains(&key) {
                touched.push(key);
            }
            let decoded = wire::decode(
                &self.topics[index].0,
                record.partition(),
                offset,
                record.key(),
                record.payload(),
                record.headers(),
                deliveries,
            );
            match decoded {
                Ok(message) if deliveries <= limit => {
                    state.in_flight.insert(
                        offset,
                        InFlight {
                            message: message.clone(),
                            since: Instant::now(),
                        },
                    );
                    out.push(message);
                }
                Ok(message) => {
                    // Delivered too often before (the previous owners died
                    // holding it): a poison message.
                    self.dead_letter(
                        index,
                        record.key(),
                        record.payload(),
                        record.headers(),
                        &message.id,
                        deliveries - 1,
                        None,
                    )
                    .await?;
                }
                Err(error) => {
                    tracing::error!(topic = %self.topics[index].0, offset, %error, "undecodable message moved to the dead-letter topic");
                    self.dead_letter(
                        index,
                        record.key(),
                        record.payload(),
                        record.headers(),
                        &wire::message_id(record.partition(), offset),
                        deliveries,
                        Some(error.to_string()),
                    )
                    .await?;
                }
            }
        }
        if !touched.is_empty() {
            self.commit(&touched).await?;
        }
        METRICS.delivered(self.options.group(), &out);
        Ok(out)
    }

    async fn ack_many(&mut self, messages: &[BusMessage]) -> Result<(), EventBusError> {
        let mut touched = Vec::new();
        for message in messages {
            let Some(index) = self.topics.iter().position(|(t, _)| *t == message.topic) else {
                continue;
            };
            let Some((partition, offset)) = wire::parse_message_id(&message.id) else {
                continue;
            };
            let key = (index, partition);
            if let Some(state) = self.owned.get_mut(&key)
                && state.in_flight.remove(&offset).is_some()
                && !touched.contains(&key)
            {
                touched.push(key);
            }
        }
        self.commit(&touched).await?;
        METRICS.acked(self.options.group(), messages);
        Ok(())
    }

    async fn backlog(&mut self) -> Result<Option<u64>, EventBusError> {
        if self.owned.is_empty() {
            return Ok(None);
        }
        let mut asked = Vec::new();
        for (&(index, partition), state) in &self.owned {
            asked.push((
                self.topics[index].1.clone(),
                partition,
                state.delivered_to.or(state.committed),
            ));
        }
        let bus = self.bus.clone();
        let backlog = blocking(move || {
            let mut total = 0_u64;
            for (name, partition, from) in asked {
                let (low, high) = bus.shared.watermarks(&name, partition)?;
                let from = from.unwrap_or(low).max(low);
                total += u64::try_from(high - from).unwrap_or(0);
            }
            Ok::<_, EventBusError>(total)
        })
        .await?;
        METRICS.lag(self.options.group(), backlog);
        Ok(Some(backlog))
    }
}

impl std::fmt::Debug for KafkaSubscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaSubscription")
            .field("options", &self.options)
            .field("partitions", &self.owned.len())
            .finish_non_exhaustive()
    }
}
