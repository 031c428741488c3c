//! The supplier: the outside company that ships goods against purchase
//! orders, behind a trait, with a fake for the demo and the tests.
//!
//! The purchase order number is the **idempotency key**: placing the same
//! order twice (a command delivered again after a crash) returns the first
//! answer and orders nothing more, as real ordering APIs do. That, with
//! the saga's duplicate detection, is why a redelivered event never orders
//! twice.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;

use crate::errors::SUPPLIER_UNAVAILABLE;
use composable_rust::error::coded_error;

/// What is ordered from the supplier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PurchaseOrderRequest {
    /// Our purchase order number: the idempotency key.
    pub purchase_order: String,
    pub sku: String,
    pub warehouse: String,
    pub quantity: u32,
}

/// Why the supplier could not take an order.
#[coded_error(crate = ::composable_rust::core)]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SupplierError {
    /// The supplier's system did not answer; the order may be placed
    /// again later with the same number.
    #[code(SUPPLIER_UNAVAILABLE, transient)]
    #[error("the supplier is unavailable; the purchase order is retried with the same number")]
    Unavailable,
}

/// The supplier's ordering system.
#[async_trait]
pub trait Supplier: Send + Sync + 'static {
    /// Places `order`; returns the supplier's reference for it. The same
    /// purchase order number placed again returns the same reference and
    /// orders nothing more.
    async fn place_order(&self, order: &PurchaseOrderRequest) -> Result<String, SupplierError>;
}

impl std::fmt::Debug for dyn Supplier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("dyn Supplier")
    }
}

/// A delivery note: what arrives at the warehouse's dock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub purchase_order: String,
    pub sku: String,
    pub warehouse: String,
    pub quantity: u32,
}

/// A supplier in memory: takes every order (after `unavailable_for`
/// failures), remembers it by number, and ships it on [`ship`](Self::ship).
#[derive(Debug, Default)]
pub struct FakeSupplier {
    state: Mutex<FakeState>,
}

#[derive(Debug, Default)]
struct FakeState {
    orders: BTreeMap<String, (PurchaseOrderRequest, String)>,
    calls: u32,
    failures_left: u32,
}

impl FakeSupplier {
    /// A supplier that takes every order.
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes the next `calls` calls fail with [`SupplierError::Unavailable`].
    pub fn unavailable_for(&self, calls: u32) {
        self.lock().failures_left = calls;
    }

    /// How many times `place_order` was called (repeats included).
    pub fn calls(&self) -> u32 {
        self.lock().calls
    }

    /// The distinct purchase orders taken, by number.
    pub fn orders(&self) -> Vec<PurchaseOrderRequest> {
        self.lock()
            .orders
            .values()
            .map(|(order, _)| order.clone())
            .collect()
    }

    /// Ships purchase order `number`: its delivery note, or `None` if it
    /// was never ordered.
    pub fn ship(&self, number: &str) -> Option<Delivery> {
        self.lock().orders.get(number).map(|(order, _)| Delivery {
            purchase_order: order.purchase_order.clone(),
            sku: order.sku.clone(),
            warehouse: order.warehouse.clone(),
            quantity: order.quantity,
        })
    }

    fn lock(&self) -> MutexGuard<'_, FakeState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[async_trait]
impl Supplier for FakeSupplier {
    async fn place_order(&self, order: &PurchaseOrderRequest) -> Result<String, SupplierError> {
        let mut state = self.lock();
        state.calls += 1;
        if state.failures_left > 0 {
            state.failures_left -= 1;
            return Err(SupplierError::Unavailable);
        }
        if let Some((_, reference)) = state.orders.get(&order.purchase_order) {
            return Ok(reference.clone());
        }
        let reference = format!("SUP-{:04}", state.orders.len() + 1);
        state.orders.insert(
            order.purchase_order.clone(),
            (order.clone(), reference.clone()),
        );
        Ok(reference)
    }
}
