//! [`AggregateRepository`]: load, decide, append, apply, with snapshots and
//! retries on concurrency conflicts.

use std::marker::PhantomData;
use std::sync::Arc;

use crate::clock::{Clock, SystemClock};
use crate::event::{
    EventMetadata, ExpectedVersion, NewEvent, Position, Snapshot, StreamId, Upcasters, decode,
    decode_replayed,
};
use crate::event_store::{
    AppendOutcome, EventStore, EventStoreError, KnownVersion, ReplayAndDecide, Replayed,
};

use super::Aggregate;
use super::hot::HotAggregates;

/// When the repository saves a snapshot of an aggregate's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SnapshotPolicy {
    /// Never; every load replays the whole stream.
    #[default]
    Never,
    /// Whenever an append takes the stream past a multiple of `n` events.
    Every(u64),
}

impl SnapshotPolicy {
    /// A snapshot every `n` events (`n` of 0 means never).
    pub fn every(n: u64) -> Self {
        if n == 0 { Self::Never } else { Self::Every(n) }
    }

    fn due(self, before: u64, after: u64) -> bool {
        match self {
            Self::Never => false,
            Self::Every(n) => before / n != after / n,
        }
    }
}

/// An aggregate as loaded, and how it was loaded.
#[derive(Debug, Clone, PartialEq)]
pub struct Loaded<A> {
    /// The rebuilt state.
    pub state: A,
    /// The stream's version the state reflects (0 for a new aggregate).
    pub version: u64,
    /// The version of the snapshot loading started from, if one was used.
    pub snapshot_version: Option<u64>,
    /// How many events were applied on top of the snapshot (or from the
    /// start).
    pub events_replayed: usize,
}

impl<A> Loaded<A> {
    /// Whether `version` is known to the store (see [`KnownVersion`]): 0,
    /// or the version of an event read. A load that ended on a snapshot,
    /// with no event after it, is not.
    fn is_known(&self) -> bool {
        self.snapshot_version != Some(self.version)
    }
}

/// The result of a command that was executed.
#[derive(Debug, Clone, PartialEq)]
pub struct Executed<A: Aggregate> {
    /// The events the command produced (empty if it changed nothing).
    pub events: Vec<A::Event>,
    /// The state after applying them.
    pub state: A,
    /// The stream's version afterwards.
    pub version: u64,
    /// The global position of the last event appended, if any; wait for a
    /// projection to reach it to read your own write.
    pub position: Option<Position>,
}

/// Why executing a command failed. A coded error like every other: a
/// refusal is `CR-E0020` (permanent: the same command on the same state is
/// refused again), a store failure keeps the store's code and class.
#[crate::error::coded_error]
#[derive(Debug, thiserror::Error)]
pub enum RepositoryError<E: std::error::Error + 'static> {
    /// The aggregate refused the command; nothing was written.
    #[code(crate::error::codes::COMMAND_REJECTED, permanent)]
    #[error("the aggregate refused the command: {0}; nothing was written")]
    Rejected(#[source] E),
    /// Loading or appending failed; nothing was written. A
    /// [`EventStoreError::WrongExpectedVersion`] here means another writer
    /// appended first.
    #[code(transparent)]
    #[error(transparent)]
    Store(#[from] EventStoreError),
}

impl<E: std::error::Error + 'static> RepositoryError<E> {
    /// Whether this is a concurrency conflict worth retrying.
    pub fn is_conflict(&self) -> bool {
        matches!(
            self,
            Self::Store(EventStoreError::WrongExpectedVersion { .. })
        )
    }
}

/// Loads aggregates of type `A` from event store `S` and executes commands.
///
/// A command costs two round trips to the store: one
/// [`replay`](EventStore::replay) (the snapshot and the events after it)
/// and one append. With [`with_hot_aggregates`](Self::with_hot_aggregates)
/// a command on an aggregate the repository used recently costs only the
/// append.
pub struct AggregateRepository<A: Aggregate, S> {
    store: S,
    env: A::Environment,
    upcasters: Upcasters,
    snapshots: SnapshotPolicy,
    clock: Arc<dyn Clock>,
    hot: Option<HotAggregates<A>>,
    _aggregate: PhantomData<fn() -> A>,
}

impl<A: Aggregate, S> std::fmt::Debug for AggregateRepository<A, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AggregateRepository")
            .field("kind", &A::KIND)
            .field("snapshots", &self.snapshots)
            .field(
                "hot_aggregates",
                &self.hot.as_ref().map(HotAggregates::capacity),
            )
            .finish_non_exhaustive()
    }
}

impl<A: Aggregate + Clone, S: EventStore> AggregateRepository<A, S> {
    /// Keeps the state and version of up to `capacity` recently used
    /// aggregates in memory, so the next command on one of them is decided
    /// without loading it: one round trip (the append) instead of two.
    /// `capacity` 0 turns the cache off (the default).
    ///
    /// The cache is only a guess, checked by the store: the append expects
    /// the cached version, so if anyone else (another process, another
    /// repository) appended to the stream since, the append is refused,
    /// the entry is dropped, and [`execute`](Self::execute) returns the
    /// conflict ([`RepositoryError::is_conflict`]).
    /// [`execute_with_retry`](Self::execute_with_retry) then loads the
    /// stream afresh and decides again, as it does for any conflict: use
    /// it when other writers share the streams. Nothing stale is ever
    /// written. [`load`](Self::load) always reads the store.
    ///
    /// Commands of this repository on one stream take turns: a command
    /// waits until the one before it on that stream has appended, then
    /// decides on the state that one left, so concurrent commands of one
    /// process on a busy stream neither load nor conflict. (Without the
    /// cache each command loads, and concurrent ones conflict as usual.)
    ///
    /// Worth it when the same aggregates take commands again and again
    /// from this process (a stream written mostly by one service
    /// instance); useless, and a little costly (a clone of the state per
    /// command), when every command hits a different aggregate or when
    /// several processes take turns on the same streams.
    #[must_use]
    pub fn with_hot_aggregates(mut self, capacity: usize) -> Self {
        self.hot = (capacity > 0).then(|| HotAggregates::new(capacity, A::clone));
        self
    }
}

