//! [`RedisBlueGreen`]: rebuild a projection into a new version of its
//! Redis read model while the live version keeps serving, then switch
//! readers with one atomic script, and delete the old version after a
//! grace period. The Redis counterpart of `composable_rust_postgres::BlueGreen`.
//!
//! ```text
//! {myapp:orders}:blue-green        the registry (a hash): live = 2, v1:state = retired, ...
//!        │ switch = one Lua script: live = new, old = retired (with its time)
//!        ▼
//! {myapp:orders.v1}:...  (retired)   {myapp:orders.v2}:...  (live)   {myapp:orders.v3}:... (building)
//! ```
//!
//! - Every version is a complete [`RedisProjectionStore`] under a key
//!   prefix of its own, `<base>.v<n>` (its keys are `{<base>.v<n>}:...`,
//!   one hash slot per version, as for any store). A base never contains a
//!   dot, so no other base's versions, and no neighbour such as
//!   `<base>x`, can share a version's keys.
//! - The registry is one hash under the base prefix (see `registry.rs` for
//!   its fields). Readers resolve the live version through it
//!   ([`live_store`](RedisBlueGreen::live_store)): Redis has no views, so
//!   a reader process notices a switch when it resolves again.
//! - [`rebuild`](RedisBlueGreen::rebuild) loads the new version with
//!   [`load_version`], catches up until it is not behind the live version,
//!   and switches only if the live version is still the one the rebuild
//!   started from. Any failure marks the new version failed and deletes its
//!   keys; the live version is never touched. The catch-up check reads the
//!   live checkpoint just before the switch (a script cannot lock it: each
//!   version lives in a hash slot of its own), so events the live manager
//!   applies in between reach the new version through its manager after
//!   the hand-over.
//! - [`drop_retired`](RedisBlueGreen::drop_retired) deletes the keys of
//!   versions retired (or failed) more than the grace period ago, by the
//!   [`Clock`] it was given, with `SCAN` and `UNLINK` in batches; never the
//!   live version's.

mod error;
mod registry;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use composable_rust_core::clock::{Clock, SystemClock};
use composable_rust_core::projection::EventSource;
pub use composable_rust_core::projection::blue_green::Switched;
use composable_rust_core::projection::blue_green::{
    LoadFailure, LoadOptions, RebuildProgress, load_version,
};
use composable_rust_core::{Position, Projection};
use redis::aio::ConnectionManager;
use tokio::sync::watch;
use uuid::Uuid;

pub use error::RedisBlueGreenError;

use crate::connection::{LuaScript, Redis, SCAN_COUNT};
use crate::error::RedisStoreError;
use crate::keyspace::{KeyPrefix, Keyspace};
use crate::options::RedisStoreOptions;
use crate::store::RedisProjectionStore;
use crate::tx::parse_position;

/// The longest base prefix: `<base>.v<u32::MAX>` must fit the 128 bytes of
/// a [`KeyPrefix`].
pub const MAX_BASE_LEN: usize = 116;
/// Catch-up rounds before giving up on a switch.
const SWITCH_ATTEMPTS: u32 = 20;
/// How long the rebuild lock lives without being renewed.
const LOCK_LEASE: Duration = Duration::from_secs(30);
/// How often a running rebuild renews its lock.
const LOCK_RENEWAL: Duration = Duration::from_secs(10);

/// The state of one version in the registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum VersionState {
    /// Being loaded; nobody reads it.
    Building,
    /// What readers resolve to.
    Live,
    /// Replaced; its keys are deleted by [`RedisBlueGreen::drop_retired`]
    /// after the grace period.
    Retired,
    /// Its rebuild failed (or was abandoned); its keys were deleted at
    /// once, and its entry goes with the next
    /// [`drop_retired`](RedisBlueGreen::drop_retired) after the grace
    /// period.
    Failed,
    /// [`drop_retired`](RedisBlueGreen::drop_retired) is deleting its keys
    /// (a drop that was interrupted is finished by the next one).
    Dropping,
}

