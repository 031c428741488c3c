//! The order history: one [`OrderView`] per order, updated by each event
//! of the order's stream, queried by customer, newest first.

use async_trait::async_trait;
use chrono::SecondsFormat;
use composable_rust::event::decode;
use composable_rust::postgres::{
    DocumentTable, PostgresProjectionStore, PostgresProjectionTx, SortOrder,
};
use composable_rust::prelude::*;
use composable_rust::{ProjectionError, Upcasters};
use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;

use crate::domain::Cents;
use crate::domain::order::{OrderEvent, OrderLine, OrderStatus};

/// The document table's name.
pub const TABLE: &str = "order_history";

/// An order as the customer sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OrderView {
    /// The order.
    pub order_id: Uuid,
    /// Whose (never shown to anyone else).
    pub customer_id: Uuid,
    /// Where it stands.
    pub status: OrderStatus,
    /// What.
    pub items: Vec<OrderLine>,
    /// The sum of the lines.
    pub total_cents: Cents,
    /// When (RFC 3339, UTC, microseconds: sorts as text).
    pub placed_at: String,
    /// Why it was cancelled.
    pub cancel_reason: Option<String>,
    /// The carrier's tracking number.
    pub tracking_number: Option<String>,
}

/// Keeps the [`OrderView`]s.
#[derive(Debug)]
pub struct OrderHistory {
    table: DocumentTable,
    upcasters: Upcasters,
}

impl OrderHistory {
    /// The projection, writing to `table`.
    pub fn new(table: DocumentTable) -> Self {
        Self {
            table,
            upcasters: Upcasters::new(),
        }
    }
}

#[async_trait]
impl Projection for OrderHistory {
    type Store = PostgresProjectionStore;

    fn name(&self) -> &str {
        "order-history"
    }

    fn handles(&self, event: &StoredEvent) -> bool {
        event.stream_id.as_str().starts_with("order-")
    }

    async fn apply(
        &self,
        event: &StoredEvent,
        tx: &mut PostgresProjectionTx,
    ) -> Result<(), ProjectionError> {
        let Some(order_event) = decode::<OrderEvent>(event, &self.upcasters)? else {
            return Ok(());
        };
        let id = event.stream_id.as_str();
        let mut view = if let OrderEvent::Placed(order) = &order_event {
            OrderView {
                order_id: order.order_id,
                customer_id: order.customer_id,
                status: OrderStatus::Placed,
                items: order.lines.clone(),
                total_cents: order.total_cents,
                placed_at: order.placed_at.to_rfc3339_opts(SecondsFormat::Micros, true),
                cancel_reason: None,
                tracking_number: None,
            }
        } else {
            // Reading through `tx` sees the batch's own writes.
            self.table
                .get(tx, id)
                .await?
                .ok_or_else(|| ProjectionError::apply(format!("{id} was never placed")))?
        };
        match order_event {
            OrderEvent::StockReserved => view.status = OrderStatus::Reserved,
            OrderEvent::PaymentCharged { .. } => view.status = OrderStatus::Paid,
            OrderEvent::Shipped { tracking_number } => {
                view.status = OrderStatus::Shipped;
                view.tracking_number = Some(tracking_number);
            }
            OrderEvent::Cancelled { reason } => {
                view.status = OrderStatus::Cancelled;
                view.cancel_reason = Some(reason);
            }
            _ => {}
        }
        self.table.upsert(tx, id, &view).await
    }

    async fn reset(&self, tx: &mut PostgresProjectionTx) -> Result<(), ProjectionError> {
        self.table.clear(tx).await.map(|_| ())
    }
}

/// The queries of the order history (committed documents only).
#[derive(Debug, Clone)]
pub struct OrderHistoryQueries {
    table: DocumentTable,
}

impl OrderHistoryQueries {
    /// Queries of `table`.
    pub fn new(table: DocumentTable) -> Self {
        Self { table }
    }

    /// `customer_id`'s orders, newest first, at most `limit`.
    ///
    /// # Errors
    ///
    /// The read model's error.
    pub async fn orders_of(
        &self,
        customer_id: Uuid,
        limit: u64,
    ) -> Result<Vec<OrderView>, ProjectionError> {
        self.table
            .query()
            .contains(json!({ "customer_id": customer_id }))
            .order_by("placed_at", SortOrder::Descending)
            .limit(limit)
            .fetch_as()
            .await
    }
}
