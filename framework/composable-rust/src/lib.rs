//! Facade (work in progress).
pub use composable_rust_core as core;