/// One version of a blue/green Redis read model, from the registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    /// 1, 2, 3...
    pub number: u32,
    /// Its store's key prefix, `<base>.v<number>`.
    pub prefix: String,
    /// Building, live, retired...
    pub state: VersionState,
    /// The projection that loaded it.
    pub projection: Option<String>,
    /// When its rebuild began.
    pub created_at: Option<DateTime<Utc>>,
    /// When it became live.
    pub switched_at: Option<DateTime<Utc>>,
    /// When it was replaced.
    pub retired_at: Option<DateTime<Utc>>,
    /// When its rebuild failed.
    pub failed_at: Option<DateTime<Utc>>,
}

/// Blue/green versions of one projection's Redis read model.
///
/// Give each projection rebuilt this way a base prefix of its own: a
/// version holds exactly what one projection writes (its keys, checkpoint
/// and dead letters).
///
/// # Readers
///
/// Redis has no views, so readers find the live version in the registry:
/// [`live_store`](Self::live_store) is one `HGET` and returns a store
/// sharing this value's connection. A reader process notices a switch the
/// next time it resolves: resolve per request (one round trip), or cache
/// the store and resolve again on an interval (a few seconds) if that
/// round trip matters. A reader still holding the old version's store
/// keeps reading complete, consistent (if no longer updated) data until
/// [`drop_retired`](Self::drop_retired) deletes it, at the earliest the
/// grace period after the switch: make the grace period longer than your
/// readers' resolve interval.
///
/// # Examples
///
/// ```no_run
/// use std::sync::Arc;
/// use composable_rust_core::{InMemoryEventStore, ProjectionManager};
/// use composable_rust_redis::RedisBlueGreen;
/// # use composable_rust_core::{Projection, ProjectionError, StoredEvent};
/// # use composable_rust_redis::{RedisProjectionStore, RedisTx};
/// # struct Totals;
/// # #[async_trait::async_trait]
/// # impl Projection for Totals {
/// #     type Store = RedisProjectionStore;
/// #     fn name(&self) -> &str { "totals" }
/// #     async fn apply(&self, _: &StoredEvent, _: &mut RedisTx) -> Result<(), ProjectionError> { Ok(()) }
/// #     async fn reset(&self, _: &mut RedisTx) -> Result<(), ProjectionError> { Ok(()) }
/// # }
///
/// # async fn example(events: InMemoryEventStore) -> Result<(), Box<dyn std::error::Error>> {
/// let versions = RedisBlueGreen::connect("redis://127.0.0.1:6379", "myapp:totals").await?;
/// // Load version n+1 beside the live one, catch up, switch readers.
/// let switched = versions.rebuild(&Totals, Arc::new(events.clone())).await?;
/// println!("readers now see version {}", switched.to);
/// // Keep the new version up to date (stop the old version's manager).
/// let manager = ProjectionManager::new(Totals, Arc::new(versions.live_store().await?), events);
/// let _running = manager.start();
/// // Readers resolve the live version (per request, or on an interval).
/// let reader = versions.live_store().await?;
/// # Ok(())
/// # }
/// ```
pub struct RedisBlueGreen {
    redis: Redis,
    base: KeyPrefix,
    /// `{<base>}:blue-green`
    registry: String,
    /// `{<base>}:blue-green:lock`
    lock: String,
    clock: Arc<dyn Clock>,
    grace_period: Duration,
    options: LoadOptions,
    progress: watch::Sender<RebuildProgress>,
}

