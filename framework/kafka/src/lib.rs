//! A Kafka-protocol [`EventBus`] for Composable Rust: the core's event bus
//! on Apache Kafka, Redpanda, or any broker speaking the Kafka protocol.
//!
//! | bus concept | Kafka |
//! |---|---|
//! | topic `t` | the Kafka topic `<prefix>t`, created on first use with the bus's partition count ([`KafkaBusOptions::with_partitions`]) |
//! | publish | a record keyed by the event's **stream id**, so a stream's events share a partition and keep their order; value = payload JSON, headers = event id, type, schema version, position, correlation and causation ids ([`wire`]); idempotent producer, `acks=all` |
//! | consumer group `g` | the Kafka consumer group `<prefix>g`; partitions are split among its members and move on rebalances |
//! | acknowledge | the message leaves the subscription's in-flight set; the group's offset of that partition is committed up to the oldest message still in flight (offsets are committed **only after** acknowledgement: at least once) |
//! | pending messages | from the group's committed offset to the last delivered offset, which each commit records in the offset's metadata with the consumer's name (brokers that return no commit metadata, like tansu 0.6.0: known only to the process that committed) |
//! | visibility timeout | measured by the subscription that holds the partition: a message it delivered and did not get acknowledged in time is delivered again, by the same subscription (a partition has one owner) |
//! | a dead consumer's messages | go to the member that gets its partitions in the next rebalance, from the committed offset (immediately when the consumer leaves cleanly, e.g. its subscription is dropped; after the session timeout when it crashes) |
//! | dead letters | after `max_deliveries` deliveries the record is produced to `<topic>.dead-letter`, with a `dead-letter` header, and counts as acknowledged |
//! | bounded topics | Kafka bounds topics by time or size (`retention.ms`, `retention.bytes`, set with [`KafkaBusOptions::with_topic_config`]), not by count |
//!
//! Where Kafka differs from the Redis Streams bus, the conformance suite
//! of `composable-rust-testing` says so explicitly (its `BusDifferences`):
//! messages are ordered **per stream** (per partition), not across a
//! topic; a dead member's messages move by rebalance, not after the
//! visibility timeout; topics are bounded by retention, not length.
//! A projection fed by the bus ([`SubscriptionSource`](composable_rust_core::event_bus::SubscriptionSource))
//! needs its events in position order: give its topic **one partition**.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//! use composable_rust_core::event_bus::{EventBus, SubscribeOptions, Topic};
//! use composable_rust_kafka::KafkaBusOptions;
//!
//! let bus = KafkaBusOptions::new("127.0.0.1:9092")
//!     .with_partitions(6)
//!     .connect()
//!     .await?;
//! let orders = Topic::new("orders")?;
//! let mut billing = bus
//!     .subscribe(SubscribeOptions::new(orders.clone(), "billing", "billing-1")?)
//!     .await?;
//! for message in billing.receive(100, Duration::from_secs(1)).await? {
//!     // ... handle message.event idempotently (by message.event.event_id) ...
//!     billing.ack(&message).await?;
//! }
//! # Ok(())
//! # }
//! ```
#![deny(missing_docs)]

mod error;
mod subscription;
pub mod wire;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use composable_rust_core::StoredEvent;
use composable_rust_core::event_bus::{
    BusMessage, EventBus, EventBusError, MessageId, PendingMessage, StartFrom, SubscribeOptions,
    Subscription, Topic,
};
use composable_rust_core::metrics::{BACKEND_KAFKA, BusMetrics};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};
use serde::{Deserialize, Serialize};

pub use error::{
    KafkaBusError, MAX_TOPIC_LEN, code_class, codes, kafka_error_class, validate_topic_name,
};

use subscription::KafkaSubscription;

/// What the bus records (see [`composable_rust_core::metrics`]).
pub(crate) const METRICS: BusMetrics = BusMetrics::new(BACKEND_KAFKA);

