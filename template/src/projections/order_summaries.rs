//! The order summaries: a read model with one summary per order (for the
//! orders screen) and shop-wide totals (for the dashboard), kept up to date
//! from the order events, in any projection store.
//!
//! A projection never decides anything: it records what happened. On
//! PostgreSQL, each event's changes and the projection's checkpoint are
//! committed in one transaction, so an event is applied exactly once.

use std::marker::PhantomData;

use composable_rust::event::decode;
use composable_rust::prelude::*;
use composable_rust::{ProjectionError, Upcasters};
use serde::{Deserialize, Serialize};

use crate::aggregates::order::{OrderEvent, OrderStatus};

/// One row of the orders screen.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OrderSummary {
    pub customer: String,
    pub total: u64,
    pub status: OrderStatus,
}

/// The whole shop, for the dashboard.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OrderTotals {
    pub placed: u32,
    pub cancelled: u32,
    pub revenue: u64,
}

/// Where every key of this read model starts: what a rebuild deletes.
pub const PREFIX: &str = "order-summary:";

/// The key of one order's summary.
pub fn summary_key(stream_id: &StreamId) -> String {
    format!("{PREFIX}{stream_id}")
}

/// The key of the totals.
pub const TOTALS_KEY: &str = "order-summary:totals";

/// Keeps an [`OrderSummary`] per order and the [`OrderTotals`], in any
/// store `S` (in memory in tests, PostgreSQL in the service).
#[derive(Debug)]
pub struct OrderSummaries<S> {
    upcasters: Upcasters,
    _store: PhantomData<fn() -> S>,
}

impl<S> OrderSummaries<S> {
    pub fn new() -> Self {
        Self {
            upcasters: Upcasters::new(),
            _store: PhantomData,
        }
    }
}

impl<S> Default for OrderSummaries<S> {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait]
impl<S: ProjectionCheckpoint> Projection for OrderSummaries<S> {
    type Store = S;

    fn name(&self) -> &str {
        "order-summaries"
    }

    /// Only order streams; other aggregates' and sagas' events are skipped.
    fn handles(&self, event: &StoredEvent) -> bool {
        event.stream_id.as_str().starts_with("order-")
    }

    async fn apply(&self, event: &StoredEvent, tx: &mut S::Tx) -> Result<(), ProjectionError> {
        let Some(order_event) = decode::<OrderEvent>(event, &self.upcasters)? else {
            return Ok(());
        };
        let key = summary_key(&event.stream_id);
        let mut summary: OrderSummary = tx.get_json(&key).await?.unwrap_or_default();
        let mut totals: OrderTotals = tx.get_json(TOTALS_KEY).await?.unwrap_or_default();
        match order_event {
            OrderEvent::Placed { customer, total } => {
                summary.customer = customer;
                summary.total = total;
                summary.status = OrderStatus::Placed;
                totals.placed += 1;
            }
            OrderEvent::Paid { amount } => {
                summary.status = OrderStatus::Paid;
                totals.revenue += amount;
            }
            OrderEvent::Shipped => summary.status = OrderStatus::Shipped,
            OrderEvent::Cancelled { .. } => {
                summary.status = OrderStatus::Cancelled;
                totals.cancelled += 1;
            }
        }
        tx.save_json(&key, &summary).await?;
        tx.save_json(TOTALS_KEY, &totals).await
    }

    async fn reset(&self, tx: &mut S::Tx) -> Result<(), ProjectionError> {
        tx.delete_prefix(PREFIX).await.map(|_| ())
    }
}
