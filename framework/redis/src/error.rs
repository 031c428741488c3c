//! Errors of the Redis backend, with stable codes in the `CR-E02xx` range
//! (core owns `CR-E00xx`, the PostgreSQL backend `CR-E01xx`).
//!
//! Constructors ([`RedisStoreOptions::new`](crate::RedisStoreOptions::new),
//! [`connect`](crate::RedisStoreOptions::connect), ...) return a
//! [`RedisStoreError`]. Through the projection traits the same errors
//! arrive as [`ProjectionError::Backend`] carrying the same code and
//! message, with the underlying redis-rs error as its `source`.
//! Whether retrying can help follows the Redis error kind, mapped
//! explicitly in [`redis_error_class`]: a connection problem is transient
//! (retried), a key holding the wrong kind of value (`WRONGTYPE`) or a
//! value that is not a number is permanent for that key (the event is
//! dead-lettered), bad credentials are configuration (the manager stops).
//! A unit of work that fails part-way ([`PartialCommit`](RedisStoreError::PartialCommit),
//! `CR-E0205`) takes the class of the command that failed.

use std::sync::Arc;

use composable_rust_core::error::{BackendError, ErrorClass, coded_error};
use composable_rust_core::{EventBusError, ProjectionError};

/// The codes owned by `composable-rust-redis`.
pub mod codes {
    composable_rust_core::error_codes! {
        /// A key prefix was rejected.
        INVALID_KEY_PREFIX = ("CR-E0201", "invalid Redis key prefix");
        /// A Redis URL could not be parsed.
        INVALID_URL = ("CR-E0202", "invalid Redis URL");
        /// Redis could not be reached, did not answer in time, or the
        /// connection was lost.
        UNREACHABLE = ("CR-E0203", "Redis could not be reached");
        /// Redis refused or failed a command.
        COMMAND_FAILED = ("CR-E0204", "a Redis command failed");
        /// A command of a unit of work failed while the commit ran; the
        /// commands before it stay applied (Redis does not roll back), the
        /// checkpoint did not move.
        PARTIAL_COMMIT = ("CR-E0205", "a Redis unit of work failed part-way (the writes before the failing command stay applied; the checkpoint did not move)");
        /// A stored value does not have the form the store writes.
        CORRUPT_VALUE = ("CR-E0206", "a Redis value has an unexpected form");
        /// The server is too old for the Redis Streams event bus.
        UNSUPPORTED_SERVER = ("CR-E0207", "the Redis server is too old for the event bus (needs 6.2 or later)");
        /// A blue/green base prefix was rejected.
        INVALID_BLUE_GREEN_BASE = ("CR-E0208", "invalid Redis blue/green base prefix");
        /// An event failed while loading a new blue/green version.
        BLUE_GREEN_REBUILD_FAILED = ("CR-E0209", "a Redis blue/green rebuild failed (the live version still serves)");
        /// The live version changed while a rebuild ran, so its switch was refused.
        BLUE_GREEN_SWITCH_REFUSED = ("CR-E0210", "a Redis blue/green switch was refused (the live version changed during the rebuild)");
        /// Another rebuild of the same base holds its lock.
        BLUE_GREEN_REBUILD_RUNNING = ("CR-E0211", "another Redis blue/green rebuild of the same base is running");
        /// No version has been switched to yet.
        BLUE_GREEN_NO_LIVE_VERSION = ("CR-E0212", "a Redis blue/green read model has no live version yet");
        /// The new version kept falling behind the live one.
        BLUE_GREEN_CATCH_UP_TIMED_OUT = ("CR-E0213", "a new Redis blue/green version did not catch up with the live one");
    }
}

