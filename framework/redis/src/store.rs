//! [`RedisProjectionStore`]: read models in Redis, written through
//! [`RedisTx`] units of work, read directly.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use composable_rust_core::ProjectionError;
use composable_rust_core::projection::{Delivery, ProjectionStore};
use redis::aio::ConnectionManager;

use crate::commit::commit;
use crate::connection::Redis;
use crate::error::RedisStoreError;
use crate::keyspace::{KeyPrefix, Keyspace};
use crate::options::RedisStoreOptions;
use crate::tx::{RedisTx, parse_counter};

/// A projection store in Redis. Clones share the same connection.
///
/// - **Keys**: every key is under the store's validated prefix (see
///   [`Keyspace`] for the layout), so projections, tenants and tests can
///   share one Redis.
/// - **Writes** go through a [`RedisTx`] and are sent at commit in one
///   atomic script, with the checkpoint and dead letters.
/// - **Reads**: [`get`](ProjectionStore::get), [`counter`](Self::counter),
///   [`hash_counter`](Self::hash_counter), [`ttl`](Self::ttl), and sorted
///   sets through [`sorted_set`](Self::sorted_set) (top-N, score, rank).
/// - **Connection**: a redis-rs [`ConnectionManager`] that reconnects by
///   itself; see [`RedisStoreOptions`] for timeouts.
///
/// # Commit
///
/// [`commit`](ProjectionStore::commit) resolves each `delete_prefix` of the
/// unit of work with `SCAN` (never `KEYS`), then runs the whole unit of
/// work in **one Lua script** (`EVALSHA`; loaded with `SCRIPT LOAD` the
/// first time, and again after a server restart): every buffered write in
/// the order it was made (the scanned keys' `DEL` in place of each
/// `delete_prefix`, so writes after it survive) with the
/// [`apply_once`](RedisTx::apply_once) markers, then the dead letters,
/// then the checkpoint. Redis runs a script atomically: no other client's
/// command runs in between, and once Redis has it, it runs to the end
/// whatever happens to the client. An empty unit of work sends nothing.
/// The user needs the right to run `EVALSHA` and `SCRIPT LOAD`
/// (`+@scripting`).
///
/// # Delivery: at-least-once
///
/// [`delivery`](ProjectionStore::delivery) is [`Delivery::AtLeastOnce`].
/// A batch's writes and its checkpoint run in one atomic script, so in the
/// common case they land together or not at all, and after a failure the
/// manager reloads the checkpoint and finds the truth. But Redis cannot
/// promise exactly-once:
///
/// - **Redis does not roll back.** If a command fails while the script
///   runs (a `WRONGTYPE`, an `INCRBY` of a value that is not an integer),
///   the writes before it stay applied. The script stops at that command:
///   nothing after it runs, so **the checkpoint does not move** (no event
///   is skipped) and no dead letter changes, and it puts back the
///   `apply_once` markers of every event whose writes were not all
///   applied, recording those events as not applied. The commit fails
///   with [`CR-E0205`](crate::codes::PARTIAL_COMMIT), whose message names
///   the failed command and what was and was not applied, and whose class
///   is the failed command's: a `WRONGTYPE` is **permanent**, so the
///   projection manager applies the batch again one event per unit of
///   work, retries the failing event up to
///   `RetryPolicy::max_attempts` times and then moves it to the dead
///   letters, and the other events go on; an `OOM` is transient (the batch
///   is retried with backoff). So some writes of a batch that fails are
///   applied again: those of the batch's events before the failing one
///   twice in all (once in the failed batch, once on their own; the
///   events after it, once, as the failed batch never reached them), and
///   the failing event's writes before its failing command once per
///   attempt (`1 + max_attempts` times; none after it). Unless
///   [`RedisTx::apply_once`] guards them: then each event's guarded writes
///   are applied exactly once, and the dead-lettered event is recorded as
///   not applied, so retrying its dead letter after the fix applies its
///   writes.
/// - The repair happens in the script, on the server: there is **no moment
///   when Redis holds the checkpoint or a marker of a failed unit of
///   work**, so a process that dies right after sending a commit leaves
///   nothing to repair; at worst, the events are delivered again.
/// - When a commit's reply is lost (connection dropped, response timeout),
///   the script may still run *after* the manager has reloaded the old
///   checkpoint on a new connection; the batch is then applied twice.
/// - A failover to an asynchronously replicated replica, or a restart
///   without persistence, loses recent writes (read model and checkpoint
///   together, so the lost events are simply applied again).
///
/// So a projection on Redis must apply events **idempotently**: write
/// absolute values (`save` of a value computed from the event) where it
/// can, and guard increments and read-modify-writes with
/// [`RedisTx::apply_once`] (a per-key record of the positions applied,
/// committed in the same script, and only with all of the event's
/// writes).
#[derive(Clone)]
pub struct RedisProjectionStore {
    redis: Redis,
    shared: Arc<Shared>,
}

