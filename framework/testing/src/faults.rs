//! Fault injection: wrappers that make real backends fail on purpose, with
//! the [`ErrorClass`] a test chooses, so tests can check what a runner
//! (projection manager, event publisher, saga runtime) does about each
//! kind of failure.
//!
//! | wrapper | wraps | can fail |
//! |---|---|---|
//! | [`FaultyProjectionStore`] | any [`ProjectionCheckpoint`] store | each [`Operation`]; the commit of a unit of work that writes a given key or applies a given event |
//! | [`FaultyEventStore`] | any [`EventStore`] (and so [`EventSource`](composable_rust_core::projection::EventSource)) | each [`EventStoreOperation`]; reads a stored event back as [`EventStoreError::CorruptEvent`] |
//! | [`FaultyEventBus`] | any [`EventBus`] | each [`BusOperation`] |
//! | [`FaultyDispatcher`] | nothing: records the commands it delivers | dispatch, with [`DispatchError::new`] or [`DispatchError::permanent`] |
//!
//! Each wrapper schedules faults the same way:
//!
//! - `fail_next(op, class, n)`: the next `n` calls of `op` fail;
//! - `fail_next_after(op, skip, class, n)`: `skip` calls succeed, then `n`
//!   fail (faults scheduled one after another run in that order);
//! - `fail_while(op, class)`: every call of `op` fails until [`heal`](FaultyProjectionStore::heal);
//! - `heal()`: every scheduled fault is gone;
//! - `calls(op)` and `injected(op)`: how many calls were made and how many
//!   were failed, for assertions.
//!
//! An injected failure fails *before* the wrapped backend is called, so, as
//! the error model promises, an error means nothing was written. It is a
//! real [`BackendError`] carrying an [`InjectedFault`]: code
//! [`FAULT_INJECTED`] (`CR-E0099`), the
//! class asked for, and a message that names the operation and says the
//! test injected it. (A corrupt stored event is reported as the event
//! store would report it: [`EventStoreError::CorruptEvent`], `CR-E0018`.)
//!
//! Clones of a wrapper share its schedule, so a test keeps one handle
//! while the runner under test holds another.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::fmt;
use std::hash::Hash;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use composable_rust_core::error::{BackendError, CodedError, ErrorClass, ErrorCode};
use composable_rust_core::event::{
    ExpectedVersion, NewEvent, Position, Snapshot, StoredEvent, StreamId,
};
use composable_rust_core::event_bus::{
    BusMessage, EventBus, EventBusError, MessageId, PendingMessage, SubscribeOptions, Subscription,
    Topic,
};
use composable_rust_core::event_store::{AppendOutcome, EventStore, EventStoreError, StreamAppend};
use composable_rust_core::projection::{
    DeadLetter, Delivery, ProjectionCheckpoint, ProjectionError, ProjectionStore, ProjectionTx,
    QueryableProjectionStore,
};
use composable_rust_core::saga::{CommandDispatcher, DispatchError, SagaCommand};
use tokio::sync::watch;
use uuid::Uuid;

use crate::codes::FAULT_INJECTED;

// ---- the injected error ----------------------------------------------------

/// The error behind every injected failure: what failed, with which class.
/// It crosses the core traits as a [`BackendError`]; get it back with
/// [`BackendError::downcast_ref`].
///
/// ```
/// use composable_rust_core::error::{CodedError, ErrorClass};
/// use composable_rust_testing::faults::InjectedFault;
///
/// let error = InjectedFault::new("projection store `commit`", ErrorClass::Transient).into_backend();
/// assert_eq!(error.code().as_str(), "CR-E0099");
/// assert!(error.is_transient());
/// assert!(error.to_string().contains("injected by the test"));
/// assert_eq!(error.downcast_ref::<InjectedFault>().unwrap().operation(), "projection store `commit`");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InjectedFault {
    operation: String,
    class: ErrorClass,
    detail: Option<String>,
}

impl InjectedFault {
    /// A failure of `operation` (as it should read in the message, e.g.
    /// ``"projection store `commit`"``) with `class`.
    pub fn new(operation: impl Into<String>, class: ErrorClass) -> Self {
        Self {
            operation: operation.into(),
            class,
            detail: None,
        }
    }

    /// The same failure, saying more about why it was injected.
    #[must_use]
    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    /// The operation that failed.
    pub fn operation(&self) -> &str {
        &self.operation
    }

    /// Why it was injected, beyond the operation, if the wrapper said.
    pub fn detail(&self) -> Option<&str> {
        self.detail.as_deref()
    }

    /// This failure as the [`BackendError`] a backend would return.
    pub fn into_backend(self) -> BackendError {
        BackendError::new(self)
    }
}

impl fmt::Display for InjectedFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "[{FAULT_INJECTED}] fault injected by the test: {} failed with a {} error",
            self.operation, self.class
        )?;
        if let Some(detail) = &self.detail {
            write!(f, " ({detail})")?;
        }
        f.write_str(
            "; nothing was written. It is not a real failure: a fault-injection wrapper \
             (composable_rust_testing::faults) was told to fail; call its heal() to stop",
        )
    }
}

impl std::error::Error for InjectedFault {}

impl CodedError for InjectedFault {
    fn code(&self) -> ErrorCode {
        FAULT_INJECTED
    }