impl std::fmt::Debug for RedisBlueGreen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisBlueGreen")
            .field("address", &self.redis.address())
            .field("base", &self.base.as_str())
            .field("grace_period", &self.grace_period)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl RedisBlueGreen {
    /// The versions of the read model `base` over `connection` (e.g.
    /// [`RedisProjectionStore::connection`] of a store on the same server:
    /// every version's store shares it), with a grace period of 10 minutes,
    /// the system clock and [`LoadOptions::default`].
    ///
    /// # Errors
    ///
    /// [`RedisBlueGreenError::InvalidBase`] (`CR-E0208`) unless `base` has 1
    /// to 116 characters from A-Z, a-z, 0-9 and `_ - : /`.
    pub fn new(connection: ConnectionManager, base: &str) -> Result<Self, RedisBlueGreenError> {
        Self::from_redis(
            Redis::new(connection, "the server of RedisBlueGreen's connection"),
            base,
        )
    }

    /// [`new`](Self::new) on a connection of its own to `url`, with the
    /// default [`RedisConnectionSettings`](crate::RedisConnectionSettings).
    ///
    /// # Errors
    ///
    /// `CR-E0208` (base), `CR-E0202` (URL) or `CR-E0203` (unreachable).
    pub async fn connect(url: &str, base: &str) -> Result<Self, RedisBlueGreenError> {
        check_base(base)?;
        let store = RedisStoreOptions::new(base)?.connect(url).await?;
        Self::from_redis(store.redis().clone(), base)
    }

    fn from_redis(redis: Redis, base: &str) -> Result<Self, RedisBlueGreenError> {
        check_base(base)?;
        let base = KeyPrefix::new(base)?;
        Ok(Self {
            redis,
            registry: format!("{{{base}}}:blue-green"),
            lock: format!("{{{base}}}:blue-green:lock"),
            base,
            clock: Arc::new(SystemClock),
            grace_period: Duration::from_secs(600),
            options: LoadOptions::default(),
            progress: watch::channel(RebuildProgress::default()).0,
        })
    }

    /// How long a replaced version is kept (for readers still on it) before
    /// [`drop_retired`](Self::drop_retired) deletes it.
    #[must_use]
    pub fn with_grace_period(mut self, grace_period: Duration) -> Self {
        self.grace_period = grace_period;
        self
    }

    /// The clock that stamps switches and decides when the grace period is
    /// over (a `TestClock` in tests).
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Batch size and read-ahead of the load.
    #[must_use]
    pub fn with_load_options(mut self, options: LoadOptions) -> Self {
        self.options = options;
        self
    }

    /// The base prefix.
    pub fn base(&self) -> &str {
        self.base.as_str()
    }

    /// The registry's Redis key, `{<base>}:blue-green` (a hash; see
    /// `HGETALL` in `redis-cli`).
    pub fn registry_key(&self) -> &str {
        &self.registry
    }

    /// Progress of the running (or last) load, for a progress bar: events
    /// applied, expected, rate and ETA.
    pub fn progress(&self) -> watch::Receiver<RebuildProgress> {
        self.progress.subscribe()
    }

    /// The store of version `number` (prefix `<base>.v<number>`), whatever
    /// its state, sharing this value's connection. Readers want
    /// [`live_store`](Self::live_store).
    pub fn version_store(&self, number: u32) -> RedisProjectionStore {
        RedisProjectionStore::from_parts(self.redis.clone(), self.keyspace(number), None)
    }

    /// Every version in the registry, oldest first.
    ///
    /// # Errors
    ///
    /// `CR-E0203`/`CR-E0204` (Redis), `CR-E0206` (a registry field this
    /// type did not write).
    pub async fn versions(&self) -> Result<Vec<Version>, RedisBlueGreenError> {
        let fields: BTreeMap<String, String> = self
            .redis
            .query(
                redis::cmd("HGETALL").arg(&self.registry),
                "read the blue/green registry",
            )
            .await?;
        Ok(registry::parse_versions(&self.registry, fields, |n| {
            self.prefix_of(n)
        })?)
    }

    /// The live version, if there is one.
    ///
    /// # Errors
    ///
    /// As [`versions`](Self::versions).
    pub async fn live(&self) -> Result<Option<Version>, RedisBlueGreenError> {
        let Some(live) = self.live_number().await? else {
            return Ok(None);
        };
        Ok(self
            .versions()
            .await?
            .into_iter()
            .find(|version| version.number == live))
    }

    /// The store of the live version (one `HGET`): for readers, and for
    /// the manager that keeps the live version up to date.
    ///
    /// # Errors
    ///
    /// [`RedisBlueGreenError::NoLiveVersion`] (`CR-E0212`) before the first
    /// rebuild; `CR-E0203`/`CR-E0204`/`CR-E0206`.
    pub async fn live_store(&self) -> Result<RedisProjectionStore, RedisBlueGreenError> {
        let live = self
            .live_number()
            .await?
            .ok_or_else(|| RedisBlueGreenError::NoLiveVersion {
                base: self.base.as_str().to_owned(),
            })?;
        Ok(self.version_store(live))
    }

    /// Loads `projection` into a new version from the first event of
    /// `source`, catches up until it is not behind the live version, and
    /// switches readers to it with one script, but only if the live
    /// version is still the one it started from; the replaced version is
    /// retired (see [`drop_retired`](Self::drop_retired)). Meanwhile the
    /// live version keeps serving, and its manager keeps running: stop it
    /// after the switch and start one on [`live_store`](Self::live_store).
    ///
    /// The rebuild holds a lock (`{<base>}:blue-green:lock`, renewed every
    /// 10 s, expiring 30 s after its process dies). A version left
    /// *building* by a killed rebuild is marked failed, and its keys
    /// deleted, by the next rebuild.
    ///
    /// # Errors
    ///
    /// Each leaves readers on the version they were on; the new version is
    /// marked [`Failed`](VersionState::Failed) and its keys are deleted:
    /// [`RebuildFailed`](RedisBlueGreenError::RebuildFailed) (`CR-E0209`,
    /// naming the event that failed),
    /// [`SwitchRefused`](RedisBlueGreenError::SwitchRefused) (`CR-E0210`),
    /// [`RebuildRunning`](RedisBlueGreenError::RebuildRunning) (`CR-E0211`,
    /// nothing created),
    /// [`CatchUpTimedOut`](RedisBlueGreenError::CatchUpTimedOut) (`CR-E0213`),
    /// [`Store`](RedisBlueGreenError::Store) (Redis failed).
    pub async fn rebuild<P>(
        &self,
        projection: &P,
        source: Arc<dyn EventSource>,
    ) -> Result<Switched, RedisBlueGreenError>
    where
        P: Projection<Store = RedisProjectionStore>,
    {
        let token = Uuid::new_v4().to_string();
        let locked: Option<String> = self
            .redis
            .query(
                redis::cmd("SET")
                    .arg(&self.lock)
                    .arg(&token)
                    .arg("NX")
                    .arg("PX")
                    .arg(millis(LOCK_LEASE)),
                "lock the read model for a rebuild",
            )
            .await?;
        if locked.is_none() {
            return Err(RedisBlueGreenError::RebuildRunning {
                base: self.base.as_str().to_owned(),
                lock: self.lock.clone(),
            });
        }
        let renewal = Renewal(tokio::spawn(renew(
            self.redis.clone(),
            self.lock.clone(),
            token.clone(),
        )));
        let result = self.locked_rebuild(projection, source).await;
        drop(renewal);
        if let Err(error) = self
            .eval::<u64>(&registry::UNLOCK, &self.lock, &[token.as_str()], "unlock")
            .await
        {
            tracing::warn!(%error, base = self.base(), "could not release the rebuild lock (it expires by itself)");
        }
        result
    }

    async fn locked_rebuild<P>(
        &self,
        projection: &P,
        source: Arc<dyn EventSource>,
    ) -> Result<Switched, RedisBlueGreenError>
    where
        P: Projection<Store = RedisProjectionStore>,
    {
        self.progress.send_replace(RebuildProgress::default());
        for abandoned in self.versions().await? {
            if abandoned.state == VersionState::Building {
                tracing::warn!(
                    base = self.base(),
                    version = abandoned.number,
                    "deleting a half-built version"
                );
                self.fail(abandoned.number).await?;
            }
        }
        let from = self.live_number().await?;
        let now = registry::time(self.clock.now());
        let number: u32 = self
            .eval(
                &registry::REGISTER,
                &self.registry,
                &[projection.name(), now.as_str()],
                "register a new version",
            )
            .await?;
        tracing::info!(
            base = self.base(),
            version = number,
            "loading a new version"
        );
        let result = self.load_and_switch(projection, source, number, from).await;
        if result.is_err() {
            // Best effort: a failed version whose keys stay behind is
            // deleted again by drop_retired.
            if let Err(error) = self.fail(number).await {
                tracing::warn!(%error, version = number, "could not delete the failed version");
            }
        }
        result
    }

    async fn load_and_switch<P>(
        &self,
        projection: &P,
        source: Arc<dyn EventSource>,
        number: u32,
        from: Option<u32>,
    ) -> Result<Switched, RedisBlueGreenError>
    where
        P: Projection<Store = RedisProjectionStore>,
    {
        let store = self.version_store(number);
        let label = format!("v{number}");
        let failed = |failure: LoadFailure| RedisBlueGreenError::RebuildFailed {
            projection: projection.name().to_owned(),
            version: number,
            event_id: failure.event.map(|(id, _)| id),
            position: failure.event.map(|(_, position)| position),
            source: Box::new(failure.error),
        };
        let mut position = load_version(
            projection,
            &store,
            Arc::clone(&source),
            self.options,
            &label,
            &self.progress,
        )
        .await
        .map_err(failed)?;
        let progress = *self.progress.borrow();
        for _ in 0..SWITCH_ATTEMPTS {
            let live_position = match from {
                Some(live) => self.checkpoint(live, projection.name()).await?,
                None => None,
            };
            if live_position.is_some_and(|live| live > position) {
                // The live manager applied events the load has not read
                // yet: apply them (a small, ordinary load) and look again.
                position = load_version(
                    projection,
                    &store,
                    Arc::clone(&source),
                    self.options,
                    &label,
                    &watch::channel(RebuildProgress::default()).0,
                )
                .await
                .map_err(failed)?;
                continue;
            }
            let expected = from.map(|n| n.to_string()).unwrap_or_default();
            let now = registry::time(self.clock.now());
            let reply: Vec<String> = self
                .eval(
                    &registry::SWITCH,
                    &self.registry,
                    &[expected.as_str(), &number.to_string(), now.as_str()],
                    "switch readers",
                )
                .await?;
            return match reply.as_slice() {
                [done, ..] if done == "switched" => {
                    tracing::info!(base = self.base(), ?from, to = number, %position, "readers switched");
                    Ok(Switched {
                        from,
                        to: number,
                        position,
                        progress,
                    })
                }
                [_, live, state] => Err(RedisBlueGreenError::SwitchRefused {
                    base: self.base.as_str().to_owned(),
                    version: number,
                    reason: refusal(from, live, state),
                }),
                _ => Err(RedisStoreError::corrupt(
                    self.registry.clone(),
                    format!("the switch script answered {reply:?}"),
                )
                .into()),
            };
        }
        Err(RedisBlueGreenError::CatchUpTimedOut {
            base: self.base.as_str().to_owned(),
            version: number,
            attempts: SWITCH_ATTEMPTS,
        })
    }

    /// Deletes the keys of every version retired (or failed) at least the
    /// grace period ago by the clock, and their registry entries; returns
    /// them. Never the live version: each is claimed first by a script that
    /// checks it is not live. Run it on an interval, or after a rebuild
    /// once the grace period is over.
    ///
    /// # Errors
    ///
    /// As [`versions`](Self::versions); a drop interrupted by an error is
    /// finished by the next call.
    pub async fn drop_retired(&self) -> Result<Vec<Version>, RedisBlueGreenError> {
        let now = self.clock.now();
        let grace = chrono::Duration::from_std(self.grace_period).unwrap_or(chrono::Duration::MAX);
        let mut dropped = Vec::new();
        for version in self.versions().await? {
            let since = match version.state {
                VersionState::Retired => version.retired_at,
                VersionState::Failed => version.failed_at,
                VersionState::Dropping => Some(DateTime::<Utc>::MIN_UTC),
                VersionState::Building | VersionState::Live => None,
            };
            let due =
                since.is_some_and(|at| at.checked_add_signed(grace).is_none_or(|end| end <= now));
            if !due {
                continue;
            }
            let number = version.number.to_string();
            let claimed: u64 = self
                .eval(
                    &registry::CLAIM_DROP,
                    &self.registry,
                    &[number.as_str()],
                    "claim a version to drop",
                )
                .await?;
            if claimed == 0 {
                continue;
            }
            let keys = self.delete_keys(version.number).await?;
            let _: u64 = self
                .eval(
                    &registry::FORGET,
                    &self.registry,
                    &[number.as_str()],
                    "forget a dropped version",
                )
                .await?;
            tracing::info!(
                base = self.base(),
                version = version.number,
                keys,
                "dropped a retired version"
            );
            dropped.push(version);
        }
        Ok(dropped)
    }

    /// Marks version `number` failed if it is still building, and deletes
    /// its keys.
    async fn fail(&self, number: u32) -> Result<(), RedisBlueGreenError> {
        let now = registry::time(self.clock.now());
        let _: u64 = self
            .eval(
                &registry::FAIL,
                &self.registry,
                &[number.to_string().as_str(), now.as_str()],
                "mark a version failed",
            )
            .await?;
        self.delete_keys(number).await?;
        Ok(())
    }

    /// Deletes every key of version `number` (`SCAN MATCH {<base>.v<n>}:*`,
    /// `UNLINK` per batch); returns how many.
    async fn delete_keys(&self, number: u32) -> Result<u64, RedisBlueGreenError> {
        // The prefix holds no glob characters (see KeyPrefix), so the
        // pattern matches exactly this version's keys.
        let pattern = self.keyspace(number).everything_pattern();
        let mut deleted = 0;
        let mut cursor: u64 = 0;
        loop {
            let (next, batch): (u64, Vec<Vec<u8>>) = self
                .redis
                .query(
                    redis::cmd("SCAN")
                        .arg(cursor)
                        .arg("MATCH")
                        .arg(&pattern)
                        .arg("COUNT")
                        .arg(SCAN_COUNT),
                    "scan a version's keys",
                )
                .await?;
            if !batch.is_empty() {
                let n: u64 = self
                    .redis
                    .query(redis::cmd("UNLINK").arg(&batch), "delete a version's keys")
                    .await?;
                deleted += n;
            }
            if next == 0 {
                return Ok(deleted);
            }
            cursor = next;
        }
    }

    /// Version `number`'s checkpoint of `projection`.
    async fn checkpoint(
        &self,
        number: u32,
        projection: &str,
    ) -> Result<Option<Position>, RedisStoreError> {
        let key = self.keyspace(number).checkpoints();
        let value: Option<Vec<u8>> = self
            .redis
            .query(
                redis::cmd("HGET").arg(&key).arg(projection),
                "read the live version's checkpoint",
            )
            .await?;
        value
            .map(|bytes| parse_position(&format!("{key} {projection}"), &bytes))
            .transpose()
    }

    async fn live_number(&self) -> Result<Option<u32>, RedisStoreError> {
        let live: Option<String> = self
            .redis
            .query(
                redis::cmd("HGET").arg(&self.registry).arg("live"),
                "read the live version",
            )
            .await?;
        registry::parse_live(&self.registry, live)
    }

    async fn eval<T: redis::FromRedisValue>(
        &self,
        script: &LuaScript,
        key: &str,
        args: &[&str],
        operation: &'static str,
    ) -> Result<T, RedisStoreError> {
        let args: Vec<Vec<u8>> = args.iter().map(|arg| arg.as_bytes().to_vec()).collect();
        self.redis
            .eval(script, &[key.as_bytes().to_vec()], &args, operation)
            .await
    }

    fn prefix_of(&self, number: u32) -> String {
        format!("{}.v{number}", self.base)
    }

    fn keyspace(&self, number: u32) -> Keyspace {
        // A valid base (at most 116 characters, no dot) plus `.v<u32>` is
        // a valid prefix.
        let prefix = KeyPrefix::new(&self.prefix_of(number))
            .expect("a blue/green base plus .v<n> is a valid key prefix");
        Keyspace::new(prefix)
    }
}