struct Shared {
    keys: Keyspace,
    default_ttl: Option<Duration>,
}

impl RedisProjectionStore {
    /// Connects to `url` with the default [`RedisStoreOptions`] for
    /// `prefix`; shorthand for `RedisStoreOptions::new(prefix)?.connect(url)`.
    ///
    /// # Errors
    ///
    /// `CR-E0201` (prefix), `CR-E0202` (URL) or `CR-E0203` (unreachable).
    pub async fn connect(url: &str, prefix: &str) -> Result<Self, RedisStoreError> {
        RedisStoreOptions::new(prefix)?.connect(url).await
    }

    /// Options to build a store with a default TTL or other timeouts.
    ///
    /// # Errors
    ///
    /// `CR-E0201` if `prefix` is not a valid [`KeyPrefix`].
    pub fn options(prefix: &str) -> Result<RedisStoreOptions, RedisStoreError> {
        RedisStoreOptions::new(prefix)
    }

    pub(crate) fn from_parts(redis: Redis, keys: Keyspace, default_ttl: Option<Duration>) -> Self {
        Self {
            redis,
            shared: Arc::new(Shared { keys, default_ttl }),
        }
    }

    /// The key prefix.
    pub fn prefix(&self) -> &KeyPrefix {
        self.shared.keys.prefix()
    }

    /// How read-model keys, checkpoints, dead letters and cache entries map
    /// to Redis keys.
    pub fn keyspace(&self) -> &Keyspace {
        &self.shared.keys
    }

    /// The TTL `save` gives values, if any.
    pub fn default_ttl(&self) -> Option<Duration> {
        self.shared.default_ttl
    }

    /// The server's address (`host:port`, or a socket path).
    pub fn address(&self) -> &str {
        self.redis.address()
    }

    /// The underlying connection manager (a clone shares the connection),
    /// for commands this store does not offer. Use
    /// [`keyspace`](Self::keyspace) to name keys.
    pub fn connection(&self) -> ConnectionManager {
        self.redis.connection()
    }

    pub(crate) fn redis(&self) -> &Redis {
        &self.redis
    }

    /// The integer counter at `key` (written with
    /// [`RedisTx::incr_by`]); 0 if missing.
    pub async fn counter(&self, key: &str) -> Result<i64, ProjectionError> {
        match self.get_committed(key).await? {
            None => Ok(0),
            Some(bytes) => Ok(parse_counter(&self.shared.keys.data(key), &bytes)?),
        }
    }

    /// The counter `field` of the hash at `key` (written with
    /// [`RedisTx::hincr_by`]); 0 if missing.
    pub async fn hash_counter(&self, key: &str, field: &str) -> Result<i64, ProjectionError> {
        let redis_key = self.shared.keys.data(key);
        let value: Option<Vec<u8>> = self
            .redis
            .query(
                redis::cmd("HGET").arg(&redis_key).arg(field),
                "read a hash counter",
            )
            .await?;
        match value {
            None => Ok(0),
            Some(bytes) => Ok(parse_counter(&format!("{redis_key} {field}"), &bytes)?),
        }
    }

