//! Committing a [`RedisTx`](crate::RedisTx): every buffered write, the
//! checkpoint and the dead letters in one `MULTI`/`EXEC`.
//!
//! 1. Each `delete_prefix` is resolved with `SCAN` (never `KEYS`) into the
//!    keys it covers now.
//! 2. One atomic pipeline is sent: `MULTI`, an `HGET` of each checkpoint
//!    the unit of work moves (its value before), the writes in the order
//!    they were made (`DEL` of the scanned keys in place of each
//!    `delete_prefix`), `EXEC`. No other client's command runs in between.
//! 3. Redis does **not roll back** a `MULTI`/`EXEC` when a command fails
//!    while it runs (a `WRONGTYPE`, an `INCRBY` of a non-integer): the
//!    other commands, including the checkpoint, are applied. The commit
//!    then puts each checkpoint back to its value from step 2 and fails
//!    with [`CR-E0205`](crate::codes::PARTIAL_COMMIT), so the manager
//!    applies the batch again (at-least-once) instead of silently moving
//!    past the failed write. A command rejected *before* `EXEC` (a syntax
//!    error) aborts the whole transaction: nothing is applied.

use std::collections::BTreeSet;
use std::time::Duration;

use composable_rust_core::Position;
use redis::Value;
use uuid::Uuid;

use crate::connection::{Redis, SCAN_COUNT};
use crate::error::{CheckpointRepair, RedisStoreError};
use crate::keyspace::Keyspace;

/// One buffered write of a unit of work. Keys are read-model keys (before
/// the keyspace maps them).
#[derive(Debug, Clone)]
pub(crate) enum Op {
    Set {
        key: String,
        value: Vec<u8>,
        ttl: Option<Duration>,
    },
    Delete {
        key: String,
    },
    DeletePrefix {
        prefix: String,
    },
    IncrBy {
        key: String,
        delta: i64,
    },
    HIncrBy {
        key: String,
        field: String,
        delta: i64,
    },
    ZAdd {
        key: String,
        member: String,
        score: f64,
    },
    ZIncrBy {
        key: String,
        member: String,
        delta: f64,
    },
    ZRem {
        key: String,
        member: String,
    },
    Expire {
        key: String,
        ttl: Duration,
    },
    Checkpoint {
        projection: String,
        position: Position,
    },
    DeadLetter {
        projection: String,
        event_id: Uuid,
        json: Vec<u8>,
    },
    RemoveDeadLetter {
        projection: String,
        event_id: Uuid,
    },
}

/// The longest TTL sent, in milliseconds (millions of years; Redis rejects
/// a TTL that overflows its clock).
const MAX_TTL_MILLIS: u64 = (i64::MAX / 2) as u64;

/// `ttl` in whole milliseconds, rounded up, at least 1 (Redis rejects 0).
pub(crate) fn ttl_millis(ttl: Duration) -> u64 {
    let millis = ttl.as_nanos().div_ceil(1_000_000).max(1);
    u64::try_from(millis).map_or(MAX_TTL_MILLIS, |millis| millis.min(MAX_TTL_MILLIS))
}

/// Sends `ops` in one `MULTI`/`EXEC` (see the module docs).
pub(crate) async fn commit(
    redis: &Redis,
    keys: &Keyspace,
    ops: Vec<Op>,
) -> Result<(), RedisStoreError> {
    if ops.is_empty() {
        return Ok(());
    }

    // 1. What each delete_prefix covers right now.
    let mut scanned: Vec<Vec<Vec<u8>>> = Vec::new();
    for op in &ops {
        if let Op::DeletePrefix { prefix } = op {
            scanned.push(redis.scan(&keys.data_pattern(prefix)).await?);
        }
    }

    // 2. The transaction.
    let checkpointed: Vec<&str> = ops
        .iter()
        .filter_map(|op| match op {
            Op::Checkpoint { projection, .. } => Some(projection.as_str()),
            _ => None,
        })
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut pipe = redis::pipe();
    pipe.atomic().ignore_errors();
    let mut described = Vec::new();
    for projection in &checkpointed {
        pipe.cmd("HGET").arg(keys.checkpoints()).arg(*projection);
        described.push(format!("HGET {} {projection}", keys.checkpoints()));
    }
    let mut scanned = scanned.into_iter();
    for op in &ops {
        add(&mut pipe, &mut described, keys, op, &mut scanned);
    }

    let replies: Vec<Value> = redis.query_pipeline(&pipe, "commit a unit of work").await?;

    // 3. Redis does not roll back: find failed commands, repair checkpoints.
    let failures: Vec<(usize, String, String)> = replies
        .iter()
        .enumerate()
        .filter_map(|(index, reply)| match reply {
            Value::ServerError(error) => Some((
                index,
                described.get(index).cloned().unwrap_or_default(),
                error.to_string(),
            )),
            _ => None,
        })
        .collect();
    if failures.is_empty() {
        return Ok(());
    }
    let checkpoint = restore_checkpoints(redis, keys, &checkpointed, &replies).await;
    let error = RedisStoreError::PartialCommit {
        failures,
        commands: described.len(),
        checkpoint,
    };
    tracing::error!(prefix = %keys.prefix(), %error, "a Redis unit of work was partly applied");
    Err(error)
}

