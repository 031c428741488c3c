//! [`RedisStreamsEventBus`]: the core's [`EventBus`] on Redis Streams.
//!
//! | bus concept | Redis |
//! |---|---|
//! | topic `t` | the stream `{prefix}:bus:t` (see [`Keyspace`]) |
//! | publish | `XADD key MAXLEN ~ n * event_id <uuid> stream_id ... payload <json>` (the fields are listed in [`wire`]), a page per round trip |
//! | subscribe | `XGROUP CREATE key group 0\|$ MKSTREAM` (an existing group is kept) |
//! | receive new messages | `XREADGROUP GROUP g c COUNT n BLOCK ms STREAMS key... >`, on the subscription's own connection |
//! | pending messages | the group's pending entries list (PEL) |
//! | acknowledge | `XACK key group id...` |
//! | redeliver after the visibility timeout | `XPENDING key group IDLE ms - + n`, then `XCLAIM key group c ms id...` |
//! | get my messages back after a restart | `XPENDING key group - + n c`, then `XCLAIM ... 0 id...` |
//! | dead-letter after N deliveries | `XCLAIM` (so only one consumer wins), then `MULTI`, `XADD <key>.dead-letter ...`, `XACK`, `EXEC` |
//! | bounded length | `MAXLEN ~ n` on every `XADD` (dead-letter topics too) |
//!
//! Notes:
//!
//! - **Approximate trimming.** `MAXLEN ~` lets Redis trim whole stream
//!   nodes only (100 entries each by default, `stream-node-max-entries`),
//!   which is much cheaper than exact trimming: a topic holds at least its
//!   bound and at most about one node more. Trimming drops the oldest
//!   entries even if a group has not read them yet: size the bound for the
//!   longest outage of your slowest group.
//! - **Blocking reads do not starve other commands.** Each subscription
//!   reads with `XREADGROUP ... BLOCK` on a connection of its own (a
//!   reconnecting `ConnectionManager`), at most one second per call; every
//!   other command (publish, acknowledge, claim) goes through the bus's
//!   shared connection.
//! - **Claims are throttled.** A subscription looks for messages idle past
//!   the visibility timeout at most every quarter of that timeout (between
//!   10 ms and 5 s), not on every receive.
//! - **Idle time is the server's**, so the visibility timeout is measured
//!   on the Redis host's clock.
//! - Needs **Redis 6.2** or later (`XPENDING ... IDLE`); [`connect`]
//!   checks the version (`CR-E0207`).
//!
//! [`connect`]: RedisBusOptions::connect

mod subscription;
pub mod wire;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use composable_rust_core::StoredEvent;
use composable_rust_core::event_bus::{
    BusMessage, EventBus, EventBusError, MessageId, PendingMessage, StartFrom, SubscribeOptions,
    Subscription, Topic,
};
use composable_rust_core::metrics::{BACKEND_REDIS, BusMetrics};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use crate::connection::Redis;
use crate::error::{RedisStoreError, redact_url};
use crate::keyspace::{KeyPrefix, Keyspace};
use crate::settings::RedisConnectionSettings;

use subscription::RedisSubscription;

/// The longest a single `XREADGROUP ... BLOCK` waits.
const MAX_BLOCK: Duration = Duration::from_secs(1);

/// Pending entries read per `XPENDING` page.
const PENDING_PAGE: usize = 1_000;

/// What the bus records (see [`composable_rust_core::metrics`]).
const METRICS: BusMetrics = BusMetrics::new(BACKEND_REDIS);

/// How to build a [`RedisStreamsEventBus`]: key prefix, topic length
/// bound, connection settings.
///
/// ```no_run
/// # async fn demo() -> Result<(), composable_rust_redis::RedisStoreError> {
/// use composable_rust_redis::RedisBusOptions;
///
/// let bus = RedisBusOptions::new("myapp")?
///     .with_max_len(1_000_000)
///     .connect("redis://127.0.0.1:6379")
///     .await?;
/// # let _ = bus;
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct RedisBusOptions {
    prefix: KeyPrefix,
    max_len: u64,
    connection: RedisConnectionSettings,
}

