//! [`CachedProjectionStore`]: a primary store (PostgreSQL) with a cache in
//! front of it (Redis), that degrades to the primary when the cache fails.
//!
//! - **Write-through** ([`CacheMode::WriteThrough`]): after a unit of work
//!   commits to the primary, the new values are written to the cache.
//! - **Cache-aside** ([`CacheMode::CacheAside`]): after a commit, the
//!   touched keys are removed from the cache; a read that misses loads the
//!   value from the primary and puts it in the cache.
//!
//! Promises:
//!
//! - The primary is the source of truth. Checkpoints and dead letters live
//!   there, so delivery is the primary's ([`Delivery`]).
//! - A cache failure is never an error: reads fall back to the primary,
//!   writes still commit to the primary.
//! - A read never returns data older than the last successful write made
//!   through this store: a key whose cache entry could not be updated or
//!   removed is read from the primary until the cache entry is removed; and
//!   a miss does not fill the cache if a write committed while the primary
//!   was being read. (Writes made through *another* process are bounded by
//!   the cache TTL.)
//! - A cache that keeps failing is not called on every read and write: its
//!   calls go through a [`CircuitBreaker`], which after a few transient
//!   failures in a row refuses them for a cool-down. A refused call is
//!   handled like a failed one (the primary answers, the key stays
//!   suspect), without waiting for the cache to time out.

use std::collections::HashSet;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use uuid::Uuid;

use super::error::ProjectionError;
use super::in_memory::InMemoryProjectionStore;
use super::store::{
    DeadLetter, Delivery, ProjectionCheckpoint, ProjectionRequest, ProjectionStore, ProjectionTx,
};
use crate::error::BackendError;
use crate::event::Position;
use crate::resilience::{CircuitBreaker, ResilienceError};

/// Counter: reads answered by the cache.
pub const CACHE_HITS: &str = "composable_projection_cache_hits_total";
/// Counter: reads the cache could not answer (absent, or the cache failed).
pub const CACHE_MISSES: &str = "composable_projection_cache_misses_total";
/// Counter: cache operations that failed.
pub const CACHE_ERRORS: &str = "composable_projection_cache_errors_total";

/// A fast, lossy key-value cache (Redis in production). The methods carry a
/// `cache_` prefix so they never clash with [`ProjectionStore`]'s on a type
/// that is both.
///
/// # Examples
///
/// A [`CachedProjectionStore`] puts a cache in front of a store; the cache
/// is anything that implements this trait (the in-memory store here, Redis
/// in production):
///
/// ```
/// use std::time::Duration;
/// use composable_rust_core::projection::{InMemoryProjectionStore, ProjectionCache, ProjectionError};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), ProjectionError> {
/// let cache = InMemoryProjectionStore::new();
/// cache.cache_set("balance:ada", b"100", Some(Duration::from_secs(60))).await?;
/// assert_eq!(cache.cache_get("balance:ada").await?, Some(b"100".to_vec()));
///
/// assert_eq!(cache.cache_delete_prefix("balance:").await?, 1);
/// assert_eq!(cache.cache_get("balance:ada").await?, None, "a miss: read the store");
/// # Ok(())
/// # }
/// ```
#[async_trait]
pub trait ProjectionCache: Send + Sync + 'static {
    /// The cached value of `key`, if any.
    async fn cache_get(&self, key: &str) -> Result<Option<Vec<u8>>, ProjectionError>;
    /// Caches `data` under `key`, expiring after `ttl` if given (a cache may
    /// apply a default TTL when `ttl` is `None`).
    async fn cache_set(
        &self,
        key: &str,
        data: &[u8],
        ttl: Option<Duration>,
    ) -> Result<(), ProjectionError>;
    /// Removes `key` from the cache; removing a missing key is not an error.
    async fn cache_delete(&self, key: &str) -> Result<(), ProjectionError>;
    /// Removes every key starting with `prefix`; returns how many, where
    /// known.
    async fn cache_delete_prefix(&self, prefix: &str) -> Result<u64, ProjectionError>;
}

/// The in-memory store doubles as a cache for tests (TTLs are ignored).
#[async_trait]
impl ProjectionCache for InMemoryProjectionStore {
    async fn cache_get(&self, key: &str) -> Result<Option<Vec<u8>>, ProjectionError> {
        self.get(key).await
    }

    async fn cache_set(
        &self,
        key: &str,
        data: &[u8],
        _ttl: Option<Duration>,
    ) -> Result<(), ProjectionError> {
        self.save(key, data).await
    }