impl<A: Aggregate, S: EventStore> AggregateRepository<A, S> {
    /// A repository over `store`, running `decide` with `env`.
    pub fn new(store: S, env: A::Environment) -> Self {
        Self {
            store,
            env,
            upcasters: Upcasters::new(),
            snapshots: SnapshotPolicy::Never,
            clock: Arc::new(SystemClock),
            hot: None,
            _aggregate: PhantomData,
        }
    }

    /// Upcasts old events with `upcasters` on load.
    #[must_use]
    pub fn with_upcasters(mut self, upcasters: Upcasters) -> Self {
        self.upcasters = upcasters;
        self
    }

    /// Saves snapshots according to `policy`.
    #[must_use]
    pub fn with_snapshots(mut self, policy: SnapshotPolicy) -> Self {
        self.snapshots = policy;
        self
    }

    /// Stamps snapshots with `clock`'s time.
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The event store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// The upcasters events are decoded with.
    pub(super) fn upcasters(&self) -> &Upcasters {
        &self.upcasters
    }

    /// The stream id of the aggregate with `id`: `"{A::KIND}-{id}"`.
    pub fn stream_id(&self, id: impl std::fmt::Display) -> Result<StreamId, EventStoreError> {
        StreamId::for_aggregate(A::KIND, id)
    }

    /// Rebuilds the aggregate: the latest usable snapshot, then every event
    /// after it. A snapshot of another [`Aggregate::SNAPSHOT_VERSION`], or
    /// one that no longer deserializes, is ignored and the stream replayed.
    ///
    /// One [`replay`](EventStore::replay) of the store (for PostgreSQL one
    /// statement that reads the snapshot and the events after it, only the
    /// columns rebuilding needs, and decodes each payload straight into
    /// `A::Event`). A load that fails on the stored data (a corrupt row, an
    /// event that does not decode) is read again the thorough way, with
    /// [`load_snapshot`](EventStore::load_snapshot) and
    /// [`load_stream`](EventStore::load_stream), so it fails with the error
    /// those report (e.g. `CorruptEvent` with the row's position).
    /// Always reads the store, even with
    /// [`with_hot_aggregates`](Self::with_hot_aggregates).
    pub async fn load(&self, stream_id: &StreamId) -> Result<Loaded<A>, EventStoreError> {
        let replayed = match self.replay(stream_id, true).await {
            Ok(Some(loaded)) => return Ok(loaded),
            // The snapshot does not deserialize: replay every event.
            Ok(None) => self.replay(stream_id, false).await,
            Err(error) => Err(error),
        };
        match replayed {
            Ok(Some(loaded)) => Ok(loaded),
            Ok(None) => unreachable!("a replay without a snapshot always loads"),
            Err(error @ EventStoreError::Backend(_)) => Err(error),
            Err(_) => self.load_thoroughly(stream_id).await,
        }
    }

    /// One replay; `None` when the snapshot it started from turned out
    /// not to deserialize.
    async fn replay(
        &self,
        stream_id: &StreamId,
        use_snapshot: bool,
    ) -> Result<Option<Loaded<A>>, EventStoreError> {
        let mut rebuild = Rebuild::<A>::new();
        let upcasters = &self.upcasters;
        let snapshot_schema = use_snapshot.then_some(A::SNAPSHOT_VERSION);
        self.store
            .replay(stream_id, snapshot_schema, &mut |item| {
                rebuild.visit(stream_id, upcasters, item)
            })
            .await?;
        Ok(rebuild.loaded())
    }

    /// The load of old: `load_snapshot`, `load_stream` (which checks every
    /// column of every row) and `decode` of each event.
    async fn load_thoroughly(&self, stream_id: &StreamId) -> Result<Loaded<A>, EventStoreError> {
        let (mut state, version) = match self.usable_snapshot(stream_id).await? {
            Some((state, version)) => (state, version),
            None => (A::default(), 0),
        };
        let snapshot_version = (version > 0).then_some(version);
        let stored = self.store.load_stream(stream_id, version + 1).await?;
        let mut loaded_version = version;
        let mut events_replayed = 0;
        for event in &stored {
            if let Some(decoded) = decode::<A::Event>(event, &self.upcasters)? {
                state.apply(&decoded);
                events_replayed += 1;
            }
            loaded_version = event.stream_version;
        }
        Ok(Loaded {
            state,
            version: loaded_version,
            snapshot_version,
            events_replayed,
        })
    }

    /// Loads the aggregate, decides, appends the events expecting the
    /// version it loaded, applies them, and snapshots if the policy says so.
    /// A command that produces no events writes nothing.
    ///
    /// With [`with_hot_aggregates`](Self::with_hot_aggregates), an
    /// aggregate this repository used recently is not loaded: the cached
    /// state decides, and the append expects the cached version. If the
    /// stream moved on since, the append is refused and this returns the
    /// conflict (the entry is dropped, so a retry loads afresh).
    pub async fn execute(
        &self,
        stream_id: &StreamId,
        command: A::Command,
    ) -> Result<Executed<A>, RepositoryError<A::Error>> {
        self.execute_decided(stream_id, command, None).await
    }