/// What can go wrong in the Redis backend. Its `Display` starts with the
/// code, e.g. `[CR-E0203] ...`, and says what happened and what to do;
/// [`class`](composable_rust_core::CodedError::class) says whether
/// retrying can help.
#[coded_error]
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum RedisStoreError {
    /// A key prefix was rejected (`CR-E0201`).
    #[code(codes::INVALID_KEY_PREFIX, configuration)]
    #[error(
        "`{prefix}` is not a valid key prefix for a Redis projection store: {reason}; use 1 to \
         128 printable characters without whitespace or any of {{ }} * ? [ ] \\, e.g. \
         \"myapp:orders\""
    )]
    InvalidKeyPrefix {
        /// The rejected prefix.
        prefix: String,
        /// Why it was rejected.
        reason: &'static str,
    },
    /// The URL could not be parsed (`CR-E0202`).
    #[code(codes::INVALID_URL, configuration)]
    #[error(
        "`{url}` is not a valid Redis URL: {source}; use \
         redis://[user:password@]host[:port][/db] or redis+unix:///path/to/socket, e.g. \
         REDIS_URL=redis://127.0.0.1:6379"
    )]
    InvalidUrl {
        /// The URL, with any password replaced by `***`.
        url: String,
        /// What redis-rs reported.
        source: Arc<redis::RedisError>,
    },
    /// Redis could not be reached, timed out, or the connection broke
    /// (`CR-E0203`).
    #[code(codes::UNREACHABLE, class = redis_error_class(source))]
    #[error(
        "could not reach Redis at {address} to {operation}: {source}; {}",
        reach_advice(source)
    )]
    Unreachable {
        /// The server's address (`host:port` or a socket path).
        address: String,
        /// What the store was doing, e.g. `"read a value"`.
        operation: &'static str,
        /// What redis-rs reported.
        source: Arc<redis::RedisError>,
    },
    /// Redis refused or failed a command (`CR-E0204`).
    #[code(codes::COMMAND_FAILED, class = redis_error_class(source))]
    #[error("Redis failed to {operation}: {source}; {}", command_advice(source))]
    Command {
        /// What the store was doing.
        operation: &'static str,
        /// What redis-rs reported.
        source: Arc<redis::RedisError>,
    },
    /// A command of a unit of work failed while the commit ran
    /// (`CR-E0205`): the commands before it stay applied (Redis does not
    /// roll back), the ones after it did not run, so the checkpoint did not
    /// move, and the `apply_once` markers of events whose writes were not
    /// all applied were put back. Retrying helps or not as for the failed
    /// command's error (a `WRONGTYPE` is permanent, an `OOM` transient).
    #[code(codes::PARTIAL_COMMIT, class = reply_class(error))]
    #[error(
        "{}", partial_commit_message(*index, command, error, *commands, *checkpoint, *markers)
    )]
    PartialCommit {
        /// The failed command's place among the unit of work's commands
        /// (from 0): this many commands were applied before it.
        index: usize,
        /// The failed command, e.g. `INCRBY {app}:data:visits 1`.
        command: String,
        /// What Redis answered, e.g. `WRONGTYPE Operation against a key
        /// holding the wrong kind of value`.
        error: String,
        /// How many commands the unit of work had.
        commands: usize,
        /// Whether the unit of work carried a checkpoint (which did not
        /// move).
        checkpoint: bool,
        /// How many `apply_once` markers were put back.
        markers: usize,
    },
    /// A stored value does not have the form the store writes, e.g. a
    /// checkpoint that is not `commit/sequence` (`CR-E0206`).
    #[code(codes::CORRUPT_VALUE, permanent)]
    #[error(
        "the value at `{key}` does not have the form this store writes: {reason}; it was \
         probably written by something else: delete it, or rebuild the projection"
    )]
    CorruptValue {
        /// The Redis key (and hash field, if any) holding the value.
        key: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The server is older than the Redis Streams event bus needs
    /// (`CR-E0207`).
    #[code(codes::UNSUPPORTED_SERVER, configuration)]
    #[error(
        "the Redis server at {address} is version {version}, but the event bus needs Redis 6.2 \
         or later (XPENDING with IDLE, XAUTOCLAIM-era consumer groups); upgrade the server \
         (7.x recommended) or use another bus"
    )]
    UnsupportedServer {
        /// The server's address.
        address: String,
        /// The version it reported.
        version: String,
    },
}

