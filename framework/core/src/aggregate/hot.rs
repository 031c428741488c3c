//! Hot aggregates: a bounded, in-memory cache of recently used aggregates
//! (state and version) that lets the repository serve the next command
//! without loading. See
//! [`AggregateRepository::with_hot_aggregates`](super::AggregateRepository::with_hot_aggregates).
//!
//! The cache is only ever a guess: the append that follows a decision
//! expects the cached version, so the event store refuses it if anyone
//! (another process, another repository) appended since. The repository
//! then drops the entry and reports the conflict, and a retry loads the
//! stream afresh.
//!
//! Commands of one repository on one stream *take turns*
//! ([`HotAggregates::turn`]): the second waits until the first has
//! appended and put the entry back, then decides on the state the first
//! left. So in-process commands on a busy stream (a product's stock, say)
//! neither load nor conflict; only another process's append can make an
//! entry stale. An entry is also *taken out* while a command runs on it,
//! so a failed append (conflict, lost connection) leaves nothing behind to
//! be trusted.
//!
//! Each entry also says whether its version is *known*
//! ([`KnownVersion`](crate::event_store::KnownVersion)): the version of an
//! event the store returned or of an append it confirmed, true for nearly
//! every entry. Only a load that ended on a snapshot, with no event after
//! it, gives a version that is not (a snapshot is a copy, not the row
//! itself). The repository appends after a known version with
//! [`EventStore::append_after`](crate::EventStore::append_after), which
//! needs no read of the stream's version, and after any other with the
//! usual expected-version check.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::OwnedMutexGuard;

use crate::event::StreamId;

/// The cache: at most `capacity` entries, the least recently stored one
/// evicted first.
pub(super) struct HotAggregates<A> {
    capacity: usize,
    /// `A::clone`, so the repository needs no `Clone` bound elsewhere.
    clone: fn(&A) -> A,
    inner: Mutex<Lru<A>>,
    /// One lock per stream that a command is running on or waiting for;
    /// removed when nobody holds or waits for it.
    turns: Mutex<HashMap<StreamId, Arc<tokio::sync::Mutex<()>>>>,
}

/// A command's turn on a stream ([`HotAggregates::turn`]): the next
/// command on that stream starts when this is dropped.
pub(super) struct Turn<'c, A> {
    cache: &'c HotAggregates<A>,
    stream_id: StreamId,
    /// Held from the start, so a command dropped while it waits still
    /// cleans up after itself.
    lock: Option<Arc<tokio::sync::Mutex<()>>>,
    guard: Option<OwnedMutexGuard<()>>,
}

impl<A> Drop for Turn<'_, A> {
    fn drop(&mut self) {
        drop(self.guard.take());
        drop(self.lock.take());
        let mut turns = self
            .cache
            .turns
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        // Only the map holds the lock now: nobody runs or waits on this
        // stream (a waiter holds a clone), so the entry can go.
        if turns
            .get(&self.stream_id)
            .is_some_and(|lock| Arc::strong_count(lock) == 1)
        {
            turns.remove(&self.stream_id);
        }
    }
}

impl<A> HotAggregates<A> {
    pub(super) fn new(capacity: usize, clone: fn(&A) -> A) -> Self {
        Self {
            capacity,
            clone,
            inner: Mutex::new(Lru {
                entries: HashMap::with_capacity(capacity.min(1 << 16)),
                order: VecDeque::new(),
                tick: 0,
            }),
            turns: Mutex::new(HashMap::new()),
        }
    }

