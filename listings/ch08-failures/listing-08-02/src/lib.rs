//! Listing 8-2: a projection store whose database can be switched off or
//! misconfigured, to show that transient failures are waited out (never
//! dead-lettered) and that configuration failures stop the manager.

use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use composable_rust::InMemoryProjectionStore;
use composable_rust::error::{BackendError, ErrorClass, ErrorCode};
use composable_rust::prelude::*;
use composable_rust::projection::{DeadLetter, Delivery, InMemoryTx};
use composable_rust::{Position, ProjectionError};
use uuid::Uuid;

// ANCHOR: store
/// This application's code for "the read database is unavailable".
pub const READ_DB_DOWN: ErrorCode = ErrorCode::new("APP-E0001", "read database unavailable");
/// This application's code for "the read database is not set up".
pub const READ_DB_NOT_SET_UP: ErrorCode =
    ErrorCode::new("APP-E0002", "read database tables missing");

/// The in-memory store, with a switch that makes every call fail the way a
/// database can: down for a while (transient), or missing its tables
/// (configuration).
#[derive(Debug, Clone, Default)]
pub struct FlakyStore {
    inner: InMemoryProjectionStore,
    failure: Arc<Mutex<Option<ErrorClass>>>,
}

impl FlakyStore {
    /// From now on, every call fails with an error of `class` (or works
    /// again, with `None`).
    pub fn fail_with(&self, class: Option<ErrorClass>) {
        *self.failure.lock().unwrap_or_else(PoisonError::into_inner) = class;
    }

    fn check(&self) -> Result<(), ProjectionError> {
        let failure = *self.failure.lock().unwrap_or_else(PoisonError::into_inner);
        let error = match failure {
            None => return Ok(()),
            Some(ErrorClass::Transient) => BackendError::from_message(
                READ_DB_DOWN,
                ErrorClass::Transient,
                "the read database is unavailable; retried until it is back",
            ),
            Some(class) => BackendError::from_message(
                READ_DB_NOT_SET_UP,
                class,
                "the read database has no projection tables; run the migrations",
            ),
        };
        Err(ProjectionError::Backend(error))
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

    use bank::account::{Account, AccountCommand};
    use bank::summaries::AccountSummaries;
    use composable_rust::projection::{ProjectionConfig, ProjectionHealth};

    use super::*;
    use composable_rust::{AggregateRepository, InMemoryEventStore, ProjectionManager};

    #[tokio::test]
    async fn an_outage_is_waited_out_and_nothing_is_dead_lettered() {
        let events = InMemoryEventStore::new();
        let accounts = AggregateRepository::<Account, _>::new(events.clone(), ());
        let store = Arc::new(FlakyStore::default());
        let config = ProjectionConfig {
            failure_backoff: Duration::from_millis(5),
            ..ProjectionConfig::default()
        };
        let manager =
            ProjectionManager::builder(AccountSummaries::new(), Arc::clone(&store), events.clone())
                .with_config(config)
                .build();

        // The read database goes down; the write side does not notice.
        store.fail_with(Some(ErrorClass::Transient));
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
        // health() says the manager is stuck, and since when.
        assert!(matches!(
            manager.health(),
            ProjectionHealth::Retrying { attempts, .. } if attempts >= 1
        ));

        // The database is back: the manager carries on where it was.
        store.fail_with(None);
        manager
            .wait_for(written, Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(manager.health(), ProjectionHealth::Running);
        assert_eq!(manager.stats().apply_errors, 0);
        assert!(manager.dead_letters().await.unwrap().is_empty());

        manager.shutdown();
        running.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn a_configuration_error_stops_the_manager() {
        let events = InMemoryEventStore::new();
        let store = Arc::new(FlakyStore::default());
        let manager = ProjectionManager::new(AccountSummaries::new(), Arc::clone(&store), events);

        // Retrying cannot create the missing tables: run() stops and says why.
        store.fail_with(Some(ErrorClass::Configuration));
        let error = manager.run().await.unwrap_err();
        assert_eq!(error.class(), ErrorClass::Configuration);
        assert_eq!(error.code(), READ_DB_NOT_SET_UP);
        assert!(matches!(
            manager.health(),
            ProjectionHealth::Stopped { code, .. } if code == READ_DB_NOT_SET_UP
        ));
    }
}
// ANCHOR_END: test
