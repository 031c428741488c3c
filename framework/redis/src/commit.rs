//! Committing a [`RedisTx`](crate::RedisTx): every buffered write, the
//! `apply_once` markers, the checkpoint and the dead letters in one
//! server-side script (`commit.lua`, sent with `EVALSHA`).
//!
//! 1. Each `delete_prefix` is resolved with `SCAN` (never `KEYS`) into the
//!    keys it covers now.
//! 2. One script runs the unit of work **atomically**: no other client's
//!    command runs in between, and once Redis has the script it runs to the
//!    end whatever happens to the client (a process that dies after
//!    sending it, or a lost reply, changes nothing on the server). It runs
//!    the read-model writes in the order they were made (`DEL` of the
//!    scanned keys in place of each `delete_prefix`), then the dead
//!    letters, then the checkpoint.
//! 3. Redis has no rollback: when a command fails while the script runs (a
//!    `WRONGTYPE`, an `INCRBY` of a value that is not an integer), the
//!    writes before it stay applied. So the script **stops at the first
//!    failing command**: nothing after it runs, so the checkpoint does not
//!    move and no dead letter changes; and it puts back every `apply_once`
//!    marker of an event whose writes were not all applied, recording that
//!    event's position in the marker as *not applied*. The commit then
//!    fails with [`CR-E0205`](crate::codes::PARTIAL_COMMIT), classed by the
//!    failing command's error (a `WRONGTYPE` is permanent, an `OOM`
//!    transient), and the events are delivered again (at-least-once):
//!    never skipped, and no event is ever marked applied unless all of its
//!    writes were.
//!
//! Which writes belong to which event: `apply_once(marker, position)`
//! starts the *section* of that position (several markers with the same
//! position share it); the writes buffered after it, up to the next
//! `apply_once` of another position, are its section. The markers of a
//! position are kept only if every write of its section was applied.
//! Writes before any `apply_once`, or after one that returned `false`, are
//! in no section.

use std::collections::HashMap;
use std::time::Duration;

use composable_rust_core::Position;
use uuid::Uuid;

use crate::connection::{LuaScript, Redis, SCAN_COUNT};
use crate::error::RedisStoreError;
use crate::keyspace::Keyspace;

/// The commit script (see the module docs).
pub(crate) static COMMIT_SCRIPT: LuaScript = LuaScript::new(include_str!("commit.lua"));

/// One buffered operation of a unit of work. Keys are read-model keys
/// (before the keyspace maps them).
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
    /// `apply_once` let `position` through: set the marker at `key` to
    /// `value` (its new rendering), and start the section of `position`.
    Mark {
        key: String,
        value: Vec<u8>,
        position: Position,
    },
    /// `apply_once` skipped `position` because the marker at `key` had
    /// applied it (its last position applied is `last`): not a write,
    /// only a section boundary (the writes after it are not another
    /// event's).
    Skip {
        key: String,
        position: Position,
        last: Position,
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

impl Op {
    /// Whether this operation writes something (every one but [`Op::Skip`]).
    pub(crate) fn writes(&self) -> bool {
        !matches!(self, Op::Skip { .. })
    }
}

/// The longest TTL sent, in milliseconds (millions of years; Redis rejects
/// a TTL that overflows its clock).
const MAX_TTL_MILLIS: u64 = (i64::MAX / 2) as u64;

/// `ttl` in whole milliseconds, rounded up, at least 1 (Redis rejects 0).
pub(crate) fn ttl_millis(ttl: Duration) -> u64 {
    let millis = ttl.as_nanos().div_ceil(1_000_000).max(1);
    u64::try_from(millis).map_or(MAX_TTL_MILLIS, |millis| millis.min(MAX_TTL_MILLIS))
}

/// Runs `ops` in one script (see the module docs).
pub(crate) async fn commit(
    redis: &Redis,
    keys: &Keyspace,
    ops: Vec<Op>,
) -> Result<(), RedisStoreError> {
    if !ops.iter().any(Op::writes) {
        return Ok(());
    }

    // 1. What each delete_prefix covers right now.
    let mut scanned: Vec<Vec<Vec<u8>>> = Vec::new();
    for op in &ops {
        if let Op::DeletePrefix { prefix } = op {
            scanned.push(redis.scan(&keys.data_pattern(prefix)).await?);
        }
    }

    // 2. The script.
    let plan = Plan::new(keys, &ops, scanned);
    if plan.ops.is_empty() {
        return Ok(());
    }
    let (keys_arg, args) = plan.encode();
    let (failed, error, markers): (usize, String, usize) = redis
        .eval(&COMMIT_SCRIPT, &keys_arg, &args, "commit a unit of work")
        .await?;
    if failed == 0 {
        return Ok(());
    }

    // 3. A command failed: the script stopped there and repaired markers.
    let index = failed - 1;
    let error = RedisStoreError::PartialCommit {
        index,
        command: plan
            .ops
            .get(index)
            .map(|op| op.described.clone())
            .unwrap_or_default(),
        error,
        commands: plan.ops.len(),
        checkpoint: plan.checkpoint,
        markers,
    };
    tracing::warn!(prefix = %keys.prefix(), %error, "a Redis unit of work failed part-way");
    Err(error)
}

/// What an operation is to the script.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A read-model write.
    Write,
    /// An `apply_once` marker.
    Mark,
    /// A checkpoint or dead letter, run after every write.
    Bookkeeping,
}

