//! [`AggregateRepository`]: load, decide, append, apply, with snapshots and
//! retries on concurrency conflicts.

use std::marker::PhantomData;
use std::sync::Arc;

use crate::clock::{Clock, SystemClock};
use crate::event::{ExpectedVersion, NewEvent, Position, Snapshot, StreamId, Upcasters, decode};
use crate::event_store::{EventStore, EventStoreError};

use super::Aggregate;

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
pub struct AggregateRepository<A: Aggregate, S> {
    store: S,
    env: A::Environment,
    upcasters: Upcasters,
    snapshots: SnapshotPolicy,
    clock: Arc<dyn Clock>,
    _aggregate: PhantomData<fn() -> A>,
}

impl<A: Aggregate, S> std::fmt::Debug for AggregateRepository<A, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AggregateRepository")
            .field("kind", &A::KIND)
            .field("snapshots", &self.snapshots)
            .finish_non_exhaustive()
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

    /// The stream id of the aggregate with `id`: `"{A::KIND}-{id}"`.
    pub fn stream_id(&self, id: impl std::fmt::Display) -> Result<StreamId, EventStoreError> {
        StreamId::for_aggregate(A::KIND, id)
    }

    /// Rebuilds the aggregate: the latest usable snapshot, then every event
    /// after it. A snapshot of another [`Aggregate::SNAPSHOT_VERSION`], or
    /// one that no longer deserializes, is ignored and the stream replayed.
    pub async fn load(&self, stream_id: &StreamId) -> Result<Loaded<A>, EventStoreError> {
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
    pub async fn execute(
        &self,
        stream_id: &StreamId,
        command: A::Command,
    ) -> Result<Executed<A>, RepositoryError<A::Error>> {
        let Loaded {
            mut state, version, ..
        } = self.load(stream_id).await?;
        let events = state
            .decide(command, &self.env)
            .map_err(RepositoryError::Rejected)?;
        if events.is_empty() {
            return Ok(Executed {
                events,
                state,
                version,
                position: None,
            });
        }
        let batch = events
            .iter()
            .map(NewEvent::from_event)
            .collect::<Result<Vec<_>, _>>()?;
        let expected = if version == 0 {
            ExpectedVersion::NoStream
        } else {
            ExpectedVersion::Exact(version)
        };
        let outcome = self.store.append(stream_id, expected, batch).await?;
        for event in &events {
            state.apply(event);
        }
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

    /// [`execute`](Self::execute), retried up to `attempts` times in all
    /// when another writer appended first. Each attempt reloads the
    /// aggregate and decides again on the fresh state, so a command that is
    /// no longer valid is refused rather than forced through.
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

    async fn usable_snapshot(
        &self,
        stream_id: &StreamId,
    ) -> Result<Option<(A, u64)>, EventStoreError> {
        let Some(snapshot) = self.store.load_snapshot(stream_id).await? else {
            return Ok(None);
        };
        if snapshot.schema_version != A::SNAPSHOT_VERSION {
            tracing::info!(
                %stream_id,
                stored = snapshot.schema_version,
                current = A::SNAPSHOT_VERSION,
                "ignoring a snapshot of an older state shape; replaying the stream"
            );
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_policy_fires_when_crossing_a_multiple() {
        let every = SnapshotPolicy::every(100);
        assert!(!every.due(0, 99));
        assert!(every.due(99, 100));
        assert!(every.due(98, 205));
        assert!(!every.due(100, 199));
        assert!(!SnapshotPolicy::every(0).due(0, 1000));
    }
}