    fn class(&self) -> ErrorClass {
        self.class
    }
}

// ---- the schedule shared by every wrapper ----------------------------------

/// Faults scheduled one after another with `fail_next(_after)`.
struct Planned {
    skip: u32,
    class: ErrorClass,
    times: u32,
}

#[derive(Default)]
struct OpState {
    planned: VecDeque<Planned>,
    failing: Option<ErrorClass>,
    calls: u64,
    injected: u64,
}

/// What to fail and when, per operation.
struct Schedule<Op> {
    ops: Mutex<HashMap<Op, OpState>>,
}

impl<Op> Default for Schedule<Op> {
    fn default() -> Self {
        Self {
            ops: Mutex::new(HashMap::new()),
        }
    }
}

impl<Op: Copy + Eq + Hash> Schedule<Op> {
    fn lock(&self) -> MutexGuard<'_, HashMap<Op, OpState>> {
        self.ops.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Counts a call of `op`; the class to fail it with, if it must fail.
    fn check(&self, op: Op) -> Option<ErrorClass> {
        let mut ops = self.lock();
        let state = ops.entry(op).or_default();
        state.calls += 1;
        let class = if let Some(class) = state.failing {
            Some(class)
        } else if let Some(front) = state.planned.front_mut() {
            if front.skip > 0 {
                front.skip -= 1;
                None
            } else {
                let class = front.class;
                front.times -= 1;
                if front.times == 0 {
                    state.planned.pop_front();
                }
                Some(class)
            }
        } else {
            None
        };
        if class.is_some() {
            state.injected += 1;
        }
        class
    }

    /// Counts a failure of `op` decided elsewhere (a refusal).
    fn count_injected(&self, op: Op) {
        self.lock().entry(op).or_default().injected += 1;
    }

    fn fail_next_after(&self, op: Op, skip: u32, class: ErrorClass, times: u32) {
        if times == 0 {
            return;
        }
        self.lock()
            .entry(op)
            .or_default()
            .planned
            .push_back(Planned { skip, class, times });
    }

    fn fail_while(&self, op: Op, class: ErrorClass) {
        self.lock().entry(op).or_default().failing = Some(class);
    }

    fn heal(&self) {
        for state in self.lock().values_mut() {
            state.planned.clear();
            state.failing = None;
        }
    }

    fn calls(&self, op: Op) -> u64 {
        self.lock().get(&op).map_or(0, |state| state.calls)
    }

    fn injected(&self, op: Op) -> u64 {
        self.lock().get(&op).map_or(0, |state| state.injected)
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

// ---- projection store --------------------------------------------------------

/// An operation of a projection store, to schedule faults on with
/// [`FaultyProjectionStore`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Operation {
    /// [`ProjectionStore::begin`].
    Begin,
    /// [`ProjectionStore::commit`] (nothing is committed when it fails).
    Commit,
    /// [`ProjectionStore::get`] (committed reads, also behind `exists`).
    Get,
    /// [`ProjectionTx::get`]: reads inside a unit of work.
    TxGet,
    /// [`ProjectionTx::save`], [`delete`](ProjectionTx::delete) and
    /// [`delete_prefix`](ProjectionTx::delete_prefix): writes inside a
    /// unit of work.
    TxWrite,
    /// [`ProjectionCheckpoint::load_position`].
    LoadPosition,
    /// [`ProjectionCheckpoint::save_position`].
    SavePosition,
    /// [`ProjectionCheckpoint::record_dead_letter`].
    RecordDeadLetter,
    /// [`ProjectionCheckpoint::remove_dead_letter`].
    RemoveDeadLetter,
    /// [`ProjectionCheckpoint::dead_letters`].
    DeadLetters,
    /// [`QueryableProjectionStore::query`].
    Query,
}

impl Operation {
    /// The operation's name, as the injected error's message shows it.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Begin => "begin",
            Self::Commit => "commit",
            Self::Get => "get",
            Self::TxGet => "tx.get",
            Self::TxWrite => "tx.save/delete",
            Self::LoadPosition => "load_position",
            Self::SavePosition => "save_position",
            Self::RecordDeadLetter => "record_dead_letter",
            Self::RemoveDeadLetter => "remove_dead_letter",
            Self::DeadLetters => "dead_letters",
            Self::Query => "query",
        }
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Default)]
struct StoreFaults {
    schedule: Schedule<Operation>,
    refused_keys: Mutex<BTreeSet<String>>,
    refused_events: Mutex<Vec<(Uuid, Position)>>,
}

impl StoreFaults {
    fn check(&self, op: Operation) -> Result<(), ProjectionError> {
        match self.schedule.check(op) {
            Some(class) => Err(ProjectionError::Backend(
                InjectedFault::new(format!("projection store `{op}`"), class).into_backend(),
            )),
            None => Ok(()),
        }
    }
}