/// How to build a [`KafkaEventBus`]: brokers, names, partitions, timeouts.
///
/// ```no_run
/// # async fn demo() -> Result<(), composable_rust_kafka::KafkaBusError> {
/// use std::time::Duration;
/// use composable_rust_kafka::KafkaBusOptions;
///
/// let bus = KafkaBusOptions::new("kafka-1:9092,kafka-2:9092")
///     .with_prefix("myapp.")
///     .with_partitions(12)
///     .with_replication_factor(3)
///     .with_topic_config("retention.ms", "604800000") // a week
///     .with_session_timeout(Duration::from_secs(30))
///     .connect()
///     .await?;
/// # let _ = bus;
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct KafkaBusOptions {
    bootstrap: String,
    prefix: String,
    partitions: i32,
    replication_factor: i32,
    topic_config: Vec<(String, String)>,
    client_config: Vec<(String, String)>,
    fetch_wait: Duration,
    session_timeout: Duration,
    heartbeat_interval: Option<Duration>,
    max_poll_interval: Duration,
    timeout: Duration,
}

impl KafkaBusOptions {
    /// A bus on the brokers `bootstrap` (`host:port`, comma-separated),
    /// with no name prefix, 3 partitions and replication factor 1 for the
    /// topics it creates, a 100 ms longest fetch wait, a 10 s session
    /// timeout and a 10 s request timeout.
    pub fn new(bootstrap: impl Into<String>) -> Self {
        Self {
            bootstrap: bootstrap.into(),
            prefix: String::new(),
            partitions: 3,
            replication_factor: 1,
            topic_config: Vec::new(),
            client_config: Vec::new(),
            fetch_wait: Duration::from_millis(100),
            session_timeout: Duration::from_secs(10),
            heartbeat_interval: None,
            max_poll_interval: Duration::from_secs(300),
            timeout: Duration::from_secs(10),
        }
    }

    /// Puts `prefix` before every topic and consumer group name (e.g.
    /// `myapp.`), so several applications, or tests, share brokers. The
    /// prefixed topic names must be valid Kafka names (checked on use,
    /// `CR-E0401`).
    #[must_use]
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// How many partitions the topics the bus creates get (default 3; at
    /// least 1). Partitions are the unit of parallelism of a consumer
    /// group and of ordering: events of one stream stay in order, events
    /// of different streams in different partitions do not. Topics that
    /// already exist keep theirs.
    #[must_use]
    pub fn with_partitions(mut self, partitions: u16) -> Self {
        self.partitions = i32::from(partitions.max(1));
        self
    }

    /// The replication factor of the topics the bus creates (default 1;
    /// use 3 on a production cluster).
    #[must_use]
    pub fn with_replication_factor(mut self, factor: u16) -> Self {
        self.replication_factor = i32::from(factor.max(1));
        self
    }

    /// A topic configuration for the topics the bus creates, e.g.
    /// `("retention.ms", "604800000")` or `("cleanup.policy", "delete")`.
    #[must_use]
    pub fn with_topic_config(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.topic_config.push((key.into(), value.into()));
        self
    }

    /// A librdkafka property for every client of the bus (producer,
    /// consumers, admin), e.g. `("security.protocol", "ssl")`; set last,
    /// so it overrides the bus's own choices.
    #[must_use]
    pub fn with_client_config(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.client_config.push((key.into(), value.into()));
        self
    }

    /// The longest time a broker holds a fetch waiting for data
    /// (`fetch.wait.max.ms`, default 100 ms). Lower means lower latency
    /// and more requests.
    #[must_use]
    pub fn with_fetch_wait(mut self, wait: Duration) -> Self {
        self.fetch_wait = wait;
        self
    }

    /// How long a consumer may go silent before the group gives its
    /// partitions to other members (`session.timeout.ms`, default 10 s):
    /// how soon a crashed consumer's messages move.
    #[must_use]
    pub fn with_session_timeout(mut self, timeout: Duration) -> Self {
        self.session_timeout = timeout;
        self
    }

