//! `EventBusCheck` on the Kafka bus: the broker's metadata (a topic's
//! partitions and their watermarks) answers the readiness probe.

use std::time::Duration;

use composable_rust_core::StoredEvent;
use composable_rust_core::event_bus::{EventBus, Topic};
use composable_rust_core::health::{EventBusCheck, HealthLevel, HealthRegistry};
use composable_rust_kafka::KafkaBusOptions;
use composable_rust_testing::services;
use uuid::Uuid;

#[tokio::test]
async fn a_reachable_broker_is_healthy() {
    let unique = Uuid::new_v4().simple().to_string();
    let bus = KafkaBusOptions::new(services::kafka_bootstrap())
        .with_prefix(format!("cr-test-{}.", &unique[..12]))
        .with_partitions(1)
        .connect()
        .await
        .expect("connect to KAFKA_BOOTSTRAP");
    let topic = Topic::new("health").unwrap();
    let event = StoredEvent::builder("Checked", serde_json::json!({})).build();
    bus.publish(&topic, &event).await.unwrap();

    let registry = HealthRegistry::new()
        .with_timeout(Duration::from_secs(10))
        .with_readiness(EventBusCheck::new(bus, topic));
    let report = registry.readiness().await;
    assert_eq!(report.checks[0].name, "event-bus");
    assert_eq!(report.status, HealthLevel::Healthy, "{report:?}");
}