/// A projection store that fails when the test says so: wraps any store
/// `S` (read model, checkpoints and dead letters) and injects failures of
/// a chosen [`ErrorClass`] into its [`Operation`]s, or refuses the commit
/// of the unit of work that writes a key ([`refuse_key`](Self::refuse_key))
/// or applies an event ([`refuse_event`](Self::refuse_event)), the way a
/// database refuses a key too long for its index.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use composable_rust_core::error::{CodedError, ErrorClass};
/// use composable_rust_core::{InMemoryProjectionStore, ProjectionStore};
/// use composable_rust_core::projection::ProjectionTx;
/// use composable_rust_testing::faults::{FaultyProjectionStore, Operation};
///
/// let store = FaultyProjectionStore::new(InMemoryProjectionStore::new());
///
/// // The database is down for the next two commits.
/// store.fail_next(Operation::Commit, ErrorClass::Transient, 2);
/// for _ in 0..2 {
///     let error = store.save("k", b"v").await.unwrap_err();
///     assert!(error.is_transient());
///     assert_eq!(error.code().as_str(), "CR-E0099");
/// }
/// store.save("k", b"v").await.unwrap();
///
/// // The store refuses one key for good: the commit of any unit of work
/// // that saves it fails with a permanent error, and writes nothing.
/// store.refuse_key("too-long");
/// let mut tx = store.begin().await.unwrap();
/// tx.save("too-long", b"x").await.unwrap();
/// assert_eq!(store.commit(tx).await.unwrap_err().class(), ErrorClass::Permanent);
/// assert_eq!(store.get("too-long").await.unwrap(), None);
///
/// // Until it is healed.
/// store.heal();
/// store.save("too-long", b"x").await.unwrap();
/// assert_eq!(store.injected(Operation::Commit), 3);
/// # }
/// ```
pub struct FaultyProjectionStore<S> {
    inner: S,
    faults: Arc<StoreFaults>,
}

impl<S> FaultyProjectionStore<S> {
    /// Wraps `inner`; nothing fails until the test schedules a fault.
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            faults: Arc::default(),
        }
    }

    /// The wrapped store, to read or check it without faults.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// The next `times` calls of `operation` fail with `class`.
    pub fn fail_next(&self, operation: Operation, class: ErrorClass, times: u32) {
        self.faults
            .schedule
            .fail_next_after(operation, 0, class, times);
    }

    /// The next `skip` calls of `operation` succeed, then `times` fail
    /// with `class` (to fail, say, the second commit of a sequence).
    pub fn fail_next_after(&self, operation: Operation, skip: u32, class: ErrorClass, times: u32) {
        self.faults
            .schedule
            .fail_next_after(operation, skip, class, times);
    }

    /// Every call of `operation` fails with `class` until [`heal`](Self::heal).
    pub fn fail_while(&self, operation: Operation, class: ErrorClass) {
        self.faults.schedule.fail_while(operation, class);
    }

    /// The store works again: every scheduled fault and every refusal is
    /// gone. The counts stay.
    pub fn heal(&self) {
        self.faults.schedule.heal();
        lock(&self.faults.refused_keys).clear();
        lock(&self.faults.refused_events).clear();
    }

    /// The commit of any unit of work that saves a value under `key` fails
    /// with a permanent error (the store refuses that key, say because it
    /// is too long for its index), until [`heal`](Self::heal). Deleting
    /// the key is not refused.
    pub fn refuse_key(&self, key: impl Into<String>) {
        lock(&self.faults.refused_keys).insert(key.into());
    }

    /// The commit of any unit of work that applies `event` fails with a
    /// permanent error, until [`heal`](Self::heal): a unit of work applies
    /// it when it moves a checkpoint from before the event's position to
    /// it or past it without dead-lettering it, or when it removes the
    /// event's dead letter and writes to the read model (a retry of the
    /// dead letter). Other units of work (the one that dead-letters it,
    /// rebuild resets, discarding its dead letter) commit.
    pub fn refuse_event(&self, event: &StoredEvent) {
        lock(&self.faults.refused_events).push((event.event_id, event.position));
    }

    /// How many times `operation` was called (failed calls included).
    pub fn calls(&self, operation: Operation) -> u64 {
        self.faults.schedule.calls(operation)
    }

    /// How many calls of `operation` were failed on purpose (refused
    /// commits included).
    pub fn injected(&self, operation: Operation) -> u64 {
        self.faults.schedule.injected(operation)
    }
}

impl<S: Clone> Clone for FaultyProjectionStore<S> {
    /// Another handle: same wrapped store (if `S` clones share data, as
    /// the in-memory store's do) and same schedule.
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            faults: Arc::clone(&self.faults),
        }
    }
}

impl<S: Default> Default for FaultyProjectionStore<S> {
    fn default() -> Self {
        Self::new(S::default())
    }
}

impl<S: fmt::Debug> fmt::Debug for FaultyProjectionStore<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FaultyProjectionStore")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

/// The unit of work of a [`FaultyProjectionStore`]: the wrapped store's own,
/// plus what the wrapper needs to know at commit (the keys saved, the
/// checkpoints moved, the dead letters recorded and removed).
pub struct FaultyTx<T> {
    inner: T,
    faults: Arc<StoreFaults>,
    written: Written,
}

/// What a unit of work did, as far as refusals care.
#[derive(Debug, Default)]
struct Written {
    saved: BTreeSet<String>,
    writes: usize,
    positions: BTreeMap<String, Position>,
    dead_lettered: HashSet<Uuid>,
    removed_dead_letters: HashSet<Uuid>,
}

