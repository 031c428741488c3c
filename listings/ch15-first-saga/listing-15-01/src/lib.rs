//! The bank: one module per feature.

pub mod account;
pub mod summaries;
pub mod transfer;