    /// [`execute`](Self::execute), the events appended with `metadata`
    /// (a correlation id, a causation id, headers) instead of none: for
    /// a command that carries the trace of what caused it, such as a
    /// saga's command or an HTTP request's.
    ///
    /// Everything else is as for `execute`: one round trip on a cached
    /// aggregate, the conflict returned when the stream moved on.
    pub async fn execute_with_metadata(
        &self,
        stream_id: &StreamId,
        command: A::Command,
        metadata: &EventMetadata,
    ) -> Result<Executed<A>, RepositoryError<A::Error>> {
        self.execute_decided(stream_id, command, Some(metadata))
            .await
    }

    /// [`execute`](Self::execute) with the events' `metadata`, if any.
    async fn execute_decided(
        &self,
        stream_id: &StreamId,
        command: A::Command,
        metadata: Option<&EventMetadata>,
    ) -> Result<Executed<A>, RepositoryError<A::Error>> {
        // Commands of this process on one stream take turns, so the
        // second decides on what the first appended instead of loading and
        // conflicting.
        let turn = match &self.hot {
            Some(hot) => Some(hot.turn(stream_id).await),
            None => None,
        };
        let cached = self.hot.as_ref().and_then(|hot| hot.take(stream_id));
        let from_cache = cached.is_some();
        let (mut state, version, known, decision, appended) = match cached {
            Some((state, version, known)) => {
                let (decision, batch) = decide(&state, version, command, &self.env, metadata);
                let appended = match batch {
                    Some((expected, batch)) => Some(
                        self.append_decided(stream_id, version, known, expected, batch)
                            .await,
                    ),
                    None => None,
                };
                (state, version, known, decision, appended)
            }
            None => {
                self.load_decide_append(stream_id, command, metadata)
                    .await?
            }
        };
        let events = match decision {
            Decision::Rejected(error) => {
                self.keep_hot(stream_id, state, version, known);
                return Err(RepositoryError::Rejected(error));
            }
            Decision::Unencodable(error) => {
                self.keep_hot(stream_id, state, version, known);
                return Err(RepositoryError::Store(error));
            }
            Decision::Nothing => {
                if let Some(hot) = &self.hot {
                    hot.put(stream_id, hot.clone_state(&state), version, known);
                }
                return Ok(Executed {
                    events: Vec::new(),
                    state,
                    version,
                    position: None,
                });
            }
            Decision::Append(events) => events,
        };
        // On any failure the entry stays out of the cache: after a
        // conflict it is stale, and after a lost connection the append may
        // have been written.
        let outcome = appended.unwrap_or_else(|| {
            Err(EventStoreError::Encode {
                reason: "the repository decided to append but did not".to_owned(),
            })
        });
        if cached_conflict(from_cache, &outcome) {
            tracing::debug!(%stream_id, version, "hot aggregate was stale; dropped");
        }
        let outcome = outcome?;
        for event in &events {
            state.apply(event);
        }
        // The store confirmed this version: known from now on.
        if let Some(hot) = &self.hot {
            hot.put(
                stream_id,
                hot.clone_state(&state),
                outcome.stream_version,
                true,
            );
        }
        drop(turn);
        if self.snapshots.due(version, outcome.stream_version) {
            self.save_snapshot(stream_id, &state, outcome.stream_version)
                .await?;
        }
        Ok(Executed {
            events,
            state,
            version: outcome.stream_version,
            position: Some(outcome.last_position),
        })
    }

    /// Loads, decides and appends through
    /// [`replay_and_append`](EventStore::replay_and_append) (for
    /// PostgreSQL, on one connection). When the replay fails on the data,
    /// or its snapshot does not deserialize, it loads the way
    /// [`load`](Self::load) does, then decides and appends.
    async fn load_decide_append(
        &self,
        stream_id: &StreamId,
        command: A::Command,
        metadata: Option<&EventMetadata>,
    ) -> Result<Stepped<A>, EventStoreError> {
        let mut step = Step {
            stream_id,
            upcasters: &self.upcasters,
            env: &self.env,
            metadata,
            rebuild: Rebuild::new(),
            command: Some(command),
            decision: None,
        };
        let result = self
            .store
            .replay_and_append(stream_id, Some(A::SNAPSHOT_VERSION), &mut step)
            .await;
        if let Some(decision) = step.decision {
            let appended = match decision {
                Decision::Append(_) => Some(result.and_then(|outcome| {
                    outcome.ok_or_else(|| EventStoreError::Encode {
                        reason: "the store did not append the decided events".to_owned(),
                    })
                })),
                _ => {
                    result?;
                    None
                }
            };
            let known = step.rebuild.is_known();
            let Rebuild { state, version, .. } = step.rebuild;
            return Ok((state, version, known, decision, appended));
        }
        // Failed on the data, or an unusable snapshot: the careful way.
        if let Err(error @ EventStoreError::Backend(_)) = result {
            return Err(error);
        }
        let command = step.command.take().ok_or_else(|| EventStoreError::Encode {
            reason: "the command was taken without a decision".to_owned(),
        })?;
        let loaded = self.load(stream_id).await?;
        let known = loaded.is_known();
        let Loaded { state, version, .. } = loaded;
        let (decision, batch) = decide(&state, version, command, &self.env, metadata);
        let appended = match batch {
            Some((expected, batch)) => Some(
                self.append_decided(stream_id, version, known, expected, batch)
                    .await,
            ),
            None => None,
        };
        Ok((state, version, known, decision, appended))
    }

    /// Appends a decided batch: with
    /// [`append_after`](EventStore::append_after) when the version it was
    /// decided on is `known` (the store showed it to exist, see
    /// [`KnownVersion`]), which spares the store a read of the stream's
    /// version; otherwise with [`append`](EventStore::append) and its
    /// expected-version check.
    async fn append_decided(
        &self,
        stream_id: &StreamId,
        version: u64,
        known: bool,
        expected: ExpectedVersion,
        batch: Vec<NewEvent>,
    ) -> Result<AppendOutcome, EventStoreError> {
        if known {
            self.store
                .append_after(stream_id, KnownVersion::new(version), batch)
                .await
        } else {
            self.store.append(stream_id, expected, batch).await
        }
    }

