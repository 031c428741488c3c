//! The in-memory event bus passes the event bus conformance suite.

use composable_rust_core::InMemoryEventBus;
use composable_rust_testing::event_bus_conformance::BusFixture;

async fn fresh_bus(max_len: u64) -> BusFixture<InMemoryEventBus> {
    BusFixture::in_memory(max_len)
}

composable_rust_testing::event_bus_conformance_tests!(fresh_bus);