impl RedisStoreError {
    /// Classifies a redis-rs error that happened while doing `operation`
    /// against the server at `address`: [`Unreachable`](Self::Unreachable)
    /// when the connection failed (refused, dropped, timed out),
    /// [`Command`](Self::Command) when the server answered with an error
    /// (bad credentials included).
    pub(crate) fn from_redis(
        error: redis::RedisError,
        operation: &'static str,
        address: &str,
    ) -> Self {
        let unreachable = error.is_io_error()
            || error.is_connection_refusal()
            || error.is_timeout()
            || error.is_connection_dropped()
            || error.kind() == redis::ErrorKind::ClusterConnectionNotFound;
        if unreachable {
            Self::Unreachable {
                address: address.to_owned(),
                operation,
                source: Arc::new(error),
            }
        } else {
            Self::Command {
                operation,
                source: Arc::new(error),
            }
        }
    }

    /// A [`CorruptValue`](Self::CorruptValue) error.
    pub(crate) fn corrupt(key: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::CorruptValue {
            key: key.into(),
            reason: reason.into(),
        }
    }
}

/// What to do when Redis could not be reached.
fn reach_advice(source: &redis::RedisError) -> &'static str {
    if source.is_timeout() {
        "Redis did not answer in time: is it running and reachable? If it is, the command was \
         slow (a large unit of work, a busy server): raise RedisStoreOptions::response_timeout. \
         A command that timed out may still have run; the projection manager reloads its \
         checkpoint and delivers the batch again (at-least-once). The connection manager \
         reconnects by itself"
    } else {
        "is Redis running? Start it, or point the store at a reachable server, e.g. set \
         REDIS_URL=redis://127.0.0.1:6379 (the connection manager reconnects by itself once the \
         server is back)"
    }
}

/// What to do after Redis refused a command, by its error code.
fn command_advice(source: &redis::RedisError) -> &'static str {
    // The commit's EVALSHA or SCRIPT LOAD refused (unknown, or not allowed).
    let text = source.to_string().to_lowercase();
    let script = text.contains("evalsha") || text.contains("script");
    match source.code() {
        Some("WRONGTYPE") => {
            "a key holds another kind of Redis value than this operation needs (for example a \
             counter key that holds a sorted set): retrying cannot help; use each key for one \
             kind of value: fix or delete the key, or rebuild the projection"
        }
        Some("OOM") => {
            "Redis reached its maxmemory limit: raise it, set an eviction policy, or give \
             read-model values a TTL (retried until memory is free)"
        }
        Some("READONLY") => {
            "the server is a read-only replica: point the store at the primary (retried, as a \
             failover may be in progress)"
        }
        Some("NOPERM") if script => {
            "the user may not run scripts: the store commits each unit of work with a Lua \
             script, so grant it EVALSHA and SCRIPT LOAD (e.g. ACL SETUSER <user> +@scripting)"
        }
        Some("NOAUTH" | "WRONGPASS" | "NOPERM") => {
            "check the user name and password in the URL and the user's ACL"
        }
        _ if source.kind() == redis::ErrorKind::AuthenticationFailed => {
            "authentication failed: check the user name and password in the URL (and that the \
             server expects them) and the user's ACL"
        }
        _ => match redis_error_class(source) {
            ErrorClass::Transient => {
                "the operation is retried with backoff; see the Redis server's log if it keeps \
                 failing"
            }
            ErrorClass::Permanent => {
                "retrying cannot help: Redis refused this command for this key or value, or \
                 answered with something the store cannot read; fix the key's value (or the \
                 projection that writes it), or rebuild the projection"
            }
            ErrorClass::Configuration if script => {
                "the server does not run Lua scripts, which the store commits each unit of work \
                 with: use Redis (or a compatible server) with scripting enabled, and allow \
                 EVALSHA and SCRIPT LOAD in the user's ACL"
            }
            ErrorClass::Configuration => {
                "the server does not support this command or refuses it for this user: check \
                 its version and ACL"
            }
        },
    }
}

