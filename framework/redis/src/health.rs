//! [`RedisHealthCheck`]: whether Redis answers, for a readiness probe.

use async_trait::async_trait;
use composable_rust_core::health::{HealthCheck, HealthStatus};
use redis::aio::ConnectionManager;

/// Sends `PING` on a connection (a store's or the bus's:
/// [`RedisProjectionStore::connection`](crate::RedisProjectionStore::connection),
/// [`RedisStreamsEventBus::connection`](crate::RedisStreamsEventBus::connection));
/// unhealthy when it fails. Named `"redis"`.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use composable_rust_core::health::HealthRegistry;
/// use composable_rust_redis::{RedisHealthCheck, RedisStreamsEventBus};
///
/// let bus = RedisStreamsEventBus::connect("redis://127.0.0.1:6379", "app").await?;
/// let health = HealthRegistry::new().with_readiness(RedisHealthCheck::new(bus.connection()));
/// # let _ = health;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct RedisHealthCheck {
    connection: ConnectionManager,
}

impl RedisHealthCheck {
    /// A check of `connection`.
    pub fn new(connection: ConnectionManager) -> Self {
        Self { connection }
    }
}

impl std::fmt::Debug for RedisHealthCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisHealthCheck").finish_non_exhaustive()
    }
}

#[async_trait]
impl HealthCheck for RedisHealthCheck {
    fn name(&self) -> &str {
        "redis"
    }

    async fn check(&self) -> HealthStatus {
        let mut connection = self.connection.clone();
        match redis::cmd("PING")
            .query_async::<String>(&mut connection)
            .await
        {
            Ok(_) => HealthStatus::healthy(),
            Err(error) => HealthStatus::unhealthy(format!(
                "Redis did not answer PING: {error}; check that the server runs and the URL"
            )),
        }
    }
}
