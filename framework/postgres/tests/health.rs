//! `PostgresHealthCheck` against the real server, and against a port where
//! nothing listens.

use std::time::Duration;

use composable_rust_core::health::{HealthLevel, HealthRegistry};
use composable_rust_postgres::PostgresHealthCheck;
use composable_rust_testing::services::database_url;
use sqlx::postgres::PgPoolOptions;

#[tokio::test]
async fn a_reachable_server_is_healthy_and_an_unreachable_one_is_not() {
    let pool = PgPoolOptions::new().connect(&database_url()).await.unwrap();
    let up = HealthRegistry::new().with_readiness(PostgresHealthCheck::new(pool));
    let report = up.readiness().await;
    assert_eq!(report.checks[0].name, "postgres");
    assert_eq!(report.status, HealthLevel::Healthy);

    let nowhere = PgPoolOptions::new()
        .acquire_timeout(Duration::from_millis(500))
        .connect_lazy("postgres://postgres@127.0.0.1:1/test")
        .unwrap();
    let down = HealthRegistry::new().with_readiness(PostgresHealthCheck::new(nowhere));
    let report = down.readiness().await;
    assert_eq!(report.status, HealthLevel::Unhealthy);
    let reason = report.checks[0].status.reason.as_deref().unwrap();
    assert!(
        reason.starts_with("PostgreSQL did not answer SELECT 1"),
        "{reason}"
    );
}
