//! The projection manager on the in-memory stores: catch-up, resume,
//! crash safety, retries and dead letters, rebuilds under load,
//! read-your-writes, lag and graceful shutdown.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use composable_rust_core::projection::{
    ProjectionCheckpoint, ProjectionConfig, ProjectionStoreExt, ProjectionTx, ProjectionTxExt,
    RetryPolicy,
};
use composable_rust_core::{
    CodedError, EventStore, ExpectedVersion, InMemoryEventStore, InMemoryProjectionStore, NewEvent,
    Position, Projection, ProjectionError, ProjectionManager, ProjectionStore, StoredEvent,
    StreamId,
};
use serde_json::json;

/// Counts events per stream and sums their `n`; fails on request.
#[derive(Default)]
struct Totals {
    /// Fail every event whose payload has `"poison": true`, while set.
    poison_fails: AtomicBool,
    /// Fail this many applications with a backend (transient) error.
    transient_failures: AtomicU32,
    /// Sleep in every apply (to abort a manager mid-batch).
    slow: bool,
}

#[async_trait]
impl Projection for Totals {
    type Store = InMemoryProjectionStore;

    fn name(&self) -> &str {
        "totals"
    }

    fn handles(&self, event: &StoredEvent) -> bool {
        event.event_type != "Ignored"
    }

