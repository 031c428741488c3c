//! What the integration tests share: an [`Inventory`] on a PostgreSQL
//! schema of the test's own (dropped afterwards), on a test clock, with a
//! fake supplier, and the event bus the test chooses.

#![allow(dead_code, unreachable_pub)] // each test file uses a part of it

use std::sync::Arc;
use std::time::Duration;

use composable_rust::postgres::{PostgresEventStore, PostgresProjectionStore};
use composable_rust::prelude::*;
use composable_rust::{CodedError, InMemoryEventBus, TestClock};
use composable_rust_testing::fixtures::TestSchema;
use inventory::{FakeSupplier, Inventory, InventoryError, Parts, ReserveRequest};

/// The reservation time-to-live of every test.
pub const TTL: Duration = Duration::from_secs(15 * 60);

/// A service under test, with its clock, supplier and schema.
#[derive(Debug)]
pub struct Harness {
    pub inventory: Inventory,
    pub clock: TestClock,
    pub supplier: Arc<FakeSupplier>,
    pub bus: Arc<dyn EventBus>,
    /// Last: dropped after the service's pools.
    pub schema: Arc<TestSchema>,
}

/// A service on a fresh schema and an in-memory bus.
pub async fn harness() -> Harness {
    harness_on(Arc::new(InMemoryEventBus::new())).await
}

/// A service on a fresh schema and `bus`.
pub async fn harness_on(bus: Arc<dyn EventBus>) -> Harness {
    let schema = Arc::new(TestSchema::new());
    let clock = TestClock::new();
    let supplier = Arc::new(FakeSupplier::new());
    let inventory = start(&schema, &clock, &supplier, &bus).await;
    Harness {
        inventory,
        clock,
        supplier,
        bus,
        schema,
    }
}

/// Starts an `Inventory` process on `schema` (a second process on the
/// same data, in the restart tests).
pub async fn start(
    schema: &TestSchema,
    clock: &TestClock,
    supplier: &Arc<FakeSupplier>,
    bus: &Arc<dyn EventBus>,
) -> Inventory {
    let events = PostgresEventStore::connect(schema.url())
        .await
        .unwrap()
        .with_schema(schema.name())
        .unwrap();
    let read_store = PostgresProjectionStore::connect(schema.url())
        .await
        .unwrap()
        .with_schema(schema.name())
        .unwrap();
    Inventory::start(Parts {
        events,
        read_store,
        bus: Arc::clone(bus),
        clock: Arc::new(clock.clone()),
        supplier: supplier.clone(),
        reservation_ttl: TTL,
        bus_wait: Duration::from_millis(20),
    })
    .await
    .unwrap()
}

/// A reservation request.
pub fn reservation(id: &str, sku: &str, warehouse: &str, quantity: u32) -> ReserveRequest {
    ReserveRequest {
        reservation_id: id.into(),
        order_id: format!("order-{id}"),
        sku: sku.into(),
        warehouse: warehouse.into(),
        quantity,
    }
}

/// The code of an error.
pub fn code(error: &InventoryError) -> &'static str {
    error.code().as_str()
}

/// The event types of product `sku`'s stream, in order.
pub async fn event_types(inventory: &Inventory, sku: &str) -> Vec<String> {
    let stream = StreamId::for_aggregate("product", sku).unwrap();
    inventory
        .store()
        .load_stream(&stream, 0)
        .await
        .unwrap()
        .into_iter()
        .map(|event| event.event_type)
        .collect()
}
