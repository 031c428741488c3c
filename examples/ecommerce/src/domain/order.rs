//! The order: placed from a cart, then moved along by the checkout saga
//! (placed -> reserved -> paid -> shipped, or cancelled with a reason).
//! Every step of the checkout is recorded here, on the order's own stream,
//! so the order's events are the whole story of one checkout and the
//! order history read model needs only them.
//!
//! Events are fat: `order.placed` carries the lines, the address and the
//! payment token, so the saga never looks anything up.

use chrono::{DateTime, Utc};
use composable_rust::prelude::*;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::Cents;

/// Where an order goes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Address {
    /// The recipient.
    pub name: String,
    /// Street and number.
    pub line1: String,
    /// The city.
    pub city: String,
    /// The postcode.
    pub postcode: String,
    /// ISO 3166 alpha-2 country code.
    pub country: String,
}

/// One line of an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OrderLine {
    /// The product.
    pub product_id: String,
    /// Its name.
    pub name: String,
    /// How many.
    pub quantity: u32,
    /// The unit price the customer saw.
    pub price_cents: Cents,
}

/// Everything about a placed order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlacedOrder {
    /// Derived from the customer and the idempotency key (UUID v5).
    pub order_id: Uuid,
    /// Who ordered.
    pub customer_id: Uuid,
    /// What.
    pub lines: Vec<OrderLine>,
    /// The sum of the lines.
    pub total_cents: Cents,
    /// Where to.
    pub shipping_address: Address,
    /// The payment provider's one-time token.
    pub payment_token: String,
    /// SHA-256 of the request body: the same idempotency key with another
    /// body is refused.
    pub request_hash: String,
    /// The request's id (`x-request-id`): the correlation id of every
    /// event of this checkout.
    pub request_id: Option<Uuid>,
    /// When.
    pub placed_at: DateTime<Utc>,
    /// The cart version the lines were taken from: the cart's checkout
    /// removes the lines set at or before it (0 in orders placed before
    /// it was recorded).
    #[serde(default)]
    pub cart_version: u64,
}

/// What happens to an order (stream `order-{uuid}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
pub enum OrderEvent {
    /// The customer placed it.
    #[serde(rename = "order.placed")]
    Placed(Box<PlacedOrder>),
    /// The inventory reserved its lines.
    #[serde(rename = "order.stock_reserved")]
    StockReserved,
    /// The inventory could not reserve its lines.
    #[serde(rename = "order.stock_rejected")]
    StockRejected {
        /// Why.
        reason: String,
    },
    /// The payment provider charged the customer.
    #[serde(rename = "order.payment_charged")]
    PaymentCharged {
        /// The provider's charge id.
        charge_id: String,
        /// How much.
        amount_cents: Cents,
    },
    /// The payment provider declined the charge.
    #[serde(rename = "order.payment_declined")]
    PaymentDeclined {
        /// Why.
        reason: String,
    },
    /// The carrier took the parcel.
    #[serde(rename = "order.shipped")]
    Shipped {
        /// The carrier's tracking number.
        tracking_number: String,
    },
    /// Compensation: the reserved stock went back.
    #[serde(rename = "order.stock_released")]
    StockReleased,
    /// Compensation: the charge was refunded.
    #[serde(rename = "order.payment_refunded")]
    PaymentRefunded {
        /// How much.
        amount_cents: Cents,
    },
    /// The order will not be delivered.
    #[serde(rename = "order.cancelled")]
    Cancelled {
        /// Why.
        reason: String,
    },
}

/// Where an order stands.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    /// Not placed (no events).
    #[default]
    New,
    /// Placed; the checkout has started.
    Placed,
    /// Stock reserved.
    Reserved,
    /// Paid.
    Paid,
    /// Shipped: the checkout is done.
    Shipped,
    /// Cancelled: the checkout gave up (see the reason).
    Cancelled,
}

impl OrderStatus {
    /// Whether the checkout is over.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Shipped | Self::Cancelled)
    }
}