    /// Every counter of the hash at `key`, by field; empty if missing.
    pub async fn hash_counters(&self, key: &str) -> Result<BTreeMap<String, i64>, ProjectionError> {
        let redis_key = self.shared.keys.data(key);
        let fields: Vec<(String, Vec<u8>)> = self
            .redis
            .query(redis::cmd("HGETALL").arg(&redis_key), "read hash counters")
            .await?;
        let mut counters = BTreeMap::new();
        for (field, bytes) in fields {
            let value = parse_counter(&format!("{redis_key} {field}"), &bytes)?;
            counters.insert(field, value);
        }
        Ok(counters)
    }

    /// How long until `key` expires; `None` if it does not exist or has no
    /// TTL.
    pub async fn ttl(&self, key: &str) -> Result<Option<Duration>, ProjectionError> {
        let millis: i64 = self
            .redis
            .query(
                redis::cmd("PTTL").arg(self.shared.keys.data(key)),
                "read a TTL",
            )
            .await?;
        Ok(u64::try_from(millis).ok().map(Duration::from_millis))
    }

    /// Deletes **every** key of this store's prefix: read models,
    /// checkpoints, dead letters and cache entries (`SCAN`, then `DEL`);
    /// returns how many keys were deleted. Not atomic: keys written while
    /// it runs may survive. For tests and for removing a tenant; to start
    /// a projection over, use `ProjectionManager::rebuild`.
    pub async fn clear(&self) -> Result<u64, ProjectionError> {
        Ok(self
            .redis
            .delete_matching(&self.shared.keys.everything_pattern())
            .await?)
    }

    /// `GET` of a read-model key.
    pub(crate) async fn get_committed(
        &self,
        key: &str,
    ) -> Result<Option<Vec<u8>>, RedisStoreError> {
        self.redis
            .query(
                redis::cmd("GET").arg(self.shared.keys.data(key)),
                "read a value",
            )
            .await
    }
}

#[async_trait]
impl ProjectionStore for RedisProjectionStore {
    type Tx = RedisTx;

    /// [`Delivery::AtLeastOnce`]: see [the type's docs](RedisProjectionStore#delivery-at-least-once).
    fn delivery(&self) -> Delivery {
        Delivery::AtLeastOnce
    }

    /// Starts a unit of work; no round trip.
    async fn begin(&self) -> Result<RedisTx, ProjectionError> {
        Ok(RedisTx::new(self.clone()))
    }

    /// Runs the unit of work in one atomic script (nothing if it is
    /// empty). See [`RedisTx`] and the type's commit and delivery notes.
    ///
    /// # Errors
    ///
    /// `CR-E0205` when a command failed while the script ran (the
    /// commands before it stay applied; the checkpoint did not move);
    /// `CR-E0203` when Redis could not be reached (the script may or may
    /// not have run); `CR-E0204` when Redis refused the script itself.
    async fn commit(&self, tx: RedisTx) -> Result<(), ProjectionError> {
        Ok(commit(&self.redis, &self.shared.keys, tx.ops).await?)
    }

    /// The committed value under `key` (one `GET`).
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, ProjectionError> {
        Ok(self.get_committed(key).await?)
    }

    /// Whether `key` exists, of any kind (one `EXISTS`).
    async fn exists(&self, key: &str) -> Result<bool, ProjectionError> {
        let n: u64 = self
            .redis
            .query(
                redis::cmd("EXISTS").arg(self.shared.keys.data(key)),
                "check a key",
            )
            .await?;
        Ok(n > 0)
    }
}

impl std::fmt::Debug for RedisProjectionStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisProjectionStore")
            .field("address", &self.redis.address())
            .field("prefix", self.prefix())
            .field("default_ttl", &self.shared.default_ttl)
            .finish()
    }
}