    /// Waits for the turn of `stream_id`: until every command of this
    /// cache that asked for it earlier has dropped its turn (a fair,
    /// first-come-first-served queue per stream).
    pub(super) async fn turn(&self, stream_id: &StreamId) -> Turn<'_, A> {
        let lock = {
            let mut turns = self.turns.lock().unwrap_or_else(PoisonError::into_inner);
            Arc::clone(turns.entry(stream_id.clone()).or_default())
        };
        let mut turn = Turn {
            cache: self,
            stream_id: stream_id.clone(),
            lock: Some(Arc::clone(&lock)),
            guard: None,
        };
        turn.guard = Some(lock.lock_owned().await);
        turn
    }

    /// How many streams have a command running or waiting (for tests).
    #[cfg(test)]
    pub(super) fn turns_in_use(&self) -> usize {
        self.turns
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    pub(super) fn capacity(&self) -> usize {
        self.capacity
    }

    /// A copy of `state`.
    pub(super) fn clone_state(&self, state: &A) -> A {
        (self.clone)(state)
    }

    /// Takes the entry of `stream_id` out of the cache, if there is one:
    /// its state, version, and whether that version is known.
    pub(super) fn take(&self, stream_id: &StreamId) -> Option<(A, u64, bool)> {
        let mut lru = self.lock();
        lru.entries
            .remove(stream_id)
            .map(|entry| (entry.state, entry.version, entry.known))
    }

    /// Stores `state` at `version` (`known` or not, see the module
    /// documentation) for `stream_id`, unless the cache holds a later
    /// version already; evicts the least recently stored entry when full.
    pub(super) fn put(&self, stream_id: &StreamId, state: A, version: u64, known: bool) {
        if self.capacity == 0 {
            return;
        }
        let mut lru = self.lock();
        if lru
            .entries
            .get(stream_id)
            .is_some_and(|entry| entry.version >= version)
        {
            return;
        }
        lru.tick += 1;
        let tick = lru.tick;
        lru.entries.insert(
            stream_id.clone(),
            Entry {
                state,
                version,
                known,
                tick,
            },
        );
        lru.order.push_back((stream_id.clone(), tick));
        while lru.entries.len() > self.capacity {
            lru.evict_oldest();
        }
        // Taken and replaced entries leave stale keys in `order`; keep it
        // within a constant factor of the live entries.
        if lru.order.len() > 2 * self.capacity + 16 {
            lru.compact();
        }
    }

    /// Drops the entry of `stream_id`, if any.
    pub(super) fn forget(&self, stream_id: &StreamId) {
        self.lock().entries.remove(stream_id);
    }

    /// How many aggregates the cache holds.
    pub(super) fn len(&self) -> usize {
        self.lock().entries.len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Lru<A>> {
        // The critical sections cannot panic half-way; a poisoned lock
        // still holds a consistent map.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

struct Lru<A> {
    entries: HashMap<StreamId, Entry<A>>,
    /// Keys in the order they were stored, with the tick they were stored
    /// at; a key whose entry has another tick (or none) is stale.
    order: VecDeque<(StreamId, u64)>,
    tick: u64,
}

struct Entry<A> {
    state: A,
    version: u64,
    /// `version` is a [`KnownVersion`](crate::event_store::KnownVersion).
    known: bool,
    tick: u64,
}

impl<A> Lru<A> {
    fn evict_oldest(&mut self) {
        while let Some((key, tick)) = self.order.pop_front() {
            if self
                .entries
                .get(&key)
                .is_some_and(|entry| entry.tick == tick)
            {
                self.entries.remove(&key);
                return;
            }
        }
    }

    fn compact(&mut self) {
        let entries = &self.entries;
        self.order
            .retain(|(key, tick)| entries.get(key).is_some_and(|entry| entry.tick == *tick));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: usize) -> StreamId {
        StreamId::new(format!("thing-{n}")).unwrap()
    }

    #[test]
    fn keeps_at_most_capacity_and_evicts_the_least_recently_stored() {
        let cache = HotAggregates::new(3, u32::clone);
        for n in 0..3 {
            cache.put(&id(n), n as u32, 1, true);
        }
        // Using 0 (take, put back) makes 1 the oldest.
        let (state, version, _) = cache.take(&id(0)).unwrap();
        cache.put(&id(0), state, version + 1, true);
        cache.put(&id(3), 3, 1, true);
        assert_eq!(cache.len(), 3);
        assert!(cache.take(&id(1)).is_none(), "1 was evicted");
        assert_eq!(cache.take(&id(0)), Some((0, 2, true)));
        assert_eq!(cache.take(&id(2)), Some((2, 1, true)));
        assert_eq!(cache.take(&id(3)), Some((3, 1, true)));
        assert_eq!(cache.len(), 0);
    }

    #[tokio::test]
    async fn turns_on_one_stream_queue_and_leave_nothing_behind() {
        let cache = HotAggregates::new(2, u32::clone);
        let first = cache.turn(&id(1)).await;
        // Another stream's turn does not wait for the first.
        drop(cache.turn(&id(2)).await);
        // The same stream's does, until the first is dropped.
        let waiting =
            tokio::time::timeout(std::time::Duration::from_millis(20), cache.turn(&id(1))).await;
        assert!(waiting.is_err(), "the second turn waited");
        // ... and a waiter dropped half-way cleaned up after itself.
        assert_eq!(cache.turns_in_use(), 1);
        drop(first);
        assert_eq!(cache.turns_in_use(), 0);
        drop(cache.turn(&id(1)).await);
        assert_eq!(cache.turns_in_use(), 0);
    }

    #[test]
    fn a_taken_entry_is_gone_until_put_back() {
        let cache = HotAggregates::new(2, u32::clone);
        cache.put(&id(1), 10, 5, true);
        assert_eq!(cache.take(&id(1)), Some((10, 5, true)));
        assert_eq!(cache.take(&id(1)), None);
        // Whether the version is known comes back as it was put.
        cache.put(&id(1), 10, 5, false);
        assert_eq!(cache.take(&id(1)), Some((10, 5, false)));
    }

    #[test]
    fn never_replaces_a_later_version_with_an_earlier_one() {
        let cache = HotAggregates::new(2, u32::clone);
        cache.put(&id(1), 7, 7, true);
        cache.put(&id(1), 6, 6, true);
        assert_eq!(cache.take(&id(1)), Some((7, 7, true)));
        cache.put(&id(1), 7, 7, true);
        cache.put(&id(1), 8, 8, true);
        assert_eq!(cache.take(&id(1)), Some((8, 8, true)));
    }

    #[test]
    fn forget_drops_an_entry_and_capacity_zero_keeps_nothing() {
        let cache = HotAggregates::new(2, u32::clone);
        cache.put(&id(1), 1, 1, true);
        cache.forget(&id(1));
        assert_eq!(cache.len(), 0);
        let none = HotAggregates::new(0, u32::clone);
        none.put(&id(1), 1, 1, true);
        assert_eq!(none.len(), 0);
    }

    #[test]
    fn the_order_queue_stays_bounded() {
        let cache = HotAggregates::new(4, u32::clone);
        for round in 0..1_000u64 {
            for n in 0..4 {
                let (state, version, _) = cache.take(&id(n)).unwrap_or((0, round, true));
                cache.put(&id(n), state + 1, version + 1, true);
            }
        }
        let lru = cache.lock();
        assert_eq!(lru.entries.len(), 4);
        assert!(lru.order.len() <= 2 * 4 + 16, "{}", lru.order.len());
    }
}
