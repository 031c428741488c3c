//! The checkout saga: one order coordinated across inventory and payment,
//! with compensation.
//!
//! - [`domain`]: the `Order` aggregate and the (fat) events of orders,
//!   inventory and payments;
//! - [`saga`]: the checkout saga: its inputs, its own events, its commands,
//!   its state, and how it reacts; pure, tested with `SagaTest`;
//! - [`map`]: the saga's declared steps and compensations, drawn as a
//!   flowchart (`diagrams/checkout-saga.mmd`) and checked against the saga;
//! - [`gateways`]: the inventory system and the payment provider behind
//!   traits, with fakes that count what they did;
//! - [`services`]: carry out the saga's commands against the gateways and
//!   the `Order` aggregate, idempotently by command id;
//! - [`app`]: the process: event store, saga runtime, services, and the
//!   delivery of events to the saga.

pub mod app;
pub mod domain;
pub mod gateways;
pub mod map;
pub mod saga;
pub mod services;

pub use app::CheckoutApp;
pub use domain::{LineItem, Order, OrderStatus};
pub use gateways::{FakeInventory, FakePayment};
pub use saga::{CheckoutCommand, CheckoutEvent, CheckoutInput, CheckoutSaga, CheckoutState};
pub use services::CheckoutServices;
