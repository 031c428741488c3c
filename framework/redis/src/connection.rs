//! The store's handle on Redis: a [`ConnectionManager`] (one multiplexed
//! connection that reconnects by itself) plus the server's address for
//! error messages, and the few command helpers everything else uses.

use std::sync::{Arc, OnceLock};

use redis::aio::ConnectionManager;
use redis::{Cmd, FromRedisValue};

use crate::error::RedisStoreError;

/// Keys `SCAN` is asked for per call, and keys per `DEL`.
pub(crate) const SCAN_COUNT: usize = 1000;

/// A cheap-to-clone handle: the connection manager is shared, not copied.
#[derive(Clone)]
pub(crate) struct Redis {
    connection: ConnectionManager,
    address: Arc<str>,
}

impl Redis {
    pub(crate) fn new(connection: ConnectionManager, address: &str) -> Self {
        Self {
            connection,
            address: address.into(),
        }
    }

    /// The server's address, `host:port` or a socket path.
    pub(crate) fn address(&self) -> &str {
        &self.address
    }

    /// The connection manager (a clone shares the connection).
    pub(crate) fn connection(&self) -> ConnectionManager {
        self.connection.clone()
    }

    /// Runs `cmd`; `operation` names it in errors ("read a value").
    pub(crate) async fn query<T: FromRedisValue>(
        &self,
        cmd: &Cmd,
        operation: &'static str,
    ) -> Result<T, RedisStoreError> {
        let mut connection = self.connection.clone();
        cmd.query_async(&mut connection)
            .await
            .map_err(|error| self.error(error, operation))
    }

    /// Runs `pipeline`; `operation` names it in errors.
    pub(crate) async fn query_pipeline<T: FromRedisValue>(
        &self,
        pipeline: &redis::Pipeline,
        operation: &'static str,
    ) -> Result<T, RedisStoreError> {
        let mut connection = self.connection.clone();
        pipeline
            .query_async(&mut connection)
            .await
            .map_err(|error| self.error(error, operation))
    }

    /// Runs `script` with `keys` and `args` (`EVALSHA`, loading the script
    /// first if the server does not have it: after a restart or a
    /// `SCRIPT FLUSH`); `operation` names it in errors. Not retried
    /// otherwise: a script whose reply was lost may have run.
    pub(crate) async fn eval<T: FromRedisValue>(
        &self,
        script: &LuaScript,
        keys: &[Vec<u8>],
        args: &[Vec<u8>],
        operation: &'static str,
    ) -> Result<T, RedisStoreError> {
        let mut connection = self.connection.clone();
        let sha = match script.sha.get() {
            Some(sha) => sha.clone(),
            None => self.load(script, operation).await?,
        };
        let evalsha = |sha: &str| {
            let mut cmd = redis::cmd("EVALSHA");
            cmd.arg(sha).arg(keys.len()).arg(keys).arg(args);
            cmd
        };
        match evalsha(&sha).query_async(&mut connection).await {
            Err(error) if error.code() == Some("NOSCRIPT") => {
                let sha = self.load(script, operation).await?;
                evalsha(&sha)
                    .query_async(&mut connection)
                    .await
                    .map_err(|error| self.error(error, operation))
            }
            result => result.map_err(|error| self.error(error, operation)),
        }
    }

    /// `SCRIPT LOAD`s `script`; returns its SHA-1.
    async fn load(
        &self,
        script: &LuaScript,
        operation: &'static str,
    ) -> Result<String, RedisStoreError> {
        let sha: String = self
            .query(
                redis::cmd("SCRIPT").arg("LOAD").arg(script.source),
                operation,
            )
            .await?;
        Ok(script.sha.get_or_init(|| sha).clone())
    }

    /// Classifies a redis-rs error of `operation`.
    pub(crate) fn error(
        &self,
        error: redis::RedisError,
        operation: &'static str,
    ) -> RedisStoreError {
        RedisStoreError::from_redis(error, operation, &self.address)
    }

    /// Every key matching `pattern`, found with `SCAN` (never `KEYS`, which
    /// blocks the server). `SCAN` may return a key twice; the result has
    /// no duplicates.
    pub(crate) async fn scan(&self, pattern: &str) -> Result<Vec<Vec<u8>>, RedisStoreError> {
        let mut keys = std::collections::BTreeSet::new();
        let mut cursor: u64 = 0;
        loop {
            let (next, batch): (u64, Vec<Vec<u8>>) = self
                .query(
                    redis::cmd("SCAN")
                        .arg(cursor)
                        .arg("MATCH")
                        .arg(pattern)
                        .arg("COUNT")
                        .arg(SCAN_COUNT),
                    "scan keys",
                )
                .await?;
            keys.extend(batch);
            if next == 0 {
                return Ok(keys.into_iter().collect());
            }
            cursor = next;
        }
    }

    /// Deletes every key matching `pattern` (`SCAN`, then `DEL` in chunks);
    /// returns how many were deleted. Not atomic: a key created while it
    /// runs may survive.
    pub(crate) async fn delete_matching(&self, pattern: &str) -> Result<u64, RedisStoreError> {
        let keys = self.scan(pattern).await?;
        let mut deleted = 0;
        for chunk in keys.chunks(SCAN_COUNT) {
            let n: u64 = self
                .query(redis::cmd("DEL").arg(chunk), "delete keys")
                .await?;
            deleted += n;
        }
        Ok(deleted)
    }
}

/// A Lua script run with [`Redis::eval`]; its SHA-1 is learnt from the
/// server the first time it is loaded (the same on every server).
#[derive(Debug)]
pub(crate) struct LuaScript {
    source: &'static str,
    sha: OnceLock<String>,
}

impl LuaScript {
    pub(crate) const fn new(source: &'static str) -> Self {
        Self {
            source,
            sha: OnceLock::new(),
        }
    }
}

impl std::fmt::Debug for Redis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redis")
            .field("address", &self.address)
            .finish_non_exhaustive()
    }
}