    /// Puts an unchanged state back into the hot cache, if there is one.
    fn keep_hot(&self, stream_id: &StreamId, state: A, version: u64, known: bool) {
        if let Some(hot) = &self.hot {
            hot.put(stream_id, state, version, known);
        }
    }

    /// Drops `stream_id` from the hot cache (see
    /// [`with_hot_aggregates`](Self::with_hot_aggregates)), e.g. after
    /// changing its stream behind the repository's back. Without a cache,
    /// does nothing.
    pub fn forget(&self, stream_id: &StreamId) {
        if let Some(hot) = &self.hot {
            hot.forget(stream_id);
        }
    }

    /// How many aggregates the hot cache holds (0 without one).
    pub fn hot_aggregates(&self) -> usize {
        self.hot.as_ref().map_or(0, HotAggregates::len)
    }

    /// [`execute`](Self::execute), retried up to `attempts` times in all
    /// when another writer appended first. Each attempt reloads the
    /// aggregate and decides again on the fresh state, so a command that is
    /// no longer valid is refused rather than forced through. With
    /// [`with_hot_aggregates`](Self::with_hot_aggregates), a stale cached
    /// aggregate shows as such a conflict, and the next attempt loads it
    /// from the store.
    pub async fn execute_with_retry(
        &self,
        stream_id: &StreamId,
        attempts: usize,
        command: impl Fn() -> A::Command,
    ) -> Result<Executed<A>, RepositoryError<A::Error>> {
        let mut attempt = 1;
        loop {
            match self.execute(stream_id, command()).await {
                Err(error) if error.is_conflict() && attempt < attempts => {
                    tracing::debug!(%stream_id, attempt, "concurrency conflict; retrying");
                    attempt += 1;
                }
                result => return result,
            }
        }
    }

    /// The stream's snapshot as a state and the version it reflects, if
    /// there is one of today's [`Aggregate::SNAPSHOT_VERSION`] that
    /// deserializes.
    pub(super) async fn usable_snapshot(
        &self,
        stream_id: &StreamId,
    ) -> Result<Option<(A, u64)>, EventStoreError> {
        let Some(snapshot) = self.store.load_snapshot(stream_id).await? else {
            return Ok(None);
        };
        if snapshot.schema_version != A::SNAPSHOT_VERSION {
            ignore_older_snapshot::<A>(stream_id, snapshot.schema_version);
            return Ok(None);
        }
        match serde_json::from_value(snapshot.state) {
            Ok(state) => Ok(Some((state, snapshot.stream_version))),
            Err(error) => {
                tracing::warn!(%stream_id, %error, "ignoring a snapshot that no longer deserializes");
                Ok(None)
            }
        }
    }

    async fn save_snapshot(
        &self,
        stream_id: &StreamId,
        state: &A,
        version: u64,
    ) -> Result<(), EventStoreError> {
        let state = serde_json::to_value(state).map_err(|error| EventStoreError::Encode {
            reason: format!("snapshot of {}: {error}", std::any::type_name::<A>()),
        })?;
        let snapshot = Snapshot {
            stream_id: stream_id.clone(),
            stream_version: version,
            schema_version: A::SNAPSHOT_VERSION,
            state,
            taken_at: self.clock.now(),
        };
        self.store.save_snapshot(&snapshot).await
    }
}

/// What `decide` made of a command.
enum Decision<A: Aggregate> {
    /// The aggregate refused it.
    Rejected(A::Error),
    /// It produced no events.
    Nothing,
    /// Its events could not be encoded.
    Unencodable(EventStoreError),
    /// These events, handed to the store to append.
    Append(Vec<A::Event>),
}

/// The state and version a command was decided on, whether that version
/// is known (see [`KnownVersion`]), the decision, and the append's result
/// when there was one.
type Stepped<A> = (
    A,
    u64,
    bool,
    Decision<A>,
    Option<Result<AppendOutcome, EventStoreError>>,
);

/// Decides `command` on `state` at `version`: the decision, and the batch
/// to append (with the expected version) when there is one.
fn decide<A: Aggregate>(
    state: &A,
    version: u64,
    command: A::Command,
    env: &A::Environment,
    metadata: Option<&EventMetadata>,
) -> (Decision<A>, Option<(ExpectedVersion, Vec<NewEvent>)>) {
    let events = match state.decide(command, env) {
        Ok(events) if events.is_empty() => return (Decision::Nothing, None),
        Ok(events) => events,
        Err(error) => return (Decision::Rejected(error), None),
    };
    let encoded = events.iter().map(|event| {
        let new = NewEvent::from_event(event)?;
        Ok(match metadata {
            Some(metadata) => new.with_metadata(metadata.clone()),
            None => new,
        })
    });
    match encoded.collect() {
        Ok(batch) => {
            let expected = if version == 0 {
                ExpectedVersion::NoStream
            } else {
                ExpectedVersion::Exact(version)
            };
            (Decision::Append(events), Some((expected, batch)))
        }
        Err(error) => (Decision::Unencodable(error), None),
    }
}

/// An aggregate being rebuilt from a replay.
struct Rebuild<A> {
    state: A,
    version: u64,
    snapshot_version: Option<u64>,
    events_replayed: usize,
    /// The replay started from a snapshot that does not deserialize.
    unusable: bool,
}

impl<A: Aggregate> Rebuild<A> {
    fn new() -> Self {
        Self {
            state: A::default(),
            version: 0,
            snapshot_version: None,
            events_replayed: 0,
            unusable: false,
        }
    }

