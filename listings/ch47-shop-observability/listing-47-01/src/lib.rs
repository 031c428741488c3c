//! The storefront: a small shop, one module per part.

pub mod api;
pub mod cashier;
pub mod catalog;
pub mod checkout;
pub mod history;
pub mod ops;
pub mod order;
pub mod payment;
pub mod shop;
pub mod worker;