    async fn apply(
        &self,
        event: &StoredEvent,
        tx: &mut <Self::Store as ProjectionStore>::Tx,
    ) -> Result<(), ProjectionError> {
        if self.slow {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        if self.transient_failures.load(Ordering::SeqCst) > 0 {
            self.transient_failures.fetch_sub(1, Ordering::SeqCst);
            return Err(ProjectionError::Backend(
                composable_rust_core::BackendError::from_message(
                    composable_rust_core::ErrorCode::new("CR-E9999", "test backend"),
                    composable_rust_core::ErrorClass::Transient,
                    "the test database is down",
                ),
            ));
        }
        if event.payload["poison"] == json!(true) && self.poison_fails.load(Ordering::SeqCst) {
            return Err(ProjectionError::apply("cannot handle poison"));
        }
        let key = format!("totals:{}", event.stream_id);
        let mut total: (u64, i64) = tx.get_json(&key).await?.unwrap_or_default();
        total.0 += 1;
        total.1 += event.payload["n"].as_i64().unwrap_or(0);
        tx.save_json(&key, &total).await
    }

    async fn reset(
        &self,
        tx: &mut <Self::Store as ProjectionStore>::Tx,
    ) -> Result<(), ProjectionError> {
        tx.delete_prefix("totals:").await.map(|_| ())
    }
}

fn new_event(kind: &str, payload: serde_json::Value) -> NewEvent {
    NewEvent::new(kind, payload)
}

async fn append_numbers(
    events: &InMemoryEventStore,
    stream: &str,
    numbers: impl IntoIterator<Item = i64>,
) -> Position {
    let id = StreamId::new(stream).unwrap();
    let batch: Vec<_> = numbers
        .into_iter()
        .map(|n| new_event("Added", json!({ "n": n })))
        .collect();
    events
        .append(&id, ExpectedVersion::Any, batch)
        .await
        .unwrap()
        .last_position
}

fn fast_retries() -> ProjectionConfig {
    ProjectionConfig {
        batch_size: 10,
        retry: RetryPolicy {
            max_attempts: 3,
            initial_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(2),
        },
        failure_backoff: Duration::from_millis(5),
        idle_poll_interval: Duration::from_millis(50),
        ..ProjectionConfig::default()
    }
}

fn manager(
    events: &InMemoryEventStore,
    store: &InMemoryProjectionStore,
    projection: Totals,
) -> ProjectionManager<Totals> {
    ProjectionManager::builder(projection, Arc::new(store.clone()), events.clone())
        .with_config(fast_retries())
        .build()
}

async fn total(store: &InMemoryProjectionStore, stream: &str) -> Option<(u64, i64)> {
    store.get_json(&format!("totals:{stream}")).await.unwrap()
}

/// The read model a from-scratch run over `events` produces.
async fn fresh_read_model(events: &InMemoryEventStore) -> Vec<(String, Vec<u8>)> {
    let store = InMemoryProjectionStore::new();
    manager(events, &store, Totals::default())
        .catch_up()
        .await
        .unwrap();
    store.scan_prefix("totals:")
}

#[tokio::test]
async fn catch_up_applies_every_event_once_and_resumes_from_the_checkpoint() {
    let events = InMemoryEventStore::new();
    append_numbers(&events, "a", 1..=25).await;
    append_numbers(&events, "b", [100]).await;
    let store = InMemoryProjectionStore::new();

    let first = manager(&events, &store, Totals::default());
    assert_eq!(first.catch_up().await.unwrap(), 26);
    assert_eq!(total(&store, "a").await, Some((25, 325)));
    assert_eq!(first.stats().batches, 3, "batches of 10");

    // A new manager (a restart) resumes after the checkpoint.
    append_numbers(&events, "a", [1000]).await;
    let restarted = manager(&events, &store, Totals::default());
    assert_eq!(restarted.catch_up().await.unwrap(), 1);
    assert_eq!(total(&store, "a").await, Some((26, 1325)));
    assert_eq!(
        store.load_position("totals").await.unwrap(),
        Some(restarted.position())
    );
}

#[tokio::test]
async fn events_the_projection_does_not_handle_still_advance_the_checkpoint() {
    let events = InMemoryEventStore::new();
    let id = StreamId::new("a").unwrap();
    let last = events
        .append(
            &id,
            ExpectedVersion::Any,
            vec![
                new_event("Added", json!({ "n": 1 })),
                new_event("Ignored", json!({ "n": 5 })),
            ],
        )
        .await
        .unwrap()
        .last_position;
    let store = InMemoryProjectionStore::new();
    manager(&events, &store, Totals::default())
        .catch_up()
        .await
        .unwrap();
    assert_eq!(total(&store, "a").await, Some((1, 1)));
    assert_eq!(store.load_position("totals").await.unwrap(), Some(last));
}

#[tokio::test]
async fn a_manager_aborted_mid_batch_resumes_without_applying_anything_twice() {
    let events = InMemoryEventStore::new();
    for stream in ["a", "b", "c"] {
        append_numbers(&events, stream, 1..=40).await;
    }
    let store = InMemoryProjectionStore::new();
    let crashing = manager(
        &events,
        &store,
        Totals {
            slow: true,
            ..Totals::default()
        },
    );
    let task = crashing.start();
    // Let it commit a few batches, then kill it in the middle of one.
    crashing
        .wait_for(Position::new(1, 15), Duration::from_secs(5))
        .await
        .unwrap();
    task.abort();
    let _ = task.await;
    let stopped_at = store.load_position("totals").await.unwrap().unwrap();
    assert!(
        stopped_at < Position::new(3, 120),
        "the crash must happen before the end"
    );

    let restarted = manager(&events, &store, Totals::default());
    restarted.catch_up().await.unwrap();
    assert_eq!(
        store.scan_prefix("totals:"),
        fresh_read_model(&events).await
    );
    for stream in ["a", "b", "c"] {
        assert_eq!(
            total(&store, stream).await,
            Some((40, 820)),
            "each event exactly once"
        );
    }
}

#[tokio::test]
async fn a_poison_event_is_dead_lettered_and_later_events_still_apply() {
    let events = InMemoryEventStore::new();
    append_numbers(&events, "a", [1, 2]).await;
    let poison = new_event("Added", json!({ "n": 50, "poison": true }));
    let poison_id = poison.event_id;
    events
        .append(
            &StreamId::new("a").unwrap(),
            ExpectedVersion::Any,
            vec![poison],
        )
        .await
        .unwrap();
    append_numbers(&events, "a", [3, 4]).await;

    let store = InMemoryProjectionStore::new();
    let projection = Totals::default();
    projection.poison_fails.store(true, Ordering::SeqCst);
    let manager = manager(&events, &store, projection);
    manager.catch_up().await.unwrap();

    assert_eq!(
        total(&store, "a").await,
        Some((4, 10)),
        "every other event applied"
    );
    let letters = manager.dead_letters().await.unwrap();
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].event.event_id, poison_id);
    assert_eq!(letters[0].attempts, 3);
    assert!(
        letters[0].error.contains("cannot handle poison"),
        "{}",
        letters[0].error
    );
    assert_eq!(manager.stats().dead_letters, 1);
    assert_eq!(manager.stats().apply_errors, 3);

    // Still broken: a retry fails and the letter stays.
    assert!(manager.retry_dead_letter(poison_id).await.is_err());
    assert_eq!(manager.dead_letters().await.unwrap().len(), 1);

    // After the fix, the retry applies it and removes the letter.
    manager
        .projection()
        .poison_fails
        .store(false, Ordering::SeqCst);
    manager.retry_dead_letter(poison_id).await.unwrap();
    assert_eq!(total(&store, "a").await, Some((5, 60)));
    assert!(manager.dead_letters().await.unwrap().is_empty());

    let missing = manager.discard_dead_letter(poison_id).await.unwrap_err();
    assert_eq!(missing.code().as_str(), "CR-E0014");
}

