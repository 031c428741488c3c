//! [`RedisTx`]: a unit of work on a [`RedisProjectionStore`](crate::RedisProjectionStore).
//!
//! Writes are **buffered** in the unit of work and sent at commit in one
//! atomic script, together with the checkpoint and dead letters the
//! projection manager adds, so the read model and its checkpoint land
//! together (see [the store's delivery notes](crate::RedisProjectionStore#delivery-at-least-once)
//! for what Redis does and does not promise about that). Dropping a
//! `RedisTx` without committing discards its writes; nothing reached Redis.
//!
//! Besides the [`ProjectionTx`] operations (values by key), a `RedisTx`
//! has Redis-native ones: counters ([`incr_by`](RedisTx::incr_by),
//! [`hincr_by`](RedisTx::hincr_by)), sorted sets ([`zadd`](RedisTx::zadd),
//! [`zincr_by`](RedisTx::zincr_by), [`zrem`](RedisTx::zrem)), TTLs
//! ([`save_with_ttl`](RedisTx::save_with_ttl), [`expire`](RedisTx::expire))
//! and the idempotent-apply guard [`apply_once`](RedisTx::apply_once).
//!
//! What [`get`](ProjectionTx::get) sees is documented on [`RedisTx`].

use std::collections::BTreeSet;
use std::time::Duration;

use async_trait::async_trait;
use composable_rust_core::projection::ProjectionTx;
use composable_rust_core::{Position, ProjectionError};

use crate::commit::Op;
use crate::error::RedisStoreError;
use crate::store::RedisProjectionStore;

