//! The bank: one module per feature.

pub mod account;
