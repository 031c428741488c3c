//! [`InMemoryEventStore`]: a complete event store in memory.
//!
//! It keeps every promise of the [`EventStore`] trait (optimistic
//! concurrency, atomic batches, gap-free global order), so examples and
//! tests can use it wherever production uses PostgreSQL. Everything is lost
//! when the process ends.
//!
//! It accepts exactly the events PostgreSQL accepts: appends are checked
//! with [`check_all_storable`](crate::event::check_all_storable) (depth,
//! size, NUL characters) before anything is written, so a payload that
//! works in tests works in production, and every stored event reads back.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use tokio::sync::watch;

use super::{AppendOutcome, EventStore, EventStoreError, StreamAppend, check_stream_appends};
use crate::clock::{Clock, SystemClock};
use crate::event::{
    DEFAULT_MAX_PAYLOAD_BYTES, ExpectedVersion, NewEvent, Position, Snapshot, StoredEvent, StreamId,
};
use crate::metrics::BACKEND_IN_MEMORY;

/// An event store in memory. Clones share the same events.
#[derive(Clone)]
pub struct InMemoryEventStore {
    inner: Arc<Mutex<Log>>,
    notify: Arc<watch::Sender<u64>>,
    clock: Arc<dyn Clock>,
}

#[derive(Default)]
struct Log {
    /// Every event, in global order.
    events: Vec<StoredEvent>,
    /// Indexes into `events`, per stream, in version order.
    streams: HashMap<StreamId, Vec<usize>>,
    snapshots: HashMap<StreamId, Snapshot>,
    event_ids: HashSet<uuid::Uuid>,
    commits: u64,
}

impl InMemoryEventStore {
    /// An empty store that stamps events with the system time.
    pub fn new() -> Self {
        let (notify, _) = watch::channel(0);
        Self {
            inner: Arc::new(Mutex::new(Log::default())),
            notify: Arc::new(notify),
            clock: Arc::new(SystemClock),
        }
    }

    /// This handle stamps the events it appends with `clock`'s time (other
    /// handles to the same store keep their own clock).
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// How many events the store holds.
    pub fn len(&self) -> usize {
        self.lock().events.len()
    }

    /// Whether the store holds no events.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Log> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Default for InMemoryEventStore {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for InMemoryEventStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InMemoryEventStore")
            .field("events", &self.len())
            .finish()
    }
}

