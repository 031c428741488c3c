//! The checkout: a saga that moves a placed order through inventory,
//! payment and shipping ([`saga`]), and the services that carry out its
//! commands against the gateways and record each outcome on the order
//! ([`services`]).
//!
//! ```text
//! order.placed ──► reserve stock ──► charge payment ──► create shipment ──► shipped
//!                      │ rejected         │ declined          (no answer: timeout)
//!                      ▼                  ▼                          ▼
//!                   cancel       release stock, cancel   refund, release, cancel
//! ```

pub mod saga;
pub mod services;

pub use saga::{CheckoutCommand, CheckoutSaga};
pub use services::CheckoutServices;