    /// How often a consumer tells the group it is alive
    /// (`heartbeat.interval.ms`, default a tenth of the session timeout):
    /// also how soon a member learns that the group rebalances.
    #[must_use]
    pub fn with_heartbeat_interval(mut self, interval: Duration) -> Self {
        self.heartbeat_interval = Some(interval);
        self
    }

    /// The longest a subscription may go without receiving before its
    /// consumer leaves the group on its own, handing its partitions to
    /// the other members (`max.poll.interval.ms`, default 5 minutes; at
    /// least the session timeout). Longer than the slowest handling of a
    /// batch; shorter means a stuck consumer's partitions move sooner.
    #[must_use]
    pub fn with_max_poll_interval(mut self, interval: Duration) -> Self {
        self.max_poll_interval = interval;
        self
    }

    /// How long a request to the brokers may take (metadata, topic
    /// creation, offsets, delivery of a published record; default 10 s).
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The bootstrap servers.
    pub fn bootstrap(&self) -> &str {
        &self.bootstrap
    }

    /// Creates the clients and checks that the brokers answer.
    ///
    /// # Errors
    ///
    /// `CR-E0402` (configuration), `CR-E0403` (brokers unreachable).
    pub async fn connect(self) -> Result<KafkaEventBus, KafkaBusError> {
        let timeout_ms = millis(self.timeout).to_string();
        let mut producer_config = self.base_config();
        producer_config
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("linger.ms", "5")
            .set("message.timeout.ms", &timeout_ms);
        self.apply_client_config(&mut producer_config);
        let producer: FutureProducer =
            producer_config
                .create()
                .map_err(|error| KafkaBusError::InvalidConfig {
                    what: "producer",
                    source: Arc::new(error),
                })?;
        let mut admin_config = self.base_config();
        self.apply_client_config(&mut admin_config);
        let admin: AdminClient<DefaultClientContext> =
            admin_config
                .create()
                .map_err(|error| KafkaBusError::InvalidConfig {
                    what: "admin client",
                    source: Arc::new(error),
                })?;
        let metadata =
            self.consumer_config(None)
                .create()
                .map_err(|error| KafkaBusError::InvalidConfig {
                    what: "consumer",
                    source: Arc::new(error),
                })?;
        let shared = Arc::new(Shared {
            options: self,
            producer,
            admin,
            metadata,
            known_topics: Mutex::new(HashSet::new()),
            commits: Mutex::new(HashMap::new()),
        });
        let bus = KafkaEventBus { shared };
        let check = Arc::clone(&bus.shared);
        blocking(move || {
            // The metadata of one (probably absent) topic: an answer
            // proves the brokers reachable, without listing every topic
            // of the cluster.
            check
                .metadata
                .fetch_metadata(Some("__composable_rust_probe"), check.options.timeout)
                .map(|_| ())
                .map_err(|error| check.error(error, "connect"))
        })
        .await?;
        Ok(bus)
    }

    fn base_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", &self.bootstrap)
            .set("socket.timeout.ms", millis(self.timeout).to_string())
            .set("log_level", "3");
        config
    }

    fn apply_client_config(&self, config: &mut ClientConfig) {
        for (key, value) in &self.client_config {
            config.set(key, value);
        }
    }

    /// A consumer's configuration: in `group` (already prefixed), or in
    /// none (for reads and metadata).
    fn consumer_config(&self, group: Option<&str>) -> ClientConfig {
        let mut config = self.base_config();
        config
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set("allow.auto.create.topics", "false")
            .set("fetch.wait.max.ms", millis(self.fetch_wait).to_string())
            .set(
                "session.timeout.ms",
                millis(self.session_timeout).to_string(),
            )
            .set(
                "heartbeat.interval.ms",
                self.heartbeat_interval
                    .map_or((millis(self.session_timeout) / 10).max(100), millis)
                    .to_string(),
            )
            .set(
                "max.poll.interval.ms",
                millis(self.max_poll_interval.max(self.session_timeout)).to_string(),
            );
        if let Some(group) = group {
            config.set("group.id", group);
        }
        self.apply_client_config(&mut config);
        config
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis())
        .unwrap_or(u64::MAX)
        .max(1)
}