impl<T> FaultyTx<T> {
    /// The wrapped store's unit of work.
    pub fn inner(&self) -> &T {
        &self.inner
    }

    /// The wrapped store's unit of work, to call its own methods.
    pub fn inner_mut(&mut self) -> &mut T {
        &mut self.inner
    }
}

impl<T> fmt::Debug for FaultyTx<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FaultyTx")
            .field("written", &self.written)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl<T: ProjectionTx> ProjectionTx for FaultyTx<T> {
    async fn save(&mut self, key: &str, data: &[u8]) -> Result<(), ProjectionError> {
        self.faults.check(Operation::TxWrite)?;
        self.inner.save(key, data).await?;
        self.written.saved.insert(key.to_owned());
        self.written.writes += 1;
        Ok(())
    }

    async fn get(&mut self, key: &str) -> Result<Option<Vec<u8>>, ProjectionError> {
        self.faults.check(Operation::TxGet)?;
        self.inner.get(key).await
    }

    async fn delete(&mut self, key: &str) -> Result<(), ProjectionError> {
        self.faults.check(Operation::TxWrite)?;
        self.inner.delete(key).await?;
        self.written.writes += 1;
        Ok(())
    }

    async fn delete_prefix(&mut self, prefix: &str) -> Result<u64, ProjectionError> {
        self.faults.check(Operation::TxWrite)?;
        let removed = self.inner.delete_prefix(prefix).await?;
        self.written.writes += 1;
        Ok(removed)
    }
}

impl<S: ProjectionCheckpoint> FaultyProjectionStore<S> {
    /// Why the store refuses to commit `tx`, if it does.
    async fn refusal(&self, tx: &Written) -> Result<Option<String>, ProjectionError> {
        let refused_key = {
            let refused = lock(&self.faults.refused_keys);
            tx.saved.iter().find(|key| refused.contains(*key)).cloned()
        };
        if let Some(key) = refused_key {
            return Ok(Some(format!(
                "the store refuses the unit of work that saves key `{key}` (refuse_key)"
            )));
        }
        let refused_events = lock(&self.faults.refused_events).clone();
        for (event_id, position) in refused_events {
            if tx.dead_lettered.contains(&event_id) {
                continue;
            }
            let retried = tx.removed_dead_letters.contains(&event_id) && tx.writes > 0;
            let mut applied = retried;
            for (projection, moved_to) in &tx.positions {
                if applied {
                    break;
                }
                if *moved_to >= position {
                    let committed = self
                        .inner
                        .load_position(projection)
                        .await?
                        .unwrap_or(Position::START);
                    applied = committed < position;
                }
            }
            if applied {
                return Ok(Some(format!(
                    "the store refuses the unit of work that applies event {event_id} at \
                     position {position} (refuse_event)"
                )));
            }
        }
        Ok(None)
    }
}

#[async_trait]
impl<S: ProjectionCheckpoint> ProjectionStore for FaultyProjectionStore<S> {
    type Tx = FaultyTx<S::Tx>;

    fn delivery(&self) -> Delivery {
        self.inner.delivery()
    }

    async fn begin(&self) -> Result<Self::Tx, ProjectionError> {
        self.faults.check(Operation::Begin)?;
        Ok(FaultyTx {
            inner: self.inner.begin().await?,
            faults: Arc::clone(&self.faults),
            written: Written::default(),
        })
    }

    async fn commit(&self, tx: Self::Tx) -> Result<(), ProjectionError> {
        self.faults.check(Operation::Commit)?;
        if let Some(detail) = self.refusal(&tx.written).await? {
            self.faults.schedule.count_injected(Operation::Commit);
            return Err(ProjectionError::Backend(
                InjectedFault::new("projection store `commit`", ErrorClass::Permanent)
                    .with_detail(detail)
                    .into_backend(),
            ));
        }
        self.inner.commit(tx.inner).await
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, ProjectionError> {
        self.faults.check(Operation::Get)?;
        self.inner.get(key).await
    }
}

#[async_trait]
impl<S: ProjectionCheckpoint> ProjectionCheckpoint for FaultyProjectionStore<S> {
    async fn load_position(&self, projection: &str) -> Result<Option<Position>, ProjectionError> {
        self.faults.check(Operation::LoadPosition)?;
        self.inner.load_position(projection).await
    }

    async fn save_position(
        &self,
        tx: &mut Self::Tx,
        projection: &str,
        position: Position,
    ) -> Result<(), ProjectionError> {
        self.faults.check(Operation::SavePosition)?;
        self.inner
            .save_position(&mut tx.inner, projection, position)
            .await?;
        tx.written.positions.insert(projection.to_owned(), position);
        Ok(())
    }

    async fn record_dead_letter(
        &self,
        tx: &mut Self::Tx,
        letter: &DeadLetter,
    ) -> Result<(), ProjectionError> {
        self.faults.check(Operation::RecordDeadLetter)?;
        self.inner.record_dead_letter(&mut tx.inner, letter).await?;
        tx.written.dead_lettered.insert(letter.event.event_id);
        Ok(())
    }

