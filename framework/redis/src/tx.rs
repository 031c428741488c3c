//! [`RedisTx`]: a unit of work on a [`RedisProjectionStore`](crate::RedisProjectionStore).
//!
//! Writes are **buffered** in the unit of work and sent at commit in one
//! `MULTI`/`EXEC`, together with the checkpoint and dead letters the
//! projection manager adds, so the read model and its checkpoint land
//! together (see [the store's delivery notes](crate::RedisProjectionStore#delivery-at-least-once)
//! for what Redis does and does not promise about that). Dropping a `RedisTx` without committing discards
//! its writes; nothing reached Redis.
//!
//! Besides the [`ProjectionTx`] operations (values by key), a `RedisTx`
//! has Redis-native ones: counters ([`incr_by`](RedisTx::incr_by),
//! [`hincr_by`](RedisTx::hincr_by)), sorted sets ([`zadd`](RedisTx::zadd),
//! [`zincr_by`](RedisTx::zincr_by), [`zrem`](RedisTx::zrem)), TTLs
//! ([`save_with_ttl`](RedisTx::save_with_ttl), [`expire`](RedisTx::expire))
//! and the idempotent-apply guard [`apply_once`](RedisTx::apply_once).
//!
//! What [`get`](ProjectionTx::get) sees is documented on [`RedisTx`].

use std::time::Duration;

use async_trait::async_trait;
use composable_rust_core::projection::ProjectionTx;
use composable_rust_core::{Position, ProjectionError};

use crate::commit::Op;
use crate::error::RedisStoreError;
use crate::store::RedisProjectionStore;

/// A unit of work on a [`RedisProjectionStore`]: buffered writes, sent in
/// one `MULTI`/`EXEC` by [`ProjectionStore::commit`](composable_rust_core::ProjectionStore::commit).
/// Dropping it without committing discards its writes.
///
/// The Redis-native operations return `Result` so they compose with `?`
/// in `Projection::apply`; they only fail on input Redis would reject
/// (a NaN score), as a [`ProjectionError::Apply`]. Errors from Redis
/// itself (a key holding another type) surface at commit.
///
/// # What `get` sees
///
/// [`get`](ProjectionTx::get) reads the **committed** value from Redis at
/// the time of the call (one round trip; not a snapshot: a commit by
/// another writer in between is visible), then applies this unit of work's
/// own buffered writes to that key, newest last: `save`/`save_with_ttl`
/// replace it, `delete` and a covering `delete_prefix` remove it, and
/// `incr_by` adds to it as an integer. Writes to hashes and sorted sets are
/// not visible through `get` (read them from the store after commit).
/// When a buffered write decides the answer without Redis (a `save` or a
/// delete), `get` makes no round trip.
pub struct RedisTx {
    store: RedisProjectionStore,
    pub(crate) ops: Vec<Op>,
}

impl RedisTx {
    pub(crate) fn new(store: RedisProjectionStore) -> Self {
        Self {
            store,
            ops: Vec::new(),
        }
    }

    /// How many writes are buffered.
    pub fn pending(&self) -> usize {
        self.ops.len()
    }

    /// Stores `data` under `key`, expiring after `ttl` (rounded up to whole
    /// milliseconds, at least 1 ms), whatever the store's default TTL.
    pub fn save_with_ttl(
        &mut self,
        key: &str,
        data: &[u8],
        ttl: Duration,
    ) -> Result<(), ProjectionError> {
        self.ops.push(Op::Set {
            key: key.to_owned(),
            value: data.to_vec(),
            ttl: Some(ttl),
        });
        Ok(())
    }

    /// Adds `delta` to the integer counter at `key` (`INCRBY`; a missing
    /// key counts as 0). Read it with
    /// [`RedisProjectionStore::counter`].
    pub fn incr_by(&mut self, key: &str, delta: i64) -> Result<(), ProjectionError> {
        self.ops.push(Op::IncrBy {
            key: key.to_owned(),
            delta,
        });
        Ok(())
    }

    /// Adds `delta` to the integer counter `field` of the hash at `key`
    /// (`HINCRBY`): many counters under one key, e.g. orders per day. Read
    /// them with [`RedisProjectionStore::hash_counter`] and
    /// [`hash_counters`](RedisProjectionStore::hash_counters).
    pub fn hincr_by(&mut self, key: &str, field: &str, delta: i64) -> Result<(), ProjectionError> {
        self.ops.push(Op::HIncrBy {
            key: key.to_owned(),
            field: field.to_owned(),
            delta,
        });
        Ok(())
    }

    /// Sets the score of `member` in the sorted set at `key` (`ZADD`),
    /// adding it if absent. Query it with
    /// [`RedisProjectionStore::sorted_set`].
    ///
    /// # Errors
    ///
    /// [`ProjectionError::Apply`] if `score` is NaN (Redis rejects it).
    pub fn zadd(&mut self, key: &str, member: &str, score: f64) -> Result<(), ProjectionError> {
        check_score(key, score)?;
        self.ops.push(Op::ZAdd {
            key: key.to_owned(),
            member: member.to_owned(),
            score,
        });
        Ok(())
    }