/// The message of a unit of work that failed part-way.
fn partial_commit_message(
    index: usize,
    command: &str,
    error: &str,
    commands: usize,
    checkpoint: bool,
    markers: usize,
) -> String {
    let applied = match index {
        0 => "nothing was applied".to_owned(),
        1 => "the command before it stays applied (Redis does not roll back)".to_owned(),
        n => format!("the {n} commands before it stay applied (Redis does not roll back)"),
    };
    let mut kept = Vec::new();
    if commands > index + 1 {
        kept.push("the commands after it did not run".to_owned());
    }
    if checkpoint {
        kept.push("the checkpoint did not move".to_owned());
    }
    match markers {
        0 => {}
        1 => kept.push(
            "the apply_once marker of the failed event was put back, recording its position as \
             not applied"
                .to_owned(),
        ),
        n => kept.push(format!(
            "{n} apply_once markers of events whose writes did not all apply were put back, \
             recording their positions as not applied"
        )),
    }
    let kept = if kept.is_empty() {
        String::new()
    } else {
        format!("; {}", kept.join(", "))
    };
    let advice = match reply_class(error) {
        ErrorClass::Permanent => {
            "These events will be delivered again (at-least-once): retrying the same write cannot \
             help, so the projection manager applies the batch one event per unit of work, \
             retries the failing event and then moves it to the dead letters; the other events \
             go on. This is usually a key used for two kinds of value (a counter written to a \
             sorted set's key) or a counter that is not an integer: fix or delete the key (or \
             fix the projection), then retry the dead letter, or rebuild the projection"
        }
        ErrorClass::Transient => {
            "These events will be delivered again (at-least-once): the projection manager \
             retries the batch with backoff; see the Redis server's log if it keeps failing"
        }
        ErrorClass::Configuration => {
            "The server refuses this command for this user: check its version and the user's \
             ACL; the projection manager stops until it is fixed"
        }
    };
    format!(
        "command #{index} of a unit of work of {commands} commands failed: `{command}`: \
         {error}; {applied}{kept}. {advice}"
    )
}

/// Whether retrying can help after Redis answered a command with the
/// error line `reply` (e.g. `WRONGTYPE Operation against ...`): the same
/// mapping as [`redis_error_class`], by the reply's code.
fn reply_class(reply: &str) -> ErrorClass {
    let code = reply.split_whitespace().next().unwrap_or_default();
    code_class(code).unwrap_or(if reply.contains("unknown command") {
        ErrorClass::Configuration
    } else {
        ErrorClass::Permanent
    })
}

/// The class of the Redis error codes that decide it by themselves.
fn code_class(code: &str) -> Option<ErrorClass> {
    match code {
        "LOADING" | "BUSY" | "TRYAGAIN" | "CLUSTERDOWN" | "MASTERDOWN" | "OOM" | "READONLY"
        | "MOVED" | "ASK" | "NOREPLICAS" => Some(ErrorClass::Transient),
        "NOAUTH" | "WRONGPASS" | "NOPERM" => Some(ErrorClass::Configuration),
        "WRONGTYPE" | "EXECABORT" => Some(ErrorClass::Permanent),
        _ => None,
    }
}

/// Whether retrying can help after redis-rs reported `error`.
///
/// Transient: I/O, timeouts, dropped connections, a server that is loading,
/// busy, out of memory, failing over or moving slots. Configuration: bad
/// credentials or ACL, a command the server does not know. Permanent:
/// `WRONGTYPE`, a value that is not a number, anything else the server
/// refuses for this key or value (an unknown kind too, so it is
/// dead-lettered rather than retried forever).
pub fn redis_error_class(error: &redis::RedisError) -> ErrorClass {
    if error.is_io_error()
        || error.is_connection_refusal()
        || error.is_timeout()
        || error.is_connection_dropped()
        || error.is_cluster_error()
    {
        return ErrorClass::Transient;
    }
    if let Some(class) = error.code().and_then(code_class) {
        return class;
    }
    match error.kind() {
        redis::ErrorKind::AuthenticationFailed | redis::ErrorKind::InvalidClientConfig => {
            ErrorClass::Configuration
        }
        redis::ErrorKind::ClusterConnectionNotFound => ErrorClass::Transient,
        _ if error.to_string().contains("unknown command") => ErrorClass::Configuration,
        _ => ErrorClass::Permanent,
    }
}

