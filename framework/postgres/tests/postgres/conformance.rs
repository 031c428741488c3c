//! The event store conformance suite (the same checks as the in-memory
//! store), each check on a fresh schema.

use super::support::{self, TestStore};

async fn fresh_store() -> TestStore {
    support::fresh_store().await
}

composable_rust_testing::event_store_conformance_tests!(fresh_store);
