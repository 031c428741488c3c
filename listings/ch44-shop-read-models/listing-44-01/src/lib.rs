//! The storefront: a small shop, one module per part.

pub mod api;
pub mod catalog;
pub mod history;
pub mod order;
pub mod shop;