/// Runs blocking librdkafka calls off the async threads.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    match tokio::task::spawn_blocking(f).await {
        Ok(value) => value,
        Err(error) => std::panic::resume_unwind(error.into_panic()),
    }
}

/// An event bus on a Kafka-protocol broker; see the [crate docs](crate)
/// for how each operation maps to Kafka. Clones share the clients.
#[derive(Clone)]
pub struct KafkaEventBus {
    shared: Arc<Shared>,
}

struct Shared {
    options: KafkaBusOptions,
    producer: FutureProducer,
    admin: AdminClient<DefaultClientContext>,
    /// A consumer in no group, for metadata and watermarks.
    metadata: BaseConsumer,
    /// Topics known to exist (created by this bus or found).
    known_topics: Mutex<HashSet<String>>,
    /// The last commit of each (group, topic, partition) by this process's
    /// subscriptions, for brokers that do not return an offset's metadata
    /// (tansu 0.6.0 stores it but answers an empty string).
    commits: Mutex<HashMap<PartitionOfGroup, (i64, CommitMetadata)>>,
}

/// A consumer group (prefixed), a Kafka topic and a partition.
type PartitionOfGroup = (String, String, i32);

impl Shared {
    fn error(&self, error: rdkafka::error::KafkaError, operation: &'static str) -> KafkaBusError {
        KafkaBusError::from_kafka(error, operation, &self.options.bootstrap)
    }

    /// The partitions of `kafka_topic`, sorted; empty if it does not
    /// exist. Blocking.
    fn partitions(&self, kafka_topic: &str) -> Result<Vec<i32>, KafkaBusError> {
        let metadata = self
            .metadata
            .fetch_metadata(Some(kafka_topic), self.options.timeout)
            .map_err(|error| self.error(error, "read a topic's metadata"))?;
        let Some(topic) = metadata.topics().iter().find(|t| t.name() == kafka_topic) else {
            return Ok(Vec::new());
        };
        match topic.error() {
            None => {}
            Some(code)
                if RDKafkaErrorCode::from(code) == RDKafkaErrorCode::UnknownTopicOrPartition =>
            {
                return Ok(Vec::new());
            }
            Some(code) => {
                return Err(self.error(
                    rdkafka::error::KafkaError::MetadataFetch(code.into()),
                    "read a topic's metadata",
                ));
            }
        }
        let mut partitions: Vec<i32> = topic.partitions().iter().map(|p| p.id()).collect();
        partitions.sort_unstable();
        Ok(partitions)
    }

    /// The low and high watermarks of a partition. Blocking.
    fn watermarks(&self, kafka_topic: &str, partition: i32) -> Result<(i64, i64), KafkaBusError> {
        self.metadata
            .fetch_watermarks(kafka_topic, partition, self.options.timeout)
            .map_err(|error| self.error(error, "read a partition's offsets"))
    }

    /// The metadata of `group`'s committed `offset` of a partition: the
    /// broker's, or, when the broker returned none, what a subscription of
    /// this process recorded with that very commit.
    pub(crate) fn commit_metadata(
        &self,
        group: &str,
        topic: &str,
        partition: i32,
        offset: i64,
        from_broker: &str,
    ) -> Option<CommitMetadata> {
        CommitMetadata::parse(from_broker).or_else(|| {
            let commits = self.commits.lock().expect("lock");
            let (committed, metadata) =
                commits.get(&(group.to_owned(), topic.to_owned(), partition))?;
            (*committed == offset).then(|| metadata.clone())
        })
    }

    /// A consumer of `group` that never joins it (for offset fetches and
    /// commits). Blocking-free to create.
    fn group_client(&self, group: &str) -> Result<BaseConsumer, KafkaBusError> {
        self.options
            .consumer_config(Some(group))
            .create()
            .map_err(|error| KafkaBusError::InvalidConfig {
                what: "consumer",
                source: Arc::new(error),
            })
    }
}

