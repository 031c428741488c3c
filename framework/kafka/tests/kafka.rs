//! The Kafka-protocol event bus against a real broker (`KAFKA_BOOTSTRAP`;
//! `source ci/start-services` starts tansu locally): the shared
//! conformance suite, and reliability tests (resume, rebalance, a broker
//! killed during traffic).

mod kafka {
    mod conformance;
    mod reliability;
    mod support;
}
