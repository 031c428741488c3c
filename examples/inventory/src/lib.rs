//! # Inventory: a reference application
//!
//! Products and their stock in several warehouses, event-sourced on the
//! PostgreSQL event store; reservations that expire; a replenishment saga
//! that orders from a supplier when stock runs low; low-stock alerts
//! delivered over the event bus; and read models for stock and alerts.
//! See the README for the architecture and how to run it.
//!
//! - [`product`]: the `Product` aggregate: events, commands, the stock
//!   rules, and the follow-up events (low stock, restored, reorder);
//! - [`errors`]: the `INV-E....` error codes, [`Rejection`] and
//!   [`InventoryError`];
//! - [`expiry`]: the saga that releases a reservation nobody committed
//!   within its time-to-live (a saga timeout on the environment's clock);
//! - [`replenishment`]: the saga from a reorder request to goods received;
//! - [`supplier`]: the supplier behind a trait, and a fake;
//! - [`commands`]: carries out both sagas' commands, idempotently;
//! - [`read_model`]: stock levels and alerts in PostgreSQL document tables;
//! - [`app`]: [`Inventory`], everything wired together.

pub mod app;
pub mod commands;
pub mod errors;
pub mod expiry;
pub mod product;
pub mod read_model;
pub mod replenishment;
pub mod supplier;

pub use app::{Inventory, Parts, Progress, ReserveRequest};
pub use errors::{InventoryError, Rejection};
pub use product::{Product, ProductCommand, ProductEvent, ReleaseReason, WarehouseStock};
pub use read_model::{Alert, AlertStatus, ReadModels, StockLevel};
pub use supplier::{Delivery, FakeSupplier, Supplier};
