//! The in-memory event store passes the event store conformance suite.

use composable_rust_core::InMemoryEventStore;

async fn fresh_store() -> InMemoryEventStore {
    InMemoryEventStore::new()
}

composable_rust_testing::event_store_conformance_tests!(fresh_store);