    async fn remove_dead_letter(
        &self,
        tx: &mut Self::Tx,
        projection: &str,
        event_id: Uuid,
    ) -> Result<bool, ProjectionError> {
        self.faults.check(Operation::RemoveDeadLetter)?;
        let removed = self
            .inner
            .remove_dead_letter(&mut tx.inner, projection, event_id)
            .await?;
        tx.written.removed_dead_letters.insert(event_id);
        Ok(removed)
    }

    async fn dead_letters(&self, projection: &str) -> Result<Vec<DeadLetter>, ProjectionError> {
        self.faults.check(Operation::DeadLetters)?;
        self.inner.dead_letters(projection).await
    }
}

#[async_trait]
impl<S: QueryableProjectionStore + ProjectionCheckpoint> QueryableProjectionStore
    for FaultyProjectionStore<S>
{
    type Query = S::Query;
    type Output = S::Output;

    async fn query(&self, query: &Self::Query) -> Result<Self::Output, ProjectionError> {
        self.faults.check(Operation::Query)?;
        self.inner.query(query).await
    }
}

// ---- event store -------------------------------------------------------------

/// An operation of an event store, to schedule faults on with
/// [`FaultyEventStore`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EventStoreOperation {
    /// [`EventStore::append`] and [`EventStore::append_to_streams`]
    /// (nothing is appended when it fails).
    Append,
    /// [`EventStore::load_stream`].
    LoadStream,
    /// [`EventStore::stream_version`].
    StreamVersion,
    /// [`EventStore::read_all`], which is also
    /// [`EventSource::read_after`](composable_rust_core::projection::EventSource::read_after).
    ReadAll,
    /// [`EventStore::count_after`] (also the event source's).
    CountAfter,
    /// [`EventStore::save_snapshot`].
    SaveSnapshot,
    /// [`EventStore::load_snapshot`].
    LoadSnapshot,
}

impl EventStoreOperation {
    /// The operation's name, as the injected error's message shows it.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Append => "append",
            Self::LoadStream => "load_stream",
            Self::StreamVersion => "stream_version",
            Self::ReadAll => "read_all",
            Self::CountAfter => "count_after",
            Self::SaveSnapshot => "save_snapshot",
            Self::LoadSnapshot => "load_snapshot",
        }
    }
}

impl fmt::Display for EventStoreOperation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Default)]
struct EventStoreFaults {
    schedule: Schedule<EventStoreOperation>,
    /// Positions read back as corrupt, with the reason given.
    corrupt: Mutex<BTreeMap<Position, String>>,
}

impl EventStoreFaults {
    fn check(&self, op: EventStoreOperation) -> Result<(), EventStoreError> {
        match self.schedule.check(op) {
            Some(class) => Err(EventStoreError::Backend(
                InjectedFault::new(format!("event store `{op}`"), class).into_backend(),
            )),
            None => Ok(()),
        }
    }

    /// The error for the first corrupt event of `events`, and its index.
    fn first_corrupt(&self, events: &[StoredEvent]) -> Option<(usize, EventStoreError)> {
        let corrupt = lock(&self.corrupt);
        if corrupt.is_empty() {
            return None;
        }
        events.iter().enumerate().find_map(|(index, event)| {
            let reason = corrupt.get(&event.position)?;
            Some((
                index,
                EventStoreError::CorruptEvent {
                    position: event.position,
                    stream_id: event.stream_id.to_string(),
                    event_id: Some(event.event_id),
                    raw: serde_json::to_string(event).unwrap_or_default(),
                    reason: reason.clone(),
                },
            ))
        })
    }
}

/// An event store that fails when the test says so: wraps any
/// [`EventStore`] and injects failures of a chosen [`ErrorClass`] into its
/// [`EventStoreOperation`]s, or reads stored events back as corrupt
/// ([`corrupt`](Self::corrupt)), as PostgreSQL does for a row edited by
/// hand. Being an `EventStore`, it is also an event source for projection
/// managers, publishers and `SagaRuntime::catch_up`, and a store for the
/// saga runtime.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use composable_rust_core::error::{CodedError, ErrorClass};
/// use composable_rust_core::{EventStore, EventStoreError, ExpectedVersion, InMemoryEventStore};
/// use composable_rust_core::{NewEvent, Position, StreamId};
/// use composable_rust_testing::faults::{EventStoreOperation, FaultyEventStore};
///
/// let events = FaultyEventStore::new(InMemoryEventStore::new());
/// # let new_event = || NewEvent::new("Added", serde_json::json!({}));
/// let stream = StreamId::new("numbers").unwrap();
/// let first = events.append(&stream, ExpectedVersion::Any, vec![new_event()]).await.unwrap();
/// let second = events.append(&stream, ExpectedVersion::Any, vec![new_event()]).await.unwrap();
///
/// // The source is unreachable once.
/// events.fail_next(EventStoreOperation::ReadAll, ErrorClass::Transient, 1);
/// assert!(events.read_all(Position::START, 10).await.unwrap_err().is_transient());
/// assert_eq!(events.read_all(Position::START, 10).await.unwrap().len(), 2);
///
/// // The second event's row is corrupt: reads stop before it, then report it.
/// events.corrupt(second.last_position);
/// assert_eq!(events.read_all(Position::START, 10).await.unwrap().len(), 1);
/// let error = events.read_all(first.last_position, 10).await.unwrap_err();
/// assert!(matches!(error, EventStoreError::CorruptEvent { .. }));
/// events.repair(second.last_position);
/// assert_eq!(events.read_all(first.last_position, 10).await.unwrap().len(), 1);
/// # }
/// ```
pub struct FaultyEventStore<S> {
    inner: S,
    faults: Arc<EventStoreFaults>,
}

