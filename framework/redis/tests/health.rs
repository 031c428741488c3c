//! `RedisHealthCheck` against the real server.

use composable_rust_core::health::{HealthLevel, HealthRegistry};
use composable_rust_redis::{RedisHealthCheck, RedisStreamsEventBus};
use composable_rust_testing::fixtures::TestKeyPrefix;

#[tokio::test]
async fn a_reachable_server_is_healthy() {
    let prefix = TestKeyPrefix::new();
    let bus = RedisStreamsEventBus::connect(prefix.url(), prefix.as_str())
        .await
        .unwrap();
    let registry = HealthRegistry::new().with_readiness(RedisHealthCheck::new(bus.connection()));
    let report = registry.readiness().await;
    assert_eq!(report.checks[0].name, "redis");
    assert_eq!(report.status, HealthLevel::Healthy);
}