    fn visit(
        &mut self,
        stream_id: &StreamId,
        upcasters: &Upcasters,
        item: Replayed<'_>,
    ) -> Result<(), EventStoreError> {
        match item {
            Replayed::Snapshot(snapshot) => match snapshot.state {
                None => ignore_older_snapshot::<A>(stream_id, snapshot.schema_version),
                Some(json) => match json.deserialize::<A>() {
                    Ok(restored) => {
                        self.state = restored;
                        self.version = snapshot.stream_version;
                        self.snapshot_version = (self.version > 0).then_some(self.version);
                    }
                    Err(error) => {
                        tracing::warn!(%stream_id, %error, "ignoring a snapshot that no longer deserializes");
                        self.unusable = true;
                    }
                },
            },
            Replayed::Event(_) if self.unusable => {}
            Replayed::Event(event) => {
                if let Some(decoded) = decode_replayed::<A::Event>(stream_id, &event, upcasters)? {
                    self.state.apply(&decoded);
                    self.events_replayed += 1;
                }
                self.version = event.stream_version;
            }
        }
        Ok(())
    }

    /// Whether the version is known (see [`KnownVersion`]): 0, or the
    /// version of an event read, not of a snapshot.
    fn is_known(&self) -> bool {
        self.snapshot_version != Some(self.version)
    }

    /// The loaded aggregate; `None` when the snapshot was unusable.
    fn loaded(self) -> Option<Loaded<A>> {
        (!self.unusable).then_some(Loaded {
            state: self.state,
            version: self.version,
            snapshot_version: self.snapshot_version,
            events_replayed: self.events_replayed,
        })
    }
}

/// A command run through [`EventStore::replay_and_append`]: the replay
/// rebuilds the aggregate, then the command is decided on it.
struct Step<'r, A: Aggregate> {
    stream_id: &'r StreamId,
    upcasters: &'r Upcasters,
    env: &'r A::Environment,
    /// The metadata of the events decided, if not none.
    metadata: Option<&'r EventMetadata>,
    rebuild: Rebuild<A>,
    command: Option<A::Command>,
    decision: Option<Decision<A>>,
}

impl<A: Aggregate> ReplayAndDecide for Step<'_, A> {
    fn visit(&mut self, item: Replayed<'_>) -> Result<(), EventStoreError> {
        self.rebuild.visit(self.stream_id, self.upcasters, item)
    }

    fn decide(&mut self) -> Option<(ExpectedVersion, Vec<NewEvent>)> {
        // An unusable snapshot: no decision; the repository loads again.
        if self.rebuild.unusable {
            return None;
        }
        let command = self.command.take()?;
        let (decision, batch) = decide(
            &self.rebuild.state,
            self.rebuild.version,
            command,
            self.env,
            self.metadata,
        );
        self.decision = Some(decision);
        batch
    }
}

fn ignore_older_snapshot<A: Aggregate>(stream_id: &StreamId, stored: u32) {
    tracing::info!(
        %stream_id,
        stored,
        current = A::SNAPSHOT_VERSION,
        "ignoring a snapshot of an older state shape; replaying the stream"
    );
}