    /// Adds `delta` to the score of `member` in the sorted set at `key`
    /// (`ZINCRBY`; a missing member starts at 0).
    ///
    /// # Errors
    ///
    /// [`ProjectionError::Apply`] if `delta` is NaN.
    pub fn zincr_by(&mut self, key: &str, member: &str, delta: f64) -> Result<(), ProjectionError> {
        check_score(key, delta)?;
        self.ops.push(Op::ZIncrBy {
            key: key.to_owned(),
            member: member.to_owned(),
            delta,
        });
        Ok(())
    }

    /// Removes `member` from the sorted set at `key` (`ZREM`); removing a
    /// missing member is not an error.
    pub fn zrem(&mut self, key: &str, member: &str) -> Result<(), ProjectionError> {
        self.ops.push(Op::ZRem {
            key: key.to_owned(),
            member: member.to_owned(),
        });
        Ok(())
    }

    /// Makes the key `key` (of any kind: value, counter, hash, sorted set)
    /// expire after `ttl` (`PEXPIRE`, rounded up to whole milliseconds, at
    /// least 1 ms). Writes later in the unit of work that replace the key
    /// (`save`) reset its TTL, as in Redis.
    pub fn expire(&mut self, key: &str, ttl: Duration) -> Result<(), ProjectionError> {
        self.ops.push(Op::Expire {
            key: key.to_owned(),
            ttl,
        });
        Ok(())
    }

    /// The integer counter at `key` as this unit of work sees it (committed
    /// value plus buffered writes, as [`get`](ProjectionTx::get)); 0 if
    /// missing.
    pub async fn counter(&mut self, key: &str) -> Result<i64, ProjectionError> {
        match self.get(key).await? {
            None => Ok(0),
            Some(bytes) => Ok(parse_counter(&self.store.keyspace().data(key), &bytes)?),
        }
    }

    /// The idempotent-apply guard: whether the event at `position` has not
    /// yet been applied to the part of the read model that `marker` guards,
    /// recording (in this unit of work) that it now is.
    ///
    /// `marker` is a read-model key that remembers the last position
    /// applied, e.g. `"leaderboard:applied:player-42"` for one marker per
    /// player, or `"leaderboard:applied"` for one per projection. Returns
    /// `true` (go ahead and write) when `position` is after the marker,
    /// and moves the marker to `position`; returns `false` (skip: this
    /// event's writes are already in Redis) otherwise. The marker and the
    /// writes commit in the same `MULTI`/`EXEC`, so an event whose batch is
    /// delivered again after a lost `EXEC` reply is not applied twice:
    ///
    /// ```no_run
    /// # use composable_rust_core::{ProjectionError, StoredEvent};
    /// # async fn apply(event: &StoredEvent, tx: &mut composable_rust_redis::RedisTx) -> Result<(), ProjectionError> {
    /// let player = event.stream_id.as_str();
    /// if tx.apply_once(&format!("leaderboard:applied:{player}"), event.position).await? {
    ///     tx.zincr_by("leaderboard:scores", player, 10.0)?;
    /// }
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// Keep markers under the prefix that the projection's `reset`
    /// deletes, so a rebuild starts them over; markers have no TTL (give
    /// them one with [`expire`](Self::expire) if the data they guard
    /// expires). Only needed for writes that are not idempotent by
    /// themselves: increments (`incr_by`, `hincr_by`, `zincr_by`) and
    /// read-modify-write updates; a `save` of a value computed from the
    /// event alone can simply be repeated.
    pub async fn apply_once(
        &mut self,
        marker: &str,
        position: Position,
    ) -> Result<bool, ProjectionError> {
        if let Some(bytes) = self.get(marker).await? {
            let applied = parse_position(&self.store.keyspace().data(marker), &bytes)?;
            if position <= applied {
                return Ok(false);
            }
        }
        self.ops.push(Op::Set {
            key: marker.to_owned(),
            value: position.to_string().into_bytes(),
            ttl: None,
        });
        Ok(true)
    }

    pub(crate) fn push(&mut self, op: Op) {
        self.ops.push(op);
    }

    pub(crate) fn store(&self) -> &RedisProjectionStore {
        &self.store
    }
}

#[async_trait]
impl ProjectionTx for RedisTx {
    /// Stores `data` under `key`, with the store's default TTL if it has
    /// one.
    async fn save(&mut self, key: &str, data: &[u8]) -> Result<(), ProjectionError> {
        self.ops.push(Op::Set {
            key: key.to_owned(),
            value: data.to_vec(),
            ttl: self.store.default_ttl(),
        });
        Ok(())
    }