/// What a subscription records in the metadata of each offset it
/// commits, so other members (after a rebalance) and
/// [`EventBus::pending`] know what was delivered: JSON, at most a few
/// hundred bytes (brokers keep up to 4 KiB by default).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct CommitMetadata {
    /// The consumer that committed.
    #[serde(rename = "c")]
    pub consumer: String,
    /// One past the highest offset delivered in the partition.
    #[serde(rename = "d")]
    pub delivered_to: i64,
    /// When, in milliseconds since the Unix epoch.
    #[serde(rename = "t")]
    pub at_ms: i64,
    /// Delivery counts above 1 of messages still in flight, by offset.
    #[serde(rename = "n", default, skip_serializing_if = "BTreeMap::is_empty")]
    pub deliveries: BTreeMap<i64, u32>,
}

impl CommitMetadata {
    pub(crate) fn parse(text: &str) -> Option<Self> {
        serde_json::from_str(text).ok()
    }
}

impl KafkaEventBus {
    /// Connects to `bootstrap` with the default [`KafkaBusOptions`].
    ///
    /// # Errors
    ///
    /// `CR-E0402` (configuration), `CR-E0403` (brokers unreachable).
    pub async fn connect(bootstrap: &str) -> Result<Self, KafkaBusError> {
        KafkaBusOptions::new(bootstrap).connect().await
    }

    /// The options the bus was built with.
    pub fn options(&self) -> &KafkaBusOptions {
        &self.shared.options
    }

    /// The Kafka topic of `topic`: the bus's prefix plus its name.
    ///
    /// # Errors
    ///
    /// `CR-E0401` if that is not a valid Kafka topic name (core topic
    /// names may hold `:` and `/`, Kafka's may not).
    pub fn kafka_topic(&self, topic: &Topic) -> Result<String, KafkaBusError> {
        let name = format!("{}{}", self.shared.options.prefix, topic.as_str());
        validate_topic_name(&name)?;
        Ok(name)
    }

    /// The Kafka consumer group of `group`: the bus's prefix plus its name.
    pub fn kafka_group(&self, group: &str) -> String {
        format!("{}{group}", self.shared.options.prefix)
    }

    /// The producer, for records of your own (it is idempotent, with
    /// `acks=all`).
    pub fn producer(&self) -> &FutureProducer {
        &self.shared.producer
    }

    /// Creates `topic` with the bus's partitions, replication factor and
    /// topic configuration, unless it exists. The bus calls this before it
    /// first publishes to or subscribes to a topic (brokers usually refuse
    /// to create topics on their own, and should).
    ///
    /// # Errors
    ///
    /// `CR-E0401` (name), `CR-E0403`/`CR-E0404` (the brokers).
    pub async fn create_topic(&self, topic: &Topic) -> Result<(), KafkaBusError> {
        let name = self.kafka_topic(topic)?;
        self.ensure_topic(&name).await
    }

