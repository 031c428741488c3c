//! The in-memory event bus passes the event bus conformance suite.

use composable_rust_core::InMemoryEventBus;
use composable_rust_testing::event_bus_conformance::BusFixture;

async fn fresh_bus() -> BusFixture<InMemoryEventBus> {
    BusFixture::in_memory()
}

composable_rust_testing::event_bus_conformance_tests!(fresh_bus);