impl<S> FaultyEventStore<S> {
    /// Wraps `inner`; nothing fails until the test schedules a fault.
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            faults: Arc::default(),
        }
    }

    /// The wrapped store, to append or read without faults.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// The next `times` calls of `operation` fail with `class`.
    pub fn fail_next(&self, operation: EventStoreOperation, class: ErrorClass, times: u32) {
        self.faults
            .schedule
            .fail_next_after(operation, 0, class, times);
    }

    /// The next `skip` calls of `operation` succeed, then `times` fail
    /// with `class` (to fail, say, the second append of a sequence).
    pub fn fail_next_after(
        &self,
        operation: EventStoreOperation,
        skip: u32,
        class: ErrorClass,
        times: u32,
    ) {
        self.faults
            .schedule
            .fail_next_after(operation, skip, class, times);
    }

    /// Every call of `operation` fails with `class` until [`heal`](Self::heal).
    pub fn fail_while(&self, operation: EventStoreOperation, class: ErrorClass) {
        self.faults.schedule.fail_while(operation, class);
    }

    /// The store works again: every scheduled fault is gone. Corrupt
    /// events stay corrupt until [`repair`](Self::repair)ed: they are
    /// bad data, not an outage.
    pub fn heal(&self) {
        self.faults.schedule.heal();
    }

    /// The stored event at `position` reads back as
    /// [`EventStoreError::CorruptEvent`] (with its stream, id and JSON as
    /// the raw content) until [`repair`](Self::repair)ed. As the PostgreSQL
    /// store does, `read_all` returns the events before it, and fails with
    /// `CorruptEvent` when it is the first event to return; `load_stream`
    /// fails for its whole stream. A position no event has changes nothing.
    pub fn corrupt(&self, position: Position) {
        lock(&self.faults.corrupt).insert(
            position,
            "the test marked it corrupt (FaultyEventStore::corrupt); repair() it to read it again"
                .to_owned(),
        );
    }

    /// The event at `position` reads back as it was stored (the row was
    /// fixed).
    pub fn repair(&self, position: Position) {
        lock(&self.faults.corrupt).remove(&position);
    }

    /// How many times `operation` was called (failed calls included).
    pub fn calls(&self, operation: EventStoreOperation) -> u64 {
        self.faults.schedule.calls(operation)
    }

    /// How many calls of `operation` were failed on purpose (corrupt
    /// events are not counted).
    pub fn injected(&self, operation: EventStoreOperation) -> u64 {
        self.faults.schedule.injected(operation)
    }
}

impl<S: Clone> Clone for FaultyEventStore<S> {
    /// Another handle: same wrapped store (if `S` clones share data, as
    /// the in-memory store's do), same schedule and corrupt events.
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            faults: Arc::clone(&self.faults),
        }
    }
}

impl<S: Default> Default for FaultyEventStore<S> {
    fn default() -> Self {
        Self::new(S::default())
    }
}

impl<S: fmt::Debug> fmt::Debug for FaultyEventStore<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FaultyEventStore")
            .field("inner", &self.inner)
            .field("corrupt", &*lock(&self.faults.corrupt))
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl<S: EventStore> EventStore for FaultyEventStore<S> {
    async fn append(
        &self,
        stream_id: &StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendOutcome, EventStoreError> {
        self.faults.check(EventStoreOperation::Append)?;
        self.inner.append(stream_id, expected, events).await
    }

    async fn append_to_streams(
        &self,
        appends: Vec<StreamAppend>,
    ) -> Result<Vec<AppendOutcome>, EventStoreError> {
        self.faults.check(EventStoreOperation::Append)?;
        self.inner.append_to_streams(appends).await
    }

    async fn load_stream(
        &self,
        stream_id: &StreamId,
        from_version: u64,
    ) -> Result<Vec<StoredEvent>, EventStoreError> {
        self.faults.check(EventStoreOperation::LoadStream)?;
        let events = self.inner.load_stream(stream_id, from_version).await?;
        match self.faults.first_corrupt(&events) {
            Some((_, error)) => Err(error),
            None => Ok(events),
        }
    }

    async fn stream_version(&self, stream_id: &StreamId) -> Result<u64, EventStoreError> {
        self.faults.check(EventStoreOperation::StreamVersion)?;
        self.inner.stream_version(stream_id).await
    }

    async fn read_all(
        &self,
        after: Position,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, EventStoreError> {
        self.faults.check(EventStoreOperation::ReadAll)?;
        let mut events = self.inner.read_all(after, limit).await?;
        match self.faults.first_corrupt(&events) {
            Some((0, error)) => Err(error),
            Some((index, _)) => {
                events.truncate(index);
                Ok(events)
            }
            None => Ok(events),
        }
    }

    async fn count_after(&self, after: Position) -> Result<u64, EventStoreError> {
        self.faults.check(EventStoreOperation::CountAfter)?;
        self.inner.count_after(after).await
    }

    async fn save_snapshot(&self, snapshot: &Snapshot) -> Result<(), EventStoreError> {
        self.faults.check(EventStoreOperation::SaveSnapshot)?;
        self.inner.save_snapshot(snapshot).await
    }

    async fn load_snapshot(
        &self,
        stream_id: &StreamId,
    ) -> Result<Option<Snapshot>, EventStoreError> {
        self.faults.check(EventStoreOperation::LoadSnapshot)?;
        self.inner.load_snapshot(stream_id).await
    }

    fn subscribe(&self) -> watch::Receiver<u64> {
        self.inner.subscribe()
    }
}

// ---- event bus ---------------------------------------------------------------

/// An operation of an event bus, to schedule faults on with
/// [`FaultyEventBus`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum BusOperation {
    /// [`EventBus::publish_batch`] and [`EventBus::publish`] (nothing is
    /// published when it fails).
    Publish,
    /// [`EventBus::subscribe`].
    Subscribe,
    /// [`EventBus::read`].
    Read,
    /// [`EventBus::topic_len`].
    TopicLen,
    /// [`EventBus::pending`].
    Pending,
}

impl BusOperation {
    /// The operation's name, as the injected error's message shows it.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Publish => "publish",
            Self::Subscribe => "subscribe",
            Self::Read => "read",
            Self::TopicLen => "topic_len",
            Self::Pending => "pending",
        }
    }
}

