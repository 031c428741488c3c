//! The checkout saga: place order → reserve inventory → charge payment →
//! confirm order. When a step fails or does not answer in time, the steps
//! already done are compensated, most recent first, and the order is
//! cancelled.
//!
//! ```text
//!  OrderPlaced ─► ReserveInventory ─► InventoryReserved ─► ChargePayment ─► PaymentCharged ─► ConfirmOrder ✔
//!                      │                                        │
//!               rejected / timeout                    declined / timeout
//!                      ▼                                        ▼
//!       (release if timed out) + CancelOrder     (refund if timed out) + ReleaseInventory + CancelOrder
//! ```

use std::time::Duration;

use composable_rust::Upcasters;
use composable_rust::event::decode;
use composable_rust::prelude::*;
use composable_rust::saga::SagaError;
use composable_rust::saga::{Reaction, Routed, SagaContext, SagaId, SagaSteps};
use serde::{Deserialize, Serialize};

use crate::domain::{Cents, InventoryEvent, LineItem, OrderEvent, PaymentEvent, PlacedOrder};

/// The step names, also the names of their timeouts.
pub const INVENTORY: &str = "inventory";
/// See [`INVENTORY`].
pub const PAYMENT: &str = "payment";

/// The saga, configured with how long it waits for each step's answer.
#[derive(Debug, Clone)]
pub struct CheckoutSaga {
    pub reply_timeout: Duration,
}

impl CheckoutSaga {
    pub fn new(reply_timeout: Duration) -> Self {
        Self { reply_timeout }
    }
}

// ANCHOR: types
/// What the saga reacts to: the domain's events, as far as it cares.
#[derive(Debug, Clone, PartialEq)]
pub enum CheckoutInput {
    OrderPlaced(PlacedOrder),
    InventoryReserved,
    InventoryRejected { reason: String },
    PaymentCharged { charge_id: String },
    PaymentDeclined { reason: String },
}

/// What the saga records about itself, in its own stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
pub enum CheckoutEvent {
    #[serde(rename = "checkout.started")]
    Started { order: PlacedOrder },
    #[serde(rename = "checkout.inventory_reserved")]
    InventoryReserved,
    #[serde(rename = "checkout.payment_charged")]
    PaymentCharged { charge_id: String },
    /// A step failed and did nothing.
    #[serde(rename = "checkout.step_failed")]
    StepFailed { step: String, reason: String },
    /// A step did not answer in time; it may or may not have happened.
    #[serde(rename = "checkout.step_timed_out")]
    StepTimedOut { step: String },
}
// ANCHOR_END: types

// ANCHOR: commands
/// What the saga asks the services to do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum CheckoutCommand {
    ReserveInventory {
        order_id: String,
        items: Vec<LineItem>,
    },
    ReleaseInventory {
        order_id: String,
    },
    ChargePayment {
        order_id: String,
        customer: String,
        amount: Cents,
    },
    RefundPayment {
        order_id: String,
    },
    ConfirmOrder {
        order_id: String,
    },
    CancelOrder {
        order_id: String,
        reason: String,
    },
}
// ANCHOR_END: commands

// ANCHOR: state
/// Where the checkout stands.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Stage {
    #[default]
    NotStarted,
    ReservingInventory,
    ChargingPayment,
    Confirmed,
    Cancelled,
}

/// Everything the saga knows, carried from the events it saw: it never
/// queries a read model.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CheckoutState {
    pub order: Option<PlacedOrder>,
    pub stage: Stage,
    pub steps: SagaSteps<CheckoutCommand>,
    pub charge_id: Option<String>,
    pub failure: Option<String>,
}
// ANCHOR_END: state

impl CheckoutState {
    fn order_id(&self) -> String {
        self.order
            .as_ref()
            .map(|order| order.order_id.clone())
            .unwrap_or_default()
    }
}

// ANCHOR: impl
impl Saga for CheckoutSaga {
    const KIND: &'static str = "checkout";
    type State = CheckoutState;
    type Input = CheckoutInput;
    type Event = CheckoutEvent;
    type Command = CheckoutCommand;
    // ANCHOR_END: impl

    // ANCHOR: route
    /// Orders, inventory and payments all carry the order id: it is the
    /// saga's id.
    fn route(&self, event: &StoredEvent) -> Result<Option<Routed<CheckoutInput>>, SagaError> {
        let upcasters = Upcasters::new();
        let stream = event.stream_id.as_str();
        let routed = if stream.starts_with("order-") {
            match decode::<OrderEvent>(event, &upcasters)? {
                Some(OrderEvent::Placed(order)) => {
                    (order.order_id.clone(), CheckoutInput::OrderPlaced(order))
                }
                _ => return Ok(None),
            }
        } else if stream.starts_with("inventory-") {
            match decode::<InventoryEvent>(event, &upcasters)? {
                Some(InventoryEvent::Reserved { order_id, .. }) => {
                    (order_id, CheckoutInput::InventoryReserved)
                }
                Some(InventoryEvent::Rejected { order_id, reason }) => {
                    (order_id, CheckoutInput::InventoryRejected { reason })
                }
                _ => return Ok(None),
            }
        } else if stream.starts_with("payment-") {
            match decode::<PaymentEvent>(event, &upcasters)? {
                Some(PaymentEvent::Charged {
                    order_id,
                    charge_id,
                    ..
                }) => (order_id, CheckoutInput::PaymentCharged { charge_id }),
                Some(PaymentEvent::Declined { order_id, reason }) => {
                    (order_id, CheckoutInput::PaymentDeclined { reason })
                }
                _ => return Ok(None),
            }
        } else {
            return Ok(None);
        };
        let (order_id, input) = routed;
        Ok(Some(Routed::new(SagaId::new(order_id)?, input)))
    }
    // ANCHOR_END: route