impl RedisBusOptions {
    /// A bus whose streams are `{prefix}:bus:<topic>`, keeping about
    /// 100 000 messages per topic, with
    /// [`RedisConnectionSettings::default`].
    ///
    /// # Errors
    ///
    /// [`RedisStoreError::InvalidKeyPrefix`] (`CR-E0201`).
    pub fn new(prefix: &str) -> Result<Self, RedisStoreError> {
        Ok(Self {
            prefix: KeyPrefix::new(prefix)?,
            max_len: 100_000,
            connection: RedisConnectionSettings::default(),
        })
    }

    /// Keeps at least `max_len` messages per topic (at least 1), trimming
    /// the oldest beyond that approximately (`MAXLEN ~`).
    #[must_use]
    pub fn with_max_len(mut self, max_len: u64) -> Self {
        self.max_len = max_len.max(1);
        self
    }

    /// How the connections behave when Redis is slow or away (default:
    /// [`RedisConnectionSettings::default`]).
    #[must_use]
    pub fn with_connection(mut self, settings: RedisConnectionSettings) -> Self {
        self.connection = settings;
        self
    }

    /// Connects to `url`, waiting for the first connection, and checks
    /// that the server is Redis 6.2 or later.
    ///
    /// # Errors
    ///
    /// `CR-E0202` (URL), `CR-E0203` (unreachable), `CR-E0207` (server too
    /// old).
    pub async fn connect(self, url: &str) -> Result<RedisStreamsEventBus, RedisStoreError> {
        let client = redis::Client::open(url).map_err(|error| RedisStoreError::InvalidUrl {
            url: redact_url(url),
            source: Arc::new(error),
        })?;
        self.connect_client(client).await
    }

    /// [`connect`](Self::connect) with an existing redis-rs client.
    ///
    /// # Errors
    ///
    /// `CR-E0203` (unreachable), `CR-E0207` (server too old).
    pub async fn connect_client(
        self,
        client: redis::Client,
    ) -> Result<RedisStreamsEventBus, RedisStoreError> {
        let address = client.get_connection_info().addr().to_string();
        let connection = ConnectionManager::new_with_config(
            client.clone(),
            self.connection
                .manager_config(self.connection.response_timeout()),
        )
        .await
        .map_err(|error| RedisStoreError::from_redis(error, "connect", &address))?;
        let redis = Redis::new(connection, &address);
        check_version(&redis).await?;
        Ok(RedisStreamsEventBus {
            redis,
            shared: Arc::new(Shared {
                keys: Keyspace::new(self.prefix.clone()),
                reader_config: self
                    .connection
                    .manager_config(self.connection.response_timeout() + MAX_BLOCK),
                client,
                max_len: self.max_len,
            }),
        })
    }
}

/// Refuses servers older than 6.2; servers that do not say their version
/// (`INFO` disabled) are given the benefit of the doubt.
async fn check_version(redis: &Redis) -> Result<(), RedisStoreError> {
    let mut connection = redis.connection();
    let info: Result<String, _> = redis::cmd("INFO")
        .arg("server")
        .query_async(&mut connection)
        .await;
    let info = match info {
        Ok(info) => info,
        Err(error) if error.is_io_error() || error.is_timeout() => {
            return Err(redis.error(error, "check the server version"));
        }
        Err(_) => return Ok(()),
    };
    match wire::parse_version(&info) {
        Some(version) if version < (6, 2) => Err(RedisStoreError::UnsupportedServer {
            address: redis.address().to_owned(),
            version: format!("{}.{}", version.0, version.1),
        }),
        _ => Ok(()),
    }
}

