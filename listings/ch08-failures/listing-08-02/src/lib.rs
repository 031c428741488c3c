//! Listing 8-2: a projection store whose database can be switched off, to
//! show that infrastructure failures are waited out, never dead-lettered.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use composable_rust::error::{BackendError, ErrorClass, ErrorCode};
use composable_rust::prelude::*;
use composable_rust::projection::{DeadLetter, Delivery, InMemoryTx};
use composable_rust::{Position, ProjectionError};
use uuid::Uuid;

// ANCHOR: store
/// This application's code for "the read database is unavailable".
pub const READ_DB_DOWN: ErrorCode = ErrorCode::new("APP-E0001", "read database unavailable");

/// The in-memory store, with a switch that makes it fail like a database
/// that is down: every call returns a transient `Backend` error.
#[derive(Clone, Default)]
pub struct FlakyStore {
    inner: InMemoryProjectionStore,
    down: Arc<AtomicBool>,
}

impl FlakyStore {
    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    fn check(&self) -> Result<(), ProjectionError> {
        if self.down.load(Ordering::SeqCst) {
            return Err(ProjectionError::Backend(BackendError::from_message(
                READ_DB_DOWN,
                ErrorClass::Transient,
                "the read database is unavailable; it is retried until it is back",
            )));
        }
        Ok(())
    }
}
// ANCHOR_END: store

// ANCHOR: delegate
#[async_trait]
impl ProjectionStore for FlakyStore {
    type Tx = InMemoryTx;

    fn delivery(&self) -> Delivery {
        self.inner.delivery()
    }

    async fn begin(&self) -> Result<InMemoryTx, ProjectionError> {
        self.check()?;
        self.inner.begin().await
    }

    async fn commit(&self, tx: InMemoryTx) -> Result<(), ProjectionError> {
        self.check()?;
        self.inner.commit(tx).await
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, ProjectionError> {
        self.check()?;
        ProjectionStore::get(&self.inner, key).await
    }
}

#[async_trait]
impl ProjectionCheckpoint for FlakyStore {
    async fn load_position(&self, projection: &str) -> Result<Option<Position>, ProjectionError> {
        self.check()?;
        self.inner.load_position(projection).await
    }

    async fn save_position(
        &self,
        tx: &mut InMemoryTx,
        projection: &str,
        position: Position,
    ) -> Result<(), ProjectionError> {
        self.inner.save_position(tx, projection, position).await
    }

    async fn record_dead_letter(
        &self,
        tx: &mut InMemoryTx,
        letter: &DeadLetter,
    ) -> Result<(), ProjectionError> {
        self.inner.record_dead_letter(tx, letter).await
    }

    async fn remove_dead_letter(
        &self,
        tx: &mut InMemoryTx,
        projection: &str,
        event_id: Uuid,
    ) -> Result<bool, ProjectionError> {
        self.inner
            .remove_dead_letter(tx, projection, event_id)
            .await
    }

    async fn dead_letters(&self, projection: &str) -> Result<Vec<DeadLetter>, ProjectionError> {
        self.check()?;
        self.inner.dead_letters(projection).await
    }
}
// ANCHOR_END: delegate

// ANCHOR: test
#[cfg(test)]
mod tests {
    use std::time::Duration;

    use composable_rust::projection::ProjectionConfig;
    use listing_04_01::{Account, AccountCommand};
    use listing_06_01::AccountSummaries;

    use super::*;

    #[tokio::test]
    async fn an_outage_is_waited_out_and_nothing_is_dead_lettered() {
        let events = InMemoryEventStore::new();
        let accounts = AggregateRepository::<Account, _>::new(events.clone(), ());
        let store = Arc::new(FlakyStore::default());
        let config = ProjectionConfig {
            failure_backoff: Duration::from_millis(5),
            ..ProjectionConfig::default()
        };
        let manager = ProjectionManager::with_config(
            AccountSummaries::new(),
            Arc::clone(&store),
            events.clone(),
            config,
        );

        // The read database goes down; the write side does not notice.
        store.set_down(true);
        let running = manager.start();
        let ada = accounts.stream_id(1).unwrap();
        let open = AccountCommand::Open {
            owner: "Ada".into(),
        };
        let written = accounts
            .execute(&ada, open)
            .await
            .unwrap()
            .position
            .unwrap();

        // catch_up reports the failure as transient; run keeps retrying.
        assert!(manager.catch_up().await.unwrap_err().is_transient());
        let waited = manager.wait_for(written, Duration::from_millis(50)).await;
        assert!(
            waited.is_err(),
            "nothing commits while the database is down"
        );

        // The database is back: the manager carries on where it was.
        store.set_down(false);
        manager
            .wait_for(written, Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(manager.stats().apply_errors, 0);
        assert!(manager.dead_letters().await.unwrap().is_empty());

        manager.shutdown();
        running.await.unwrap().unwrap();
    }
}
// ANCHOR_END: test