/// A unit of work on a [`RedisProjectionStore`]: buffered writes, run in
/// one atomic script by [`ProjectionStore::commit`](composable_rust_core::ProjectionStore::commit).
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
        self.ops.iter().filter(|op| op.writes()).count()
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

    /// The idempotent-apply guard: whether the event at `position` still
    /// has to be applied to the part of the read model that `marker`
    /// guards; if so, records (in this unit of work) that it is.
    ///
    /// `marker` is a read-model key, e.g. `"leaderboard:applied:player-42"`
    /// for one marker per player, or `"leaderboard:applied"` for one per
    /// projection. Returns `true` (go ahead and write) when the marker does
    /// not record the event as applied, and records it; returns `false`
    /// (skip: this event's writes are already in Redis) otherwise. Call it
    /// **before** the event's writes: the writes buffered after it, up to
    /// the next `apply_once` of another position, are the ones the marker
    /// vouches for.
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
    /// The marker commits in the same atomic script as the writes, and
    /// **only if all of them are applied**:
    ///
    /// - an event delivered again (after a lost reply, or when the manager
    ///   applies a failed batch again one event at a time) is not applied
    ///   twice;
    /// - when one of the event's writes fails at commit (a `WRONGTYPE`),
    ///   the marker is put back and the event's position recorded in it as
    ///   *not applied*, so the event is applied when it is delivered again,
    ///   also when its dead letter is retried after later events have
    ///   moved the marker past it. This happens inside the commit script on
    ///   the server, so it holds even if the process dies right after
    ///   sending the commit.
    ///
    /// A marker holds the last position applied, `commit/sequence`,
    /// followed by the earlier positions not applied, if any (`"12/40
    /// 9/31"`).
    ///
    /// One case a marker cannot know about: an event whose `apply` failed
    /// in the projection's own code (not in Redis) never reached its
    /// marker. If later events under the same marker were applied while it
    /// was a dead letter, retrying it finds the marker past it and
    /// `apply_once` returns `false`; the store then refuses to remove the
    /// dead letter (the retry fails, the letter stays) instead of dropping
    /// the event silently. Rebuild the projection in that case (or discard
    /// the letter if its writes are in fact in the read model).
    ///
    /// Keep markers under the prefix that the projection's `reset`
    /// deletes, so a rebuild starts them over; markers have no TTL (give
    /// them one with [`expire`](Self::expire) after `apply_once` if the
    /// data they guard expires). Only needed for writes that are not
    /// idempotent by themselves: increments (`incr_by`, `hincr_by`,
    /// `zincr_by`) and read-modify-write updates; a `save` of a value
    /// computed from the event alone can simply be repeated.
    ///
    /// # Errors
    ///
    /// `CR-E0206` if the value at `marker` is not a marker; `CR-E0203` or
    /// `CR-E0204` if reading it fails.
    pub async fn apply_once(
        &mut self,
        marker: &str,
        position: Position,
    ) -> Result<bool, ProjectionError> {
        let mut state = match self.get(marker).await? {
            Some(bytes) => Marker::parse(&self.store.keyspace().data(marker), &bytes)?,
            None => Marker::default(),
        };
        if state.is_applied(position) {
            self.ops.push(Op::Skip {
                key: marker.to_owned(),
                position,
                last: state.last,
            });
            return Ok(false);
        }
        state.record(position);
        self.ops.push(Op::Mark {
            key: marker.to_owned(),
            value: state.to_string().into_bytes(),
            position,
        });
        Ok(true)
    }

    /// The `apply_once` call of this unit of work that skipped `position`,
    /// if any: its marker and the last position the marker had applied.
    pub(crate) fn skipped(&self, position: Position) -> Option<(&str, Position)> {
        self.ops.iter().find_map(|op| match op {
            Op::Skip {
                key,
                position: at,
                last,
            } if *at == position => Some((key.as_str(), *last)),
            _ => None,
        })
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
                Op::Set { key: k, value, .. } | Op::Mark { key: k, value, .. } if k == key => {
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
            ProjectionError::apply(format!(
                "the counter `{redis_key}` ({current}) plus this unit of work's increments \
                 ({delta}) does not fit in a 64-bit signed integer, so Redis would refuse the \
                 INCRBY; check the increments the projection computes"
            ))
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
    /// `SCAN` (never `KEYS`) right before the commit script, and deleted
    /// inside it, at this point of the unit of work; writes buffered after
    /// it survive. So a rebuild's reset and its checkpoint reset commit
    /// together. A key created by *another* writer between that `SCAN`
    /// and the script survives; the projection manager never writes to a
    /// projection concurrently with its own rebuild.
    ///
    /// Deleting hundreds of thousands of keys makes that script long:
    /// raise [`RedisConnectionSettings::with_response_timeout`](crate::RedisConnectionSettings::with_response_timeout)
    /// for such rebuilds. Other clients wait for it meanwhile (past Redis'
    /// `busy-reply-threshold`, 5 s by default, they get `BUSY` errors,
    /// which are transient).
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

/// An `apply_once` marker: the last position applied, and the positions
/// before it that were not (their events' writes failed at commit).
/// Stored as `commit/sequence` followed by the positions not applied,
/// separated by spaces.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Marker {
    pub(crate) last: Position,
    pub(crate) missing: BTreeSet<Position>,
}

impl Marker {
    /// Parses the marker stored at `redis_key`.
    pub(crate) fn parse(redis_key: &str, bytes: &[u8]) -> Result<Self, RedisStoreError> {
        let corrupt = || {
            RedisStoreError::corrupt(
                redis_key,
                format!(
                    "an apply_once marker must be a position `commit/sequence`, optionally \
                     followed by positions not applied, found {:?}",
                    String::from_utf8_lossy(bytes)
                ),
            )
        };
        let text = std::str::from_utf8(bytes).map_err(|_| corrupt())?;
        let mut positions = text
            .split_whitespace()
            .map(|token| parse_position(redis_key, token.as_bytes()).map_err(|_| corrupt()));
        let last = positions.next().ok_or_else(corrupt)??;
        let missing = positions.collect::<Result<_, _>>()?;
        Ok(Self { last, missing })
    }

    /// Whether the event at `position` is recorded as applied.
    pub(crate) fn is_applied(&self, position: Position) -> bool {
        position <= self.last && !self.missing.contains(&position)
    }

    /// Records the event at `position` as applied.
    pub(crate) fn record(&mut self, position: Position) {
        self.last = self.last.max(position);
        self.missing.remove(&position);
    }
}

impl std::fmt::Display for Marker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.last)?;
        for position in &self.missing {
            write!(f, " {position}")?;
        }
        Ok(())
    }
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

    #[test]
    fn markers_remember_the_last_position_and_the_positions_not_applied() {
        let (p1, p2, p3) = (
            Position::new(1, 1),
            Position::new(2, 2),
            Position::new(3, 3),
        );
        let old = Marker::parse("k", b"2/2").unwrap();
        assert_eq!(old.last, p2);
        assert!(old.is_applied(p1) && old.is_applied(p2) && !old.is_applied(p3));

        // What the commit script writes when p1's writes failed.
        let mut marker = Marker::parse("k", b"3/3 1/1").unwrap();
        assert!(!marker.is_applied(p1), "recorded as not applied");
        assert!(marker.is_applied(p2) && marker.is_applied(p3));
        marker.record(p1);
        assert_eq!(
            marker.to_string(),
            "3/3",
            "recording it never moves the marker back"
        );
        marker.record(Position::new(9, 9));
        assert_eq!(marker.to_string(), "9/9");

        let fresh = Marker::parse("k", b"0/0 2/2").unwrap();
        assert!(!fresh.is_applied(p1) && !fresh.is_applied(p2));
        for bad in [&b""[..], b" ", b"3/3 x", b"x 3/3", b"\xff"] {
            let error = Marker::parse("k", bad).unwrap_err().to_string();
            assert!(error.starts_with("[CR-E0206]"), "{error}");
            assert!(error.contains("apply_once marker"), "{error}");
        }
    }
}