/// An event bus on Redis Streams; see the [module docs](self) for how each
/// operation maps to Redis. Clones share the connection.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use std::time::Duration;
/// use composable_rust_core::event_bus::{EventBus, SubscribeOptions, Topic};
/// use composable_rust_redis::RedisStreamsEventBus;
///
/// let bus = RedisStreamsEventBus::connect("redis://127.0.0.1:6379", "myapp").await?;
/// let orders = Topic::new("orders")?;
/// let mut billing = bus
///     .subscribe(SubscribeOptions::new(orders.clone(), "billing", "billing-1")?)
///     .await?;
/// for message in billing.receive(100, Duration::from_secs(1)).await? {
///     // ... handle message.event idempotently (by message.event.event_id) ...
///     billing.ack(&message).await?;
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct RedisStreamsEventBus {
    redis: Redis,
    shared: Arc<Shared>,
}

struct Shared {
    keys: Keyspace,
    /// For the subscriptions' own connections.
    client: redis::Client,
    reader_config: ConnectionManagerConfig,
    max_len: u64,
}

impl RedisStreamsEventBus {
    /// Connects to `url` with the default [`RedisBusOptions`] for `prefix`.
    ///
    /// # Errors
    ///
    /// `CR-E0201` (prefix), `CR-E0202` (URL), `CR-E0203` (unreachable),
    /// `CR-E0207` (server too old).
    pub async fn connect(url: &str, prefix: &str) -> Result<Self, RedisStoreError> {
        RedisBusOptions::new(prefix)?.connect(url).await
    }

    /// Options to build a bus with another length bound or timeouts.
    ///
    /// # Errors
    ///
    /// `CR-E0201` if `prefix` is not a valid [`KeyPrefix`].
    pub fn options(prefix: &str) -> Result<RedisBusOptions, RedisStoreError> {
        RedisBusOptions::new(prefix)
    }

    /// The key prefix.
    pub fn prefix(&self) -> &KeyPrefix {
        self.shared.keys.prefix()
    }

    /// The Redis key of `topic`'s stream.
    pub fn stream_key(&self, topic: &Topic) -> String {
        self.shared.keys.stream(topic.as_str())
    }

    /// The length bound of every topic.
    pub fn max_len(&self) -> u64 {
        self.shared.max_len
    }

    /// The shared connection manager, for commands of your own.
    pub fn connection(&self) -> ConnectionManager {
        self.redis.connection()
    }

    /// Creates `group` on each topic of `options` where it does not exist.
    async fn ensure_groups(&self, options: &SubscribeOptions) -> Result<(), EventBusError> {
        let start = match options.start() {
            StartFrom::Beginning => "0",
            StartFrom::Latest => "$",
        };
        let mut connection = self.redis.connection();
        for topic in options.topics() {
            let created: Result<(), redis::RedisError> = redis::cmd("XGROUP")
                .arg("CREATE")
                .arg(self.stream_key(topic))
                .arg(options.group())
                .arg(start)
                .arg("MKSTREAM")
                .query_async(&mut connection)
                .await;
            match created {
                Ok(()) => {}
                Err(error) if error.code() == Some("BUSYGROUP") => {}
                Err(error) => {
                    return Err(self.redis.error(error, "create a consumer group").into());
                }
            }
        }
        Ok(())
    }

    async fn query_value(
        &self,
        cmd: &redis::Cmd,
        operation: &'static str,
    ) -> Result<redis::Value, EventBusError> {
        Ok(self.redis.query(cmd, operation).await?)
    }
}

impl std::fmt::Debug for RedisStreamsEventBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStreamsEventBus")
            .field("address", &self.redis.address())
            .field("prefix", self.prefix())
            .field("max_len", &self.shared.max_len)
            .finish_non_exhaustive()
    }
}

/// A reply Redis should never give, as a bus error.
fn unexpected(topic: &Topic, reason: String) -> EventBusError {
    EventBusError::Decode {
        topic: topic.to_string(),
        message_id: "(reply)".into(),
        reason,
    }
}

