//! Helpers of the event bus tests: buses under test key prefixes whose
//! keys are deleted at the end, and the conformance fixture.

use std::time::Duration;

use composable_rust_redis::{RedisBusOptions, RedisStreamsEventBus};
use composable_rust_testing::event_bus_conformance::{BusFixture, BusTime};
use composable_rust_testing::fixtures::TestKeyPrefix;

/// A bus keeping about `max_len` messages per topic under a fresh prefix,
/// and the guard that deletes its keys.
pub(crate) async fn fresh_bus(max_len: u64) -> (RedisStreamsEventBus, TestKeyPrefix) {
    let prefix = TestKeyPrefix::new();
    let bus = RedisBusOptions::new(prefix.as_str())
        .expect("valid prefix")
        .with_max_len(max_len)
        .connect(prefix.url())
        .await
        .unwrap_or_else(|error| panic!("cannot connect to REDIS_URL={}: {error}", prefix.url()));
    (bus, prefix)
}

/// The visibility timeout of the Redis tests: short, since it is real time.
pub(crate) const VISIBILITY_TIMEOUT: Duration = Duration::from_millis(250);

/// A fresh bus for one conformance check, keeping about `max_len`
/// messages per topic.
pub(crate) async fn fixture(max_len: u64) -> BusFixture<RedisStreamsEventBus> {
    let (bus, guard) = fresh_bus(max_len).await;
    BusFixture {
        bus,
        time: BusTime::Real,
        visibility_timeout: VISIBILITY_TIMEOUT,
        max_len,
        // MAXLEN ~ trims whole stream nodes (stream-node-max-entries, 100).
        trim_slack: 100,
        guard: Some(Box::new(guard)),
    }
}