/// Adds the commands of `op` to `pipe`, and a description of each to
/// `described`.
fn add(
    pipe: &mut redis::Pipeline,
    described: &mut Vec<String>,
    keys: &Keyspace,
    op: &Op,
    scanned: &mut impl Iterator<Item = Vec<Vec<u8>>>,
) {
    match op {
        Op::Set { key, value, ttl } => {
            let key = keys.data(key);
            pipe.cmd("SET").arg(&key).arg(value.as_slice());
            match ttl {
                Some(ttl) => {
                    let millis = ttl_millis(*ttl);
                    pipe.arg("PX").arg(millis);
                    described.push(format!("SET {key} PX {millis}"));
                }
                None => described.push(format!("SET {key}")),
            }
        }
        Op::Delete { key } => {
            let key = keys.data(key);
            pipe.cmd("DEL").arg(&key);
            described.push(format!("DEL {key}"));
        }
        Op::DeletePrefix { prefix } => {
            let found = scanned.next().unwrap_or_default();
            for chunk in found.chunks(SCAN_COUNT) {
                pipe.cmd("DEL").arg(chunk);
                described.push(format!(
                    "DEL ({} keys of {})",
                    chunk.len(),
                    keys.data_pattern(prefix)
                ));
            }
        }
        Op::IncrBy { key, delta } => {
            let key = keys.data(key);
            pipe.cmd("INCRBY").arg(&key).arg(*delta);
            described.push(format!("INCRBY {key} {delta}"));
        }
        Op::HIncrBy { key, field, delta } => {
            let key = keys.data(key);
            pipe.cmd("HINCRBY").arg(&key).arg(field).arg(*delta);
            described.push(format!("HINCRBY {key} {field} {delta}"));
        }
        Op::ZAdd { key, member, score } => {
            let key = keys.data(key);
            pipe.cmd("ZADD").arg(&key).arg(*score).arg(member);
            described.push(format!("ZADD {key} {score} {member}"));
        }
        Op::ZIncrBy { key, member, delta } => {
            let key = keys.data(key);
            pipe.cmd("ZINCRBY").arg(&key).arg(*delta).arg(member);
            described.push(format!("ZINCRBY {key} {delta} {member}"));
        }
        Op::ZRem { key, member } => {
            let key = keys.data(key);
            pipe.cmd("ZREM").arg(&key).arg(member);
            described.push(format!("ZREM {key} {member}"));
        }
        Op::Expire { key, ttl } => {
            let key = keys.data(key);
            let millis = ttl_millis(*ttl);
            pipe.cmd("PEXPIRE").arg(&key).arg(millis);
            described.push(format!("PEXPIRE {key} {millis}"));
        }
        Op::Checkpoint {
            projection,
            position,
        } => {
            pipe.cmd("HSET")
                .arg(keys.checkpoints())
                .arg(projection)
                .arg(position.to_string());
            described.push(format!(
                "HSET {} {projection} {position}",
                keys.checkpoints()
            ));
        }
        Op::DeadLetter {
            projection,
            event_id,
            json,
        } => {
            let key = keys.dead_letters(projection);
            pipe.cmd("HSET")
                .arg(&key)
                .arg(event_id.to_string())
                .arg(json.as_slice());
            described.push(format!("HSET {key} {event_id}"));
        }
        Op::RemoveDeadLetter {
            projection,
            event_id,
        } => {
            let key = keys.dead_letters(projection);
            pipe.cmd("HDEL").arg(&key).arg(event_id.to_string());
            described.push(format!("HDEL {key} {event_id}"));
        }
    }
}

/// Puts each checkpoint in `checkpointed` back to the value the
/// transaction's leading `HGET`s read (`replies[i]` for the i-th).
async fn restore_checkpoints(
    redis: &Redis,
    keys: &Keyspace,
    checkpointed: &[&str],
    replies: &[Value],
) -> CheckpointRepair {
    if checkpointed.is_empty() {
        return CheckpointRepair::NoCheckpoint;
    }
    let mut pipe = redis::pipe();
    pipe.atomic();
    for (projection, before) in checkpointed.iter().zip(replies) {
        match before {
            Value::BulkString(bytes) => {
                pipe.cmd("HSET")
                    .arg(keys.checkpoints())
                    .arg(*projection)
                    .arg(bytes.as_slice());
            }
            Value::SimpleString(text) => {
                pipe.cmd("HSET")
                    .arg(keys.checkpoints())
                    .arg(*projection)
                    .arg(text);
            }
            _ => {
                pipe.cmd("HDEL").arg(keys.checkpoints()).arg(*projection);
            }
        }
    }
    match redis
        .query_pipeline::<Value>(&pipe, "restore a checkpoint")
        .await
    {
        Ok(_) => CheckpointRepair::Restored,
        Err(error) => CheckpointRepair::RestoreFailed(error.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttls_round_up_to_whole_milliseconds_and_never_reach_zero() {
        assert_eq!(ttl_millis(Duration::ZERO), 1);
        assert_eq!(ttl_millis(Duration::from_micros(1)), 1);
        assert_eq!(ttl_millis(Duration::from_micros(1001)), 2);
        assert_eq!(ttl_millis(Duration::from_secs(60)), 60_000);
        assert_eq!(ttl_millis(Duration::MAX), MAX_TTL_MILLIS);
    }
}
