//! Redis as a cache in front of another projection store: the core's
//! [`ProjectionCache`] trait, so a `RedisProjectionStore` can be the cache
//! of a [`CachedProjectionStore`](composable_rust_core::projection::CachedProjectionStore)
//! (PostgreSQL behind, Redis in front). Import the trait to call
//! `cache_get`, `cache_set`, `cache_delete` and `cache_delete_prefix`
//! directly.
//!
//! Cache entries live in their own namespace, `{prefix}:cache:<key>`
//! (see [`Keyspace`](crate::Keyspace)), apart from this store's own read
//! models, so invalidating the cache never touches a read model and
//! resetting a read model never touches the cache. Each call is one round
//! trip, except `cache_delete_prefix`.
//! They write directly, outside any unit of work.

use std::time::Duration;

use async_trait::async_trait;
use composable_rust_core::ProjectionError;
use composable_rust_core::projection::ProjectionCache;

use crate::commit::ttl_millis;
use crate::store::RedisProjectionStore;

/// The cache operations, for
/// [`CachedProjectionStore`](composable_rust_core::projection::CachedProjectionStore).
/// A `None` TTL means the store's default TTL (if it has one).
#[async_trait]
impl ProjectionCache for RedisProjectionStore {
    /// The cached bytes under `key`, if present and not expired (one
    /// `GET`).
    async fn cache_get(&self, key: &str) -> Result<Option<Vec<u8>>, ProjectionError> {
        Ok(self
            .redis()
            .query(
                redis::cmd("GET").arg(self.keyspace().cache(key)),
                "read a cache entry",
            )
            .await?)
    }

    /// Caches `data` under `key` (one `SET`), expiring after `ttl`, or
    /// after the store's default TTL when `ttl` is `None` (never, if the
    /// store has none). TTLs are rounded up to whole milliseconds, at
    /// least 1 ms.
    async fn cache_set(
        &self,
        key: &str,
        data: &[u8],
        ttl: Option<Duration>,
    ) -> Result<(), ProjectionError> {
        let mut cmd = redis::cmd("SET");
        cmd.arg(self.keyspace().cache(key)).arg(data);
        if let Some(ttl) = ttl.or(self.default_ttl()) {
            cmd.arg("PX").arg(ttl_millis(ttl));
        }
        let _: redis::Value = self.redis().query(&cmd, "write a cache entry").await?;
        Ok(())
    }

    /// Removes the cache entry under `key` (one `DEL`); removing a missing
    /// entry is not an error.
    async fn cache_delete(&self, key: &str) -> Result<(), ProjectionError> {
        let _: u64 = self
            .redis()
            .query(
                redis::cmd("DEL").arg(self.keyspace().cache(key)),
                "delete a cache entry",
            )
            .await?;
        Ok(())
    }

    /// Removes every cache entry whose key starts with `prefix` (`SCAN`,
    /// then `DEL`: several round trips, not atomic; an entry written
    /// while it runs may survive); returns how many were removed.
    async fn cache_delete_prefix(&self, prefix: &str) -> Result<u64, ProjectionError> {
        Ok(self
            .redis()
            .delete_matching(&self.keyspace().cache_pattern(prefix))
            .await?)
    }
}