/// The order aggregate.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Order {
    /// Set once placed.
    pub placed: Option<PlacedOrder>,
    /// Where it stands.
    pub status: OrderStatus,
    /// Why it was cancelled.
    pub cancel_reason: Option<String>,
    /// The carrier's tracking number, once shipped.
    pub tracking_number: Option<String>,
    /// The charge, once paid (what a refund gives back).
    pub charged_cents: Option<Cents>,
    /// Whether stock is reserved and not released.
    pub stock_held: bool,
}

/// What an order can be asked to do: placing it, and recording each
/// outcome of the checkout. Recording an outcome that does not fit the
/// order's status (a late or repeated reply) records nothing, because
/// the saga's commands arrive at least once.
#[derive(Debug, Clone)]
pub enum OrderCommand {
    /// Place it.
    Place(Box<PlacedOrder>),
    /// Record the reservation.
    RecordReserved,
    /// Record that the stock was not there.
    RecordRejected {
        /// Why.
        reason: String,
    },
    /// Record the charge.
    RecordCharged {
        /// The provider's charge id.
        charge_id: String,
    },
    /// Record the decline.
    RecordDeclined {
        /// Why.
        reason: String,
    },
    /// Record the shipment.
    RecordShipped {
        /// The carrier's tracking number.
        tracking_number: String,
    },
    /// Record that the reserved stock went back.
    RecordReleased,
    /// Record the refund.
    RecordRefunded,
    /// Cancel it.
    Cancel {
        /// Why.
        reason: String,
    },
}

/// Why an order command is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OrderError {
    /// The order id is taken.
    #[error("the order was already placed")]
    AlreadyPlaced,
    /// An order needs lines.
    #[error("an order needs at least one line")]
    NoLines,
    /// Only a placed order can move on.
    #[error("the order was never placed")]
    NotPlaced,
}

impl Aggregate for Order {
    const KIND: &'static str = "order";
    type Event = OrderEvent;
    type Command = OrderCommand;
    type Error = OrderError;
    type Environment = ();

    fn decide(&self, command: OrderCommand, (): &()) -> Result<Vec<OrderEvent>, OrderError> {
        use OrderCommand as C;
        use OrderStatus as S;
        let events = match (self.status, command) {
            (S::New, C::Place(order)) if order.lines.is_empty() => return Err(OrderError::NoLines),
            (S::New, C::Place(order)) => vec![OrderEvent::Placed(order)],
            (_, C::Place(_)) => return Err(OrderError::AlreadyPlaced),
            (S::New, _) => return Err(OrderError::NotPlaced),
            (S::Placed, C::RecordReserved) => vec![OrderEvent::StockReserved],
            (S::Placed, C::RecordRejected { reason }) => {
                vec![OrderEvent::StockRejected { reason }]
            }
            (S::Reserved, C::RecordCharged { charge_id }) => vec![OrderEvent::PaymentCharged {
                charge_id,
                amount_cents: self.placed.as_ref().map_or(0, |o| o.total_cents),
            }],
            (S::Reserved, C::RecordDeclined { reason }) => {
                vec![OrderEvent::PaymentDeclined { reason }]
            }
            (S::Paid, C::RecordShipped { tracking_number }) => {
                vec![OrderEvent::Shipped { tracking_number }]
            }
            (_, C::RecordReleased) if self.stock_held => vec![OrderEvent::StockReleased],
            (_, C::RecordRefunded) => match self.charged_cents {
                Some(amount_cents) => vec![OrderEvent::PaymentRefunded { amount_cents }],
                None => vec![],
            },
            // A shipped order is delivered, whatever a late command says.
            (S::Placed | S::Reserved | S::Paid, C::Cancel { reason }) => {
                vec![OrderEvent::Cancelled { reason }]
            }
            // Late or repeated: already recorded, or no longer relevant.
            _ => vec![],
        };
        Ok(events)
    }

