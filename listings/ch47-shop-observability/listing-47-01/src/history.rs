//! The order history: for each customer, their orders with status and
//! total, newest first. A read model kept up to date from the order events,
//! in any projection store (in memory in tests, PostgreSQL in the service).

use std::marker::PhantomData;

use composable_rust::event::decode;
use composable_rust::prelude::*;
use composable_rust::uuid::Uuid;
use composable_rust::{ProjectionError, Upcasters};
use serde::{Deserialize, Serialize};

use crate::catalog::Cents;
use crate::order::{OrderEvent, Status};

// ANCHOR: model
/// One order in a customer's history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PastOrder {
    /// The order's id.
    pub id: Uuid,
    /// Where it stands now.
    pub status: Status,
    /// What it costs, in cents.
    pub total: Cents,
    /// How many items it holds, all lines together.
    pub items: u32,
}

/// Every key of the read model starts with this, so a rebuild can delete
/// them all.
const PREFIX: &str = "order-history:";

/// The key of `customer`'s orders (a `Vec<PastOrder>`, newest first).
pub fn history_key(customer: &str) -> String {
    format!("{PREFIX}customer:{customer}")
}

/// The key of the customer who placed the order of stream `order`: the
/// later events of an order do not repeat who placed it.
fn owner_key(order: &StreamId) -> String {
    format!("{PREFIX}owner:{order}")
}

/// `customer`'s orders, newest first, as the read model has them now (an
/// empty list for a customer who has none, or none applied yet).
pub async fn orders_of<S: ProjectionStore>(
    store: &S,
    customer: &str,
) -> Result<Vec<PastOrder>, ProjectionError> {
    Ok(store
        .get_json(&history_key(customer))
        .await?
        .unwrap_or_default())
}
// ANCHOR_END: model

// ANCHOR: projection
/// Keeps the [`PastOrder`]s of every customer, from the order events.
#[derive(Debug)]
pub struct OrderHistory<S> {
    upcasters: Upcasters,
    _store: PhantomData<fn() -> S>,
}

impl<S> OrderHistory<S> {
    /// The projection, for a store of type `S`.
    pub fn new() -> Self {
        Self {
            upcasters: Upcasters::new(),
            _store: PhantomData,
        }
    }
}

impl<S> Default for OrderHistory<S> {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait]
impl<S: ProjectionCheckpoint> Projection for OrderHistory<S> {
    type Store = S;

    fn name(&self) -> &str {
        "order-history"
    }

    /// Only order streams.
    fn handles(&self, event: &StoredEvent) -> bool {
        event.stream_id.as_str().starts_with("order-")
    }

    async fn apply(&self, event: &StoredEvent, tx: &mut S::Tx) -> Result<(), ProjectionError> {
        let Some(order_event) = decode::<OrderEvent>(event, &self.upcasters)? else {
            return Ok(());
        };
        let stream = &event.stream_id;
        let Some(id) = order_id(stream) else {
            return Ok(());
        };
        let status = match order_event {
            OrderEvent::Placed {
                customer,
                lines,
                total,
            } => {
                tx.save_json(&owner_key(stream), &customer).await?;
                let key = history_key(&customer);
                let mut orders: Vec<PastOrder> = tx.get_json(&key).await?.unwrap_or_default();
                // Applying the same event twice must not list the order twice.
                if !orders.iter().any(|order| order.id == id) {
                    let items = lines.iter().map(|line| line.quantity).sum();
                    let placed = PastOrder {
                        id,
                        status: Status::Placed,
                        total,
                        items,
                    };
                    orders.insert(0, placed);
                }
                return tx.save_json(&key, &orders).await;
            }
            OrderEvent::Paid { .. } => Status::Paid,
            OrderEvent::Shipped => Status::Shipped,
            OrderEvent::Cancelled { .. } => Status::Cancelled,
        };
        // Any later event changes the status of an order already listed.
        let Some(customer) = tx.get_json::<String>(&owner_key(stream)).await? else {
            return Ok(());
        };
        let key = history_key(&customer);
        let mut orders: Vec<PastOrder> = tx.get_json(&key).await?.unwrap_or_default();
        if let Some(order) = orders.iter_mut().find(|order| order.id == id) {
            order.status = status;
        }
        tx.save_json(&key, &orders).await
    }

    async fn reset(&self, tx: &mut S::Tx) -> Result<(), ProjectionError> {
        tx.delete_prefix(PREFIX).await.map(|_| ())
    }
}

/// The order id in a stream id `order-<uuid>`.
fn order_id(stream: &StreamId) -> Option<Uuid> {
    let id = stream.as_str().strip_prefix("order-")?;
    Uuid::parse_str(id).ok()
}
// ANCHOR_END: projection
