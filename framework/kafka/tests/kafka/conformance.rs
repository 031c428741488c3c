//! The shared event bus conformance suite, with Kafka's differences
//! declared: order per stream, redelivery by rebalance, topics bounded by
//! retention.

use composable_rust_kafka::KafkaEventBus;
use composable_rust_testing::event_bus_conformance::BusFixture;

async fn fresh_bus(max_len: u64) -> BusFixture<KafkaEventBus> {
    super::support::fixture(max_len).await
}

composable_rust_testing::event_bus_conformance_tests!(
    fresh_bus,
    differences = composable_rust_testing::event_bus_conformance::BusDifferences::KAFKA
);
