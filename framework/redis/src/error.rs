//! Errors of the Redis backend, with stable codes in the `CR-E02xx` range
//! (core owns `CR-E00xx`, the PostgreSQL backend `CR-E01xx`).
//!
//! Constructors ([`RedisStoreOptions::new`](crate::RedisStoreOptions::new),
//! [`connect`](crate::RedisStoreOptions::connect), ...) return a
//! [`RedisStoreError`]. Through the projection traits the same errors
//! arrive as [`ProjectionError::Backend`] carrying the same code and
//! message, with the underlying redis-rs error as its `source`; the
//! projection manager treats them as transient (it retries the batch
//! later and never dead-letters an event because of them).

use std::fmt;
use std::sync::Arc;

use composable_rust_core::{CodedError, ErrorCode, ProjectionError};

/// The codes owned by `composable-rust-redis`.
pub mod codes {
    use composable_rust_core::ErrorCode;

    /// A key prefix was rejected.
    pub const INVALID_KEY_PREFIX: ErrorCode =
        ErrorCode::new("CR-E0201", "invalid Redis key prefix");
    /// A Redis URL could not be parsed.
    pub const INVALID_URL: ErrorCode = ErrorCode::new("CR-E0202", "invalid Redis URL");
    /// Redis could not be reached, did not answer in time, or the
    /// connection was lost.
    pub const UNREACHABLE: ErrorCode = ErrorCode::new("CR-E0203", "Redis could not be reached");
    /// Redis refused or failed a command.
    pub const COMMAND_FAILED: ErrorCode = ErrorCode::new("CR-E0204", "a Redis command failed");
    /// A command inside a unit of work's `MULTI`/`EXEC` failed while the
    /// others were applied (Redis does not roll back).
    pub const PARTIAL_COMMIT: ErrorCode = ErrorCode::new(
        "CR-E0205",
        "a Redis unit of work was partly applied (MULTI/EXEC does not roll back)",
    );
    /// A stored value does not have the form the store writes.
    pub const CORRUPT_VALUE: ErrorCode =
        ErrorCode::new("CR-E0206", "a Redis value has an unexpected form");
    /// The server is too old for the Redis Streams event bus.
    pub const UNSUPPORTED_SERVER: ErrorCode = ErrorCode::new(
        "CR-E0207",
        "the Redis server is too old for the event bus (needs 6.2 or later)",
    );

    /// Every code this crate owns, in order.
    pub const ALL: &[ErrorCode] = &[
        INVALID_KEY_PREFIX,
        INVALID_URL,
        UNREACHABLE,
        COMMAND_FAILED,
        PARTIAL_COMMIT,
        CORRUPT_VALUE,
        UNSUPPORTED_SERVER,
    ];
}

/// The advice every "cannot reach Redis" message ends with.
const REACH_ADVICE: &str = "is Redis running? Start it, or point the store at a reachable \
                            server, e.g. set REDIS_URL=redis://127.0.0.1:6379";

