//! Fast replays: a projection that skips what it does not need without
//! decoding it, run with larger batches for a rebuild.

use std::sync::Arc;

use composable_rust::ProjectionError;
use composable_rust::prelude::*;
use composable_rust::projection::{
    EventSource, InMemoryProjectionStore, ProjectionConfig, ProjectionManager,
};
use serde::Deserialize;

// ANCHOR: projection
/// Each ledger's balance, under `balance:<stream>`.
#[derive(Debug, Default)]
pub struct Balances;

/// The one field of a `Posted` payload this projection reads.
#[derive(Deserialize)]
struct Posted {
    amount: i64,
}

#[async_trait]
impl Projection for Balances {
    type Store = InMemoryProjectionStore;

    fn name(&self) -> &str {
        "ledger-balances"
    }

    /// Looks at the type and stream only: events this projection does not
    /// need are never decoded, and still move the checkpoint.
    fn handles(&self, event: &StoredEvent) -> bool {
        event.event_type == "Posted" && event.stream_id.as_str().starts_with("ledger-")
    }

    async fn apply(
        &self,
        event: &StoredEvent,
        tx: &mut <Self::Store as ProjectionStore>::Tx,
    ) -> Result<(), ProjectionError> {
        // Only the field it needs, straight from the stored JSON.
        let Posted { amount } =
            Posted::deserialize(&event.payload).map_err(ProjectionError::apply)?;
        let key = format!("balance:{}", event.stream_id);
        let balance: i64 = tx.get_json(&key).await?.unwrap_or(0);
        tx.save_json(&key, &(balance + amount)).await
    }

    async fn reset(
        &self,
        tx: &mut <Self::Store as ProjectionStore>::Tx,
    ) -> Result<(), ProjectionError> {
        tx.delete_prefix("balance:").await.map(|_| ())
    }
}
// ANCHOR_END: projection

// ANCHOR: config
/// A manager for rebuilds and catch-ups of a long history: 2,000 events per
/// unit of work instead of 500, so a quarter of the commits (and, on
/// PostgreSQL, of the round trips for reading and committing).
pub fn rebuilding_manager(
    store: Arc<InMemoryProjectionStore>,
    events: impl EventSource,
) -> ProjectionManager<Balances> {
    let config = ProjectionConfig {
        batch_size: 2_000,
        ..ProjectionConfig::default()
    };
    ProjectionManager::builder(Balances, store, events)
        .with_config(config)
        .build()
}
// ANCHOR_END: config

#[cfg(test)]
mod tests {
    use composable_rust::{AggregateRepository, ExpectedVersion, InMemoryEventStore, NewEvent};

    use super::*;
    use crate::ledger::{Ledger, LedgerCommand, LedgerEvent};

    // ANCHOR: test
    #[tokio::test]
    async fn a_rebuild_takes_few_batches_and_skips_notes() -> Result<(), Box<dyn std::error::Error>>
    {
        let events = InMemoryEventStore::new();
        let ledgers = AggregateRepository::<Ledger, _>::new(events.clone(), ());
        let id = ledgers.stream_id("acme")?;
        // 3,000 postings in 30 commands, and 1,000 notes the projection skips.
        for _ in 0..30 {
            ledgers
                .execute(&id, LedgerCommand::PostMany(vec![1; 100]))
                .await?;
        }
        let notes: Vec<NewEvent> = (0..1_000)
            .map(|i| {
                NewEvent::from_event(&LedgerEvent::Noted {
                    text: format!("#{i}"),
                })
            })
            .collect::<Result<_, _>>()?;
        events
            .append(&id, ExpectedVersion::Exact(3_000), notes)
            .await?;

        let store = Arc::new(InMemoryProjectionStore::new());
        let manager = rebuilding_manager(Arc::clone(&store), events);
        assert_eq!(manager.rebuild().await?, 4_000);
        assert_eq!(manager.stats().batches, 2, "4,000 events, 2,000 per batch");
        let balance: Option<i64> = store.get_json(&format!("balance:{id}")).await?;
        assert_eq!(balance, Some(3_000));
        Ok(())
    }
    // ANCHOR_END: test
}
