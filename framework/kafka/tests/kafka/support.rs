//! A fresh, isolated bus per test: its own topic and group prefix.
//!
//! The tests do not delete their topics (the names are unique, so nothing
//! collides): tansu 0.6.0 deletes **every** topic of the cluster when asked
//! to delete one (`topic_delete_by.sql` of tansu-storage selects the
//! topic's cluster), so a test deleting its own topics, even after its
//! consumers are dropped, took every other test's topics with them, and
//! librdkafka crashed in those tests' clients (signal 11 in its metadata
//! cache, `rd_kafka_metadata_cache_find`; seen in 3 runs of 3). The CI
//! broker's data lives in `target/kafka-broker/`; its record headers are
//! indexed by `ci/start-services`, so a growing file does not slow the
//! tests down (ADR-023).

use std::time::Duration;

use composable_rust_kafka::{KafkaBusOptions, KafkaEventBus};
use composable_rust_testing::event_bus_conformance::{BusFixture, BusTime, UNBOUNDED};
use composable_rust_testing::services;
use uuid::Uuid;

/// Options for a bus of its own on `bootstrap`: a unique prefix, quick
/// fetches and a short session, so rebalances are quick.
pub(crate) fn options(bootstrap: &str, partitions: u16) -> KafkaBusOptions {
    let unique = Uuid::new_v4().simple().to_string();
    KafkaBusOptions::new(bootstrap)
        .with_prefix(format!("cr-test-{}.", &unique[..12]))
        .with_partitions(partitions)
        .with_fetch_wait(Duration::from_millis(20))
        .with_session_timeout(Duration::from_secs(6))
        .with_heartbeat_interval(Duration::from_millis(200))
        .with_max_poll_interval(Duration::from_secs(6))
}

/// A bus of its own on `KAFKA_BOOTSTRAP` with `partitions` per topic.
pub(crate) async fn bus(partitions: u16) -> KafkaEventBus {
    options(&services::kafka_bootstrap(), partitions)
        .connect()
        .await
        .expect("connect to KAFKA_BOOTSTRAP")
}

/// The conformance suite's fixture. The publisher and projection checks
/// (asking for [`UNBOUNDED`] topics) get topics of one partition: a
/// projection fed by the bus applies events in position order, which
/// Kafka keeps only within a partition. The checks of the bus itself get
/// three partitions, so members split the work and ordering is per
/// stream.
pub(crate) async fn fixture(max_len: u64) -> BusFixture<KafkaEventBus> {
    let bus = bus(if max_len == UNBOUNDED { 1 } else { 3 }).await;
    BusFixture {
        bus,
        time: BusTime::Real,
        visibility_timeout: Duration::from_secs(1),
        max_len,
        trim_slack: 0,
        guard: None,
    }
}