#[tokio::test]
async fn a_rebuild_clears_old_dead_letters_and_applies_fixed_events_once() {
    let events = InMemoryEventStore::new();
    let poison = new_event("Added", json!({ "n": 50, "poison": true }));
    events
        .append(
            &StreamId::new("a").unwrap(),
            ExpectedVersion::Any,
            vec![poison],
        )
        .await
        .unwrap();
    append_numbers(&events, "a", [1]).await;
    let store = InMemoryProjectionStore::new();
    let projection = Totals::default();
    projection.poison_fails.store(true, Ordering::SeqCst);
    let manager = manager(&events, &store, projection);
    manager.catch_up().await.unwrap();
    assert_eq!(manager.dead_letters().await.unwrap().len(), 1);

    manager
        .projection()
        .poison_fails
        .store(false, Ordering::SeqCst);
    manager.rebuild().await.unwrap();
    assert!(manager.dead_letters().await.unwrap().is_empty());
    assert_eq!(
        total(&store, "a").await,
        Some((2, 51)),
        "the fixed event applied once"
    );
}

#[tokio::test]
async fn a_dead_letter_can_be_discarded() {
    let events = InMemoryEventStore::new();
    let poison = new_event("Added", json!({ "poison": true }));
    let poison_id = poison.event_id;
    events
        .append(
            &StreamId::new("a").unwrap(),
            ExpectedVersion::Any,
            vec![poison],
        )
        .await
        .unwrap();
    let store = InMemoryProjectionStore::new();
    let projection = Totals::default();
    projection.poison_fails.store(true, Ordering::SeqCst);
    let manager = manager(&events, &store, projection);
    manager.catch_up().await.unwrap();
    manager.discard_dead_letter(poison_id).await.unwrap();
    assert!(manager.dead_letters().await.unwrap().is_empty());
    assert_eq!(total(&store, "a").await, None);
}

#[tokio::test]
async fn infrastructure_failures_are_retried_never_dead_lettered() {
    let events = InMemoryEventStore::new();
    let last = append_numbers(&events, "a", 1..=5).await;
    let store = InMemoryProjectionStore::new();
    let projection = Totals::default();
    projection.transient_failures.store(3, Ordering::SeqCst);
    let manager = manager(&events, &store, projection);

    let error = manager.catch_up().await.unwrap_err();
    assert!(error.is_transient());

    let task = manager.start();
    manager
        .wait_for(last, Duration::from_secs(5))
        .await
        .unwrap();
    manager.shutdown();
    task.await.unwrap().unwrap();
    assert_eq!(total(&store, "a").await, Some((5, 15)));
    assert!(manager.dead_letters().await.unwrap().is_empty());
}