impl Kind {
    fn code(self) -> &'static str {
        match self {
            Kind::Write => "W",
            Kind::Mark => "M",
            Kind::Bookkeeping => "B",
        }
    }
}

/// One operation of the script.
#[derive(Debug)]
struct ScriptOp {
    kind: Kind,
    /// The section (`0`: none).
    section: u32,
    keys: Vec<Vec<u8>>,
    /// For writes and bookkeeping, the command first.
    args: Vec<Vec<u8>>,
    /// The command, for error messages.
    described: String,
}

/// A unit of work, as the script runs it.
#[derive(Debug, Default)]
struct Plan {
    ops: Vec<ScriptOp>,
    /// Whether the unit of work moves a checkpoint.
    checkpoint: bool,
}

impl Plan {
    fn new(keys: &Keyspace, ops: &[Op], scanned: Vec<Vec<Vec<u8>>>) -> Self {
        let mut plan = Plan::default();
        let mut dead_letters = Vec::new();
        let mut checkpoints = Vec::new();
        let mut sections: HashMap<Position, u32> = HashMap::new();
        let mut current: Option<(Position, u32)> = None;
        let mut scanned = scanned.into_iter();
        for op in ops {
            let section = current.map_or(0, |(_, id)| id);
            let write = |command: &str, op_keys: Vec<Vec<u8>>, args: Vec<Vec<u8>>, text| {
                let mut all = vec![command.as_bytes().to_vec()];
                all.extend(args);
                ScriptOp {
                    kind: Kind::Write,
                    section,
                    keys: op_keys,
                    args: all,
                    described: text,
                }
            };
            match op {
                Op::Set { key, value, ttl } => {
                    let key = keys.data(key);
                    let mut args = vec![value.clone()];
                    let text = match ttl {
                        Some(ttl) => {
                            let millis = ttl_millis(*ttl);
                            args.push(b"PX".to_vec());
                            args.push(millis.to_string().into_bytes());
                            format!("SET {key} PX {millis}")
                        }
                        None => format!("SET {key}"),
                    };
                    plan.ops
                        .push(write("SET", vec![key.into_bytes()], args, text));
                }
                Op::Delete { key } => {
                    let key = keys.data(key);
                    let text = format!("DEL {key}");
                    plan.ops
                        .push(write("DEL", vec![key.into_bytes()], Vec::new(), text));
                }
                Op::DeletePrefix { prefix } => {
                    let found = scanned.next().unwrap_or_default();
                    for chunk in found.chunks(SCAN_COUNT) {
                        let text = format!(
                            "DEL ({} keys of {})",
                            chunk.len(),
                            keys.data_pattern(prefix)
                        );
                        plan.ops
                            .push(write("DEL", chunk.to_vec(), Vec::new(), text));
                    }
                }
                Op::IncrBy { key, delta } => {
                    let key = keys.data(key);
                    let text = format!("INCRBY {key} {delta}");
                    let args = vec![delta.to_string().into_bytes()];
                    plan.ops
                        .push(write("INCRBY", vec![key.into_bytes()], args, text));
                }
                Op::HIncrBy { key, field, delta } => {
                    let key = keys.data(key);
                    let text = format!("HINCRBY {key} {field} {delta}");
                    let args = vec![field.clone().into_bytes(), delta.to_string().into_bytes()];
                    plan.ops
                        .push(write("HINCRBY", vec![key.into_bytes()], args, text));
                }
                Op::ZAdd { key, member, score } => {
                    let key = keys.data(key);
                    let text = format!("ZADD {key} {score} {member}");
                    let args = vec![score_arg(*score), member.clone().into_bytes()];
                    plan.ops
                        .push(write("ZADD", vec![key.into_bytes()], args, text));
                }
                Op::ZIncrBy { key, member, delta } => {
                    let key = keys.data(key);
                    let text = format!("ZINCRBY {key} {delta} {member}");
                    let args = vec![score_arg(*delta), member.clone().into_bytes()];
                    plan.ops
                        .push(write("ZINCRBY", vec![key.into_bytes()], args, text));
                }
                Op::ZRem { key, member } => {
                    let key = keys.data(key);
                    let text = format!("ZREM {key} {member}");
                    let args = vec![member.clone().into_bytes()];
                    plan.ops
                        .push(write("ZREM", vec![key.into_bytes()], args, text));
                }
                Op::Expire { key, ttl } => {
                    let key = keys.data(key);
                    let millis = ttl_millis(*ttl);
                    let text = format!("PEXPIRE {key} {millis}");
                    let args = vec![millis.to_string().into_bytes()];
                    plan.ops
                        .push(write("PEXPIRE", vec![key.into_bytes()], args, text));
                }
                Op::Mark {
                    key,
                    value,
                    position,
                } => {
                    let next = u32::try_from(sections.len() + 1).unwrap_or(u32::MAX);
                    let id = *sections.entry(*position).or_insert(next);
                    current = Some((*position, id));
                    let key = keys.data(key);
                    plan.ops.push(ScriptOp {
                        kind: Kind::Mark,
                        section: id,
                        described: format!("apply_once marker {key} at {position}"),
                        keys: vec![key.into_bytes()],
                        args: vec![value.clone(), position.to_string().into_bytes()],
                    });
                }
                Op::Skip { position, .. } => {
                    if current.is_some_and(|(at, _)| at != *position) {
                        current = None;
                    }
                }
                Op::Checkpoint {
                    projection,
                    position,
                } => {
                    plan.checkpoint = true;
                    let key = keys.checkpoints();
                    checkpoints.push(ScriptOp {
                        kind: Kind::Bookkeeping,
                        section: 0,
                        described: format!("HSET {key} {projection} {position}"),
                        keys: vec![key.into_bytes()],
                        args: vec![
                            b"HSET".to_vec(),
                            projection.clone().into_bytes(),
                            position.to_string().into_bytes(),
                        ],
                    });
                }
                Op::DeadLetter {
                    projection,
                    event_id,
                    json,
                } => {
                    let key = keys.dead_letters(projection);
                    dead_letters.push(ScriptOp {
                        kind: Kind::Bookkeeping,
                        section: 0,
                        described: format!("HSET {key} {event_id}"),
                        keys: vec![key.into_bytes()],
                        args: vec![
                            b"HSET".to_vec(),
                            event_id.to_string().into_bytes(),
                            json.clone(),
                        ],
                    });
                }
                Op::RemoveDeadLetter {
                    projection,
                    event_id,
                } => {
                    let key = keys.dead_letters(projection);
                    dead_letters.push(ScriptOp {
                        kind: Kind::Bookkeeping,
                        section: 0,
                        described: format!("HDEL {key} {event_id}"),
                        keys: vec![key.into_bytes()],
                        args: vec![b"HDEL".to_vec(), event_id.to_string().into_bytes()],
                    });
                }
            }
        }
        plan.ops.extend(dead_letters);
        plan.ops.extend(checkpoints);
        plan
    }

