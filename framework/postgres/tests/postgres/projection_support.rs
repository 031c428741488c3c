//! Helpers of the projection store tests: migrated projection stores in
//! schemas of their own that drop themselves, a projection
//! that tallies events per stream and counts how often each event was
//! applied (in its own table, in the same transaction), and read-model
//! snapshots to compare.
//!
//! These helpers take no test gate: callers hold the right one (through
//! `support::fresh_store` or `support::exclusive_store`).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use composable_rust_core::projection::{
    ProjectionConfig, ProjectionTx, ProjectionTxExt, RetryPolicy,
};
use composable_rust_core::{Projection, ProjectionError, StoredEvent};
use composable_rust_postgres::{PostgresProjectionStore, PostgresProjectionTx, sql_error};
use composable_rust_testing::fixtures::TestSchema;
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;
use uuid::Uuid;

use super::support;

/// A migrated projection store in its own schema, dropped with it.
#[derive(Debug)]
pub(crate) struct TestProjectionStore {
    pub store: Arc<PostgresProjectionStore>,
    // Fields drop in order: the store before the schema.
    _schema: TestSchema,
}

/// A fresh, migrated projection store in a new schema of `DATABASE_URL`.
pub(crate) async fn fresh_projection_store() -> TestProjectionStore {
    let schema = TestSchema::new();
    let store = PostgresProjectionStore::new(support::pool().await)
        .with_schema(schema.name())
        .expect("valid");
    store.migrate().await.expect("projection migrations run");
    TestProjectionStore {
        store: Arc::new(store),
        _schema: schema,
    }
}

/// A manager configuration for tests: small batches, fast retries.
pub(crate) fn test_config(batch_size: usize) -> ProjectionConfig {
    ProjectionConfig {
        batch_size,
        retry: RetryPolicy {
            max_attempts: 3,
            initial_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(5),
        },
        failure_backoff: Duration::from_millis(20),
        idle_poll_interval: Duration::from_millis(100),
        ..ProjectionConfig::default()
    }
}

/// One stream's line of the tally.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Tally {
    pub events: u64,
    pub last_version: u64,
    pub sum: u64,
}

/// Keeps a [`Tally`] per stream under `tally:<stream>` (read-modify-write
/// through the unit of work), and counts in its own table
/// `applications(event_id, count)`, in the same transaction, how often
/// each event was applied. Events whose payload has `"poison": true` fail
/// (until [`fix`](Self::fix)); `"bad_sql": true` makes its own SQL break
/// a CHECK constraint; `"huge_key": true` also saves a value under a key
/// too long for PostgreSQL's btree index (refused at commit, SQLSTATE
/// 54000). It can be told to stall forever on one event.
pub(crate) struct Tallies {
    name: String,
    applications: String,
    fixed: AtomicBool,
    stall_on: Mutex<Option<Uuid>>,
    pub stalled: Notify,
}

impl Tallies {
    /// A projection named `name` writing to `store` (creates its table).
    pub(crate) async fn new(name: &str, store: &PostgresProjectionStore) -> Self {
        let applications = format!("\"{}\".applications", store.schema());
        sqlx::query(&format!(
            "CREATE TABLE IF NOT EXISTS {applications} ( \
                 event_id uuid PRIMARY KEY, \
                 count integer NOT NULL CHECK (count >= 0))"
        ))
        .execute(store.pool())
        .await
        .expect("create the applications table");
        Self {
            name: name.to_owned(),
            applications,
            fixed: AtomicBool::new(false),
            stall_on: Mutex::new(None),
            stalled: Notify::new(),
        }
    }

    /// Lets poison events through from now on.
    pub(crate) fn fix(&self) {
        self.fixed.store(true, Ordering::SeqCst);
    }

    /// Stalls forever (after notifying [`stalled`](Self::stalled)) when
    /// applying `event_id`; `None` stalls nowhere.
    pub(crate) fn stall_on(&self, event_id: Option<Uuid>) {
        *self.stall_on.lock().unwrap() = event_id;
    }
}

#[async_trait]
impl Projection for Tallies {
    type Store = PostgresProjectionStore;

