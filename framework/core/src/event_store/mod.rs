//! The [`EventStore`] trait: an append-only log of streams, readable per
//! stream and as one global, gap-free sequence; plus snapshots.
//!
//! Implementations: [`InMemoryEventStore`] here (the embedded default and
//! the fast test path) and `PostgresEventStore` in
//! `composable-rust-postgres`. Both pass the same conformance suite
//! (`composable_rust_testing::event_store_conformance`).

mod error;
mod in_memory;
mod known;
mod multi;
mod replay;

use std::sync::Arc;

use async_trait::async_trait;
use tokio::sync::watch;

pub use error::EventStoreError;
pub use in_memory::InMemoryEventStore;
pub use known::KnownVersion;
pub use multi::{MAX_STREAM_APPENDS, StreamAppend, check_stream_appends};
pub use replay::{
    JsonRef, ReplayAndDecide, ReplayVisitor, Replayed, ReplayedEvent, ReplayedSnapshot,
};

use crate::event::{ExpectedVersion, NewEvent, Position, Snapshot, StoredEvent, StreamId};

/// What an append wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendOutcome {
    /// The stream's version after the append (the last event's version).
    pub stream_version: u64,
    /// The global position of the first appended event.
    pub first_position: Position,
    /// The global position of the last appended event; wait for a
    /// projection to reach it to read your own writes.
    pub last_position: Position,
}

