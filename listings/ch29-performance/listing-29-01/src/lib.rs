//! Listing 29-1: the performance recipes of the cookbook, one module each,
//! on one small aggregate (a ledger of postings).
//!
//! - [`snapshots`]: a snapshot every N events, and how to check what a load
//!   replayed;
//! - [`batching`]: many events in one append, an import in chunks, and many
//!   commands at once with a bound on how many run together;
//! - [`replays`]: a projection that rebuilds quickly (larger batches, a
//!   `handles` filter that skips events without decoding them);
//! - [`pool`]: a connection pool sized for the work, with an acquire timeout
//!   that turns an exhausted pool into a transient error.

pub mod batching;
pub mod ledger;
pub mod pool;
pub mod replays;
pub mod snapshots;
