//! The read side: [`OrderHistoryQueries`] answers the screens' questions
//! from the read database. It never touches the event store, and the
//! projection never answers a query.

use composable_rust::ProjectionError;
use composable_rust::postgres::{DocumentTable, SortOrder};
use serde_json::json;

use crate::read_model::OrderView;

/// Queries of the order history.
#[derive(Debug, Clone)]
pub struct OrderHistoryQueries {
    table: DocumentTable,
}

impl OrderHistoryQueries {
    /// Queries of `table`.
    pub fn new(table: DocumentTable) -> Self {
        Self { table }
    }

    /// The orders of `customer`, newest first (at most `limit`). The
    /// containment filter is answered by the table's GIN index.
    pub async fn orders_of(
        &self,
        customer: &str,
        limit: u64,
    ) -> Result<Vec<OrderView>, ProjectionError> {
        self.table
            .query()
            .contains(json!({ "customer": customer }))
            .order_by("placed_at", SortOrder::Descending)
            .limit(limit)
            .fetch_as()
            .await
    }

    /// One order, if it exists.
    pub async fn order(&self, order_id: &str) -> Result<Option<OrderView>, ProjectionError> {
        self.table.fetch(order_id).await
    }
}
