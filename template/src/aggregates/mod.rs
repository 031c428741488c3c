//! The aggregates: the things that accept commands and decide what happens,
//! one module each. `composable add aggregate NAME` adds one here.

pub mod order;
