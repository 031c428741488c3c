//! [`RedisStoreOptions`]: the key prefix, the default TTL and the
//! connection's timeouts, and the ways to connect.
//!
//! ```no_run
//! # async fn demo() -> Result<(), composable_rust_redis::RedisStoreError> {
//! use std::time::Duration;
//! use composable_rust_redis::RedisStoreOptions;
//!
//! let store = RedisStoreOptions::new("myapp:sessions")?
//!     .with_default_ttl(Duration::from_secs(30 * 60))
//!     .connect("redis://127.0.0.1:6379")
//!     .await?;
//! # let _ = store;
//! # Ok(())
//! # }
//! ```
//!
//! The store talks to Redis through a redis-rs
//! [`ConnectionManager`]: one multiplexed connection shared by every clone
//! of the store and every unit of work, which **reconnects by itself**
//! when the connection breaks. A command that fails because the connection
//! broke returns an error ([`CR-E0203`](crate::codes::UNREACHABLE)); the
//! next command waits for the new connection. Each connection attempt is
//! bounded by the connection timeout and retried a few times with a short
//! backoff, and each command by the response timeout, so no call hangs
//! when Redis is down.
//!
//! While Redis is down, every call waits for one round of connection
//! attempts before it fails. For a store used as a **cache** in front of
//! PostgreSQL, where a fast failure (and a read from the primary) beats
//! waiting, make that round short:
//!
//! ```no_run
//! # fn demo() -> Result<(), composable_rust_redis::RedisStoreError> {
//! use std::time::Duration;
//! use composable_rust_redis::{RedisConnectionSettings, RedisStoreOptions};
//!
//! let fail_fast = RedisConnectionSettings::default()
//!     .with_reconnect_attempts(0)
//!     .with_connection_timeout(Duration::from_millis(100))
//!     .with_response_timeout(Duration::from_millis(100));
//! let cache = RedisStoreOptions::new("myapp:cache")?
//!     .with_connection(fail_fast)
//!     .connect_lazy("redis://127.0.0.1:6379")?; // the app starts even if Redis is down
//! # let _ = cache;
//! # Ok(())
//! # }
//! ```

use std::time::Duration;

use redis::aio::ConnectionManager;

use crate::connection::Redis;
use crate::error::{RedisStoreError, redact_url};
use crate::keyspace::{KeyPrefix, Keyspace};
use crate::settings::RedisConnectionSettings;
use crate::store::RedisProjectionStore;

/// How to build a [`RedisProjectionStore`]: validated key prefix, optional
/// default TTL, connection settings. Finish with one of the `connect`
/// methods.
#[derive(Debug, Clone)]
pub struct RedisStoreOptions {
    pub(crate) prefix: KeyPrefix,
    pub(crate) default_ttl: Option<Duration>,
    connection: RedisConnectionSettings,
}

impl RedisStoreOptions {
    /// Options for a store whose keys all start with `{prefix}:`, with no
    /// default TTL and [`RedisConnectionSettings::default`].
    ///
    /// # Errors
    ///
    /// [`RedisStoreError::InvalidKeyPrefix`] (`CR-E0201`); see
    /// [`KeyPrefix`] for the rules.
    pub fn new(prefix: &str) -> Result<Self, RedisStoreError> {
        Ok(Self {
            prefix: KeyPrefix::new(prefix)?,
            default_ttl: None,
            connection: RedisConnectionSettings::default(),
        })
    }

    /// Values written with `save` expire after `ttl` (rounded up to whole
    /// milliseconds, at least 1 ms). Counters, hashes, sorted sets and
    /// markers are not affected: give them a TTL with
    /// [`RedisTx::expire`](crate::RedisTx::expire).
    #[must_use]
    pub fn with_default_ttl(mut self, ttl: Duration) -> Self {
        self.default_ttl = Some(ttl);
        self
    }

    /// How the connection behaves when Redis is slow or away (default:
    /// [`RedisConnectionSettings::default`]).
    #[must_use]
    pub fn with_connection(mut self, settings: RedisConnectionSettings) -> Self {
        self.connection = settings;
        self
    }

    /// Connects to the server at `url` (`redis://[user:password@]host[:port][/db]`
    /// or `redis+unix:///path`), waiting for the first connection.
    ///
    /// # Errors
    ///
    /// [`RedisStoreError::InvalidUrl`] (`CR-E0202`), or
    /// [`RedisStoreError::Unreachable`] (`CR-E0203`) when the server cannot
    /// be reached.
    pub async fn connect(self, url: &str) -> Result<RedisProjectionStore, RedisStoreError> {
        let client = open(url)?;
        self.connect_client(client).await
    }

    /// Connects with an existing redis-rs client, waiting for the first
    /// connection.
    ///
    /// # Errors
    ///
    /// [`RedisStoreError::Unreachable`] (`CR-E0203`) when the server cannot
    /// be reached.
    pub async fn connect_client(
        self,
        client: redis::Client,
    ) -> Result<RedisProjectionStore, RedisStoreError> {
        let address = address(&client);
        let connection = ConnectionManager::new_with_config(client, self.manager_config())
            .await
            .map_err(|error| RedisStoreError::from_redis(error, "connect", &address))?;
        Ok(self.build(connection, &address))
    }

    /// A store that connects on first use, so an application can start
    /// while Redis is down (its calls fail with `CR-E0203` until Redis is
    /// back).
    ///
    /// # Errors
    ///
    /// [`RedisStoreError::InvalidUrl`] (`CR-E0202`).
    pub fn connect_lazy(self, url: &str) -> Result<RedisProjectionStore, RedisStoreError> {
        let client = open(url)?;
        self.connect_client_lazy(client)
    }

    /// [`connect_lazy`](Self::connect_lazy) with an existing client.
    ///
    /// # Errors
    ///
    /// [`RedisStoreError::Command`] (`CR-E0204`) if redis-rs rejects the
    /// configuration.
    pub fn connect_client_lazy(
        self,
        client: redis::Client,
    ) -> Result<RedisProjectionStore, RedisStoreError> {
        let address = address(&client);
        let connection = ConnectionManager::new_lazy_with_config(client, self.manager_config())
            .map_err(|error| RedisStoreError::from_redis(error, "connect", &address))?;
        Ok(self.build(connection, &address))
    }

    fn manager_config(&self) -> redis::aio::ConnectionManagerConfig {
        self.connection
            .manager_config(self.connection.response_timeout())
    }

    fn build(self, connection: ConnectionManager, address: &str) -> RedisProjectionStore {
        RedisProjectionStore::from_parts(
            Redis::new(connection, address),
            Keyspace::new(self.prefix),
            self.default_ttl,
        )
    }
}

fn open(url: &str) -> Result<redis::Client, RedisStoreError> {
    redis::Client::open(url).map_err(|error| RedisStoreError::InvalidUrl {
        url: redact_url(url),
        source: std::sync::Arc::new(error),
    })
}

fn address(client: &redis::Client) -> String {
    client.get_connection_info().addr().to_string()
}