    async fn cache_delete(&self, key: &str) -> Result<(), ProjectionError> {
        self.delete(key).await
    }

    async fn cache_delete_prefix(&self, prefix: &str) -> Result<u64, ProjectionError> {
        let mut tx = self.begin().await?;
        let removed = tx.delete_prefix(prefix).await?;
        self.commit(tx).await?;
        Ok(removed)
    }
}

/// When the cache is updated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheMode {
    /// Write new values to the cache after each commit.
    WriteThrough,
    /// Remove touched keys after each commit; fill the cache on read misses.
    CacheAside,
}

/// How a cached store's reads went, since it was created.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Reads answered by the cache.
    pub hits: u64,
    /// Reads answered by the primary.
    pub misses: u64,
    /// Cache operations that failed (the store fell back to the primary).
    pub errors: u64,
}

/// A primary [`ProjectionStore`] with a [`ProjectionCache`] in front.
pub struct CachedProjectionStore<P, C> {
    primary: P,
    cache: C,
    mode: CacheMode,
    ttl: Option<Duration>,
    /// Bumped by every commit; a miss only fills the cache if no commit
    /// happened while it read the primary.
    writes: AtomicU64,
    /// Keys and prefixes whose cache entries may be stale because removing
    /// them failed; read from the primary until removal succeeds.
    suspect: Mutex<Suspect>,
    stats: Mutex<CacheStats>,
    /// Every cache call goes through it.
    breaker: CircuitBreaker,
}

#[derive(Default)]
struct Suspect {
    keys: HashSet<String>,
    prefixes: HashSet<String>,
}

impl<P, C> std::fmt::Debug for CachedProjectionStore<P, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CachedProjectionStore")
            .field("mode", &self.mode)
            .field("ttl", &self.ttl)
            .field("stats", &self.stats())
            .field("breaker", &self.breaker)
            .finish_non_exhaustive()
    }
}

/// A unit of work on a [`CachedProjectionStore`]: the primary's unit of
/// work, plus the keys it touches so the cache can follow after commit.
pub struct CachedTx<T> {
    inner: T,
    changes: Vec<Change>,
}

impl<T> std::fmt::Debug for CachedTx<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CachedTx")
            .field("changes", &self.changes.len())
            .finish_non_exhaustive()
    }
}

enum Change {
    Saved(String, Vec<u8>),
    Deleted(String),
    DeletedPrefix(String),
}

impl<T> CachedTx<T> {
    /// The primary's unit of work, for backend-specific writes (e.g. SQL).
    /// Keys written this way are not tracked: call
    /// [`touched`](Self::touched) for each so the cache follows.
    pub fn primary(&mut self) -> &mut T {
        &mut self.inner
    }

    /// Marks `key` as changed by a backend-specific write, so its cache
    /// entry is removed after commit.
    pub fn touched(&mut self, key: &str) {
        self.changes.push(Change::Deleted(key.to_owned()));
    }
}

/// The name of the circuit breaker a [`CachedProjectionStore`] gets unless
/// given one with [`with_circuit_breaker`](CachedProjectionStore::with_circuit_breaker).
const DEFAULT_CACHE_BREAKER: &str = "projection-cache";

impl<P, C> CachedProjectionStore<P, C> {
    /// `primary` behind `cache`, in `mode`, with no TTL; the cache's calls
    /// go through a [`CircuitBreaker`] named `projection-cache` with its
    /// defaults (opens after 5 transient failures in a row, tries again
    /// after 30 s).
    pub fn new(primary: P, cache: C, mode: CacheMode) -> Self {
        Self {
            primary,
            cache,
            mode,
            ttl: None,
            writes: AtomicU64::new(0),
            suspect: Mutex::new(Suspect::default()),
            stats: Mutex::new(CacheStats::default()),
            breaker: CircuitBreaker::new(DEFAULT_CACHE_BREAKER),
        }
    }

    /// The cache's calls go through `breaker` (name it after the cache,
    /// e.g. `redis-cache`; give it the application's clock in tests).
    #[must_use]
    pub fn with_circuit_breaker(mut self, breaker: CircuitBreaker) -> Self {
        self.breaker = breaker;
        self
    }

    /// The circuit breaker in front of the cache (for health checks).
    pub fn circuit_breaker(&self) -> &CircuitBreaker {
        &self.breaker
    }

