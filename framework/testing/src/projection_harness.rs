//! [`ProjectionTestHarness`]: test a projection against the in-memory store
//! in microseconds: given these events, then the read model contains this.

use std::collections::HashMap;

use chrono::{TimeZone, Utc};
use composable_rust_core::event::encode;
use composable_rust_core::projection::ProjectionStoreExt;
use composable_rust_core::{
    Event, InMemoryProjectionStore, Position, Projection, ProjectionStore, StoredEvent, StreamId,
};
use serde::de::DeserializeOwned;

use crate::diff::diff;

/// Feeds events to a projection on an [`InMemoryProjectionStore`] and
/// asserts the read model.
///
/// Projections written against the generic
/// [`ProjectionTx`](composable_rust_core::projection::ProjectionTx) key-value API
/// can be tested here and run on PostgreSQL or Redis in production.
#[derive(Debug)]
pub struct ProjectionTestHarness<P: Projection<Store = InMemoryProjectionStore>> {
    projection: P,
    store: InMemoryProjectionStore,
    given: Vec<StoredEvent>,
    versions: HashMap<StreamId, u64>,
}

impl<P: Projection<Store = InMemoryProjectionStore>> ProjectionTestHarness<P> {
    /// A harness around `projection` with an empty store.
    pub fn new(projection: P) -> Self {
        Self {
            projection,
            store: InMemoryProjectionStore::new(),
            given: Vec::new(),
            versions: HashMap::new(),
        }
    }

    /// Appends `events` to `stream` (a fake event log with increasing
    /// versions and positions) and applies each one the projection handles,
    /// committing after each event. Panics if the projection fails.
    pub async fn given_events<E: Event>(
        &mut self,
        stream: &str,
        events: impl IntoIterator<Item = E>,
    ) -> &mut Self {
        let stream_id = StreamId::new(stream).unwrap_or_else(|error| panic!("{error}"));
        let stored: Vec<StoredEvent> = events
            .into_iter()
            .map(|event| {
                let encoded = encode(&event).unwrap_or_else(|error| panic!("{error}"));
                let version = self.versions.entry(stream_id.clone()).or_default();
                *version += 1;
                let sequence = self.given.len() as u64 + 1;
                let stored = StoredEvent::builder(encoded.event_type, encoded.payload)
                    .with_stream(stream_id.clone(), *version)
                    .with_position(Position::new(sequence, sequence))
                    .with_schema_version(encoded.schema_version)
                    .with_recorded_at(
                        Utc.timestamp_opt(1_735_689_600 + sequence as i64, 0)
                            .unwrap(),
                    )
                    .build();
                self.given.push(stored.clone());
                stored
            })
            .collect();
        apply_all(&self.projection, &self.store, &stored, 1).await;
        self
    }

    /// Asserts the read model has a value under `key`.
    #[track_caller]
    pub fn then_contains(&self, key: &str) -> &Self {
        assert!(
            self.store.contains_key(key),
            "the read model has no key `{key}`; it has {:?}",
            self.store.keys()
        );
        self
    }

    /// Asserts the read model has no value under `key`.
    #[track_caller]
    pub fn then_missing(&self, key: &str) -> &Self {
        assert!(
            !self.store.contains_key(key),
            "the read model still has key `{key}`"
        );
        self
    }

    /// The raw value under `key`.
    pub async fn get_data(&self, key: &str) -> Option<Vec<u8>> {
        self.store
            .get(key)
            .await
            .unwrap_or_else(|error| panic!("{error}"))
    }

    /// The JSON value under `key`, deserialized.
    pub async fn get_json<T: DeserializeOwned>(&self, key: &str) -> Option<T> {
        self.store
            .get_json(key)
            .await
            .unwrap_or_else(|error| panic!("{error}"))
    }

    /// The store, for any other assertion.
    pub fn store(&self) -> &InMemoryProjectionStore {
        &self.store
    }

    /// The events given so far, as stored.
    pub fn events(&self) -> &[StoredEvent] {
        &self.given
    }

    /// Asserts that applying every given event twice in a row gives the
    /// same read model as applying each once: the property an at-least-once
    /// store (one that may redeliver after a crash) needs.
    pub async fn assert_idempotent(&self) {
        let once = InMemoryProjectionStore::new();
        apply_all(&self.projection, &once, &self.given, 1).await;
        let twice = InMemoryProjectionStore::new();
        apply_all(&self.projection, &twice, &self.given, 2).await;
        let (once, twice) = (once.scan_prefix(""), twice.scan_prefix(""));
        assert!(
            once == twice,
            "the projection is not idempotent: applying each event twice gives another read model {}",
            diff(&printable(&once), &printable(&twice))
        );
    }