impl InMemoryEventStore {
    /// The append itself; [`EventStore::append`] times it: a commit of
    /// one share.
    fn append_now(
        &self,
        stream_id: &StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendOutcome, EventStoreError> {
        let share = StreamAppend::new(stream_id.clone(), expected, events);
        let mut outcomes = self.append_to_streams_now(vec![share])?;
        Ok(outcomes.remove(0))
    }

    /// [`EventStore::append_to_streams`] itself; the trait method times it.
    fn append_to_streams_now(
        &self,
        appends: Vec<StreamAppend>,
    ) -> Result<Vec<AppendOutcome>, EventStoreError> {
        check_stream_appends(&appends, DEFAULT_MAX_PAYLOAD_BYTES)?;
        self.commit(appends)
    }

    /// Writes every share as one commit, after checking every expected
    /// version and event id under the lock (so nothing is written when
    /// one fails). The shares are well-formed: checked by the caller
    /// ([`check_stream_appends`]).
    fn commit(&self, appends: Vec<StreamAppend>) -> Result<Vec<AppendOutcome>, EventStoreError> {
        let recorded_at = self.clock.now();
        let outcomes = {
            let mut log = self.lock();
            let mut versions = Vec::with_capacity(appends.len());
            for share in &appends {
                let actual = log
                    .streams
                    .get(&share.stream_id)
                    .map_or(0, |indexes| indexes.len() as u64);
                if !share.expected.accepts(actual) {
                    return Err(EventStoreError::WrongExpectedVersion {
                        stream_id: share.stream_id.to_string(),
                        expected: share.expected,
                        actual,
                    });
                }
                versions.push(actual);
                for event in &share.events {
                    // An id twice in the request was refused by the
                    // caller's check; here, one already stored.
                    if log.event_ids.contains(&event.event_id) {
                        return Err(EventStoreError::DuplicateEventId {
                            event_id: event.event_id,
                        });
                    }
                }
            }
            log.commits += 1;
            let commit = log.commits;
            let mut outcomes = Vec::with_capacity(appends.len());
            for (share, mut version) in appends.into_iter().zip(versions) {
                let mut first_position = None;
                let mut position = Position::START;
                for event in share.events {
                    version += 1;
                    position = Position::new(commit, log.events.len() as u64 + 1);
                    first_position.get_or_insert(position);
                    let index = log.events.len();
                    log.event_ids.insert(event.event_id);
                    log.events.push(StoredEvent {
                        event_id: event.event_id,
                        stream_id: share.stream_id.clone(),
                        stream_version: version,
                        position,
                        event_type: event.event_type,
                        schema_version: event.schema_version,
                        payload: event.payload,
                        metadata: event.metadata,
                        recorded_at,
                    });
                    log.streams
                        .entry(share.stream_id.clone())
                        .or_default()
                        .push(index);
                }
                outcomes.push(AppendOutcome {
                    stream_version: version,
                    first_position: first_position.unwrap_or(position),
                    last_position: position,
                });
            }
            outcomes
        };
        self.notify.send_modify(|n| *n += 1);
        Ok(outcomes)
    }

    fn load_stream_now(
        &self,
        stream_id: &StreamId,
        from_version: u64,
    ) -> Result<Vec<StoredEvent>, EventStoreError> {
        let log = self.lock();
        let Some(indexes) = log.streams.get(stream_id) else {
            return Ok(Vec::new());
        };
        let skip = from_version.saturating_sub(1) as usize;
        Ok(indexes
            .iter()
            .skip(skip)
            .map(|&i| log.events[i].clone())
            .collect())
    }
}

#[async_trait]
impl EventStore for InMemoryEventStore {
    async fn append(
        &self,
        stream_id: &StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendOutcome, EventStoreError> {
        crate::trace::append_traced(stream_id, expected, events, |events| {
            let count = events.len();
            crate::metrics::observe_append(BACKEND_IN_MEMORY, count, async move {
                self.append_now(stream_id, expected, events)
            })
        })
        .await
    }

    async fn append_to_streams(
        &self,
        appends: Vec<StreamAppend>,
    ) -> Result<Vec<AppendOutcome>, EventStoreError> {
        crate::trace::append_to_streams_traced(appends, |appends| {
            let count = appends.iter().map(|share| share.events.len()).sum();
            crate::metrics::observe_append(BACKEND_IN_MEMORY, count, async move {
                self.append_to_streams_now(appends)
            })
        })
        .await
    }

    async fn load_stream(
        &self,
        stream_id: &StreamId,
        from_version: u64,
    ) -> Result<Vec<StoredEvent>, EventStoreError> {
        crate::metrics::observe_read(BACKEND_IN_MEMORY, "load_stream", async {
            self.load_stream_now(stream_id, from_version)
        })
        .await
    }

    async fn stream_version(&self, stream_id: &StreamId) -> Result<u64, EventStoreError> {
        Ok(self
            .lock()
            .streams
            .get(stream_id)
            .map_or(0, |indexes| indexes.len() as u64))
    }

    async fn read_all(
        &self,
        after: Position,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, EventStoreError> {
        crate::metrics::observe_read(BACKEND_IN_MEMORY, "read_all", async {
            let log = self.lock();
            let start = log.events.partition_point(|event| event.position <= after);
            Ok(log.events[start..].iter().take(limit).cloned().collect())
        })
        .await
    }

    async fn count_after(&self, after: Position) -> Result<u64, EventStoreError> {
        let log = self.lock();
        let start = log.events.partition_point(|event| event.position <= after);
        Ok((log.events.len() - start) as u64)
    }

    async fn save_snapshot(&self, snapshot: &Snapshot) -> Result<(), EventStoreError> {
        self.lock()
            .snapshots
            .insert(snapshot.stream_id.clone(), snapshot.clone());
        Ok(())
    }

    async fn load_snapshot(
        &self,
        stream_id: &StreamId,
    ) -> Result<Option<Snapshot>, EventStoreError> {
        Ok(self.lock().snapshots.get(stream_id).cloned())
    }

    fn subscribe(&self) -> watch::Receiver<u64> {
        self.notify.subscribe()
    }
}
