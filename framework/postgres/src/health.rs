//! [`PostgresHealthCheck`]: whether PostgreSQL answers, for a readiness
//! probe.

use async_trait::async_trait;
use composable_rust_core::health::{HealthCheck, HealthStatus};
use sqlx::PgPool;

/// Runs `SELECT 1` on a pool (the event store's:
/// [`PostgresEventStore::pool`](crate::PostgresEventStore::pool), or the
/// projection store's); unhealthy when it fails. Named `"postgres"`.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use composable_rust_core::health::HealthRegistry;
/// use composable_rust_postgres::{PostgresEventStore, PostgresHealthCheck};
///
/// let store = PostgresEventStore::connect("postgres://localhost/app").await?;
/// let health = HealthRegistry::new().with_readiness(PostgresHealthCheck::new(store.pool().clone()));
/// # let _ = health;
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct PostgresHealthCheck {
    pool: PgPool,
}

impl PostgresHealthCheck {
    /// A check of `pool`.
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

#[async_trait]
impl HealthCheck for PostgresHealthCheck {
    fn name(&self) -> &str {
        "postgres"
    }

    async fn check(&self) -> HealthStatus {
        match sqlx::query("SELECT 1").execute(&self.pool).await {
            Ok(_) => HealthStatus::healthy(),
            Err(error) => HealthStatus::unhealthy(format!(
                "PostgreSQL did not answer SELECT 1: {error}; check that the server runs and the pool's URL"
            )),
        }
    }
}
