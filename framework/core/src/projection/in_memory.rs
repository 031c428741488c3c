//! [`InMemoryProjectionStore`]: a complete projection store in memory.
//!
//! Commits are atomic (the read model, the checkpoint and dead letters of a
//! unit of work become visible together), so projections on it get
//! exactly-once effects, like on PostgreSQL. It is the store for examples
//! and for projection tests that run in microseconds.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use uuid::Uuid;

use super::error::ProjectionError;
use super::store::{
    DeadLetter, Delivery, ProjectionCheckpoint, ProjectionRequest, ProjectionStore, ProjectionTx,
};
use crate::event::Position;

/// A projection store in memory. Clones share the same data.
#[derive(Clone, Default)]
pub struct InMemoryProjectionStore {
    data: Arc<Mutex<Data>>,
}

#[derive(Default)]
struct Data {
    values: BTreeMap<String, Vec<u8>>,
    checkpoints: HashMap<String, Position>,
    dead_letters: BTreeMap<String, Vec<DeadLetter>>,
    requests: BTreeMap<String, Vec<ProjectionRequest>>,
}

/// A unit of work on an [`InMemoryProjectionStore`]: writes are buffered
/// and applied, in order, at commit. `get` sees the buffered writes.
pub struct InMemoryTx {
    data: Arc<Mutex<Data>>,
    ops: Vec<Op>,
}

impl std::fmt::Debug for InMemoryTx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InMemoryTx")
            .field("buffered_writes", &self.ops.len())
            .finish_non_exhaustive()
    }
}

enum Op {
    Save(String, Vec<u8>),
    Delete(String),
    DeletePrefix(String),
    Checkpoint(String, Position),
    DeadLetter(Box<DeadLetter>),
    RemoveDeadLetter(String, Uuid),
}

impl InMemoryProjectionStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many keys hold values.
    pub fn len(&self) -> usize {
        self.lock().values.len()
    }

    /// Whether no key holds a value.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether `key` holds a value.
    pub fn contains_key(&self, key: &str) -> bool {
        self.lock().values.contains_key(key)
    }

    /// Every key, in order.
    pub fn keys(&self) -> Vec<String> {
        self.lock().values.keys().cloned().collect()
    }

    /// Every key starting with `prefix` and its value, in key order.
    pub fn scan_prefix(&self, prefix: &str) -> Vec<(String, Vec<u8>)> {
        self.lock()
            .values
            .range(prefix.to_owned()..)
            .take_while(|(key, _)| key.starts_with(prefix))
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect()
    }

    /// Files `request` for `projection`'s manager, which takes it with
    /// [`take_requests`](ProjectionCheckpoint::take_requests) (filing the
    /// same request twice files it once).
    pub fn request(&self, projection: &str, request: ProjectionRequest) {
        let mut data = self.lock();
        let waiting = data.requests.entry(projection.to_owned()).or_default();
        if !waiting.contains(&request) {
            waiting.push(request);
        }
    }

    /// Removes everything: values, checkpoints and dead letters.
    pub fn clear(&self) {
        *self.lock() = Data::default();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Data> {
        lock(&self.data)
    }
}

fn lock(data: &Mutex<Data>) -> std::sync::MutexGuard<'_, Data> {
    data.lock().unwrap_or_else(PoisonError::into_inner)
}

impl std::fmt::Debug for InMemoryProjectionStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InMemoryProjectionStore")
            .field("keys", &self.len())
            .finish()
    }
}

#[async_trait]
impl ProjectionTx for InMemoryTx {
    async fn save(&mut self, key: &str, data: &[u8]) -> Result<(), ProjectionError> {
        self.ops.push(Op::Save(key.to_owned(), data.to_vec()));
        Ok(())
    }

    async fn get(&mut self, key: &str) -> Result<Option<Vec<u8>>, ProjectionError> {
        for op in self.ops.iter().rev() {
            match op {
                Op::Save(k, value) if k == key => return Ok(Some(value.clone())),
                Op::Delete(k) if k == key => return Ok(None),
                Op::DeletePrefix(prefix) if key.starts_with(prefix.as_str()) => return Ok(None),
                _ => {}
            }
        }
        Ok(lock(&self.data).values.get(key).cloned())
    }

    async fn delete(&mut self, key: &str) -> Result<(), ProjectionError> {
        self.ops.push(Op::Delete(key.to_owned()));
        Ok(())
    }

    async fn delete_prefix(&mut self, prefix: &str) -> Result<u64, ProjectionError> {
        let committed = lock(&self.data)
            .values
            .range(prefix.to_owned()..)
            .take_while(|(key, _)| key.starts_with(prefix))
            .count();
        self.ops.push(Op::DeletePrefix(prefix.to_owned()));
        Ok(committed as u64)
    }
}

