//! The order totals projection: `order:<stream>` holds an order's total,
//! and from version 2 on its number of lines too.

use composable_rust::ProjectionError;
use composable_rust::postgres::{PostgresProjectionStore, PostgresProjectionTx};
use composable_rust::prelude::*;
use serde::{Deserialize, Serialize};

// ANCHOR: model
/// One order's line of the read model.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderTotal {
    /// The sum of its lines, in cents.
    pub total_cents: u64,
    /// How many lines it has (version 2 only; 0 in version 1).
    #[serde(default)]
    pub lines: u64,
}

/// Keeps an [`OrderTotal`] per order. `counts_lines` is the code change
/// between version 1 (false) and version 2 (true).
#[derive(Debug)]
pub struct OrderTotals {
    /// Whether to count lines (version 2).
    pub counts_lines: bool,
}
// ANCHOR_END: model

#[async_trait]
impl Projection for OrderTotals {
    type Store = PostgresProjectionStore;

    fn name(&self) -> &str {
        "order-totals"
    }

    async fn apply(
        &self,
        event: &StoredEvent,
        tx: &mut PostgresProjectionTx,
    ) -> Result<(), ProjectionError> {
        let Some(cents) = event.payload["cents"].as_u64() else {
            return Err(ProjectionError::apply(format!(
                "{} has no price in cents",
                event.event_id
            )));
        };
        let key = format!("order:{}", event.stream_id);
        let mut total: OrderTotal = tx.get_json(&key).await?.unwrap_or_default();
        total.total_cents += cents;
        if self.counts_lines {
            total.lines += 1;
        }
        tx.save_json(&key, &total).await
    }

    async fn reset(&self, tx: &mut PostgresProjectionTx) -> Result<(), ProjectionError> {
        tx.delete_prefix("order:").await.map(|_| ())
    }
}