    async fn ensure_topic(&self, name: &str) -> Result<(), KafkaBusError> {
        if self
            .shared
            .known_topics
            .lock()
            .expect("lock")
            .contains(name)
        {
            return Ok(());
        }
        let options = &self.shared.options;
        let mut new_topic = NewTopic::new(
            name,
            options.partitions,
            TopicReplication::Fixed(options.replication_factor),
        );
        for (key, value) in &options.topic_config {
            new_topic = new_topic.set(key, value);
        }
        let admin_options = AdminOptions::new()
            .request_timeout(Some(options.timeout))
            .operation_timeout(Some(options.timeout));
        let results = self
            .shared
            .admin
            .create_topics([&new_topic], &admin_options)
            .await
            .map_err(|error| self.shared.error(error, "create a topic"))?;
        for result in results {
            match result {
                Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((_, code)) => {
                    return Err(self
                        .shared
                        .error(rdkafka::error::KafkaError::AdminOp(code), "create a topic"));
                }
            }
        }
        // Wait until the topic's partitions are known (a new topic takes a
        // moment to show in the metadata).
        let shared = Arc::clone(&self.shared);
        let topic = name.to_owned();
        blocking(move || {
            let deadline = std::time::Instant::now() + shared.options.timeout;
            loop {
                if !shared.partitions(&topic)?.is_empty() {
                    return Ok(());
                }
                if std::time::Instant::now() >= deadline {
                    return Err(shared.error(
                        rdkafka::error::KafkaError::MetadataFetch(
                            RDKafkaErrorCode::UnknownTopicOrPartition,
                        ),
                        "wait for a new topic",
                    ));
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        })
        .await?;
        self.shared
            .known_topics
            .lock()
            .expect("lock")
            .insert(name.to_owned());
        Ok(())
    }

    /// Deletes every topic whose name starts with the bus's prefix (its
    /// topics and dead-letter topics); returns how many. For throw-away
    /// environments: refuses to run without a prefix. **Not on tansu
    /// 0.6.0**: its topic deletion deletes every topic of the cluster (its
    /// SQL selects the topic's cluster, not the topic), and the other
    /// clients' librdkafka then crashed (a segmentation fault in its
    /// metadata cache), so the tests keep their topics.
    ///
    /// # Errors
    ///
    /// `CR-E0401` when the bus has no prefix; `CR-E0403`/`CR-E0404` (the
    /// brokers).
    pub async fn delete_prefixed_topics(&self) -> Result<usize, KafkaBusError> {
        let prefix = self.shared.options.prefix.clone();
        if prefix.is_empty() {
            return Err(KafkaBusError::InvalidTopicName {
                name: String::new(),
                reason: "deleting the topics of a prefix needs a prefix (this bus has none)",
            });
        }
        let shared = Arc::clone(&self.shared);
        let names: Vec<String> = blocking(move || {
            let metadata = shared
                .metadata
                .fetch_metadata(None, shared.options.timeout)
                .map_err(|error| shared.error(error, "list topics"))?;
            Ok::<_, KafkaBusError>(
                metadata
                    .topics()
                    .iter()
                    .map(|topic| topic.name().to_owned())
                    .filter(|name| name.starts_with(&prefix))
                    .collect(),
            )
        })
        .await?;
        if names.is_empty() {
            return Ok(0);
        }
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let admin_options = AdminOptions::new().request_timeout(Some(self.shared.options.timeout));
        self.shared
            .admin
            .delete_topics(&refs, &admin_options)
            .await
            .map_err(|error| self.shared.error(error, "delete topics"))?;
        let mut known = self.shared.known_topics.lock().expect("lock");
        for name in &names {
            known.remove(name);
        }
        Ok(names.len())
    }

    /// Commits, for a `group` that has no offsets yet, the current end of
    /// every partition of `kafka_topic` (`StartFrom::Latest`).
    async fn start_group_at_end(
        &self,
        group: String,
        kafka_topic: String,
    ) -> Result<(), KafkaBusError> {
        let shared = Arc::clone(&self.shared);
        blocking(move || {
            let client = shared.group_client(&group)?;
            let partitions = shared.partitions(&kafka_topic)?;
            let mut asked = TopicPartitionList::new();
            for &partition in &partitions {
                asked.add_partition(&kafka_topic, partition);
            }
            let committed = client
                .committed_offsets(asked, shared.options.timeout)
                .map_err(|error| shared.error(error, "read a group's offsets"))?;
            let mut start = TopicPartitionList::new();
            for element in committed.elements() {
                if matches!(element.offset(), Offset::Offset(_)) {
                    continue; // the group exists there: keep its place
                }
                let (_, high) = shared.watermarks(&kafka_topic, element.partition())?;
                start
                    .add_partition_offset(&kafka_topic, element.partition(), Offset::Offset(high))
                    .map_err(|error| shared.error(error, "start a group at the end"))?;
            }
            if start.count() > 0 {
                client
                    .commit(&start, CommitMode::Sync)
                    .map_err(|error| shared.error(error, "start a group at the end"))?;
            }
            Ok(())
        })
        .await
    }
}

impl std::fmt::Debug for KafkaEventBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaEventBus")
            .field("bootstrap", &self.shared.options.bootstrap)
            .field("prefix", &self.shared.options.prefix)
            .field("partitions", &self.shared.options.partitions)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl EventBus for KafkaEventBus {
    async fn publish_batch(
        &self,
        topic: &Topic,
        events: &[StoredEvent],
    ) -> Result<Vec<MessageId>, EventBusError> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let name = self.kafka_topic(topic)?;
        self.ensure_topic(&name).await?;
        let records = events
            .iter()
            .map(|event| wire::encode(topic, event))
            .collect::<Result<Vec<_>, _>>()?;
        let mut deliveries = Vec::with_capacity(records.len());
        for record in &records {
            let mut future_record = FutureRecord::to(&name)
                .key(record.key.as_str())
                .payload(record.value.as_slice())
                .headers(record.headers.clone());
            loop {
                match self.shared.producer.send_result(future_record) {
                    Ok(delivery) => {
                        deliveries.push(delivery);
                        break;
                    }
                    Err((
                        rdkafka::error::KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull),
                        back,
                    )) => {
                        future_record = back;
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                    Err((error, _)) => {
                        return Err(self.shared.error(error, "publish to a topic").into());
                    }
                }
            }
        }
        let mut ids = Vec::with_capacity(deliveries.len());
        for delivery in deliveries {
            match delivery.await {
                Ok(Ok(delivery)) => ids.push(wire::message_id(delivery.partition, delivery.offset)),
                Ok(Err((error, _))) => {
                    return Err(self.shared.error(error, "publish to a topic").into());
                }
                Err(_) => {
                    return Err(self
                        .shared
                        .error(rdkafka::error::KafkaError::Canceled, "publish to a topic")
                        .into());
                }
            }
        }
        METRICS.published(topic.as_str(), ids.len());
        Ok(ids)
    }

    async fn subscribe(
        &self,
        options: SubscribeOptions,
    ) -> Result<Box<dyn Subscription>, EventBusError> {
        let mut topics = Vec::new();
        for topic in options.topics() {
            let name = self.kafka_topic(topic)?;
            self.ensure_topic(&name).await?;
            topics.push((topic.clone(), name));
        }
        let group = self.kafka_group(options.group());
        if options.start() == StartFrom::Latest {
            for (_, name) in &topics {
                self.start_group_at_end(group.clone(), name.clone()).await?;
            }
        }
        let subscription = KafkaSubscription::new(self.clone(), options, topics, &group)?;
        Ok(Box::new(subscription))
    }

    async fn read(
        &self,
        topic: &Topic,
        after: Option<&MessageId>,
        limit: usize,
    ) -> Result<Vec<BusMessage>, EventBusError> {
        let name = self.kafka_topic(topic)?;
        let after = after.and_then(wire::parse_message_id);
        let shared = Arc::clone(&self.shared);
        let topic = topic.clone();
        blocking(move || read_topic(&shared, &topic, &name, after, limit)).await
    }

    async fn topic_len(&self, topic: &Topic) -> Result<u64, EventBusError> {
        let name = self.kafka_topic(topic)?;
        let shared = Arc::clone(&self.shared);
        blocking(move || {
            let mut total = 0_u64;
            for partition in shared.partitions(&name)? {
                let (low, high) = shared.watermarks(&name, partition)?;
                total += u64::try_from(high - low).unwrap_or(0);
            }
            Ok(total)
        })
        .await
    }

    async fn pending(
        &self,
        topic: &Topic,
        group: &str,
    ) -> Result<Vec<PendingMessage>, EventBusError> {
        let name = self.kafka_topic(topic)?;
        let label = group;
        let group = self.kafka_group(group);
        let shared = Arc::clone(&self.shared);
        let pending = blocking(move || {
            let partitions = shared.partitions(&name)?;
            if partitions.is_empty() {
                return Ok(Vec::new());
            }
            let client = shared.group_client(&group)?;
            let mut asked = TopicPartitionList::new();
            for &partition in &partitions {
                asked.add_partition(&name, partition);
            }
            let committed = client
                .committed_offsets(asked, shared.options.timeout)
                .map_err(|error| shared.error(error, "read a group's offsets"))?;
            let now = chrono::Utc::now().timestamp_millis();
            let mut pending = Vec::new();
            for element in committed.elements() {
                let Offset::Offset(from) = element.offset() else {
                    continue;
                };
                let Some(metadata) = shared.commit_metadata(
                    &group,
                    &name,
                    element.partition(),
                    from,
                    element.metadata(),
                ) else {
                    continue;
                };
                for offset in from..metadata.delivered_to {
                    pending.push(PendingMessage {
                        id: wire::message_id(element.partition(), offset),
                        consumer: metadata.consumer.clone(),
                        idle: Duration::from_millis(
                            u64::try_from(now - metadata.at_ms).unwrap_or(0),
                        ),
                        deliveries: metadata.deliveries.get(&offset).copied().unwrap_or(1),
                    });
                }
            }
            Ok::<_, EventBusError>(pending)
        })
        .await?;
        METRICS.pending(topic.as_str(), label, pending.len());
        Ok(pending)
    }
}

/// Up to `limit` records of `name` in (partition, offset) order, after
/// `after`. Blocking.
fn read_topic(
    shared: &Shared,
    topic: &Topic,
    name: &str,
    after: Option<(i32, i64)>,
    limit: usize,
) -> Result<Vec<BusMessage>, EventBusError> {
    let mut out = Vec::new();
    if limit == 0 {
        return Ok(out);
    }
    // A group id is required to assign partitions; this one never joins
    // a group and never commits.
    let reader: BaseConsumer = shared
        .options
        .consumer_config(Some(&format!("{}cr-reader", shared.options.prefix)))
        .set("fetch.wait.max.ms", "10")
        .create()
        .map_err(|error| KafkaBusError::InvalidConfig {
            what: "consumer",
            source: Arc::new(error),
        })?;
    for partition in shared.partitions(name)? {
        if out.len() >= limit {
            break;
        }
        let (low, high) = shared.watermarks(name, partition)?;
        let start = match after {
            Some((p, _)) if partition < p => continue,
            Some((p, offset)) if partition == p => (offset + 1).max(low),
            _ => low,
        };
        if start >= high {
            continue;
        }
        let mut assignment = TopicPartitionList::new();
        assignment
            .add_partition_offset(name, partition, Offset::Offset(start))
            .map_err(|error| shared.error(error, "read a topic"))?;
        reader
            .assign(&assignment)
            .map_err(|error| shared.error(error, "read a topic"))?;
        let deadline = std::time::Instant::now() + shared.options.timeout;
        let mut next = start;
        while next < high && out.len() < limit {
            if std::time::Instant::now() >= deadline {
                return Err(shared
                    .error(
                        rdkafka::error::KafkaError::MessageConsumption(
                            RDKafkaErrorCode::OperationTimedOut,
                        ),
                        "read a topic",
                    )
                    .into());
            }
            let Some(record) = reader.poll(Duration::from_millis(100)) else {
                continue;
            };
            let record = record.map_err(|error| shared.error(error, "read a topic"))?;
            if record.partition() != partition || record.offset() < next {
                continue;
            }
            next = record.offset() + 1;
            let headers = record.headers().map(|headers| headers.detach());
            out.push(wire::decode(
                topic,
                partition,
                record.offset(),
                record.key(),
                record.payload(),
                headers.as_ref(),
                0,
            )?);
        }
    }
    Ok(out)
}