/// What can go wrong in the Redis backend. Its `Display` starts with the
/// code, e.g. `[CR-E0203] ...`, and says what happened and what to do.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum RedisStoreError {
    /// A key prefix was rejected (`CR-E0201`).
    InvalidKeyPrefix {
        /// The rejected prefix.
        prefix: String,
        /// Why it was rejected.
        reason: &'static str,
    },
    /// The URL could not be parsed (`CR-E0202`).
    InvalidUrl {
        /// The URL, with any password replaced by `***`.
        url: String,
        /// What redis-rs reported.
        source: Arc<redis::RedisError>,
    },
    /// Redis could not be reached, timed out, or the connection broke
    /// (`CR-E0203`).
    Unreachable {
        /// The server's address (`host:port` or a socket path).
        address: String,
        /// What the store was doing, e.g. `"read a value"`.
        operation: &'static str,
        /// What redis-rs reported.
        source: Arc<redis::RedisError>,
    },
    /// Redis refused or failed a command (`CR-E0204`).
    Command {
        /// What the store was doing.
        operation: &'static str,
        /// What redis-rs reported.
        source: Arc<redis::RedisError>,
    },
    /// Commands of a unit of work failed inside `MULTI`/`EXEC` while the
    /// others were applied (`CR-E0205`).
    PartialCommit {
        /// `(index in the unit of work, command, error)` of each failure.
        failures: Vec<(usize, String, String)>,
        /// How many commands the unit of work sent.
        commands: usize,
        /// What happened to the checkpoint written in the same unit of
        /// work, if any.
        checkpoint: CheckpointRepair,
    },
    /// A stored value does not have the form the store writes, e.g. a
    /// checkpoint that is not `commit/sequence` (`CR-E0206`).
    CorruptValue {
        /// The Redis key (and hash field, if any) holding the value.
        key: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The server is older than the Redis Streams event bus needs
    /// (`CR-E0207`).
    UnsupportedServer {
        /// The server's address.
        address: String,
        /// The version it reported.
        version: String,
    },
}

/// What a partly applied commit did about the checkpoint it carried.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CheckpointRepair {
    /// The unit of work wrote no checkpoint.
    NoCheckpoint,
    /// The checkpoint was put back to where it was before the commit, so
    /// the batch will be applied again.
    Restored,
    /// Putting the checkpoint back failed too: the checkpoint is ahead of
    /// the failed writes.
    RestoreFailed(String),
}

impl RedisStoreError {
    /// What happened and what to do, without the code prefix.
    pub fn message(&self) -> String {
        match self {
            Self::InvalidKeyPrefix { prefix, reason } => format!(
                "`{prefix}` is not a valid key prefix for a Redis projection store: {reason}; use \
                 1 to 128 printable characters without whitespace or any of {{ }} * ? [ ] \\, \
                 e.g. \"myapp:orders\""
            ),
            Self::InvalidUrl { url, source } => format!(
                "`{url}` is not a valid Redis URL: {source}; use redis://[user:password@]host[:port][/db] \
                 or redis+unix:///path/to/socket, e.g. REDIS_URL=redis://127.0.0.1:6379"
            ),
            Self::Unreachable {
                address,
                operation,
                source,
            } => format!(
                "could not reach Redis at {address} to {operation}: {source}; {REACH_ADVICE} \
                 (the connection manager reconnects by itself once the server is back)"
            ),
            Self::Command { operation, source } => {
                let advice = match source.code() {
                    Some("WRONGTYPE") => {
                        "a key holds another kind of Redis value than this operation needs (for \
                         example a counter key that was written as a sorted set): use each key \
                         for one kind of value, and rebuild the projection"
                    }
                    Some("OOM") => {
                        "Redis reached its maxmemory limit: raise it, set an eviction policy, or \
                         give read-model values a TTL"
                    }
                    Some("READONLY") => {
                        "the server is a read-only replica: point the store at the primary"
                    }
                    Some("NOAUTH" | "WRONGPASS" | "NOPERM") => {
                        "check the user name and password in the URL and the user's ACL"
                    }
                    _ => "see the Redis server's log; the operation can be retried",
                };
                format!("Redis failed to {operation}: {source}; {advice}")
            }
            Self::PartialCommit {
                failures,
                commands,
                checkpoint,
            } => {
                let failed: Vec<String> = failures
                    .iter()
                    .map(|(index, command, error)| format!("#{index} `{command}`: {error}"))
                    .collect();
                let checkpoint = match checkpoint {
                    CheckpointRepair::NoCheckpoint => {
                        "the unit of work carried no checkpoint".to_owned()
                    }
                    CheckpointRepair::Restored => "the checkpoint was put back, so the batch \
                                                   will be applied again (keep apply idempotent)"
                        .to_owned(),
                    CheckpointRepair::RestoreFailed(error) => format!(
                        "putting the checkpoint back failed too ({error}), so the checkpoint is \
                         ahead of the failed writes: rebuild the projection"
                    ),
                };
                format!(
                    "{} of the {commands} commands of a unit of work failed inside MULTI/EXEC ({}); \
                     Redis does not roll back, so the other writes were applied; {checkpoint}. \
                     This is usually a bug in the projection (a key used for two kinds of \
                     value, a counter that is not an integer): fix it and rebuild the projection",
                    failures.len(),
                    failed.join("; ")
                )
            }
            Self::UnsupportedServer { address, version } => format!(
                "the Redis server at {address} is version {version}, but the event bus needs \
                 Redis 6.2 or later (XPENDING with IDLE, XAUTOCLAIM-era consumer groups); \
                 upgrade the server (7.x recommended) or use another bus"
            ),
            Self::CorruptValue { key, reason } => format!(
                "the value at `{key}` does not have the form this store writes: {reason}; it was \
                 probably written by something else: delete it, or rebuild the projection"
            ),
        }
    }