/// Whether `outcome` is a conflict of an append that expected a cached
/// version.
fn cached_conflict<T>(from_cache: bool, outcome: &Result<T, EventStoreError>) -> bool {
    from_cache && matches!(outcome, Err(EventStoreError::WrongExpectedVersion { .. }))
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use async_trait::async_trait;
    use serde::{Deserialize, Serialize};
    use tokio::sync::watch;

    use super::*;
    use crate::event::{Event, StoredEvent};
    use crate::event_store::{AppendOutcome, InMemoryEventStore, ReplayVisitor};

    #[test]
    fn snapshot_policy_fires_when_crossing_a_multiple() {
        let every = SnapshotPolicy::every(100);
        assert!(!every.due(0, 99));
        assert!(every.due(99, 100));
        assert!(every.due(98, 205));
        assert!(!every.due(100, 199));
        assert!(!SnapshotPolicy::every(0).due(0, 1000));
    }

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    enum Counted {
        Added { n: u64 },
        Reset,
    }
    impl Event for Counted {}

    #[derive(Debug, thiserror::Error)]
    #[error("refused")]
    struct Refused;

    /// A counter that remembers every number in order, so a lost, doubled
    /// or reordered event shows.
    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    struct Tally {
        seen: Vec<u64>,
    }

    /// `Some(n)`: add n (refused when n is 0); `None`: nothing happens.
    impl Aggregate for Tally {
        const KIND: &'static str = "tally";
        type Event = Counted;
        type Command = Option<u64>;
        type Error = Refused;
        type Environment = ();

        fn decide(&self, command: Option<u64>, _: &()) -> Result<Vec<Counted>, Refused> {
            match command {
                Some(0) => Err(Refused),
                Some(n) => Ok(vec![Counted::Added { n }]),
                None => Ok(vec![]),
            }
        }

        fn apply(&mut self, event: &Counted) {
            match event {
                Counted::Added { n } => self.seen.push(*n),
                Counted::Reset => self.seen.clear(),
            }
        }
    }

    /// An in-memory store that counts replays and appends.
    #[derive(Clone, Default)]
    struct Counting {
        inner: InMemoryEventStore,
        replays: Arc<AtomicUsize>,
        appends: Arc<AtomicUsize>,
        appends_after: Arc<AtomicUsize>,
    }

    impl Counting {
        fn replays(&self) -> usize {
            self.replays.load(Ordering::SeqCst)
        }
        fn appends(&self) -> usize {
            self.appends.load(Ordering::SeqCst)
        }
        fn appends_after(&self) -> usize {
            self.appends_after.load(Ordering::SeqCst)
        }
    }

    #[async_trait]
    impl EventStore for Counting {
        async fn append(
            &self,
            stream_id: &StreamId,
            expected: ExpectedVersion,
            events: Vec<NewEvent>,
        ) -> Result<AppendOutcome, EventStoreError> {
            self.appends.fetch_add(1, Ordering::SeqCst);
            // A round trip: other commands run meanwhile.
            tokio::task::yield_now().await;
            self.inner.append(stream_id, expected, events).await
        }
        async fn append_after(
            &self,
            stream_id: &StreamId,
            version: KnownVersion,
            events: Vec<NewEvent>,
        ) -> Result<AppendOutcome, EventStoreError> {
            self.appends_after.fetch_add(1, Ordering::SeqCst);
            tokio::task::yield_now().await;
            self.inner.append_after(stream_id, version, events).await
        }
        async fn append_to_streams(
            &self,
            appends: Vec<crate::event_store::StreamAppend>,
        ) -> Result<Vec<AppendOutcome>, EventStoreError> {
            self.appends.fetch_add(1, Ordering::SeqCst);
            self.inner.append_to_streams(appends).await
        }
        async fn load_stream(
            &self,
            stream_id: &StreamId,
            from_version: u64,
        ) -> Result<Vec<StoredEvent>, EventStoreError> {
            self.inner.load_stream(stream_id, from_version).await
        }
        async fn stream_version(&self, stream_id: &StreamId) -> Result<u64, EventStoreError> {
            self.inner.stream_version(stream_id).await
        }
        async fn replay(
            &self,
            stream_id: &StreamId,
            snapshot_schema: Option<u32>,
            visit: &mut ReplayVisitor<'_>,
        ) -> Result<(), EventStoreError> {
            self.replays.fetch_add(1, Ordering::SeqCst);
            self.inner.replay(stream_id, snapshot_schema, visit).await
        }
        async fn read_all(
            &self,
            after: Position,
            limit: usize,
        ) -> Result<Vec<StoredEvent>, EventStoreError> {
            self.inner.read_all(after, limit).await
        }
        async fn save_snapshot(&self, snapshot: &Snapshot) -> Result<(), EventStoreError> {
            self.inner.save_snapshot(snapshot).await
        }
        async fn load_snapshot(
            &self,
            stream_id: &StreamId,
        ) -> Result<Option<Snapshot>, EventStoreError> {
            self.inner.load_snapshot(stream_id).await
        }
        fn subscribe(&self) -> watch::Receiver<u64> {
            self.inner.subscribe()
        }
    }

    fn stream(n: u64) -> StreamId {
        StreamId::for_aggregate(Tally::KIND, n).unwrap()
    }

    async fn full_replay(store: &impl EventStore, id: &StreamId) -> Tally {
        let mut tally = Tally::default();
        for event in store.load_stream(id, 0).await.unwrap() {
            if let Some(event) = decode::<Counted>(&event, &Upcasters::new()).unwrap() {
                tally.apply(&event);
            }
        }
        tally
    }

    #[tokio::test]
    async fn a_load_through_replay_equals_the_thorough_load() {
        let store = InMemoryEventStore::new();
        let repository = AggregateRepository::<Tally, _>::new(store.clone(), ())
            .with_snapshots(SnapshotPolicy::every(3));
        let id = stream(1);
        for n in 1..=7 {
            repository.execute(&id, Some(n)).await.unwrap();
        }
        let loaded = repository.load(&id).await.unwrap();
        assert_eq!(loaded, repository.load_thoroughly(&id).await.unwrap());
        assert_eq!(loaded.state.seen, (1..=7).collect::<Vec<_>>());
        assert_eq!(loaded.version, 7);
        assert_eq!(loaded.snapshot_version, Some(6));
        assert_eq!(loaded.events_replayed, 1);
    }

    #[tokio::test]
    async fn unusable_snapshots_are_ignored_and_the_stream_replayed() {
        let store = InMemoryEventStore::new();
        let repository = AggregateRepository::<Tally, _>::new(store.clone(), ());
        let id = stream(2);
        for n in 1..=4 {
            repository.execute(&id, Some(n)).await.unwrap();
        }
        for (schema_version, state) in [
            (
                Tally::SNAPSHOT_VERSION + 1,
                serde_json::json!({ "seen": [9] }),
            ),
            (
                Tally::SNAPSHOT_VERSION,
                serde_json::json!({ "no": "such shape" }),
            ),
        ] {
            store
                .save_snapshot(&Snapshot {
                    stream_id: id.clone(),
                    stream_version: 3,
                    schema_version,
                    state,
                    taken_at: chrono::Utc::now(),
                })
                .await
                .unwrap();
            let loaded = repository.load(&id).await.unwrap();
            assert_eq!(loaded.state.seen, [1, 2, 3, 4]);
            assert_eq!(loaded.snapshot_version, None);
            assert_eq!(loaded.events_replayed, 4);
        }
    }

    #[tokio::test]
    async fn a_replay_that_fails_on_the_data_reports_the_thorough_error() {
        let store = InMemoryEventStore::new();
        let id = stream(3);
        let bad = NewEvent::new("Added", serde_json::json!({ "n": "not a number" }));
        store
            .append(&id, ExpectedVersion::NoStream, vec![bad])
            .await
            .unwrap();
        let repository = AggregateRepository::<Tally, _>::new(store.clone(), ());
        let error = repository.load(&id).await.unwrap_err();
        assert!(
            matches!(&error, EventStoreError::Decode { stream_version: 1, event_type, .. } if event_type == "Added"),
            "{error:?}"
        );
    }

    #[tokio::test]
    async fn commands_decide_on_the_careful_load_when_the_replay_cannot() {
        let store = InMemoryEventStore::new();
        let repository = AggregateRepository::<Tally, _>::new(store.clone(), ());
        // A snapshot that no longer deserializes: the command still decides
        // on the full replay.
        let id = stream(7);
        for n in 1..=3 {
            repository.execute(&id, Some(n)).await.unwrap();
        }
        store
            .save_snapshot(&Snapshot {
                stream_id: id.clone(),
                stream_version: 2,
                schema_version: Tally::SNAPSHOT_VERSION,
                state: serde_json::json!({ "seen": "not a list" }),
                taken_at: chrono::Utc::now(),
            })
            .await
            .unwrap();
        let executed = repository.execute(&id, Some(4)).await.unwrap();
        assert_eq!(executed.state.seen, [1, 2, 3, 4]);
        assert_eq!(executed.version, 4);
        // An event that does not decode: the command fails with the error
        // the careful load reports, and writes nothing.
        let bad = stream(8);
        let event = NewEvent::new("Added", serde_json::json!({ "n": "not a number" }));
        store
            .append(&bad, ExpectedVersion::NoStream, vec![event])
            .await
            .unwrap();
        let error = repository.execute(&bad, Some(1)).await.unwrap_err();
        assert!(
            matches!(
                &error,
                RepositoryError::Store(EventStoreError::Decode {
                    stream_version: 1,
                    ..
                })
            ),
            "{error:?}"
        );
        assert_eq!(store.stream_version(&bad).await.unwrap(), 1);
    }

    #[tokio::test]
    async fn hot_aggregates_serve_the_next_command_without_loading() {
        let store = Counting::default();
        let repository =
            AggregateRepository::<Tally, _>::new(store.clone(), ()).with_hot_aggregates(8);
        let id = stream(4);
        for n in 1..=5 {
            let executed = repository.execute(&id, Some(n)).await.unwrap();
            assert_eq!(executed.version, n);
        }
        assert_eq!(store.replays(), 1, "only the first command loads");
        assert_eq!(
            (store.appends(), store.appends_after()),
            (1, 4),
            "the first appends through replay_and_append, the others after \
             the version the store confirmed"
        );
        assert_eq!(repository.hot_aggregates(), 1);
        // Refused and empty commands keep the entry.
        assert!(matches!(
            repository.execute(&id, Some(0)).await,
            Err(RepositoryError::Rejected(Refused))
        ));
        let nothing = repository.execute(&id, None).await.unwrap();
        assert_eq!((nothing.version, nothing.state.seen.len()), (5, 5));
        repository.execute(&id, Some(6)).await.unwrap();
        assert_eq!(store.replays(), 1);
        // `load` always reads the store.
        assert_eq!(
            repository.load(&id).await.unwrap().state.seen,
            [1, 2, 3, 4, 5, 6]
        );
        assert_eq!(store.replays(), 2);
        repository.forget(&id);
        assert_eq!(repository.hot_aggregates(), 0);
    }

    #[tokio::test]
    async fn events_carry_the_metadata_given_loaded_or_hot() {
        let store = Counting::default();
        let repository =
            AggregateRepository::<Tally, _>::new(store.clone(), ()).with_hot_aggregates(8);
        let id = stream(5);
        let traced = |n: u128| EventMetadata {
            correlation_id: Some(uuid::Uuid::from_u128(n)),
            causation_id: Some(uuid::Uuid::from_u128(n + 100)),
            headers: [("command-id".to_owned(), format!("c-{n}"))].into(),
        };
        // Loaded (the first command), then hot, then a plain `execute`.
        repository
            .execute_with_metadata(&id, Some(1), &traced(1))
            .await
            .unwrap();
        repository
            .execute_with_metadata(&id, Some(2), &traced(2))
            .await
            .unwrap();
        repository.execute(&id, Some(3)).await.unwrap();
        assert_eq!((store.replays(), store.appends_after()), (1, 2));
        let stored = store.load_stream(&id, 1).await.unwrap();
        let metadata: Vec<_> = stored.iter().map(|event| event.metadata.clone()).collect();
        assert_eq!(metadata, [traced(1), traced(2), EventMetadata::default()]);
        // A refused command writes nothing, whatever its metadata.
        assert!(
            repository
                .execute_with_metadata(&id, Some(0), &traced(4))
                .await
                .is_err()
        );
        assert_eq!(store.load_stream(&id, 1).await.unwrap().len(), 3);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_commands_on_a_hot_stream_take_turns_without_conflict() {
        let store = Counting::default();
        let repository = Arc::new(
            AggregateRepository::<Tally, _>::new(store.clone(), ()).with_hot_aggregates(8),
        );
        let id = stream(6);
        repository.execute(&id, Some(1)).await.unwrap();
        let mut tasks = tokio::task::JoinSet::new();
        for n in 2..=41 {
            let (repository, id) = (Arc::clone(&repository), id.clone());
            // Plain `execute`, no retry: a conflict would fail the test.
            tasks.spawn(async move { repository.execute(&id, Some(n)).await.map(|e| e.version) });
        }
        let mut versions = Vec::new();
        while let Some(joined) = tasks.join_next().await {
            versions.push(joined.unwrap().expect("no command conflicts"));
        }
        versions.sort_unstable();
        assert_eq!(versions, (2..=41).collect::<Vec<_>>());
        assert_eq!(store.replays(), 1, "only the very first command loaded");
        let mut seen = full_replay(&store, &id).await.seen;
        seen.sort_unstable();
        assert_eq!(seen, (1..=41).collect::<Vec<_>>());
        let hot = repository.hot.as_ref().unwrap();
        assert_eq!(hot.turns_in_use(), 0, "finished turns leave nothing behind");
    }

    #[tokio::test]
    async fn a_stale_hot_aggregate_is_a_conflict_then_reloaded() {
        let store = Counting::default();
        let hot = AggregateRepository::<Tally, _>::new(store.clone(), ()).with_hot_aggregates(8);
        let other = AggregateRepository::<Tally, _>::new(store.clone(), ());
        let id = stream(5);
        hot.execute(&id, Some(1)).await.unwrap();
        other.execute(&id, Some(2)).await.unwrap();

        // The cached version is 1, the stream is at 2: refused, entry gone.
        let error = hot.execute(&id, Some(3)).await.unwrap_err();
        assert!(error.is_conflict(), "{error:?}");
        assert_eq!(hot.hot_aggregates(), 0);
        assert_eq!(
            full_replay(&store, &id).await.seen,
            [1, 2],
            "nothing stale written"
        );

        // The next command loads afresh and decides on the fresh state.
        other.execute(&id, Some(4)).await.unwrap();
        let replays = store.replays();
        let executed = hot.execute_with_retry(&id, 3, || Some(5)).await.unwrap();
        assert_eq!(store.replays(), replays + 1);
        let stored = full_replay(&store, &id).await;
        assert_eq!(executed.state, stored);
        assert_eq!(stored.seen, [1, 2, 4, 5]);

        // execute_with_retry: the stale entry's conflict, then a reload.
        other.execute(&id, Some(6)).await.unwrap();
        let executed = hot.execute_with_retry(&id, 2, || Some(7)).await.unwrap();
        assert_eq!(executed.state.seen, [1, 2, 4, 5, 6, 7]);
        assert_eq!(full_replay(&store, &id).await, executed.state);
    }

    #[tokio::test]
    async fn only_versions_of_events_the_store_returned_are_appended_after() {
        let store = Counting::default();
        let id = stream(9);
        let writer = AggregateRepository::<Tally, _>::new(store.clone(), ())
            .with_snapshots(SnapshotPolicy::every(2));
        writer.execute(&id, Some(1)).await.unwrap();
        writer.execute(&id, Some(2)).await.unwrap();

        // A load that ends on the snapshot (version 2, no event after it)
        // does not make version 2 known: the next append checks it.
        let hot = AggregateRepository::<Tally, _>::new(store.clone(), ()).with_hot_aggregates(4);
        hot.execute(&id, None).await.unwrap();
        let (appends, after) = (store.appends(), store.appends_after());
        hot.execute(&id, Some(3)).await.unwrap();
        assert_eq!(
            (store.appends(), store.appends_after()),
            (appends + 1, after)
        );
        // The append confirmed version 3: the next one goes after it.
        hot.execute(&id, Some(4)).await.unwrap();
        assert_eq!(
            (store.appends(), store.appends_after()),
            (appends + 1, after + 1)
        );
        assert_eq!(full_replay(&store, &id).await.seen, [1, 2, 3, 4]);

        // A snapshot claiming a version the stream never reached (saved by
        // hand) is never trusted: the append expects that version, the
        // store refuses it, and nothing is written past the end.
        let bogus = stream(10);
        writer.execute(&bogus, Some(1)).await.unwrap();
        store
            .save_snapshot(&Snapshot {
                stream_id: bogus.clone(),
                stream_version: 10,
                schema_version: Tally::SNAPSHOT_VERSION,
                state: serde_json::json!({ "seen": [1] }),
                taken_at: chrono::Utc::now(),
            })
            .await
            .unwrap();
        let hot = AggregateRepository::<Tally, _>::new(store.clone(), ()).with_hot_aggregates(4);
        hot.execute(&bogus, None).await.unwrap();
        let error = hot.execute(&bogus, Some(2)).await.unwrap_err();
        assert!(
            matches!(
                error,
                RepositoryError::Store(EventStoreError::WrongExpectedVersion { actual: 1, .. })
            ),
            "{error:?}"
        );
        assert_eq!(store.stream_version(&bogus).await.unwrap(), 1);
    }

    #[tokio::test]
    async fn the_hot_cache_is_bounded() {
        let store = Counting::default();
        let repository =
            AggregateRepository::<Tally, _>::new(store.clone(), ()).with_hot_aggregates(3);
        for n in 1..=10 {
            repository.execute(&stream(100 + n), Some(n)).await.unwrap();
        }
        assert_eq!(repository.hot_aggregates(), 3);
        // The three most recent are hot, the others load.
        let before = store.replays();
        for n in 8..=10 {
            repository.execute(&stream(100 + n), Some(n)).await.unwrap();
        }
        assert_eq!(store.replays(), before);
        repository.execute(&stream(101), Some(1)).await.unwrap();
        assert_eq!(store.replays(), before + 1);
        let without =
            AggregateRepository::<Tally, _>::new(store.clone(), ()).with_hot_aggregates(0);
        without.execute(&stream(101), Some(1)).await.unwrap();
        assert_eq!(without.hot_aggregates(), 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn repositories_with_their_own_caches_lose_no_update() {
        let store = InMemoryEventStore::new();
        let id = stream(6);
        let mut writers = Vec::new();
        for writer in 0..4u64 {
            let repository =
                AggregateRepository::<Tally, _>::new(store.clone(), ()).with_hot_aggregates(4);
            let id = id.clone();
            writers.push(tokio::spawn(async move {
                for k in 0..50u64 {
                    let n = writer * 1_000 + k + 1;
                    repository
                        .execute_with_retry(&id, 1_000, || Some(n))
                        .await
                        .expect("retries until it lands");
                    tokio::task::yield_now().await;
                }
            }));
        }
        for writer in writers {
            writer.await.unwrap();
        }
        let stored = full_replay(&store, &id).await;
        assert_eq!(stored.seen.len(), 200, "every command landed once");
        let mut sorted = stored.seen.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), 200, "no command landed twice");
        for writer in 0..4u64 {
            let own: Vec<u64> = stored
                .seen
                .iter()
                .copied()
                .filter(|n| n / 1_000 == writer)
                .collect();
            assert_eq!(
                own,
                (1..=50).map(|k| writer * 1_000 + k).collect::<Vec<_>>()
            );
        }
        let fresh = AggregateRepository::<Tally, _>::new(store.clone(), ());
        assert_eq!(fresh.load(&id).await.unwrap().state, stored);
    }
}
