//! The update side: [`OrderHistory`] turns `Order` events into
//! [`OrderView`] documents. It only writes; the queries live in
//! [`crate::queries`].

use async_trait::async_trait;
use composable_rust::event::decode;
use composable_rust::postgres::{DocumentTable, PostgresProjectionStore, PostgresProjectionTx};
use composable_rust::prelude::*;
use composable_rust::{ProjectionError, Upcasters};

use crate::order::{OrderEvent, Status};
use crate::read_model::OrderView;

/// Keeps one [`OrderView`] per order. A batch of events and the checkpoint
/// commit in one PostgreSQL transaction: each event counts exactly once.
#[derive(Debug)]
pub struct OrderHistory {
    table: DocumentTable,
    upcasters: Upcasters,
}

impl OrderHistory {
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
        let view = match order_event {
            OrderEvent::Placed {
                customer,
                lines,
                placed_at,
            } => OrderView::placed(id, customer, lines, placed_at),
            // Later events change the document `Placed` wrote. Reading it
            // through `tx` sees it even if it is not committed yet.
            other => {
                let mut view: OrderView = self
                    .table
                    .get(tx, id)
                    .await?
                    .ok_or_else(|| ProjectionError::apply(format!("{id} was never placed")))?;
                match other {
                    OrderEvent::Cancelled { reason } => {
                        view.status = Status::Cancelled;
                        view.cancel_reason = Some(reason);
                    }
                    _ => view.status = Status::Shipped,
                }
                view
            }
        };
        self.table.upsert(tx, id, &view).await
    }

    /// For a rebuild: start from an empty table.
    async fn reset(&self, tx: &mut PostgresProjectionTx) -> Result<(), ProjectionError> {
        self.table.clear(tx).await.map(|_| ())
    }
}
