use composable_rust::projection::{
    InMemoryProjectionStore, Projection, ProjectionError, ProjectionStore, ProjectionTx, ProjectionTxExt,
};
use composable_rust::StoredEvent;

struct EventCounts;

// forgot #[async_trait]
impl Projection for EventCounts {
    type Store = InMemoryProjectionStore;

    fn name(&self) -> &str {
        "event-counts"
    }

    async fn apply(
        &self,
        event: &StoredEvent,
        tx: &mut <Self::Store as ProjectionStore>::Tx,
    ) -> Result<(), ProjectionError> {
        let key = format!("count:{}", event.stream_id);
        let count: u64 = tx.get_json(&key).await?.unwrap_or(0);
        tx.save_json(&key, &(count + 1)).await
    }

    async fn reset(&self, tx: &mut <Self::Store as ProjectionStore>::Tx) -> Result<(), ProjectionError> {
        tx.delete_prefix("count:").await.map(|_| ())
    }
}

fn main() {}
