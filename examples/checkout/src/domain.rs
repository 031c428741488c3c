//! The domain: the `Order` aggregate, and the events the inventory and
//! payment services record. Every event carries everything a downstream
//! reader needs (fat events), so the saga never has to look anything up.

use std::fmt;

use composable_rust::prelude::*;
use serde::{Deserialize, Serialize};

/// Amounts are in cents.
pub type Cents = u64;

/// One line of an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineItem {
    pub sku: String,
    pub quantity: u32,
    pub unit_price: Cents,
}

impl LineItem {
    pub fn new(sku: &str, quantity: u32, unit_price: Cents) -> Self {
        Self {
            sku: sku.into(),
            quantity,
            unit_price,
        }
    }
}

/// Everything downstream needs about a placed order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlacedOrder {
    pub order_id: String,
    pub customer: String,
    pub items: Vec<LineItem>,
    pub total: Cents,
}

/// What happens to an order (stream `order-{id}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
pub enum OrderEvent {
    #[serde(rename = "order.placed")]
    Placed(PlacedOrder),
    #[serde(rename = "order.confirmed")]
    Confirmed { order_id: String },
    #[serde(rename = "order.cancelled")]
    Cancelled { order_id: String, reason: String },
}

/// What the inventory service records (stream `inventory-{order id}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
pub enum InventoryEvent {
    #[serde(rename = "inventory.reserved")]
    Reserved {
        order_id: String,
        items: Vec<LineItem>,
    },
    #[serde(rename = "inventory.rejected")]
    Rejected { order_id: String, reason: String },
    #[serde(rename = "inventory.released")]
    Released { order_id: String },
}

/// What the payment service records (stream `payment-{order id}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
pub enum PaymentEvent {
    #[serde(rename = "payment.charged")]
    Charged {
        order_id: String,
        amount: Cents,
        charge_id: String,
    },
    #[serde(rename = "payment.declined")]
    Declined { order_id: String, reason: String },
    #[serde(rename = "payment.refunded")]
    Refunded { order_id: String, amount: Cents },
}

/// The stream of order `order_id`'s inventory reservation.
pub fn inventory_stream(order_id: &str) -> Result<StreamId, composable_rust::EventStoreError> {
    StreamId::for_aggregate("inventory", order_id)
}

/// The stream of order `order_id`'s payment.
pub fn payment_stream(order_id: &str) -> Result<StreamId, composable_rust::EventStoreError> {
    StreamId::for_aggregate("payment", order_id)
}

/// Where an order stands.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum OrderStatus {
    #[default]
    New,
    Placed,
    Confirmed,
    Cancelled {
        reason: String,
    },
}

impl fmt::Display for OrderStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::New => f.write_str("new"),
            Self::Placed => f.write_str("placed"),
            Self::Confirmed => f.write_str("confirmed"),
            Self::Cancelled { reason } => write!(f, "cancelled ({reason})"),
        }
    }
}

/// The order aggregate.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Order {
    pub placed: Option<PlacedOrder>,
    pub status: OrderStatus,
}

/// What an order can be asked to do.
#[derive(Debug, Clone)]
pub enum OrderCommand {
    Place {
        order_id: String,
        customer: String,
        items: Vec<LineItem>,
    },
    Confirm,
    Cancel {
        reason: String,
    },
}

/// Why an order command is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OrderError {
    #[error("the order was already placed")]
    AlreadyPlaced,
    #[error("an order needs at least one item")]
    NoItems,
    #[error("order ids are 1 to 64 letters, digits or dashes")]
    BadId,
    #[error("the order was never placed")]
    NotPlaced,
    #[error("the order was cancelled")]
    AlreadyCancelled,
    #[error("the order was confirmed")]
    AlreadyConfirmed,
}

impl Aggregate for Order {
    const KIND: &'static str = "order";
    type Event = OrderEvent;
    type Command = OrderCommand;
    type Error = OrderError;
    type Environment = ();

    fn decide(&self, command: OrderCommand, _: &()) -> Result<Vec<OrderEvent>, OrderError> {
        let order_id = || {
            self.placed
                .as_ref()
                .map(|order| order.order_id.clone())
                .unwrap_or_default()
        };
        match (&self.status, command) {
            (
                OrderStatus::New,
                OrderCommand::Place {
                    order_id,
                    customer,
                    items,
                },
            ) => {
                let valid_id = !order_id.is_empty()
                    && order_id.len() <= 64
                    && order_id
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-');
                if !valid_id {
                    return Err(OrderError::BadId);
                }
                if items.is_empty() {
                    return Err(OrderError::NoItems);
                }
                let total = items
                    .iter()
                    .map(|item| item.unit_price * Cents::from(item.quantity))
                    .sum();
                Ok(vec![OrderEvent::Placed(PlacedOrder {
                    order_id,
                    customer,
                    items,
                    total,
                })])
            }
            (_, OrderCommand::Place { .. }) => Err(OrderError::AlreadyPlaced),
            (OrderStatus::New, _) => Err(OrderError::NotPlaced),
            // Confirming or cancelling twice changes nothing: commands from
            // a saga may arrive more than once.
            (OrderStatus::Confirmed, OrderCommand::Confirm)
            | (OrderStatus::Cancelled { .. }, OrderCommand::Cancel { .. }) => Ok(vec![]),
            (OrderStatus::Placed, OrderCommand::Confirm) => Ok(vec![OrderEvent::Confirmed {
                order_id: order_id(),
            }]),
            (OrderStatus::Placed, OrderCommand::Cancel { reason }) => {
                Ok(vec![OrderEvent::Cancelled {
                    order_id: order_id(),
                    reason,
                }])
            }
            (OrderStatus::Cancelled { .. }, OrderCommand::Confirm) => {
                Err(OrderError::AlreadyCancelled)
            }
            (OrderStatus::Confirmed, OrderCommand::Cancel { .. }) => {
                Err(OrderError::AlreadyConfirmed)
            }
        }
    }

    fn apply(&mut self, event: &OrderEvent) {
        match event {
            OrderEvent::Placed(order) => {
                self.placed = Some(order.clone());
                self.status = OrderStatus::Placed;
            }
            OrderEvent::Confirmed { .. } => self.status = OrderStatus::Confirmed,
            OrderEvent::Cancelled { reason, .. } => {
                self.status = OrderStatus::Cancelled {
                    reason: reason.clone(),
                }
            }
        }
    }
}

/// Formats cents as `45.00`.
pub fn money(cents: Cents) -> String {
    format!("{}.{:02}", cents / 100, cents % 100)
}