impl From<RedisStoreError> for ProjectionError {
    fn from(error: RedisStoreError) -> Self {
        ProjectionError::Backend(BackendError::new(error))
    }
}

impl From<RedisStoreError> for EventBusError {
    fn from(error: RedisStoreError) -> Self {
        EventBusError::Backend(BackendError::new(error))
    }
}

/// `url` with the password (if any) replaced by `***`, for messages.
pub(crate) fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split_once(':').map_or(userinfo, |(user, _)| user);
            if userinfo.contains(':') {
                format!("{scheme}://{user}:***@{host}{tail}")
            } else {
                format!("{scheme}://{user}@{host}{tail}")
            }
        }
        None => url.to_owned(),
    }
}

/// A serialization error of the value at `key`.
pub(crate) fn serialization(key: impl Into<String>, error: &serde_json::Error) -> ProjectionError {
    ProjectionError::Serialization {
        key: key.into(),
        reason: error.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use composable_rust_core::CodedError;

    #[test]
    fn messages_start_with_their_code_and_carry_over_to_projection_errors() {
        let error = RedisStoreError::Unreachable {
            address: "127.0.0.1:1".into(),
            operation: "read a value",
            source: Arc::new(redis::RedisError::from(std::io::Error::from(
                std::io::ErrorKind::ConnectionRefused,
            ))),
        };
        let text = error.to_string();
        assert!(text.starts_with("[CR-E0203] "), "{text}");
        assert!(text.contains("127.0.0.1:1"), "{text}");
        assert!(text.contains("is Redis running?"), "{text}");
        assert!(text.contains("REDIS_URL"), "{text}");

        let projection = ProjectionError::from(error);
        assert!(projection.is_transient());
        assert_eq!(projection.code(), codes::UNREACHABLE);
        assert_eq!(projection.to_string(), text);
        assert!(std::error::Error::source(&projection).is_some());
        let ProjectionError::Backend(backend) = &projection else {
            panic!("{projection:?}");
        };
        assert!(backend.is::<RedisStoreError>());
    }

    /// The error redis-rs reports when the server answers `-<line>`.
    fn server_error(line: &str) -> redis::RedisError {
        let value = redis::parse_redis_value(format!("-{line}\r\n").as_bytes())
            .expect("a RESP error line parses");
        value.extract_error().expect_err("an error reply")
    }

    #[test]
    fn every_redis_error_kind_maps_to_the_documented_retry_class() {
        use ErrorClass::{Configuration, Permanent, Transient};
        let cases = [
            (
                "WRONGTYPE Operation against a key holding the wrong kind of value",
                Permanent,
            ),
            ("ERR value is not an integer or out of range", Permanent),
            (
                "EXECABORT Transaction discarded because of previous errors.",
                Permanent,
            ),
            ("LOADING Redis is loading the dataset in memory", Transient),
            ("BUSY Redis is busy running a script", Transient),
            (
                "OOM command not allowed when used memory > 'maxmemory'.",
                Transient,
            ),
            (
                "READONLY You can't write against a read only replica.",
                Transient,
            ),
            (
                "TRYAGAIN Multiple keys request during rehashing of slot",
                Transient,
            ),
            ("CLUSTERDOWN The cluster is down", Transient),
            ("MASTERDOWN Link with MASTER is down", Transient),
            ("MOVED 3999 127.0.0.1:6381", Transient),
            ("NOAUTH Authentication required.", Configuration),
            (
                "WRONGPASS invalid username-password pair or user is disabled.",
                Configuration,
            ),
            (
                "NOPERM this user has no permissions to run the 'xadd' command",
                Configuration,
            ),
            (
                "ERR unknown command 'XAUTOCLAIM', with args beginning with:",
                Configuration,
            ),
        ];
        for (line, class) in cases {
            assert_eq!(redis_error_class(&server_error(line)), class, "{line}");
        }
        let io = redis::RedisError::from(std::io::Error::from(std::io::ErrorKind::ConnectionReset));
        assert_eq!(redis_error_class(&io), Transient);
    }

    #[test]
    fn command_errors_take_their_class_from_the_reply() {
        let error = RedisStoreError::from_redis(
            server_error("WRONGTYPE Operation against a key holding the wrong kind of value"),
            "increment a counter",
            "127.0.0.1:6379",
        );
        assert_eq!(error.code(), codes::COMMAND_FAILED);
        assert_eq!(error.class(), ErrorClass::Permanent);
        assert!(
            error.to_string().contains("retrying cannot help"),
            "{error}"
        );
    }

    fn partial(error: &str, index: usize, markers: usize) -> RedisStoreError {
        RedisStoreError::PartialCommit {
            index,
            command: "INCRBY {p}:data:board 1".into(),
            error: error.into(),
            commands: 5,
            checkpoint: true,
            markers,
        }
    }

    #[test]
    fn a_partial_commit_takes_the_class_of_the_failed_command_and_says_what_was_applied() {
        let wrongtype = partial(
            "WRONGTYPE Operation against a key holding the wrong kind of value",
            2,
            1,
        );
        assert_eq!(wrongtype.code(), codes::PARTIAL_COMMIT);
        assert_eq!(wrongtype.class(), ErrorClass::Permanent);
        let text = wrongtype.to_string();
        for expected in [
            "[CR-E0205] command #2 of a unit of work of 5 commands failed",
            "`INCRBY {p}:data:board 1`: WRONGTYPE",
            "the 2 commands before it stay applied (Redis does not roll back)",
            "the commands after it did not run",
            "the checkpoint did not move",
            "marker of the failed event was put back",
            "dead letters",
            "fix or delete the key",
        ] {
            assert!(text.contains(expected), "{expected:?} in {text}");
        }

        let oom = partial(
            "OOM command not allowed when used memory > 'maxmemory'.",
            0,
            0,
        );
        assert_eq!(oom.class(), ErrorClass::Transient);
        let text = oom.to_string();
        assert!(text.contains("nothing was applied"), "{text}");
        assert!(text.contains("retries the batch with backoff"), "{text}");
        assert!(!text.contains("marker"), "{text}");

        assert_eq!(
            partial("ERR value is not an integer or out of range", 1, 0).class(),
            ErrorClass::Permanent
        );
        assert_eq!(
            partial("NOPERM this user has no permissions", 0, 0).class(),
            ErrorClass::Configuration
        );
    }

    #[test]
    fn failed_authentication_is_configuration_and_says_so_not_unreachable() {
        let error = RedisStoreError::from_redis(
            server_error("WRONGPASS invalid username-password pair or user is disabled."),
            "connect",
            "127.0.0.1:6379",
        );
        assert_eq!(error.code(), codes::COMMAND_FAILED);
        assert_eq!(error.class(), ErrorClass::Configuration);
        let text = error.to_string();
        assert!(text.contains("password"), "{text}");
        assert!(!text.contains("is Redis running"), "{text}");

        let timeout = RedisStoreError::from_redis(
            redis::RedisError::from(std::io::Error::from(std::io::ErrorKind::TimedOut)),
            "commit a unit of work",
            "127.0.0.1:6379",
        );
        assert_eq!(timeout.code(), codes::UNREACHABLE);
        assert_eq!(timeout.class(), ErrorClass::Transient);
        assert!(
            timeout.to_string().contains("response_timeout"),
            "{timeout}"
        );
    }

    #[test]
    fn a_refused_script_says_the_store_needs_scripting() {
        let error = RedisStoreError::from_redis(
            server_error("NOPERM User app has no permissions to run the 'evalsha' command"),
            "commit a unit of work",
            "127.0.0.1:6379",
        );
        assert_eq!(error.class(), ErrorClass::Configuration);
        assert!(error.to_string().contains("+@scripting"), "{error}");
    }

    #[test]
    fn passwords_never_reach_messages() {
        assert_eq!(
            redact_url("redis://user:secret@host:6379/0"),
            "redis://user:***@host:6379/0"
        );
        assert_eq!(redact_url("redis://:secret@host"), "redis://:***@host");
        assert_eq!(redact_url("redis://host:6379"), "redis://host:6379");
        assert_eq!(redact_url("not a url"), "not a url");
    }
}
