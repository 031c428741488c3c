//! Operator requests (`ProjectionRequest`) filed in a projection's store
//! and carried out by its manager: a retry that succeeds removes the dead
//! letter, one that fails records it again with one more attempt, a
//! rebuild starts the read model over, and a running manager picks
//! requests up without a restart. On the in-memory store; the PostgreSQL
//! and Redis stores run the same flow in the CLI's tests.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use composable_rust_core::projection::{
    InMemoryProjectionStore, InMemoryTx, ProjectionConfig, ProjectionManager, ProjectionRequest,
    ProjectionStoreExt, ProjectionTx, ProjectionTxExt, RetryPolicy,
};
use composable_rust_core::{
    EventStore, ExpectedVersion, InMemoryEventStore, NewEvent, Projection, ProjectionError,
    StoredEvent, StreamId,
};

/// Counts events; fails on `poison` until `fixed`.
struct Count {
    fixed: Arc<AtomicBool>,
}

#[async_trait]
impl Projection for Count {
    type Store = InMemoryProjectionStore;

    fn name(&self) -> &str {
        "count"
    }

    async fn apply(&self, event: &StoredEvent, tx: &mut InMemoryTx) -> Result<(), ProjectionError> {
        if event.event_type == "poison" && !self.fixed.load(Ordering::SeqCst) {
            return Err(ProjectionError::apply("poison"));
        }
        let count: u64 = tx.get_json("count").await?.unwrap_or(0);
        tx.save_json("count", &(count + 1)).await
    }

    async fn reset(&self, tx: &mut InMemoryTx) -> Result<(), ProjectionError> {
        tx.delete("count").await
    }
}

fn config() -> ProjectionConfig {
    ProjectionConfig {
        retry: RetryPolicy {
            max_attempts: 1,
            initial_backoff: Duration::ZERO,
            max_backoff: Duration::ZERO,
        },
        idle_poll_interval: Duration::from_millis(10),
        lag_interval: Duration::from_millis(10),
        ..ProjectionConfig::default()
    }
}

#[tokio::test]
async fn requests_are_carried_out_by_the_manager() {
    let events = InMemoryEventStore::new();
    for kind in ["ok", "poison", "ok"] {
        events
            .append(
                &StreamId::new("s-1").unwrap(),
                ExpectedVersion::Any,
                vec![NewEvent::new(kind, serde_json::json!({}))],
            )
            .await
            .unwrap();
    }
    let store = Arc::new(InMemoryProjectionStore::new());
    let fixed = Arc::new(AtomicBool::new(false));
    let manager = ProjectionManager::builder(
        Count {
            fixed: Arc::clone(&fixed),
        },
        Arc::clone(&store),
        events.clone(),
    )
    .with_config(config())
    .build();
    manager.catch_up().await.unwrap();
    let poison = manager.dead_letters().await.unwrap()[0].event.event_id;
    assert_eq!(store.get_json::<u64>("count").await.unwrap(), Some(2));

    // Still failing: recorded again, one more attempt, the request gone.
    store.request("count", ProjectionRequest::RetryDeadLetter(poison));
    manager.catch_up().await.unwrap();
    let letters = manager.dead_letters().await.unwrap();
    assert_eq!((letters.len(), letters[0].attempts), (1, 2));
    assert!(letters[0].error.contains("poison"), "{}", letters[0].error);

    // Fixed, while running: applied, the letter removed.
    fixed.store(true, Ordering::SeqCst);
    let running = manager.start();
    store.request("count", ProjectionRequest::RetryDeadLetter(poison));
    tokio::time::timeout(Duration::from_secs(5), async {
        while !manager.dead_letters().await.unwrap().is_empty() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("the running manager retried the dead letter");
    assert_eq!(store.get_json::<u64>("count").await.unwrap(), Some(3));

    // A rebuild starts over: the three events applied once more, counted
    // once each (the read model was reset first).
    let applied = manager.stats().events_applied;
    store.request("count", ProjectionRequest::Rebuild);
    tokio::time::timeout(Duration::from_secs(5), async {
        while manager.stats().events_applied < applied + 3 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("the running manager rebuilt the projection");
    manager.shutdown();
    running.await.unwrap().unwrap();
    assert_eq!(manager.stats().events_applied, applied + 3);
    assert_eq!(store.get_json::<u64>("count").await.unwrap(), Some(3));
}