    /// Asserts that resetting the read model and replaying every event
    /// reproduces the read model (what a rebuild does).
    pub async fn assert_rebuild_matches(&self) {
        let before = self.store.scan_prefix("");
        let rebuilt = InMemoryProjectionStore::new();
        for (key, value) in &before {
            rebuilt
                .save(key, value)
                .await
                .unwrap_or_else(|error| panic!("{error}"));
        }
        let mut tx = rebuilt
            .begin()
            .await
            .unwrap_or_else(|error| panic!("{error}"));
        self.projection
            .reset(&mut tx)
            .await
            .unwrap_or_else(|error| panic!("reset failed: {error}"));
        rebuilt
            .commit(tx)
            .await
            .unwrap_or_else(|error| panic!("{error}"));
        apply_all(&self.projection, &rebuilt, &self.given, 1).await;
        let after = rebuilt.scan_prefix("");
        assert!(
            before == after,
            "a rebuild gives another read model (does reset remove everything apply writes?) {}",
            diff(&printable(&before), &printable(&after))
        );
    }
}

async fn apply_all<P: Projection<Store = InMemoryProjectionStore>>(
    projection: &P,
    store: &InMemoryProjectionStore,
    events: &[StoredEvent],
    times: usize,
) {
    for event in events.iter().filter(|event| projection.handles(event)) {
        for _ in 0..times {
            let mut tx = store
                .begin()
                .await
                .unwrap_or_else(|error| panic!("{error}"));
            projection
                .apply(event, &mut tx)
                .await
                .unwrap_or_else(|error| {
                    panic!(
                        "the projection failed on {} v{} ({}): {error}",
                        event.stream_id, event.stream_version, event.event_type
                    )
                });
            store
                .commit(tx)
                .await
                .unwrap_or_else(|error| panic!("{error}"));
        }
    }
}

fn printable(entries: &[(String, Vec<u8>)]) -> Vec<(String, String)> {
    entries
        .iter()
        .map(|(key, value)| (key.clone(), String::from_utf8_lossy(value).into_owned()))
        .collect()
}

#[cfg(test)]
mod tests {
    use async_trait::async_trait;
    use composable_rust_core::ProjectionError;
    use composable_rust_core::projection::{ProjectionTx, ProjectionTxExt};
    use serde::{Deserialize, Serialize};

    use super::*;

    #[derive(Debug, Clone, Serialize, Deserialize)]
    enum Scored {
        Points(i64),
    }
    impl Event for Scored {}

    /// Sums points per stream; idempotent only when `track_versions` is set.
    struct Scores {
        track_versions: bool,
        forget_on_reset: bool,
    }

    #[async_trait]
    impl Projection for Scores {
        type Store = InMemoryProjectionStore;
        fn name(&self) -> &str {
            "scores"
        }
        async fn apply(
            &self,
            event: &StoredEvent,
            tx: &mut <Self::Store as ProjectionStore>::Tx,
        ) -> Result<(), ProjectionError> {
            let key = format!("score:{}", event.stream_id);
            let (mut total, mut version): (i64, u64) = tx.get_json(&key).await?.unwrap_or_default();
            if self.track_versions && event.stream_version <= version {
                return Ok(());
            }
            total += event.payload.as_i64().unwrap_or(0);
            version = event.stream_version;
            tx.save_json(&key, &(total, version)).await
        }
        async fn reset(
            &self,
            tx: &mut <Self::Store as ProjectionStore>::Tx,
        ) -> Result<(), ProjectionError> {
            if self.forget_on_reset {
                return Ok(());
            }
            tx.delete_prefix("score:").await.map(|_| ())
        }
    }

    async fn harness(track_versions: bool, forget_on_reset: bool) -> ProjectionTestHarness<Scores> {
        let mut harness = ProjectionTestHarness::new(Scores {
            track_versions,
            forget_on_reset,
        });
        harness
            .given_events("ada", [Scored::Points(3), Scored::Points(4)])
            .await;
        harness
    }

    #[tokio::test]
    async fn given_events_are_applied_in_order() {
        let harness = harness(true, false).await;
        harness.then_contains("score:ada").then_missing("score:bob");
        assert_eq!(
            harness.get_json::<(i64, u64)>("score:ada").await,
            Some((7, 2))
        );
        harness.assert_idempotent().await;
        harness.assert_rebuild_matches().await;
    }

    #[tokio::test]
    #[should_panic(expected = "the projection is not idempotent")]
    async fn a_projection_that_double_counts_is_caught() {
        harness(false, false).await.assert_idempotent().await;
    }

    #[tokio::test]
    #[should_panic(expected = "a rebuild gives another read model")]
    async fn a_reset_that_forgets_keys_is_caught() {
        harness(false, true).await.assert_rebuild_matches().await;
    }

    #[tokio::test]
    #[should_panic(expected = "the read model has no key `score:bob`")]
    async fn then_contains_fails_on_a_missing_key() {
        harness(true, false).await.then_contains("score:bob");
    }
}
