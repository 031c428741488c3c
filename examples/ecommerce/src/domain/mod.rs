//! The shop's domain: aggregates (each a consistency boundary with its own
//! stream) and the gateways to the outside world.
//!
//! | module | stream | what |
//! |---|---|---|
//! | [`catalog`] | `product-{id}` | the products for sale, seeded at startup |
//! | [`customer`] | `customer-{uuid}` | who registered |
//! | [`cart`] | `cart-{customer uuid}` | what a customer is about to buy |
//! | [`order`] | `order-{uuid}` | an order and every step of its checkout |
//! | [`inventory`] | `stock-{product id}` | stock and the reservations of orders |
//! | [`payment`], [`shipping`] | (none) | gateways behind traits, with fakes |

pub mod cart;
pub mod catalog;
pub mod customer;
pub mod inventory;
pub mod order;
pub mod payment;
pub mod shipping;

/// Amounts are in cents, never floats.
pub type Cents = u64;