    fn apply(&mut self, event: &OrderEvent) {
        match event {
            OrderEvent::Placed(order) => {
                self.placed = Some(PlacedOrder::clone(order));
                self.status = OrderStatus::Placed;
            }
            OrderEvent::StockReserved => {
                self.status = OrderStatus::Reserved;
                self.stock_held = true;
            }
            // The status stays until the saga cancels the order.
            OrderEvent::StockRejected { .. } | OrderEvent::PaymentDeclined { .. } => {}
            OrderEvent::PaymentCharged { amount_cents, .. } => {
                self.status = OrderStatus::Paid;
                self.charged_cents = Some(*amount_cents);
            }
            OrderEvent::Shipped { tracking_number } => {
                self.status = OrderStatus::Shipped;
                self.tracking_number = Some(tracking_number.clone());
            }
            OrderEvent::StockReleased => self.stock_held = false,
            OrderEvent::PaymentRefunded { .. } => self.charged_cents = None,
            OrderEvent::Cancelled { reason } => {
                self.status = OrderStatus::Cancelled;
                self.cancel_reason = Some(reason.clone());
            }
        }
    }
}

/// The stream of order `order_id`.
///
/// # Errors
///
/// Never for a UUID; the type is the store's.
pub fn order_stream(order_id: Uuid) -> Result<StreamId, composable_rust::EventStoreError> {
    StreamId::for_aggregate("order", order_id)
}

/// The order id of `customer_id`'s order with idempotency key `key`: the
/// same customer and key always give the same id, so a retried request
/// finds the order it placed the first time.
pub fn order_id_for(customer_id: Uuid, key: &str) -> Uuid {
    let mut name = customer_id.as_bytes().to_vec();
    name.extend_from_slice(key.as_bytes());
    Uuid::new_v5(&ORDER_NAMESPACE, &name)
}

/// The UUID v5 namespace of order ids (a fixed random UUID).
const ORDER_NAMESPACE: Uuid = Uuid::from_u128(0x6f1c_2a8e_4b7d_4e0f_9a35_c1d2_e3f4_a5b6);

#[cfg(test)]
mod tests {
    use super::*;

    fn placed() -> PlacedOrder {
        PlacedOrder {
            order_id: Uuid::new_v4(),
            customer_id: Uuid::new_v4(),
            lines: vec![OrderLine {
                product_id: "kettle".into(),
                name: "Kettle".into(),
                quantity: 2,
                price_cents: 4_500,
            }],
            total_cents: 9_000,
            shipping_address: Address {
                name: "Ada".into(),
                line1: "1 Loop Rd".into(),
                city: "London".into(),
                postcode: "N1".into(),
                country: "GB".into(),
            },
            payment_token: "tok_visa".into(),
            request_hash: "h".into(),
            request_id: None,
            placed_at: Utc::now(),
            cart_version: 1,
        }
    }

    fn run(order: &mut Order, command: OrderCommand) -> Vec<OrderEvent> {
        let events = order.decide(command, &()).unwrap();
        events.iter().for_each(|e| order.apply(e));
        events
    }

    #[test]
    fn a_checkout_moves_the_status_and_repeats_record_nothing() {
        let mut order = Order::default();
        run(&mut order, OrderCommand::Place(Box::new(placed())));
        run(&mut order, OrderCommand::RecordReserved);
        assert!(run(&mut order, OrderCommand::RecordReserved).is_empty());
        run(
            &mut order,
            OrderCommand::RecordCharged {
                charge_id: "ch_1".into(),
            },
        );
        assert_eq!(order.charged_cents, Some(9_000));
        run(
            &mut order,
            OrderCommand::RecordShipped {
                tracking_number: "T1".into(),
            },
        );
        assert_eq!(order.status, OrderStatus::Shipped);
        assert!(
            run(
                &mut order,
                OrderCommand::Cancel {
                    reason: "late".into()
                }
            )
            .is_empty()
        );
    }

    #[test]
    fn the_same_customer_and_key_give_the_same_order_id() {
        let customer = Uuid::new_v4();
        assert_eq!(order_id_for(customer, "k1"), order_id_for(customer, "k1"));
        assert_ne!(order_id_for(customer, "k1"), order_id_for(customer, "k2"));
        assert_ne!(
            order_id_for(customer, "k1"),
            order_id_for(Uuid::new_v4(), "k1")
        );
    }
}