#[tokio::test]
async fn wait_for_gives_read_your_writes_and_times_out_with_a_coded_error() {
    let events = InMemoryEventStore::new();
    let store = InMemoryProjectionStore::new();
    let manager = manager(&events, &store, Totals::default());

    let before_start = append_numbers(&events, "a", [7]).await;
    let error = manager
        .wait_for(before_start, Duration::from_millis(20))
        .await
        .unwrap_err();
    assert_eq!(error.code().as_str(), "CR-E0013");
    assert!(
        error.to_string().contains("did not reach position"),
        "{error}"
    );

    let task = manager.start();
    let written = append_numbers(&events, "a", [8]).await;
    manager
        .wait_for(written, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(
        total(&store, "a").await,
        Some((2, 15)),
        "the write is visible once wait_for returns"
    );
    manager.shutdown();
    task.await.unwrap().unwrap();
}

#[tokio::test]
async fn rebuild_while_writers_append_converges_to_a_fresh_rebuild() {
    let events = InMemoryEventStore::new();
    append_numbers(&events, "a", 1..=50).await;
    let store = InMemoryProjectionStore::new();
    let manager = manager(&events, &store, Totals::default());
    let task = manager.start();

    let writer = {
        let events = events.clone();
        tokio::spawn(async move {
            let mut last = Position::START;
            for round in 0..100 {
                last = append_numbers(&events, ["a", "b"][round % 2], [round as i64]).await;
                tokio::task::yield_now().await;
            }
            last
        })
    };
    tokio::time::sleep(Duration::from_millis(5)).await;
    manager.rebuild().await.unwrap();
    let last = writer.await.unwrap();
    manager
        .wait_for(last, Duration::from_secs(5))
        .await
        .unwrap();
    manager.shutdown();
    task.await.unwrap().unwrap();

    assert_eq!(
        store.scan_prefix("totals:"),
        fresh_read_model(&events).await
    );
}

#[tokio::test]
async fn lag_counts_unapplied_events_until_caught_up() {
    let events = InMemoryEventStore::new();
    append_numbers(&events, "a", 1..=12).await;
    let store = InMemoryProjectionStore::new();
    let manager = manager(&events, &store, Totals::default());
    let lag = manager.lag().await.unwrap();
    assert_eq!(lag.events_behind, 12);
    manager.catch_up().await.unwrap();
    let lag = manager.lag().await.unwrap();
    assert_eq!((lag.events_behind, lag.seconds_behind), (0, Duration::ZERO));
}

#[tokio::test]
async fn shutdown_stops_a_running_manager_with_its_work_committed() {
    let events = InMemoryEventStore::new();
    let last = append_numbers(&events, "a", 1..=30).await;
    let store = InMemoryProjectionStore::new();
    let manager = manager(&events, &store, Totals::default());
    let task = manager.start();
    manager
        .wait_for(last, Duration::from_secs(5))
        .await
        .unwrap();
    manager.shutdown();
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("stops promptly")
        .unwrap()
        .unwrap();
    assert_eq!(store.load_position("totals").await.unwrap(), Some(last));
}

mod cached {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;

    use async_trait::async_trait;
    use composable_rust_core::projection::{
        CacheMode, CachedProjectionStore, ProjectionCache, ProjectionTx,
    };
    use composable_rust_core::{InMemoryProjectionStore, ProjectionError, ProjectionStore};

    /// An in-memory cache that can be switched off, like a Redis that died.
    #[derive(Default)]
    struct FlakyCache {
        data: InMemoryProjectionStore,
        down: AtomicBool,
    }

    impl FlakyCache {
        fn check(&self) -> Result<(), ProjectionError> {
            if self.down.load(Ordering::SeqCst) {
                return Err(ProjectionError::Backend(
                    composable_rust_core::BackendError::from_message(
                        composable_rust_core::ErrorCode::new("CR-E9998", "test cache"),
                        composable_rust_core::ErrorClass::Transient,
                        "connection refused",
                    ),
                ));
            }
            Ok(())
        }
    }

    #[async_trait]
    impl ProjectionCache for FlakyCache {
        async fn cache_get(&self, key: &str) -> Result<Option<Vec<u8>>, ProjectionError> {
            self.check()?;
            self.data.cache_get(key).await
        }
        async fn cache_set(
            &self,
            key: &str,
            data: &[u8],
            ttl: Option<Duration>,
        ) -> Result<(), ProjectionError> {
            self.check()?;
            self.data.cache_set(key, data, ttl).await
        }
        async fn cache_delete(&self, key: &str) -> Result<(), ProjectionError> {
            self.check()?;
            self.data.cache_delete(key).await
        }
        async fn cache_delete_prefix(&self, prefix: &str) -> Result<u64, ProjectionError> {
            self.check()?;
            self.data.cache_delete_prefix(prefix).await
        }
    }

    fn store(mode: CacheMode) -> CachedProjectionStore<InMemoryProjectionStore, FlakyCache> {
        CachedProjectionStore::new(InMemoryProjectionStore::new(), FlakyCache::default(), mode)
    }

    #[tokio::test]
    async fn write_through_fills_the_cache_on_commit() {
        let store = store(CacheMode::WriteThrough);
        store.save("k", b"v1").await.unwrap();
        assert!(store.cache().data.contains_key("k"));
        assert_eq!(store.get("k").await.unwrap(), Some(b"v1".to_vec()));
        assert_eq!((store.stats().hits, store.stats().misses), (1, 0));
    }

    #[tokio::test]
    async fn cache_aside_fills_the_cache_on_the_first_miss() {
        let store = store(CacheMode::CacheAside);
        store.save("k", b"v1").await.unwrap();
        assert!(!store.cache().data.contains_key("k"));
        assert_eq!(store.get("k").await.unwrap(), Some(b"v1".to_vec()));
        assert_eq!(store.get("k").await.unwrap(), Some(b"v1".to_vec()));
        assert_eq!((store.stats().hits, store.stats().misses), (1, 1));
        store.save("k", b"v2").await.unwrap();
        assert!(!store.cache().data.contains_key("k"), "a write invalidates");
        assert_eq!(store.get("k").await.unwrap(), Some(b"v2".to_vec()));
    }

    #[tokio::test]
    async fn a_dead_cache_degrades_to_the_primary_without_errors() {
        for mode in [CacheMode::WriteThrough, CacheMode::CacheAside] {
            let store = store(mode);
            store.cache().down.store(true, Ordering::SeqCst);
            store.save("k", b"v1").await.unwrap();
            assert_eq!(store.get("k").await.unwrap(), Some(b"v1".to_vec()));
            store.delete("k").await.unwrap();
            assert_eq!(store.get("k").await.unwrap(), None);
            assert!(store.stats().errors > 0);
        }
    }

    #[tokio::test]
    async fn a_cache_that_missed_an_invalidation_never_serves_the_old_value() {
        let store = store(CacheMode::WriteThrough);
        store.save("k", b"old").await.unwrap();
        assert_eq!(store.get("k").await.unwrap(), Some(b"old".to_vec()));

        // The cache dies, a write commits, and the cache comes back with
        // the old value still in it.
        store.cache().down.store(true, Ordering::SeqCst);
        store.save("k", b"new").await.unwrap();
        assert_eq!(store.get("k").await.unwrap(), Some(b"new".to_vec()));
        store.cache().down.store(false, Ordering::SeqCst);
        assert!(
            store.cache().data.contains_key("k"),
            "the stale entry is still cached"
        );

        assert_eq!(store.get("k").await.unwrap(), Some(b"new".to_vec()));
        assert_eq!(store.get("k").await.unwrap(), Some(b"new".to_vec()));
    }

    #[tokio::test]
    async fn a_prefix_reset_that_missed_the_cache_is_not_served_stale() {
        let store = store(CacheMode::WriteThrough);
        store.save("p:1", b"x").await.unwrap();
        store.cache().down.store(true, Ordering::SeqCst);
        let mut tx = store.begin().await.unwrap();
        tx.delete_prefix("p:").await.unwrap();
        store.commit(tx).await.unwrap();
        store.cache().down.store(false, Ordering::SeqCst);
        assert_eq!(store.get("p:1").await.unwrap(), None);
    }
}
