//! [`RedisConnectionSettings`]: how the store and the bus connect, in one
//! type both option builders take.

use std::time::Duration;

use redis::aio::ConnectionManagerConfig;

/// How a Redis connection behaves when the server is slow or away: how
/// long one connection attempt and one command may take, and how often a
/// failed connection is retried. Both [`RedisStoreOptions`](crate::RedisStoreOptions)
/// and [`RedisBusOptions`](crate::RedisBusOptions) take one
/// (`with_connection`).
///
/// ```
/// use std::time::Duration;
/// use composable_rust_redis::RedisConnectionSettings;
///
/// // A cache that should fail fast while Redis is away.
/// let settings = RedisConnectionSettings::default()
///     .with_reconnect_attempts(0)
///     .with_connection_timeout(Duration::from_millis(100))
///     .with_response_timeout(Duration::from_millis(100));
/// assert_eq!(settings.response_timeout(), Duration::from_millis(100));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RedisConnectionSettings {
    connection_timeout: Duration,
    response_timeout: Duration,
    reconnect_attempts: usize,
}

impl Default for RedisConnectionSettings {
    /// A 1 s connection timeout, a 2 s response timeout and 2 extra
    /// connection attempts.
    fn default() -> Self {
        Self {
            connection_timeout: Duration::from_secs(1),
            response_timeout: Duration::from_secs(2),
            reconnect_attempts: 2,
        }
    }
}

impl RedisConnectionSettings {
    /// How long one attempt to connect may take (default 1 s).
    #[must_use]
    pub fn with_connection_timeout(mut self, timeout: Duration) -> Self {
        self.connection_timeout = timeout;
        self
    }

    /// How long a command may wait for its reply (default 2 s). A command
    /// that times out may still have been executed. The bus's blocking
    /// reads get one second more.
    #[must_use]
    pub fn with_response_timeout(mut self, timeout: Duration) -> Self {
        self.response_timeout = timeout;
        self
    }

    /// How many more times a failed connection attempt is retried, with a
    /// backoff from 50 ms up to 500 ms, before a command fails (default 2).
    #[must_use]
    pub fn with_reconnect_attempts(mut self, attempts: usize) -> Self {
        self.reconnect_attempts = attempts;
        self
    }

    /// How long one attempt to connect may take.
    pub fn connection_timeout(&self) -> Duration {
        self.connection_timeout
    }

    /// How long a command may wait for its reply.
    pub fn response_timeout(&self) -> Duration {
        self.response_timeout
    }

    /// How many more times a failed connection attempt is retried.
    pub fn reconnect_attempts(&self) -> usize {
        self.reconnect_attempts
    }

    /// The redis-rs configuration, with `response_timeout` (the bus's
    /// blocking reads pass a longer one).
    pub(crate) fn manager_config(&self, response_timeout: Duration) -> ConnectionManagerConfig {
        ConnectionManagerConfig::new()
            .set_connection_timeout(Some(self.connection_timeout))
            .set_response_timeout(Some(response_timeout))
            .set_number_of_retries(self.reconnect_attempts)
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_millis(500))
    }
}