/// An append-only store of event streams.
///
/// Guarantees every implementation gives:
///
/// - **Optimistic concurrency.** [`append`](EventStore::append) writes only
///   if the stream is at the expected version; otherwise it returns
///   [`EventStoreError::WrongExpectedVersion`] and writes nothing.
/// - **Atomic batches.** All events of one append are written, or none;
///   so are all events of an
///   [`append_to_streams`](EventStore::append_to_streams), across its
///   streams.
/// - **Gap-free global order.** [`read_all`](EventStore::read_all) returns
///   events in [`Position`] order, and an event that becomes visible later
///   always has a position after every event already returned, so a reader
///   that remembers the last position it saw never misses one.
///
/// # Examples
///
/// ```
/// use composable_rust_core::event::{NewEvent, Position, StreamId};
/// use composable_rust_core::{EventStore, EventStoreError, ExpectedVersion, InMemoryEventStore};
/// use serde_json::json;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), EventStoreError> {
/// let store = InMemoryEventStore::new();
/// let account = StreamId::new("account-7")?;
///
/// let opened = vec![NewEvent::new("Opened", json!({ "owner": "Ada" }))];
/// store.append(&account, ExpectedVersion::NoStream, opened).await?;
///
/// // A writer that read version 0 is too late now: nothing is written.
/// let late = vec![NewEvent::new("Opened", json!({ "owner": "Bob" }))];
/// let conflict = store.append(&account, ExpectedVersion::NoStream, late).await;
/// assert!(matches!(conflict, Err(EventStoreError::WrongExpectedVersion { actual: 1, .. })));
///
/// let deposit = vec![NewEvent::new("Deposited", json!({ "amount": 25 }))];
/// store.append(&account, ExpectedVersion::Exact(1), deposit).await?;
/// let stream = store.load_stream(&account, 0).await?;
/// assert_eq!(stream.len(), 2);
/// assert_eq!(store.read_all(Position::START, 10).await?.len(), 2);
/// # Ok(())
/// # }
/// ```
#[async_trait]
pub trait EventStore: Send + Sync + 'static {
    /// Appends `events` to `stream_id` if the stream is at `expected`.
    async fn append(
        &self,
        stream_id: &StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendOutcome, EventStoreError>;

    /// Appends `events` to `stream_id` if the stream is still at `version`,
    /// a version this store reported for it ([`KnownVersion`]): the same
    /// as [`append`](EventStore::append) expecting
    /// [`version.expected()`](KnownVersion::expected), with the same
    /// outcome and the same [`EventStoreError::WrongExpectedVersion`]
    /// (nothing written) when another writer appended first.
    ///
    /// Since a stream is never behind a known version, a backend may skip
    /// reading the stream's version and let its unique key on (stream,
    /// version) refuse the append instead: PostgreSQL does. The
    /// [`AggregateRepository`](crate::AggregateRepository) appends with it
    /// whenever the version it decided on came from the store (hot
    /// aggregates included). The default calls
    /// [`append`](EventStore::append).
    async fn append_after(
        &self,
        stream_id: &StreamId,
        version: KnownVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendOutcome, EventStoreError> {
        self.append(stream_id, version.expected(), events).await
    }

    /// Appends to several streams in one commit: each share's events are
    /// written if its stream is at the share's expected version, and only
    /// if every other share is written too. Returns one outcome per share,
    /// in the order given.
    ///
    /// The events keep the order given (the shares', then each share's
    /// own) in the global order, next to each other: a follower of
    /// [`read_all`](EventStore::read_all) sees all of them or none, never
    /// one stream's without the others'.
    ///
    /// Use it when one decision changes two aggregates, and a crash
    /// between two appends would leave one changed and the other not: an
    /// order placed and the cart it empties. Prefer one aggregate per
    /// command otherwise; a saga coordinates changes that may happen at
    /// different times.
    ///
    /// # Errors
    ///
    /// Nothing is written on any error.
    /// [`EventStoreError::WrongExpectedVersion`] names the first share
    /// (in the order given) whose stream was not at its expected version;
    /// [`EventStoreError::InvalidStreamAppends`],
    /// [`EventStoreError::EmptyAppend`] and the payload checks are those
    /// of [`check_stream_appends`], run before anything is sent.
    async fn append_to_streams(
        &self,
        appends: Vec<StreamAppend>,
    ) -> Result<Vec<AppendOutcome>, EventStoreError>;

    /// The events of `stream_id` with version `>= from_version`, in version
    /// order (`from_version` 0 or 1 loads the whole stream). A stream that
    /// does not exist is empty.
    async fn load_stream(
        &self,
        stream_id: &StreamId,
        from_version: u64,
    ) -> Result<Vec<StoredEvent>, EventStoreError>;

    /// The stream's current version (0 if it does not exist).
    async fn stream_version(&self, stream_id: &StreamId) -> Result<u64, EventStoreError>;

    /// Replays `stream_id` for rebuilding state, handing each item to
    /// `visit` in order, borrowed (no [`StoredEvent`] is built):
    ///
    /// - when `snapshot_schema` is `Some(v)` and the stream has a snapshot,
    ///   first that snapshot, with its state only if its schema version is
    ///   `v` ([`ReplayedSnapshot::state`]);
    /// - then the events after that snapshot when its state was handed
    ///   over, or else every event of the stream, in version order.
    ///
    /// The [`AggregateRepository`](crate::AggregateRepository) loads
    /// aggregates with it. An error from `visit` stops the replay and is
    /// returned. What a replay reads is consistent: events appended during
    /// it are either all in it or not at all, as with
    /// [`load_stream`](EventStore::load_stream).
    ///
    /// The default calls [`load_snapshot`](EventStore::load_snapshot) and
    /// [`load_stream`](EventStore::load_stream) and hands over their
    /// results; a backend overrides it to read only these columns, in one
    /// round trip (PostgreSQL does). A backend's replay may skip checks of
    /// columns it does not read (a stored event's metadata):
    /// [`load_stream`](EventStore::load_stream) still reports those.
    async fn replay(
        &self,
        stream_id: &StreamId,
        snapshot_schema: Option<u32>,
        visit: &mut ReplayVisitor<'_>,
    ) -> Result<(), EventStoreError> {
        let mut from_version = 0;
        if let Some(schema) = snapshot_schema
            && let Some(snapshot) = self.load_snapshot(stream_id).await?
        {
            let usable = snapshot.schema_version == schema;
            visit(Replayed::Snapshot(ReplayedSnapshot {
                stream_version: snapshot.stream_version,
                schema_version: snapshot.schema_version,
                state: usable.then_some(JsonRef::Value(&snapshot.state)),
            }))?;
            if usable {
                from_version = snapshot.stream_version + 1;
            }
        }
        for event in self.load_stream(stream_id, from_version).await? {
            visit(Replayed::Event(ReplayedEvent {
                stream_version: event.stream_version,
                event_type: &event.event_type,
                schema_version: event.schema_version,
                payload: JsonRef::Value(&event.payload),
            }))?;
        }
        Ok(())
    }

    /// [`replay`](EventStore::replay) of `stream_id` into `command`, then,
    /// if the replay succeeded, [`append`](EventStore::append) of what
    /// `command` [decides](ReplayAndDecide::decide) (nothing when it returns
    /// `None`). Returns the append's outcome, if there was an append.
    ///
    /// The same as the two calls, except that a backend may run both on one
    /// connection: PostgreSQL does, so a command takes one connection from
    /// the pool instead of two (sqlx tests each connection it gets back, a
    /// round trip of its own). The
    /// [`AggregateRepository`](crate::AggregateRepository) executes commands
    /// with it. The default makes the two calls.
    async fn replay_and_append(
        &self,
        stream_id: &StreamId,
        snapshot_schema: Option<u32>,
        command: &mut (dyn ReplayAndDecide + '_),
    ) -> Result<Option<AppendOutcome>, EventStoreError> {
        self.replay(stream_id, snapshot_schema, &mut |item| command.visit(item))
            .await?;
        match command.decide() {
            Some((expected, events)) => self.append(stream_id, expected, events).await.map(Some),
            None => Ok(None),
        }
    }

    /// Up to `limit` events after `after`, in global order. Pass the last
    /// position you read to get the next page; [`Position::START`] reads
    /// from the beginning.
    async fn read_all(
        &self,
        after: Position,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, EventStoreError>;

    /// How many events [`read_all`](EventStore::read_all) would return after
    /// `after` right now (how far behind a follower at `after` is). The
    /// default pages through `read_all`; backends should count in place.
    async fn count_after(&self, after: Position) -> Result<u64, EventStoreError> {
        let mut count = 0;
        let mut cursor = after;
        loop {
            let page = self.read_all(cursor, 1_000).await?;
            let Some(last) = page.last() else {
                return Ok(count);
            };
            cursor = last.position;
            count += page.len() as u64;
        }
    }

    /// Stores `snapshot`, replacing the stream's previous one.
    async fn save_snapshot(&self, snapshot: &Snapshot) -> Result<(), EventStoreError>;

    /// The latest snapshot of `stream_id`, if any.
    async fn load_snapshot(
        &self,
        stream_id: &StreamId,
    ) -> Result<Option<Snapshot>, EventStoreError>;

    /// A receiver that changes whenever new events may be readable, so a
    /// follower can sleep until then instead of polling tightly. Wake-ups
    /// can be spurious; treat them as "read again".
    fn subscribe(&self) -> watch::Receiver<u64>;
}

impl std::fmt::Debug for dyn EventStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("dyn EventStore")
    }
}

#[async_trait]
impl<S: EventStore + ?Sized> EventStore for Arc<S> {
    async fn append(
        &self,
        stream_id: &StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendOutcome, EventStoreError> {
        (**self).append(stream_id, expected, events).await
    }

    async fn append_after(
        &self,
        stream_id: &StreamId,
        version: KnownVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendOutcome, EventStoreError> {
        (**self).append_after(stream_id, version, events).await
    }

    async fn append_to_streams(
        &self,
        appends: Vec<StreamAppend>,
    ) -> Result<Vec<AppendOutcome>, EventStoreError> {
        (**self).append_to_streams(appends).await
    }

    async fn load_stream(
        &self,
        stream_id: &StreamId,
        from_version: u64,
    ) -> Result<Vec<StoredEvent>, EventStoreError> {
        (**self).load_stream(stream_id, from_version).await
    }

    async fn stream_version(&self, stream_id: &StreamId) -> Result<u64, EventStoreError> {
        (**self).stream_version(stream_id).await
    }

    async fn replay(
        &self,
        stream_id: &StreamId,
        snapshot_schema: Option<u32>,
        visit: &mut ReplayVisitor<'_>,
    ) -> Result<(), EventStoreError> {
        (**self).replay(stream_id, snapshot_schema, visit).await
    }

    async fn replay_and_append(
        &self,
        stream_id: &StreamId,
        snapshot_schema: Option<u32>,
        command: &mut (dyn ReplayAndDecide + '_),
    ) -> Result<Option<AppendOutcome>, EventStoreError> {
        (**self)
            .replay_and_append(stream_id, snapshot_schema, command)
            .await
    }

    async fn read_all(
        &self,
        after: Position,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, EventStoreError> {
        (**self).read_all(after, limit).await
    }

    async fn count_after(&self, after: Position) -> Result<u64, EventStoreError> {
        (**self).count_after(after).await
    }

    async fn save_snapshot(&self, snapshot: &Snapshot) -> Result<(), EventStoreError> {
        (**self).save_snapshot(snapshot).await
    }

    async fn load_snapshot(
        &self,
        stream_id: &StreamId,
    ) -> Result<Option<Snapshot>, EventStoreError> {
        (**self).load_snapshot(stream_id).await
    }

    fn subscribe(&self) -> watch::Receiver<u64> {
        (**self).subscribe()
    }
}