impl fmt::Display for BusOperation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An event bus that fails when the test says so: wraps any [`EventBus`]
/// and injects failures of a chosen [`ErrorClass`] into its
/// [`BusOperation`]s. Subscriptions it hands out are the wrapped bus's own.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use composable_rust_core::error::ErrorClass;
/// use composable_rust_core::event_bus::{EventBus, InMemoryEventBus, Topic};
/// use composable_rust_testing::faults::{BusOperation, FaultyEventBus};
///
/// let bus = FaultyEventBus::new(InMemoryEventBus::new());
/// bus.fail_while(BusOperation::Publish, ErrorClass::Configuration);
/// let error = bus.publish_batch(&Topic::new("orders").unwrap(), &[]).await.unwrap_err();
/// assert!(!error.is_transient());
/// # }
/// ```
pub struct FaultyEventBus<B> {
    inner: B,
    schedule: Arc<Schedule<BusOperation>>,
}

impl<B> FaultyEventBus<B> {
    /// Wraps `inner`; nothing fails until the test schedules a fault.
    pub fn new(inner: B) -> Self {
        Self {
            inner,
            schedule: Arc::default(),
        }
    }

    /// The wrapped bus, to read or subscribe without faults.
    pub fn inner(&self) -> &B {
        &self.inner
    }

    /// The next `times` calls of `operation` fail with `class`.
    pub fn fail_next(&self, operation: BusOperation, class: ErrorClass, times: u32) {
        self.schedule.fail_next_after(operation, 0, class, times);
    }

    /// The next `skip` calls of `operation` succeed, then `times` fail
    /// with `class`.
    pub fn fail_next_after(
        &self,
        operation: BusOperation,
        skip: u32,
        class: ErrorClass,
        times: u32,
    ) {
        self.schedule.fail_next_after(operation, skip, class, times);
    }

    /// Every call of `operation` fails with `class` until [`heal`](Self::heal).
    pub fn fail_while(&self, operation: BusOperation, class: ErrorClass) {
        self.schedule.fail_while(operation, class);
    }

    /// The bus works again: every scheduled fault is gone.
    pub fn heal(&self) {
        self.schedule.heal();
    }

    /// How many times `operation` was called (failed calls included).
    pub fn calls(&self, operation: BusOperation) -> u64 {
        self.schedule.calls(operation)
    }

    /// How many calls of `operation` were failed on purpose.
    pub fn injected(&self, operation: BusOperation) -> u64 {
        self.schedule.injected(operation)
    }

    fn check(&self, op: BusOperation) -> Result<(), EventBusError> {
        match self.schedule.check(op) {
            Some(class) => Err(EventBusError::Backend(
                InjectedFault::new(format!("event bus `{op}`"), class).into_backend(),
            )),
            None => Ok(()),
        }
    }
}

impl<B: Clone> Clone for FaultyEventBus<B> {
    /// Another handle: same wrapped bus and schedule.
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            schedule: Arc::clone(&self.schedule),
        }
    }
}

impl<B: fmt::Debug> fmt::Debug for FaultyEventBus<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FaultyEventBus")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl<B: EventBus> EventBus for FaultyEventBus<B> {
    async fn publish_batch(
        &self,
        topic: &Topic,
        events: &[StoredEvent],
    ) -> Result<Vec<MessageId>, EventBusError> {
        self.check(BusOperation::Publish)?;
        self.inner.publish_batch(topic, events).await
    }

    async fn subscribe(
        &self,
        options: SubscribeOptions,
    ) -> Result<Box<dyn Subscription>, EventBusError> {
        self.check(BusOperation::Subscribe)?;
        self.inner.subscribe(options).await
    }

    async fn read(
        &self,
        topic: &Topic,
        after: Option<&MessageId>,
        limit: usize,
    ) -> Result<Vec<BusMessage>, EventBusError> {
        self.check(BusOperation::Read)?;
        self.inner.read(topic, after, limit).await
    }

    async fn topic_len(&self, topic: &Topic) -> Result<u64, EventBusError> {
        self.check(BusOperation::TopicLen)?;
        self.inner.topic_len(topic).await
    }

    async fn pending(
        &self,
        topic: &Topic,
        group: &str,
    ) -> Result<Vec<PendingMessage>, EventBusError> {
        self.check(BusOperation::Pending)?;
        self.inner.pending(topic, group).await
    }
}

