//! # composable-rust-redis
//!
//! Redis backend for Composable Rust: [`RedisProjectionStore`], a
//! projection store for read models that want Redis' data structures and
//! speed: values with TTLs (sessions, caches), counters, and sorted sets
//! (leaderboards, top-N), with checkpoints and dead letters kept beside
//! them.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use composable_rust_core::projection::{ProjectionStore, ProjectionTx};
//! use composable_rust_redis::RedisProjectionStore;
//!
//! let store = RedisProjectionStore::connect("redis://127.0.0.1:6379", "myapp:leaderboard").await?;
//! let mut tx = store.begin().await?;
//! tx.zincr_by("scores", "alice", 10.0)?;
//! tx.incr_by("games-played", 1)?;
//! tx.save("player:alice", br#"{"name":"Alice"}"#).await?;
//! store.commit(tx).await?; // one atomic script
//!
//! let podium = store.sorted_set("scores").top(3).await?;
//! # let _ = podium;
//! # Ok(())
//! # }
//! ```
//!
//! | module | holds |
//! |---|---|
//! | [`RedisStoreOptions`] | prefix, default TTL, timeouts; `connect`, `connect_lazy` |
//! | [`RedisProjectionStore`] | reads (`get`, `counter`, `ttl`, sorted sets), units of work, delivery notes |
//! | [`RedisTx`] | buffered writes, Redis-native operations, [`apply_once`](RedisTx::apply_once) |
//! | [`Keyspace`] | where each thing lives in Redis, under the validated [`KeyPrefix`] |
//! | [`SortedSet`] | top-N, score, rank, length |
//! | [`RedisBlueGreen`] | blue/green rebuilds: a new version of a read model under its own prefix, readers switched atomically, old versions dropped after a grace period |
//! | [`RedisStreamsEventBus`], [`RedisBusOptions`] | the core's `EventBus` on Redis Streams: consumer groups, acknowledgements, claims of idle messages, dead-letter streams, bounded topics ([`bus`] maps each operation to its commands) |
//! | cache | the core's `ProjectionCache` (Redis in front of PostgreSQL in a `CachedProjectionStore`): `cache_get`, `cache_set`, `cache_delete`, `cache_delete_prefix` |
//! | [`codes`] | this crate's error codes, `CR-E02xx` |
//!
//! Checkpoints and dead letters live in the same Redis, under the same
//! prefix, and are written in the same atomic commit (one Lua script) as
//! the read model: the store itself implements
//! [`ProjectionCheckpoint`](composable_rust_core::projection::ProjectionCheckpoint)
//! (there is no separate checkpoint type), as the in-memory store does.
//!
//! **Delivery is at-least-once**: Redis does not roll back the writes
//! before a command that fails, and a lost reply can lead to a batch being
//! applied twice. A commit that fails part-way never moves the checkpoint
//! and never leaves an event marked applied unless all of its writes were;
//! the [store's docs](RedisProjectionStore#delivery-at-least-once) explain
//! what is applied again, and how to apply events idempotently with
//! [`RedisTx::apply_once`].
#![deny(missing_docs)]

pub mod blue_green;
pub mod bus;
mod cache;
mod checkpoint;
mod commit;
mod connection;
pub mod error;
mod health;
mod keyspace;
mod operations;
mod options;
mod settings;
mod sorted_set;
mod store;
mod tx;

pub use blue_green::{RedisBlueGreen, RedisBlueGreenError};
pub use bus::{RedisBusOptions, RedisStreamsEventBus};
pub use error::{RedisStoreError, codes, redis_error_class};
pub use health::RedisHealthCheck;
pub use keyspace::{KeyPrefix, Keyspace, MAX_PREFIX_LEN};
pub use options::RedisStoreOptions;
pub use settings::RedisConnectionSettings;
pub use sorted_set::{Ranked, SortedSet, SortedSetQuery};
pub use store::RedisProjectionStore;
pub use tx::RedisTx;

/// The redis-rs crate this backend is built on, for
/// [`RedisProjectionStore::connection`] and
/// [`RedisStoreOptions::connect_client`].
pub use redis;
