//! The read side: projections that turn events into queryable JSONB
//! documents in PostgreSQL, each run by a `ProjectionManager` that commits
//! a batch and its checkpoint in one transaction (exactly once).
//!
//! - [`order_history`]: one document per order, the customer's orders
//!   newest first (`GET /v1/orders`).
//! - [`products`]: one document per product with its stock
//!   (`GET /v1/products`).
//! - [`best_sellers`]: a Redis sorted set of products by units ordered
//!   (`GET /v1/products/best-sellers`).
//! - [`cart`]: one view per cart, in PostgreSQL with Redis in front
//!   (`GET /v1/cart`).

pub mod best_sellers;
pub mod cart;
pub mod order_history;
pub mod products;