#[async_trait]
impl EventBus for RedisStreamsEventBus {
    async fn publish_batch(
        &self,
        topic: &Topic,
        events: &[StoredEvent],
    ) -> Result<Vec<MessageId>, EventBusError> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let key = self.stream_key(topic);
        let mut pipeline = redis::pipe();
        for event in events {
            let mut xadd = redis::cmd("XADD");
            xadd.arg(&key)
                .arg("MAXLEN")
                .arg("~")
                .arg(self.shared.max_len)
                .arg("*");
            wire::encode(topic, event, &mut xadd)?;
            pipeline.add_command(xadd);
        }
        let ids: Vec<String> = self
            .redis
            .query_pipeline(&pipeline, "publish to a topic")
            .await?;
        METRICS.published(topic.as_str(), ids.len());
        Ok(ids.into_iter().map(MessageId::new).collect())
    }

    async fn subscribe(
        &self,
        options: SubscribeOptions,
    ) -> Result<Box<dyn Subscription>, EventBusError> {
        self.ensure_groups(&options).await?;
        let reader = ConnectionManager::new_with_config(
            self.shared.client.clone(),
            self.shared.reader_config.clone(),
        )
        .await
        .map_err(|error| self.redis.error(error, "open a subscription's connection"))?;
        Ok(Box::new(RedisSubscription::new(
            self.clone(),
            reader,
            options,
        )))
    }

    async fn read(
        &self,
        topic: &Topic,
        after: Option<&MessageId>,
        limit: usize,
    ) -> Result<Vec<BusMessage>, EventBusError> {
        let start = after.map_or_else(|| "-".to_owned(), |id| format!("({id}"));
        let reply = self
            .query_value(
                redis::cmd("XRANGE")
                    .arg(self.stream_key(topic))
                    .arg(start)
                    .arg("+")
                    .arg("COUNT")
                    .arg(limit.min(i64::MAX as usize)),
                "read a topic",
            )
            .await?;
        let entries = wire::into_entries(reply, "XRANGE").map_err(|e| unexpected(topic, e))?;
        entries
            .into_iter()
            .filter_map(|(id, fields)| fields.map(|fields| (id, fields)))
            .map(|(id, fields)| wire::decode(topic, id, &fields, 0))
            .collect()
    }

    async fn topic_len(&self, topic: &Topic) -> Result<u64, EventBusError> {
        Ok(self
            .redis
            .query(
                redis::cmd("XLEN").arg(self.stream_key(topic)),
                "count a topic's messages",
            )
            .await?)
    }

    async fn pending(
        &self,
        topic: &Topic,
        group: &str,
    ) -> Result<Vec<PendingMessage>, EventBusError> {
        let key = self.stream_key(topic);
        let mut all = Vec::new();
        let mut start = "-".to_owned();
        loop {
            let mut connection = self.redis.connection();
            let reply: Result<redis::Value, redis::RedisError> = redis::cmd("XPENDING")
                .arg(&key)
                .arg(group)
                .arg(&start)
                .arg("+")
                .arg(PENDING_PAGE)
                .query_async(&mut connection)
                .await;
            let reply = match reply {
                Ok(reply) => reply,
                // No such group (or topic): nothing pending.
                Err(error) if error.code() == Some("NOGROUP") => {
                    METRICS.pending(topic.as_str(), group, all.len());
                    return Ok(all);
                }
                Err(error) => return Err(self.redis.error(error, "list pending messages").into()),
            };
            let page = wire::parse_pending(&reply).map_err(|e| unexpected(topic, e))?;
            let full = page.len() >= PENDING_PAGE;
            if let Some(last) = page.last() {
                start = format!("({}", last.id);
            }
            all.extend(page.into_iter().map(|entry| PendingMessage {
                id: MessageId::new(entry.id),
                consumer: entry.consumer,
                idle: Duration::from_millis(entry.idle_ms),
                deliveries: entry.deliveries,
            }));
            if !full {
                METRICS.pending(topic.as_str(), group, all.len());
                return Ok(all);
            }
        }
    }
}