    /// Cache entries expire after `ttl` (bounds staleness across processes).
    #[must_use]
    pub fn with_ttl(mut self, ttl: Duration) -> Self {
        self.ttl = Some(ttl);
        self
    }

    /// The primary store.
    pub fn primary(&self) -> &P {
        &self.primary
    }

    /// The cache.
    pub fn cache(&self) -> &C {
        &self.cache
    }

    /// Hits, misses and errors so far.
    pub fn stats(&self) -> CacheStats {
        *self.stats.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn count(&self, update: impl FnOnce(&mut CacheStats)) {
        update(&mut self.stats.lock().unwrap_or_else(PoisonError::into_inner));
    }

    fn suspect(&self) -> std::sync::MutexGuard<'_, Suspect> {
        self.suspect.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl<P: ProjectionStore, C: ProjectionCache> CachedProjectionStore<P, C> {
    /// Makes one cache call through the breaker. A refused call (not made)
    /// comes back as an error, so each caller falls back to the primary the
    /// way it does when the cache fails.
    async fn guarded<T, Fut>(&self, call: impl FnOnce() -> Fut) -> Result<T, ProjectionError>
    where
        Fut: Future<Output = Result<T, ProjectionError>>,
    {
        let permit = self
            .breaker
            .acquire()
            .map_err(|refused| ProjectionError::Backend(BackendError::new(refused)))?;
        let result = call().await;
        permit.record(&result);
        result
    }

    fn cache_failed(&self, operation: &str, key: &str, error: &ProjectionError) {
        if is_refusal(error) {
            // Not a cache failure: the breaker logged and counted opening.
            tracing::debug!(
                operation,
                key,
                "projection cache skipped: its circuit breaker is open"
            );
            return;
        }
        self.count(|stats| stats.errors += 1);
        metrics::counter!(CACHE_ERRORS).increment(1);
        tracing::warn!(operation, key, %error, "projection cache failed; using the primary store");
    }

    /// Whether `key` must bypass the cache. Tries to clear suspicion by
    /// removing the possibly stale entries first.
    async fn must_bypass(&self, key: &str) -> bool {
        let (key_suspect, prefixes): (bool, Vec<String>) = {
            let suspect = self.suspect();
            let prefixes = suspect
                .prefixes
                .iter()
                .filter(|p| key.starts_with(p.as_str()))
                .cloned()
                .collect();
            (suspect.keys.contains(key), prefixes)
        };
        if !key_suspect && prefixes.is_empty() {
            return false;
        }
        for prefix in prefixes {
            if self
                .guarded(|| self.cache.cache_delete_prefix(&prefix))
                .await
                .is_err()
            {
                return true;
            }
            self.suspect().prefixes.remove(&prefix);
        }
        if key_suspect {
            if self.guarded(|| self.cache.cache_delete(key)).await.is_err() {
                return true;
            }
            self.suspect().keys.remove(key);
        }
        false
    }

    async fn follow_commit(&self, changes: Vec<Change>) {
        for change in changes {
            let result = match &change {
                Change::Saved(key, data) if self.mode == CacheMode::WriteThrough => {
                    self.guarded(|| self.cache.cache_set(key, data, self.ttl))
                        .await
                }
                Change::Saved(key, _) | Change::Deleted(key) => {
                    self.guarded(|| self.cache.cache_delete(key)).await
                }
                Change::DeletedPrefix(prefix) => self
                    .guarded(|| self.cache.cache_delete_prefix(prefix))
                    .await
                    .map(|_| ()),
            };
            if let Err(error) = result {
                let mut suspect = self.suspect();
                match change {
                    Change::Saved(key, _) | Change::Deleted(key) => {
                        self.cache_failed("invalidate", &key, &error);
                        suspect.keys.insert(key);
                    }
                    Change::DeletedPrefix(prefix) => {
                        self.cache_failed("invalidate prefix", &prefix, &error);
                        suspect.prefixes.insert(prefix);
                    }
                }
            }
        }
    }
}

/// Whether `error` is the circuit breaker refusing a cache call.
fn is_refusal(error: &ProjectionError) -> bool {
    matches!(error, ProjectionError::Backend(backend) if backend.is::<ResilienceError>())
}

#[async_trait]
impl<T: ProjectionTx> ProjectionTx for CachedTx<T> {
    async fn save(&mut self, key: &str, data: &[u8]) -> Result<(), ProjectionError> {
        self.inner.save(key, data).await?;
        self.changes
            .push(Change::Saved(key.to_owned(), data.to_vec()));
        Ok(())
    }

    async fn get(&mut self, key: &str) -> Result<Option<Vec<u8>>, ProjectionError> {
        self.inner.get(key).await
    }

    async fn delete(&mut self, key: &str) -> Result<(), ProjectionError> {
        self.inner.delete(key).await?;
        self.changes.push(Change::Deleted(key.to_owned()));
        Ok(())
    }

    async fn delete_prefix(&mut self, prefix: &str) -> Result<u64, ProjectionError> {
        let removed = self.inner.delete_prefix(prefix).await?;
        self.changes.push(Change::DeletedPrefix(prefix.to_owned()));
        Ok(removed)
    }
}

#[async_trait]
impl<P: ProjectionStore, C: ProjectionCache> ProjectionStore for CachedProjectionStore<P, C> {
    type Tx = CachedTx<P::Tx>;

    fn delivery(&self) -> Delivery {
        self.primary.delivery()
    }

    async fn begin(&self) -> Result<Self::Tx, ProjectionError> {
        Ok(CachedTx {
            inner: self.primary.begin().await?,
            changes: Vec::new(),
        })
    }

    async fn commit(&self, tx: Self::Tx) -> Result<(), ProjectionError> {
        // Invalidate first as well, so a reader that fills the cache from
        // the old primary value just before the commit cannot win the race.
        self.writes.fetch_add(1, Ordering::SeqCst);
        for change in &tx.changes {
            let result = match change {
                Change::Saved(key, _) | Change::Deleted(key) => {
                    self.guarded(|| self.cache.cache_delete(key)).await
                }
                Change::DeletedPrefix(prefix) => self
                    .guarded(|| self.cache.cache_delete_prefix(prefix))
                    .await
                    .map(|_| ()),
            };
            if result.is_err() {
                break; // follow_commit records what stays suspect
            }
        }
        self.primary.commit(tx.inner).await?;
        self.writes.fetch_add(1, Ordering::SeqCst);
        self.follow_commit(tx.changes).await;
        Ok(())
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, ProjectionError> {
        if !self.must_bypass(key).await {
            match self.guarded(|| self.cache.cache_get(key)).await {
                Ok(Some(data)) => {
                    self.count(|stats| stats.hits += 1);
                    metrics::counter!(CACHE_HITS).increment(1);
                    return Ok(Some(data));
                }
                Ok(None) => {}
                Err(error) => self.cache_failed("get", key, &error),
            }
        }
        self.count(|stats| stats.misses += 1);
        metrics::counter!(CACHE_MISSES).increment(1);
        let writes_before = self.writes.load(Ordering::SeqCst);
        let value = self.primary.get(key).await?;
        let quiet = self.writes.load(Ordering::SeqCst) == writes_before;
        if let Some(data) = &value
            && quiet
            && !self.must_bypass(key).await
            && let Err(error) = self
                .guarded(|| self.cache.cache_set(key, data, self.ttl))
                .await
        {
            self.cache_failed("fill", key, &error);
        }
        Ok(value)
    }
}

#[async_trait]
impl<P: ProjectionCheckpoint, C: ProjectionCache> ProjectionCheckpoint
    for CachedProjectionStore<P, C>
{
    async fn load_position(&self, projection: &str) -> Result<Option<Position>, ProjectionError> {
        self.primary.load_position(projection).await
    }

    async fn save_position(
        &self,
        tx: &mut Self::Tx,
        projection: &str,
        position: Position,
    ) -> Result<(), ProjectionError> {
        self.primary
            .save_position(&mut tx.inner, projection, position)
            .await
    }

    async fn record_dead_letter(
        &self,
        tx: &mut Self::Tx,
        letter: &DeadLetter,
    ) -> Result<(), ProjectionError> {
        self.primary.record_dead_letter(&mut tx.inner, letter).await
    }

    async fn remove_dead_letter(
        &self,
        tx: &mut Self::Tx,
        projection: &str,
        event_id: Uuid,
    ) -> Result<bool, ProjectionError> {
        self.primary
            .remove_dead_letter(&mut tx.inner, projection, event_id)
            .await
    }

    async fn dead_letters(&self, projection: &str) -> Result<Vec<DeadLetter>, ProjectionError> {
        self.primary.dead_letters(projection).await
    }

    /// The primary's requests (where the operator files them).
    async fn take_requests(
        &self,
        projection: &str,
    ) -> Result<Vec<ProjectionRequest>, ProjectionError> {
        self.primary.take_requests(projection).await
    }
}
