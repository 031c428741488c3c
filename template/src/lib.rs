//! {{project-name}}: a service built with Composable Rust.
//!
//! - [`aggregates`]: what accepts commands and decides (an `Order`);
//! - [`projections`]: read models kept from the events (order summaries);
//! - [`sagas`]: processes that follow events and send commands
//!   (fulfillment: ship paid orders, cancel unpaid ones);
//! - [`app`]: the wiring to PostgreSQL and Redis;
//! - [`ops`]: operational tools that know the service's types.

pub mod aggregates;
pub mod app;
pub mod ops;
pub mod projections;
pub mod sagas;