// ---- command dispatcher ------------------------------------------------------

/// A saga [`CommandDispatcher`] for tests: records every command it
/// delivers, and fails when the test says so. A transient fault is a
/// [`DispatchError::new`] (the runtime delivers the command again later);
/// a permanent one a [`DispatchError::permanent`]
/// ([`SagaError::Dispatch`](composable_rust_core::saga::SagaError::Dispatch)
/// then reports [`ErrorClass::Permanent`]). A dispatch error has no
/// configuration class: [`ErrorClass::Configuration`] gives a permanent
/// one. A failed command is not recorded as delivered.
///
/// Hand the runtime an `Arc<FaultyDispatcher<C>>` and keep a clone of the
/// `Arc` to schedule faults and check deliveries.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use composable_rust_core::error::ErrorClass;
/// use composable_rust_core::saga::{CommandDispatcher, CommandId, SagaCommand, SagaId};
/// use composable_rust_testing::faults::FaultyDispatcher;
///
/// let dispatcher = FaultyDispatcher::<String>::new();
/// let command = SagaCommand {
///     id: CommandId::new("saga-checkout-o1#1"),
///     saga_id: SagaId::new("o1").unwrap(),
///     command: "reserve".to_owned(),
/// };
/// dispatcher.fail_next(ErrorClass::Permanent, 1);
/// let error = dispatcher.dispatch(&command).await.unwrap_err();
/// assert_eq!(error.class(), ErrorClass::Permanent);
/// dispatcher.dispatch(&command).await.unwrap();
/// assert_eq!(dispatcher.commands(), ["reserve"]);
/// # }
/// ```
pub struct FaultyDispatcher<C> {
    schedule: Schedule<()>,
    delivered: Mutex<Vec<SagaCommand<C>>>,
}

impl<C> FaultyDispatcher<C> {
    /// A dispatcher that delivers (records) every command until the test
    /// schedules a fault.
    pub fn new() -> Self {
        Self {
            schedule: Schedule::default(),
            delivered: Mutex::new(Vec::new()),
        }
    }

    /// The next `times` dispatches fail with `class`.
    pub fn fail_next(&self, class: ErrorClass, times: u32) {
        self.schedule.fail_next_after((), 0, class, times);
    }

    /// The next `skip` dispatches succeed, then `times` fail with `class`.
    pub fn fail_next_after(&self, skip: u32, class: ErrorClass, times: u32) {
        self.schedule.fail_next_after((), skip, class, times);
    }

    /// Every dispatch fails with `class` until [`heal`](Self::heal).
    pub fn fail_while(&self, class: ErrorClass) {
        self.schedule.fail_while((), class);
    }

    /// Dispatching works again: every scheduled fault is gone.
    pub fn heal(&self) {
        self.schedule.heal();
    }

    /// How many dispatches were attempted (failed ones included).
    pub fn attempts(&self) -> u64 {
        self.schedule.calls(())
    }

    /// How many dispatches were failed on purpose.
    pub fn injected(&self) -> u64 {
        self.schedule.injected(())
    }
}

impl<C: Clone> FaultyDispatcher<C> {
    /// The commands delivered so far, in order, with their ids (a command
    /// delivered again after a failure to record its delivery appears
    /// twice, with the same id).
    pub fn delivered(&self) -> Vec<SagaCommand<C>> {
        lock(&self.delivered).clone()
    }

    /// The commands delivered so far, in order, without their ids.
    pub fn commands(&self) -> Vec<C> {
        lock(&self.delivered)
            .iter()
            .map(|delivered| delivered.command.clone())
            .collect()
    }
}

impl<C> Default for FaultyDispatcher<C> {
    fn default() -> Self {
        Self::new()
    }
}

impl<C> fmt::Debug for FaultyDispatcher<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FaultyDispatcher")
            .field("delivered", &lock(&self.delivered).len())
            .field("attempts", &self.attempts())
            .field("injected", &self.injected())
            .finish()
    }
}

#[async_trait]
impl<C: Clone + Send + Sync + 'static> CommandDispatcher<C> for FaultyDispatcher<C> {
    async fn dispatch(&self, command: &SagaCommand<C>) -> Result<(), DispatchError> {
        if let Some(class) = self.schedule.check(()) {
            let fault = InjectedFault::new(format!("dispatching command {}", command.id), class);
            return Err(match class {
                ErrorClass::Transient => DispatchError::new(fault.to_string()),
                ErrorClass::Permanent | ErrorClass::Configuration => {
                    DispatchError::permanent(fault.to_string())
                }
            });
        }
        lock(&self.delivered).push(SagaCommand {
            id: command.id.clone(),
            saga_id: command.saga_id.clone(),
            command: command.command.clone(),
        });
        Ok(())
    }
}