    /// The committed value plus this unit of work's buffered writes; see
    /// [`RedisTx`].
    async fn get(&mut self, key: &str) -> Result<Option<Vec<u8>>, ProjectionError> {
        let mut increments: Option<i64> = None;
        let mut base: Option<Option<Vec<u8>>> = None;
        for op in self.ops.iter().rev() {
            match op {
                Op::Set { key: k, value, .. } if k == key => {
                    base = Some(Some(value.clone()));
                    break;
                }
                Op::Delete { key: k } if k == key => {
                    base = Some(None);
                    break;
                }
                Op::DeletePrefix { prefix } if key.starts_with(prefix.as_str()) => {
                    base = Some(None);
                    break;
                }
                Op::IncrBy { key: k, delta } if k == key => {
                    increments = Some(increments.unwrap_or(0).saturating_add(*delta));
                }
                _ => {}
            }
        }
        let base = match base {
            Some(value) => value,
            None => self.store.get_committed(key).await?,
        };
        let Some(delta) = increments else {
            return Ok(base);
        };
        let redis_key = self.store.keyspace().data(key);
        let current = match base {
            None => 0,
            Some(bytes) => parse_counter(&redis_key, &bytes)?,
        };
        let value = current.checked_add(delta).ok_or_else(|| {
            RedisStoreError::corrupt(redis_key, "the buffered increments overflow an i64")
        })?;
        Ok(Some(value.to_string().into_bytes()))
    }

    async fn delete(&mut self, key: &str) -> Result<(), ProjectionError> {
        self.ops.push(Op::Delete {
            key: key.to_owned(),
        });
        Ok(())
    }

    /// Buffers the deletion of every read-model key starting with
    /// `prefix`, of any kind (values, counters, hashes, sorted sets,
    /// markers); returns how many such keys are committed now (one `SCAN`).
    ///
    /// The deletion itself happens **at commit**: the keys are found with
    /// `SCAN` (never `KEYS`) right before the `MULTI`, and deleted inside
    /// it, at this point of the unit of work; writes buffered after it
    /// survive. So a rebuild's reset and its checkpoint reset commit
    /// together. A key created by *another* writer between that `SCAN`
    /// and the `EXEC` survives; the projection manager never writes to a
    /// projection concurrently with its own rebuild.
    ///
    /// Deleting hundreds of thousands of keys makes that `EXEC` long:
    /// raise [`RedisStoreOptions::response_timeout`](crate::RedisStoreOptions::response_timeout)
    /// for such rebuilds.
    async fn delete_prefix(&mut self, prefix: &str) -> Result<u64, ProjectionError> {
        let pattern = self.store.keyspace().data_pattern(prefix);
        let committed = self.store.redis().scan(&pattern).await?.len() as u64;
        self.ops.push(Op::DeletePrefix {
            prefix: prefix.to_owned(),
        });
        Ok(committed)
    }
}

impl std::fmt::Debug for RedisTx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisTx")
            .field("prefix", self.store.keyspace().prefix())
            .field("pending", &self.ops.len())
            .finish()
    }
}

fn check_score(key: &str, score: f64) -> Result<(), ProjectionError> {
    if score.is_nan() {
        return Err(ProjectionError::apply(format!(
            "a NaN score for the sorted set `{key}`: Redis only accepts numbers (and ±inf)"
        )));
    }
    Ok(())
}

/// Parses a counter stored at `redis_key`.
pub(crate) fn parse_counter(redis_key: &str, bytes: &[u8]) -> Result<i64, RedisStoreError> {
    std::str::from_utf8(bytes)
        .ok()
        .and_then(|text| text.parse().ok())
        .ok_or_else(|| {
            RedisStoreError::corrupt(
                redis_key,
                format!(
                    "a counter must be an integer, found {:?}",
                    String::from_utf8_lossy(bytes)
                ),
            )
        })
}

/// Parses a position stored as `commit/sequence` at `redis_key`.
pub(crate) fn parse_position(redis_key: &str, bytes: &[u8]) -> Result<Position, RedisStoreError> {
    std::str::from_utf8(bytes)
        .ok()
        .and_then(|text| text.split_once('/'))
        .and_then(|(commit, sequence)| {
            Some(Position::new(commit.parse().ok()?, sequence.parse().ok()?))
        })
        .ok_or_else(|| {
            RedisStoreError::corrupt(
                redis_key,
                format!(
                    "a position must be `commit/sequence`, found {:?}",
                    String::from_utf8_lossy(bytes)
                ),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_and_counters_parse_or_explain() {
        assert_eq!(parse_position("k", b"3/7").unwrap(), Position::new(3, 7));
        assert_eq!(
            parse_position("k", Position::new(12, 99).to_string().as_bytes()).unwrap(),
            Position::new(12, 99)
        );
        for bad in [&b"3"[..], b"a/b", b"3/", b"\xff"] {
            let error = parse_position("k", bad).unwrap_err().to_string();
            assert!(error.starts_with("[CR-E0206]"), "{error}");
        }
        assert_eq!(parse_counter("k", b"-42").unwrap(), -42);
        assert!(parse_counter("k", b"4.2").is_err());
    }
}
