//! The fulfillment saga: an order that is paid is shipped; an order that is
//! not paid within the payment window is cancelled.
//!
//! The saga decides, the [shipping desk](super::shipping_desk) acts: `react`
//! and `on_timeout` are pure (tested with `SagaTest`, no store, no clock),
//! and the saga runtime stores what they record and delivers the commands
//! they send. Each order has one fulfillment, whose id is the order's id.

use std::time::Duration;

use composable_rust::Upcasters;
use composable_rust::event::decode;
use composable_rust::prelude::*;
use composable_rust::saga::{
    DeclaredSaga, Reaction, Routed, SagaContext, SagaError, SagaId, SagaMap, SagaMapStep,
};
use serde::{Deserialize, Serialize};

use crate::aggregates::order::OrderEvent;

/// The name of the saga's one timeout.
pub const PAYMENT_DUE: &str = "payment-due";

/// The name of the saga's one step: waiting for the payment.
pub const PAYMENT: &str = "payment";

/// Ships paid orders and cancels orders left unpaid.
#[derive(Debug)]
pub struct FulfillmentSaga {
    /// How long a placed order may wait for its payment.
    pub payment_window: Duration,
}

/// What the saga reacts to, decoded from the order events.
#[derive(Debug, Clone, PartialEq)]
pub enum FulfillmentInput {
    Placed,
    Paid,
    Cancelled,
}

/// What the saga records about itself, in its own stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
pub enum FulfillmentEvent {
    Started { order: String },
    ShipmentRequested,
    Abandoned,
    PaymentOverdue,
}

/// What the saga asks the shipping desk to do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum FulfillmentCommand {
    Ship { order: String },
    Cancel { order: String, reason: String },
}

/// Where a fulfillment stands.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub enum Stage {
    #[default]
    New,
    AwaitingPayment,
    Ended,
}

/// Everything the saga knows, built from its own events.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FulfillmentState {
    pub stage: Stage,
    pub order: String,
}

impl Saga for FulfillmentSaga {
    const KIND: &'static str = "fulfillment";
    type State = FulfillmentState;
    type Input = FulfillmentInput;
    type Event = FulfillmentEvent;
    type Command = FulfillmentCommand;

    fn route(&self, event: &StoredEvent) -> Result<Option<Routed<FulfillmentInput>>, SagaError> {
        // The order's stream is `order-<id>`: its id is the saga's id.
        let Some(order) = event.stream_id.as_str().strip_prefix("order-") else {
            return Ok(None);
        };
        let input = match decode::<OrderEvent>(event, &Upcasters::new())? {
            Some(OrderEvent::Placed { .. }) => FulfillmentInput::Placed,
            Some(OrderEvent::Paid { .. }) => FulfillmentInput::Paid,
            Some(OrderEvent::Cancelled { .. }) => FulfillmentInput::Cancelled,
            Some(OrderEvent::Shipped) | None => return Ok(None),
        };
        Ok(Some(Routed::new(SagaId::new(order)?, input)))
    }

    fn react(
        &self,
        state: &FulfillmentState,
        input: FulfillmentInput,
        ctx: &SagaContext,
    ) -> Reaction<Self> {
        match (state.stage, input) {
            (Stage::New, FulfillmentInput::Placed) => Reaction::new()
                .record(FulfillmentEvent::Started {
                    order: ctx.saga_id.as_str().to_owned(),
                })
                .start_timeout(PAYMENT_DUE, self.payment_window),
            (Stage::AwaitingPayment, FulfillmentInput::Paid) => Reaction::new()
                .record(FulfillmentEvent::ShipmentRequested)
                .send(FulfillmentCommand::Ship {
                    order: state.order.clone(),
                })
                .cancel_timeout(PAYMENT_DUE)
                .complete(),
            // Cancelled by someone else: nothing left to do.
            (Stage::AwaitingPayment, FulfillmentInput::Cancelled) => Reaction::new()
                .record(FulfillmentEvent::Abandoned)
                .cancel_timeout(PAYMENT_DUE)
                .complete(),
            // Late, repeated or out of place: nothing to do.
            _ => Reaction::new(),
        }
    }

    fn on_timeout(&self, state: &FulfillmentState, _name: &str, _: &SagaContext) -> Reaction<Self> {
        Reaction::new()
            .record(FulfillmentEvent::PaymentOverdue)
            .send(FulfillmentCommand::Cancel {
                order: state.order.clone(),
                reason: "not paid in time".into(),
            })
            .compensated()
    }

    fn apply(state: &mut FulfillmentState, event: &FulfillmentEvent) {
        match event {
            FulfillmentEvent::Started { order } => {
                state.order = order.clone();
                state.stage = Stage::AwaitingPayment;
            }
            FulfillmentEvent::ShipmentRequested
            | FulfillmentEvent::Abandoned
            | FulfillmentEvent::PaymentOverdue => state.stage = Stage::Ended,
        }
    }
}

/// The saga's map, for `ops saga graph`: placed, it sends nothing and waits
/// for the payment; paid, it ships; cancelled by someone else, it stops;
/// not paid in time, it cancels the order. Inputs are named after
/// `FulfillmentInput`'s variants, commands after `FulfillmentCommand`'s;
/// `tests/fulfillment.rs` checks the map against the code with
/// `SagaMap::verify`.
impl DeclaredSaga for FulfillmentSaga {
    fn map() -> Result<SagaMap, SagaError> {
        SagaMap::builder(Self::KIND, "Placed")
            .with_step(
                SagaMapStep::wait(PAYMENT)
                    .with_success("Paid")
                    .with_stop("Cancelled")
                    .with_timeout(PAYMENT_DUE),
            )
            .with_completion("Ship")
            .with_cancellation("Cancel")
            .build()
    }
}