#[async_trait]
impl ProjectionStore for InMemoryProjectionStore {
    type Tx = InMemoryTx;

    fn delivery(&self) -> Delivery {
        Delivery::ExactlyOnce
    }

    async fn begin(&self) -> Result<InMemoryTx, ProjectionError> {
        Ok(InMemoryTx {
            data: Arc::clone(&self.data),
            ops: Vec::new(),
        })
    }

    async fn commit(&self, tx: InMemoryTx) -> Result<(), ProjectionError> {
        let mut data = self.lock();
        for op in tx.ops {
            match op {
                Op::Save(key, value) => {
                    data.values.insert(key, value);
                }
                Op::Delete(key) => {
                    data.values.remove(&key);
                }
                Op::DeletePrefix(prefix) => data.values.retain(|key, _| !key.starts_with(&prefix)),
                Op::Checkpoint(projection, position) => {
                    data.checkpoints.insert(projection, position);
                }
                Op::DeadLetter(letter) => {
                    let letters = data
                        .dead_letters
                        .entry(letter.projection.clone())
                        .or_default();
                    letters.retain(|l| l.event.event_id != letter.event.event_id);
                    letters.push(*letter);
                }
                Op::RemoveDeadLetter(projection, event_id) => {
                    if let Some(letters) = data.dead_letters.get_mut(&projection) {
                        letters.retain(|l| l.event.event_id != event_id);
                    }
                }
            }
        }
        Ok(())
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, ProjectionError> {
        Ok(self.lock().values.get(key).cloned())
    }
}

#[async_trait]
impl ProjectionCheckpoint for InMemoryProjectionStore {
    async fn load_position(&self, projection: &str) -> Result<Option<Position>, ProjectionError> {
        Ok(self.lock().checkpoints.get(projection).copied())
    }

    async fn save_position(
        &self,
        tx: &mut InMemoryTx,
        projection: &str,
        position: Position,
    ) -> Result<(), ProjectionError> {
        tx.ops.push(Op::Checkpoint(projection.to_owned(), position));
        Ok(())
    }

    async fn record_dead_letter(
        &self,
        tx: &mut InMemoryTx,
        letter: &DeadLetter,
    ) -> Result<(), ProjectionError> {
        tx.ops.push(Op::DeadLetter(Box::new(letter.clone())));
        Ok(())
    }

    async fn remove_dead_letter(
        &self,
        tx: &mut InMemoryTx,
        projection: &str,
        event_id: Uuid,
    ) -> Result<bool, ProjectionError> {
        let exists = self
            .lock()
            .dead_letters
            .get(projection)
            .is_some_and(|letters| letters.iter().any(|l| l.event.event_id == event_id));
        tx.ops
            .push(Op::RemoveDeadLetter(projection.to_owned(), event_id));
        Ok(exists)
    }

    async fn dead_letters(&self, projection: &str) -> Result<Vec<DeadLetter>, ProjectionError> {
        Ok(self
            .lock()
            .dead_letters
            .get(projection)
            .cloned()
            .unwrap_or_default())
    }

    async fn take_requests(
        &self,
        projection: &str,
    ) -> Result<Vec<ProjectionRequest>, ProjectionError> {
        Ok(self.lock().requests.remove(projection).unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn writes_are_invisible_until_commit_and_dropped_on_rollback() {
        let store = InMemoryProjectionStore::new();
        let mut tx = store.begin().await.unwrap();
        tx.save("a", b"1").await.unwrap();
        assert_eq!(
            tx.get("a").await.unwrap(),
            Some(b"1".to_vec()),
            "a tx sees its own writes"
        );
        assert!(!store.contains_key("a"));
        drop(tx);
        assert!(store.is_empty());

        let mut tx = store.begin().await.unwrap();
        tx.save("a", b"1").await.unwrap();
        store
            .save_position(&mut tx, "p", Position::new(1, 1))
            .await
            .unwrap();
        store.commit(tx).await.unwrap();
        assert_eq!(store.get("a").await.unwrap(), Some(b"1".to_vec()));
        assert_eq!(
            store.load_position("p").await.unwrap(),
            Some(Position::new(1, 1))
        );
    }

    #[tokio::test]
    async fn delete_prefix_removes_only_that_prefix() {
        let store = InMemoryProjectionStore::new();
        for key in ["orders:1", "orders:2", "other:1"] {
            store.save(key, b"x").await.unwrap();
        }
        let mut tx = store.begin().await.unwrap();
        assert_eq!(tx.delete_prefix("orders:").await.unwrap(), 2);
        assert_eq!(tx.get("orders:1").await.unwrap(), None);
        tx.save("orders:3", b"y").await.unwrap();
        store.commit(tx).await.unwrap();
        assert_eq!(store.keys(), ["orders:3", "other:1"]);
        assert_eq!(store.scan_prefix("orders:").len(), 1);
    }
}