    fn name(&self) -> &str {
        &self.name
    }

    async fn apply(
        &self,
        event: &StoredEvent,
        tx: &mut PostgresProjectionTx,
    ) -> Result<(), ProjectionError> {
        let flag = |name: &str| event.payload.get(name) == Some(&serde_json::Value::Bool(true));
        if flag("poison") && !self.fixed.load(Ordering::SeqCst) {
            return Err(ProjectionError::apply(format!(
                "event {} is poison",
                event.event_id
            )));
        }
        let key = format!("tally:{}", event.stream_id);
        let mut tally: Tally = tx.get_json(&key).await?.unwrap_or_default();
        tally.events += 1;
        tally.last_version = event.stream_version;
        tally.sum += event.payload["n"].as_u64().unwrap_or(0);
        tx.save_json(&key, &tally).await?;
        if flag("huge_key") && !self.fixed.load(Ordering::SeqCst) {
            // 10 000 hex digits: incompressible enough that the index entry
            // stays above the btree limit (about 2.7 kB) after compression.
            let huge: String = (0..313)
                .map(|_| Uuid::new_v4().simple().to_string())
                .collect();
            tx.save(&format!("huge:{huge}"), b"x").await?;
        }

        let increment = if flag("bad_sql") && !self.fixed.load(Ordering::SeqCst) {
            -1
        } else {
            1
        };
        sqlx::query(&format!(
            "INSERT INTO {0} (event_id, count) VALUES ($1, $2) \
             ON CONFLICT (event_id) DO UPDATE SET count = {0}.count + $2",
            self.applications
        ))
        .bind(event.event_id)
        .bind(increment)
        .execute(tx.connection().await?)
        .await
        .map_err(sql_error)?;

        let stall = *self.stall_on.lock().unwrap() == Some(event.event_id);
        if stall {
            self.stalled.notify_one();
            std::future::pending::<()>().await;
        }
        Ok(())
    }

    async fn reset(&self, tx: &mut PostgresProjectionTx) -> Result<(), ProjectionError> {
        tx.delete_prefix("tally:").await?;
        sqlx::query(&format!("DELETE FROM {}", self.applications))
            .execute(tx.connection().await?)
            .await
            .map_err(sql_error)?;
        Ok(())
    }
}

/// Everything a [`Tallies`] projection wrote: the tallies and the
/// application counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ReadModel {
    pub tallies: BTreeMap<String, Tally>,
    pub applications: BTreeMap<Uuid, i32>,
}

impl ReadModel {
    /// Reads the committed read model of `store`.
    pub(crate) async fn of(store: &PostgresProjectionStore) -> Self {
        let tallies = store
            .scan_prefix("tally:")
            .await
            .expect("scan tallies")
            .into_iter()
            .map(|(key, data)| (key, serde_json::from_slice(&data).expect("a tally")))
            .collect();
        let applications: Vec<(Uuid, i32)> = sqlx::query_as(&format!(
            "SELECT event_id, count FROM \"{}\".applications",
            store.schema()
        ))
        .fetch_all(store.pool())
        .await
        .expect("read applications");
        Self {
            tallies,
            applications: applications.into_iter().collect(),
        }
    }

    /// The read model a correct run over `events` produces.
    pub(crate) fn expected(events: &[StoredEvent]) -> Self {
        let mut tallies = BTreeMap::<String, Tally>::new();
        let mut applications = BTreeMap::new();
        for event in events {
            let tally = tallies
                .entry(format!("tally:{}", event.stream_id))
                .or_default();
            tally.events += 1;
            tally.last_version = event.stream_version;
            tally.sum += event.payload["n"].as_u64().unwrap_or(0);
            applications.insert(event.event_id, 1);
        }
        Self {
            tallies,
            applications,
        }
    }

    /// Asserts every event was applied exactly once.
    pub(crate) fn assert_each_applied_once(&self) {
        let twice: Vec<_> = self
            .applications
            .iter()
            .filter(|(_, count)| **count != 1)
            .collect();
        assert!(
            twice.is_empty(),
            "events applied other than once: {twice:?}"
        );
    }
}