    /// Classifies a redis-rs error that happened while doing `operation`
    /// against the server at `address`.
    pub(crate) fn from_redis(
        error: redis::RedisError,
        operation: &'static str,
        address: &str,
    ) -> Self {
        let unreachable = error.is_io_error()
            || error.is_connection_refusal()
            || error.is_timeout()
            || error.is_connection_dropped()
            || matches!(
                error.kind(),
                redis::ErrorKind::AuthenticationFailed
                    | redis::ErrorKind::ClusterConnectionNotFound
            );
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

    fn source_error(&self) -> Option<Arc<redis::RedisError>> {
        match self {
            Self::InvalidUrl { source, .. }
            | Self::Unreachable { source, .. }
            | Self::Command { source, .. } => Some(Arc::clone(source)),
            Self::InvalidKeyPrefix { .. }
            | Self::PartialCommit { .. }
            | Self::CorruptValue { .. }
            | Self::UnsupportedServer { .. } => None,
        }
    }
}

impl fmt::Display for RedisStoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}] {}", self.code(), self.message())
    }
}

impl std::error::Error for RedisStoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::InvalidUrl { source, .. }
            | Self::Unreachable { source, .. }
            | Self::Command { source, .. } => Some(source.as_ref()),
            Self::InvalidKeyPrefix { .. }
            | Self::PartialCommit { .. }
            | Self::CorruptValue { .. }
            | Self::UnsupportedServer { .. } => None,
        }
    }
}

impl CodedError for RedisStoreError {
    fn code(&self) -> ErrorCode {
        match self {
            Self::InvalidKeyPrefix { .. } => codes::INVALID_KEY_PREFIX,
            Self::InvalidUrl { .. } => codes::INVALID_URL,
            Self::Unreachable { .. } => codes::UNREACHABLE,
            Self::Command { .. } => codes::COMMAND_FAILED,
            Self::PartialCommit { .. } => codes::PARTIAL_COMMIT,
            Self::CorruptValue { .. } => codes::CORRUPT_VALUE,
            Self::UnsupportedServer { .. } => codes::UNSUPPORTED_SERVER,
        }
    }
}

impl From<RedisStoreError> for ProjectionError {
    fn from(error: RedisStoreError) -> Self {
        let source = error
            .source_error()
            .map(|source| source as Arc<dyn std::error::Error + Send + Sync>);
        ProjectionError::Backend {
            code: error.code(),
            message: error.message(),
            source,
        }
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

    #[test]
    fn codes_are_unique_well_formed_and_in_the_redis_range() {
        let mut seen = std::collections::HashSet::new();
        for code in codes::ALL {
            assert!(seen.insert(code.as_str()), "duplicate {code}");
            let digits = code.as_str().strip_prefix("CR-E02").expect("CR-E02xx");
            assert_eq!(digits.len(), 2);
            assert!(digits.chars().all(|c| c.is_ascii_digit()));
            assert!(!code.summary().is_empty());
        }
    }

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
