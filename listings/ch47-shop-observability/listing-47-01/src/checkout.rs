//! The checkout saga: when an order is placed, charge the customer; when
//! the charge is approved, mark the order paid; when it is declined, cancel
//! the order. The cashier (`cashier.rs`) carries out its commands.

use composable_rust::EventStoreError;
use composable_rust::Upcasters;
use composable_rust::event::decode;
use composable_rust::prelude::*;
use composable_rust::saga::{Reaction, Routed, SagaContext, SagaError, SagaId};
use composable_rust::uuid::Uuid;
use serde::{Deserialize, Serialize};

use crate::catalog::Cents;
use crate::order::OrderEvent;

// ANCHOR: vocabulary
/// What the cashier records about a charge, in the stream
/// `payment-<order id>`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
pub enum PaymentEvent {
    /// The gateway took `amount`.
    Charged { amount: Cents },
    /// The gateway declined, and why.
    Declined { reason: String },
}

/// The stream of order `order`'s payment: `payment-<order>`.
pub fn payment_stream(order: Uuid) -> Result<StreamId, EventStoreError> {
    StreamId::for_aggregate("payment", order)
}

/// What the saga reacts to, decoded from order and payment events.
#[derive(Debug, Clone, PartialEq)]
pub enum CheckoutInput {
    /// An order was placed.
    Placed { order: Uuid, total: Cents },
    /// Its payment was charged.
    Charged,
    /// Its payment was declined.
    Declined { reason: String },
    /// The order was paid.
    Paid,
    /// The order was cancelled.
    Cancelled,
}

/// What the saga records about itself, in its stream
/// `saga-checkout-<order id>`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
pub enum CheckoutEvent {
    Started { order: Uuid, total: Cents },
    Charged,
    Declined { reason: String },
    Confirmed,
    Cancelled,
}

/// What the saga asks the cashier to do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum CheckoutCommand {
    /// Charge the customer the order's total.
    Charge { order: Uuid, amount: Cents },
    /// Record the payment on the order.
    Confirm { order: Uuid, amount: Cents },
    /// The compensation: the payment failed, so the order is cancelled.
    Cancel { order: Uuid, reason: String },
}

/// Where a checkout stands.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Stage {
    #[default]
    New,
    Charging,
    Confirming,
    Cancelling,
    Ended,
}

/// Everything the saga knows, built from its own events.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CheckoutState {
    /// Where it stands.
    pub stage: Stage,
    /// The order being checked out.
    pub order: Uuid,
    /// What it costs.
    pub total: Cents,
}
// ANCHOR_END: vocabulary

// ANCHOR: saga
/// Takes each placed order through payment.
#[derive(Debug, Default)]
pub struct CheckoutSaga;

impl Saga for CheckoutSaga {
    const KIND: &'static str = "checkout";
    type State = CheckoutState;
    type Input = CheckoutInput;
    type Event = CheckoutEvent;
    type Command = CheckoutCommand;

    /// One saga per order: its id is the order's id, found in the stream
    /// name of the order's and of its payment's events.
    fn route(&self, event: &StoredEvent) -> Result<Option<Routed<CheckoutInput>>, SagaError> {
        let upcasters = Upcasters::new();
        let stream = event.stream_id.as_str();
        let (id, input) = if let Some(id) = stream.strip_prefix("order-") {
            let input = match decode::<OrderEvent>(event, &upcasters)? {
                Some(OrderEvent::Placed { total, .. }) => {
                    let Ok(order) = Uuid::parse_str(id) else {
                        return Ok(None);
                    };
                    CheckoutInput::Placed { order, total }
                }
                Some(OrderEvent::Paid { .. }) => CheckoutInput::Paid,
                Some(OrderEvent::Cancelled { .. }) => CheckoutInput::Cancelled,
                Some(OrderEvent::Shipped) | None => return Ok(None),
            };
            (id, input)
        } else if let Some(id) = stream.strip_prefix("payment-") {
            let input = match decode::<PaymentEvent>(event, &upcasters)? {
                Some(PaymentEvent::Charged { .. }) => CheckoutInput::Charged,
                Some(PaymentEvent::Declined { reason }) => CheckoutInput::Declined { reason },
                None => return Ok(None),
            };
            (id, input)
        } else {
            return Ok(None);
        };
        Ok(Some(Routed::new(SagaId::new(id)?, input)))
    }

    fn react(
        &self,
        state: &CheckoutState,
        input: CheckoutInput,
        _: &SagaContext,
    ) -> Reaction<Self> {
        use CheckoutInput::*;
        let order = state.order;
        match (state.stage, input) {
            (Stage::New, Placed { order, total }) => Reaction::new()
                .record(CheckoutEvent::Started { order, total })
                .send(CheckoutCommand::Charge {
                    order,
                    amount: total,
                }),
            (Stage::Charging, Charged) => {
                Reaction::new()
                    .record(CheckoutEvent::Charged)
                    .send(CheckoutCommand::Confirm {
                        order,
                        amount: state.total,
                    })
            }
            // The compensation: no money, no order.
            (Stage::Charging, Declined { reason }) => Reaction::new()
                .record(CheckoutEvent::Declined {
                    reason: reason.clone(),
                })
                .send(CheckoutCommand::Cancel {
                    order,
                    reason: format!("the payment was declined: {reason}"),
                }),
            (Stage::Confirming, Paid) => {
                Reaction::new().record(CheckoutEvent::Confirmed).complete()
            }
            (Stage::Cancelling, Cancelled) => Reaction::new()
                .record(CheckoutEvent::Cancelled)
                .compensated(),
            // Late, repeated or out of place: nothing to do.
            _ => Reaction::new(),
        }
    }

    fn on_timeout(&self, _: &CheckoutState, _name: &str, _: &SagaContext) -> Reaction<Self> {
        // The checkout starts no timeouts.
        Reaction::new()
    }

    fn apply(state: &mut CheckoutState, event: &CheckoutEvent) {
        state.stage = match event {
            CheckoutEvent::Started { order, total } => {
                (state.order, state.total) = (*order, *total);
                Stage::Charging
            }
            CheckoutEvent::Charged => Stage::Confirming,
            CheckoutEvent::Declined { .. } => Stage::Cancelling,
            CheckoutEvent::Confirmed | CheckoutEvent::Cancelled => Stage::Ended,
        };
    }
}
// ANCHOR_END: saga
