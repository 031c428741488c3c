//! Listing 40-1: a blue/green rebuild on PostgreSQL.
//!
//! - [`totals`]: the projection, in two versions: version 2 also counts
//!   each order's lines, so its read model must be rebuilt from the events;
//! - [`rebuild`]: setting up the versions, rebuilding into a new one while
//!   the live one serves, switching the managers over, rendering progress,
//!   and dropping the old version after its grace period.

pub mod rebuild;
pub mod totals;
