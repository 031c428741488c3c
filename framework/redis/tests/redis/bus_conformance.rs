//! `RedisStreamsEventBus` passes the event bus conformance suite, against
//! a real Redis.

use composable_rust_redis::RedisStreamsEventBus;
use composable_rust_testing::event_bus_conformance::BusFixture;

async fn fresh_bus(max_len: u64) -> BusFixture<RedisStreamsEventBus> {
    super::bus_support::fixture(max_len).await
}

composable_rust_testing::event_bus_conformance_tests!(fresh_bus);