    // ANCHOR: react
    fn react(
        &self,
        state: &CheckoutState,
        input: CheckoutInput,
        _ctx: &SagaContext,
    ) -> Reaction<Self> {
        use CheckoutInput::*;
        match (state.stage, input) {
            (Stage::NotStarted, OrderPlaced(order)) => Reaction::new()
                .record(CheckoutEvent::Started {
                    order: order.clone(),
                })
                .send(CheckoutCommand::ReserveInventory {
                    order_id: order.order_id,
                    items: order.items,
                })
                .start_timeout(INVENTORY, self.reply_timeout),
            (Stage::ReservingInventory, InventoryReserved) => {
                let Some(order) = &state.order else {
                    return Reaction::new();
                };
                Reaction::new()
                    .record(CheckoutEvent::InventoryReserved)
                    .cancel_timeout(INVENTORY)
                    .send(CheckoutCommand::ChargePayment {
                        order_id: order.order_id.clone(),
                        customer: order.customer.clone(),
                        amount: order.total,
                    })
                    .start_timeout(PAYMENT, self.reply_timeout)
            }
            (Stage::ReservingInventory, InventoryRejected { reason }) => {
                fail(state, INVENTORY, format!("inventory rejected: {reason}"))
            }
            (Stage::ChargingPayment, PaymentCharged { charge_id }) => Reaction::new()
                .record(CheckoutEvent::PaymentCharged { charge_id })
                .send(CheckoutCommand::ConfirmOrder {
                    order_id: state.order_id(),
                })
                .complete(),
            (Stage::ChargingPayment, PaymentDeclined { reason }) => {
                fail(state, PAYMENT, format!("payment declined: {reason}"))
            }
            // Anything else is late, repeated or out of place: a duplicate
            // reply, or a reply after the saga gave up. Nothing to do.
            _ => Reaction::new(),
        }
    }
    // ANCHOR_END: react

    // ANCHOR: on_timeout
    /// A step that does not answer may still have happened (the gateway
    /// took the money, the answer got lost): compensate it too.
    fn on_timeout(&self, state: &CheckoutState, step: &str, _ctx: &SagaContext) -> Reaction<Self> {
        Reaction::new()
            .record(CheckoutEvent::StepTimedOut { step: step.into() })
            .send_all(state.steps.compensations_with_in_flight())
            .send(CheckoutCommand::CancelOrder {
                order_id: state.order_id(),
                reason: format!("no answer from {step} within {:?}", self.reply_timeout),
            })
            .compensated()
    }
    // ANCHOR_END: on_timeout

    // ANCHOR: apply
    fn apply(state: &mut CheckoutState, event: &CheckoutEvent) {
        match event {
            CheckoutEvent::Started { order } => {
                state.steps.start(
                    INVENTORY,
                    Some(CheckoutCommand::ReleaseInventory {
                        order_id: order.order_id.clone(),
                    }),
                );
                state.order = Some(order.clone());
                state.stage = Stage::ReservingInventory;
            }
            CheckoutEvent::InventoryReserved => {
                state.steps.complete(INVENTORY);
                state.steps.start(
                    PAYMENT,
                    Some(CheckoutCommand::RefundPayment {
                        order_id: state.order_id(),
                    }),
                );
                state.stage = Stage::ChargingPayment;
            }
            CheckoutEvent::PaymentCharged { charge_id } => {
                state.steps.complete(PAYMENT);
                state.charge_id = Some(charge_id.clone());
                state.stage = Stage::Confirmed;
            }
            CheckoutEvent::StepFailed { step, reason } => {
                state.steps.fail(step);
                state.failure = Some(reason.clone());
                state.stage = Stage::Cancelled;
            }
            CheckoutEvent::StepTimedOut { step } => {
                state.failure = Some(format!("{step} timed out"));
                state.stage = Stage::Cancelled;
            }
        }
    }
}
// ANCHOR_END: apply

// ANCHOR: fail
/// Step `step` failed and did nothing: undo the completed steps, most
/// recent first, then cancel the order.
fn fail(state: &CheckoutState, step: &str, reason: String) -> Reaction<CheckoutSaga> {
    Reaction::new()
        .record(CheckoutEvent::StepFailed {
            step: step.into(),
            reason: reason.clone(),
        })
        .send_all(state.steps.compensations())
        .send(CheckoutCommand::CancelOrder {
            order_id: state.order_id(),
            reason,
        })
        .compensated()
}
// ANCHOR_END: fail