    /// `KEYS` and `ARGV` of the script.
    fn encode(&self) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
        let mut keys = Vec::new();
        let mut args = vec![self.ops.len().to_string().into_bytes()];
        for op in &self.ops {
            args.push(op.kind.code().as_bytes().to_vec());
            args.push(op.section.to_string().into_bytes());
            args.push(op.keys.len().to_string().into_bytes());
            args.push(op.args.len().to_string().into_bytes());
            args.extend(op.args.iter().cloned());
            keys.extend(op.keys.iter().cloned());
        }
        (keys, args)
    }
}

/// A score encoded as redis-rs encodes an `f64` argument.
fn score_arg(score: f64) -> Vec<u8> {
    redis::ToRedisArgs::to_redis_args(&score)
        .into_iter()
        .next()
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keyspace::KeyPrefix;

    #[test]
    fn ttls_round_up_to_whole_milliseconds_and_never_reach_zero() {
        assert_eq!(ttl_millis(Duration::ZERO), 1);
        assert_eq!(ttl_millis(Duration::from_micros(1)), 1);
        assert_eq!(ttl_millis(Duration::from_micros(1001)), 2);
        assert_eq!(ttl_millis(Duration::from_secs(60)), 60_000);
        assert_eq!(ttl_millis(Duration::MAX), MAX_TTL_MILLIS);
    }

    fn mark(key: &str, position: Position) -> Op {
        Op::Mark {
            key: key.into(),
            value: position.to_string().into_bytes(),
            position,
        }
    }

    fn skip(position: Position) -> Op {
        Op::Skip {
            key: "m:a".into(),
            position,
            last: position,
        }
    }

    fn incr(key: &str) -> Op {
        Op::IncrBy {
            key: key.into(),
            delta: 1,
        }
    }

    #[test]
    fn writes_belong_to_the_section_of_the_apply_once_before_them_and_bookkeeping_runs_last() {
        let keys = Keyspace::new(KeyPrefix::new("p").unwrap());
        let (p1, p2) = (Position::new(1, 1), Position::new(2, 2));
        let ops = vec![
            incr("before-any-marker"),
            Op::Checkpoint {
                projection: "x".into(),
                position: p2,
            },
            mark("m:a", p1),
            incr("a"),
            mark("m:all", p1),
            incr("a2"),
            skip(p1),
            incr("still-p1"),
            skip(p2),
            incr("p2-skipped"),
            mark("m:a", p2),
            incr("b"),
            Op::RemoveDeadLetter {
                projection: "x".into(),
                event_id: Uuid::nil(),
            },
        ];
        let plan = Plan::new(&keys, &ops, Vec::new());
        let shape: Vec<(Kind, u32)> = plan.ops.iter().map(|op| (op.kind, op.section)).collect();
        use Kind::{Bookkeeping as B, Mark as M, Write as W};
        assert_eq!(
            shape,
            [
                (W, 0),
                (M, 1),
                (W, 1),
                (M, 1),
                (W, 1),
                (W, 1),
                (W, 0),
                (M, 2),
                (W, 2),
                (B, 0),
                (B, 0),
            ]
        );
        assert!(plan.checkpoint);
        assert!(
            plan.ops[9].described.starts_with("HDEL"),
            "dead letters first"
        );
        assert!(plan.ops[10].described.starts_with("HSET {p}:checkpoints"));

        let (script_keys, args) = plan.encode();
        assert_eq!(script_keys.len(), 11);
        assert_eq!(args[0], b"11");
        assert_eq!(&args[1..6], [&b"W"[..], b"0", b"1", b"2", b"INCRBY"]);
    }

    #[test]
    fn scores_are_encoded_as_redis_rs_encodes_them() {
        for score in [0.1, 10.0, -2.5e-300, f64::INFINITY, f64::NEG_INFINITY] {
            let text = String::from_utf8(score_arg(score)).unwrap();
            let back: f64 = text.parse().unwrap();
            assert_eq!(back, score, "{text}");
        }
    }
}
