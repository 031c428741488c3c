//! Listing 26-1: command recipes. Each module is one recipe of the
//! cookbook's Command and Workflow Recipes, with the tests that prove it.

pub mod deadlines;
pub mod idempotency;
pub mod one_commit;
pub mod read_your_writes;
pub mod retry;
pub mod side_effects;
