//! The Kafka-protocol bus reports the event bus metrics of
//! `composable_rust_core::metrics` with `backend="kafka"`, against the
//! broker at `KAFKA_BOOTSTRAP` (`source ci/start-services` starts tansu).

use std::time::Duration;

use composable_rust_kafka::KafkaBusOptions;
use composable_rust_testing::metrics::assert_bus_reports_its_metrics;
use composable_rust_testing::services;

#[tokio::test]
async fn the_kafka_bus_counts_its_messages() {
    // A topic and group prefix of its own; topics are kept (see the
    // crate's other tests for why).
    let unique = uuid::Uuid::new_v4().simple().to_string();
    let bus = KafkaBusOptions::new(services::kafka_bootstrap())
        .with_prefix(format!("cr-metrics-{}.", &unique[..12]))
        .with_partitions(1)
        .with_fetch_wait(Duration::from_millis(20))
        .with_session_timeout(Duration::from_secs(6))
        .with_heartbeat_interval(Duration::from_millis(200))
        .with_max_poll_interval(Duration::from_secs(6))
        .connect()
        .await
        .expect("connect to KAFKA_BOOTSTRAP");
    assert_bus_reports_its_metrics(&bus, "kafka").await;
}
