//! The catalog of a saga kind, stream `sagas-{KIND}`: which instances
//! started and which were closed, so that
//! [`SagaRuntime::resume`](super::SagaRuntime::resume) finds the running
//! ones after a restart without scanning the whole store; and resuming one
//! of them (delivering its pending commands, closing it once settled).

use std::collections::BTreeSet;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::{Inner, ResumeReport};
use crate::event::{Event, ExpectedVersion, NewEvent, Snapshot, Upcasters, decode};
use crate::event_store::EventStoreError;
use crate::saga::{Saga, SagaError, SagaId};

/// How many catalog events [`SagaRuntime::resume`] reads past the last
/// catalog snapshot before it saves a new one.
///
/// [`SagaRuntime::resume`]: super::SagaRuntime::resume
const CATALOG_SNAPSHOT_EVERY: usize = 1_000;

/// The catalog of a saga kind (stream `sagas-{KIND}`): which instances
/// started and which ended, so [`SagaRuntime::resume`] finds the running
/// ones without scanning the whole store.
///
/// [`SagaRuntime::resume`]: super::SagaRuntime::resume
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(super) enum CatalogEvent {
    #[serde(rename = "$saga.started")]
    Started { saga_id: SagaId },
    #[serde(rename = "$saga.closed")]
    Closed { saga_id: SagaId },
}

impl Event for CatalogEvent {}

impl<S: Saga> Inner<S> {
    pub(super) async fn resume_one(
        this: &Arc<Self>,
        saga_id: &SagaId,
        report: &mut ResumeReport,
    ) -> Result<(), SagaError> {
        let slot = this.slot(saga_id);
        let mut guard = slot.lock().await;
        let instance = Self::ensure_loaded(this, saga_id, &mut guard).await?;
        // Recorded by an earlier process: this runtime owes them from now on.
        crate::metrics::saga::pending_commands(
            S::KIND,
            isize::try_from(instance.pending().len()).unwrap_or(isize::MAX),
        );
        report.sagas += 1;
        report.timeouts += instance.timeouts().len();
        match this.flush(instance).await {
            Ok(count) => report.redispatched += count,
            Err(error) => {
                if !matches!(error, SagaError::Dispatch { .. }) {
                    *guard = None;
                }
                return Err(error);
            }
        }
        // Ended, and every command delivered: close it in the catalog. (A
        // saga with an empty stream stays listed: another process may be
        // about to record its first step.)
        if instance.is_settled() {
            report.closed += 1;
            this.close(saga_id).await?;
        }
        Ok(())
    }

    /// Marks `saga_id` as closed in the catalog and forgets it.
    pub(super) async fn close(&self, saga_id: &SagaId) -> Result<(), SagaError> {
        self.catalog_append(CatalogEvent::Closed {
            saga_id: saga_id.clone(),
        })
        .await?;
        self.evict(saga_id);
        Ok(())
    }

    pub(super) async fn catalog_append(&self, event: CatalogEvent) -> Result<(), SagaError> {
        let event = NewEvent::from_event(&event)?;
        self.store
            .append(&self.catalog, ExpectedVersion::Any, vec![event])
            .await?;
        Ok(())
    }

    /// The sagas listed as started and not closed in the catalog.
    pub(super) async fn running_sagas(&self) -> Result<BTreeSet<SagaId>, SagaError> {
        let (mut running, from) = match self.store.load_snapshot(&self.catalog).await? {
            Some(snapshot) => match serde_json::from_value(snapshot.state) {
                Ok(running) => (running, snapshot.stream_version),
                Err(error) => {
                    tracing::warn!(saga = S::KIND, %error, "ignoring an unreadable catalog snapshot");
                    (BTreeSet::new(), 0)
                }
            },
            None => (BTreeSet::new(), 0),
        };
        let events = self.store.load_stream(&self.catalog, from + 1).await?;
        for stored in &events {
            match decode::<CatalogEvent>(stored, &Upcasters::new())? {
                Some(CatalogEvent::Started { saga_id }) => {
                    running.insert(saga_id);
                }
                Some(CatalogEvent::Closed { saga_id }) => {
                    running.remove(&saga_id);
                }
                None => {}
            }
        }
        if events.len() >= CATALOG_SNAPSHOT_EVERY
            && let Some(last) = events.last()
        {
            let state =
                serde_json::to_value(&running).map_err(|error| EventStoreError::Encode {
                    reason: format!("saga catalog snapshot: {error}"),
                })?;
            self.store
                .save_snapshot(&Snapshot {
                    stream_id: self.catalog.clone(),
                    stream_version: last.stream_version,
                    schema_version: 1,
                    state,
                    taken_at: self.clock.now(),
                })
                .await?;
        }
        Ok(running)
    }
}