/// Validates a base prefix (`CR-E0208`).
fn check_base(base: &str) -> Result<(), RedisBlueGreenError> {
    let reject = |reason| {
        Err(RedisBlueGreenError::InvalidBase {
            base: base.escape_debug().to_string(),
            reason,
        })
    };
    if base.is_empty() {
        return reject("it is empty");
    }
    if base.len() > MAX_BASE_LEN {
        return reject("it is longer than 116 bytes");
    }
    if base.contains('.') {
        return reject("it contains a dot, which separates a base from its version number");
    }
    if !base
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | ':' | '/'))
    {
        return reject("it contains a character other than A-Z, a-z, 0-9 and _ - : /");
    }
    Ok(())
}

/// Why the switch script refused, in words.
fn refusal(from: Option<u32>, live: &str, state: &str) -> String {
    let expected = from.map_or_else(|| "none".to_owned(), |n| n.to_string());
    let found = if live.is_empty() { "none" } else { live };
    if found == expected {
        let state = if state.is_empty() { "gone" } else { state };
        format!("the new version is no longer building (it is {state})")
    } else {
        format!(
            "the live version changed during the rebuild (it is {found}, not {expected} as when \
             the rebuild began)"
        )
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// Renews the rebuild lock until aborted.
async fn renew(redis: Redis, lock: String, token: String) {
    let lease = millis(LOCK_LEASE).to_string();
    loop {
        tokio::time::sleep(LOCK_RENEWAL).await;
        let result: Result<u64, _> = redis
            .eval(
                &registry::RENEW,
                &[lock.as_bytes().to_vec()],
                &[token.as_bytes().to_vec(), lease.as_bytes().to_vec()],
                "renew the rebuild lock",
            )
            .await;
        match result {
            Ok(1) => {}
            Ok(_) => {
                tracing::warn!(%lock, "the rebuild lock expired; another rebuild may start");
                return;
            }
            Err(error) => tracing::warn!(%error, %lock, "could not renew the rebuild lock"),
        }
    }
}

/// Stops the lock's renewal when the rebuild ends, or when its task is
/// aborted (the lock then expires by itself).
struct Renewal(tokio::task::JoinHandle<()>);

impl Drop for Renewal {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use composable_rust_core::CodedError;

    use super::*;

    #[test]
    fn bases_are_checked_so_that_versions_are_valid_prefixes_of_their_own() {
        for good in ["a", "myapp:orders", "tenant-42/board_1", &"x".repeat(116)] {
            check_base(good).unwrap();
            KeyPrefix::new(&format!("{good}.v{}", u32::MAX)).unwrap();
        }
        let long = "x".repeat(117);
        for (bad, reason) in [
            ("", "empty"),
            (long.as_str(), "longer than 116"),
            ("orders.v1", "dot"),
            ("a b", "other than"),
            ("a{b}", "other than"),
            ("a*", "other than"),
            ("é", "other than"),
        ] {
            let error = check_base(bad).unwrap_err();
            assert_eq!(error.code().as_str(), "CR-E0208");
            assert!(error.to_string().contains(reason), "{bad:?}: {error}");
        }
    }

    #[test]
    fn a_refusal_says_what_changed() {
        assert!(refusal(Some(1), "2", "building").contains("it is 2, not 1"));
        assert!(refusal(None, "3", "building").contains("it is 3, not none"));
        assert!(refusal(Some(1), "1", "").contains("no longer building (it is gone)"));
    }
}
