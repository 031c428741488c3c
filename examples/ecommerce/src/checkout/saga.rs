//! The checkout saga. It follows the order streams (delivered by the event
//! bus), keeps everything it needs in its own state (taken from the fat
//! `order.placed` event), and decides each next command purely. The
//! runtime records each step before sending its commands, so a crash
//! loses nothing; the services are idempotent by command id, so a command
//! sent twice does nothing twice. Timeouts run on the runtime's clock.

use std::time::Duration;

use composable_rust::Upcasters;
use composable_rust::event::decode;
use composable_rust::prelude::*;
use composable_rust::saga::{Reaction, Routed, SagaContext, SagaError, SagaId, SagaSteps};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::domain::Cents;
use crate::domain::order::{Address, OrderEvent, PlacedOrder};

/// The steps, by name (also the names of their timeouts).
const INVENTORY: &str = "inventory";
const PAYMENT: &str = "payment";
const SHIPPING: &str = "shipping";

/// What the saga asks the services to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CheckoutCommand {
    /// Reserve each line's quantity.
    ReserveStock {
        /// The order.
        order_id: Uuid,
        /// See [`CheckoutCommand::request_id`].
        #[serde(default)]
        request_id: Option<Uuid>,
        /// `(product id, quantity)`.
        lines: Vec<(String, u64)>,
    },
    /// Give the reserved stock back (compensation).
    ReleaseStock {
        /// The order.
        order_id: Uuid,
        /// See [`CheckoutCommand::request_id`].
        #[serde(default)]
        request_id: Option<Uuid>,
        /// `(product id, quantity)`.
        lines: Vec<(String, u64)>,
    },
    /// Charge the order's total.
    ChargePayment {
        /// The order.
        order_id: Uuid,
        /// See [`CheckoutCommand::request_id`].
        #[serde(default)]
        request_id: Option<Uuid>,
        /// The provider's token.
        payment_token: String,
        /// How much.
        amount_cents: Cents,
    },
    /// Refund the charge (compensation).
    RefundPayment {
        /// The order.
        order_id: Uuid,
        /// See [`CheckoutCommand::request_id`].
        #[serde(default)]
        request_id: Option<Uuid>,
    },
    /// Book the shipment.
    CreateShipment {
        /// The order.
        order_id: Uuid,
        /// See [`CheckoutCommand::request_id`].
        #[serde(default)]
        request_id: Option<Uuid>,
        /// Where to.
        address: Address,
    },
    /// Cancel the order.
    CancelOrder {
        /// The order.
        order_id: Uuid,
        /// See [`CheckoutCommand::request_id`].
        #[serde(default)]
        request_id: Option<Uuid>,
        /// Why.
        reason: String,
    },
}

impl CheckoutCommand {
    /// The HTTP request that placed the order, copied by the saga from
    /// `order.placed` into every command: the correlation id of the events
    /// recording the command's outcome. `None` in commands recorded before
    /// the field was added (`#[serde(default)]`), or for an order placed
    /// without a request id.
    pub fn request_id(&self) -> Option<Uuid> {
        match self {
            Self::ReserveStock { request_id, .. }
            | Self::ReleaseStock { request_id, .. }
            | Self::ChargePayment { request_id, .. }
            | Self::RefundPayment { request_id, .. }
            | Self::CreateShipment { request_id, .. }
            | Self::CancelOrder { request_id, .. } => *request_id,
        }
    }
}

/// What the saga records about itself (stream `saga-checkout-{order id}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
pub enum CheckoutEvent {
    /// The order was placed: the saga took what it needs.
    #[serde(rename = "checkout.started")]
    Started(Box<PlacedOrder>),
    /// The stock is reserved.
    #[serde(rename = "checkout.reserved")]
    Reserved,
    /// The payment went through.
    #[serde(rename = "checkout.charged")]
    Charged,
    /// The parcel left.
    #[serde(rename = "checkout.shipped")]
    Shipped,
    /// A step failed; compensations were sent.
    #[serde(rename = "checkout.failed")]
    Failed {
        /// The step.
        step: String,
        /// Why.
        reason: String,
    },
}

/// Where a checkout stands.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Stage {
    /// Not started.
    #[default]
    New,
    /// Waiting for the reservation.
    Reserving,
    /// Waiting for the charge.
    Charging,
    /// Waiting for the shipment.
    Shipping,
    /// Over.
    Done,
}

/// The saga's state: built from its own events only.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CheckoutState {
    /// The order, from `order.placed`.
    pub order: Option<PlacedOrder>,
    /// Where it stands.
    pub stage: Stage,
    /// The steps taken and their compensations.
    pub steps: SagaSteps<CheckoutCommand>,
}

impl CheckoutState {
    fn order_id(&self) -> Uuid {
        self.order.as_ref().map_or(Uuid::nil(), |o| o.order_id)
    }

    fn request_id(&self) -> Option<Uuid> {
        self.order.as_ref().and_then(|o| o.request_id)
    }

    fn lines(&self) -> Vec<(String, u64)> {
        self.order.as_ref().map_or_else(Vec::new, |order| {
            order
                .lines
                .iter()
                .map(|line| (line.product_id.clone(), u64::from(line.quantity)))
                .collect()
        })
    }
}

/// What the saga reacts to: the outcomes recorded on the order.
#[derive(Debug, Clone, PartialEq)]
pub enum CheckoutInput {
    /// `order.placed`.
    Placed(Box<PlacedOrder>),
    /// `order.stock_reserved`.
    Reserved,
    /// `order.stock_rejected`.
    Rejected(String),
    /// `order.payment_charged`.
    Charged,
    /// `order.payment_declined`.
    Declined(String),
    /// `order.shipped`.
    Shipped,
}

/// The checkout saga.
#[derive(Debug, Clone)]
pub struct CheckoutSaga {
    /// How long each step may take before the saga gives up and
    /// compensates.
    pub step_timeout: Duration,
}

impl Default for CheckoutSaga {
    fn default() -> Self {
        Self {
            step_timeout: Duration::from_secs(60),
        }
    }
}

impl Saga for CheckoutSaga {
    const KIND: &'static str = "checkout";
    type State = CheckoutState;
    type Input = CheckoutInput;
    type Event = CheckoutEvent;
    type Command = CheckoutCommand;

    fn route(&self, event: &StoredEvent) -> Result<Option<Routed<CheckoutInput>>, SagaError> {
        let Some(order_id) = event.stream_id.as_str().strip_prefix("order-") else {
            return Ok(None);
        };
        // Only the order's own events; one this version cannot read is not
        // the saga's to judge (the order history dead-letters it).
        let Ok(Some(order_event)) = decode::<OrderEvent>(event, &Upcasters::new()) else {
            return Ok(None);
        };
        let input = match order_event {
            OrderEvent::Placed(order) => CheckoutInput::Placed(order),
            OrderEvent::StockReserved => CheckoutInput::Reserved,
            OrderEvent::StockRejected { reason } => CheckoutInput::Rejected(reason),
            OrderEvent::PaymentCharged { .. } => CheckoutInput::Charged,
            OrderEvent::PaymentDeclined { reason } => CheckoutInput::Declined(reason),
            OrderEvent::Shipped { .. } => CheckoutInput::Shipped,
            // The saga's own compensations coming back: nothing to decide.
            OrderEvent::StockReleased
            | OrderEvent::PaymentRefunded { .. }
            | OrderEvent::Cancelled { .. } => return Ok(None),
        };
        Ok(Some(Routed::new(SagaId::new(order_id)?, input)))
    }

    fn react(
        &self,
        state: &CheckoutState,
        input: CheckoutInput,
        _: &SagaContext,
    ) -> Reaction<Self> {
        use CheckoutInput as I;
        match (&state.stage, input) {
            (Stage::New, I::Placed(order)) => Reaction::new()
                .send(CheckoutCommand::ReserveStock {
                    order_id: order.order_id,
                    request_id: order.request_id,
                    lines: order
                        .lines
                        .iter()
                        .map(|l| (l.product_id.clone(), u64::from(l.quantity)))
                        .collect(),
                })
                .record(CheckoutEvent::Started(order))
                .start_timeout(INVENTORY, self.step_timeout),
            (Stage::Reserving, I::Reserved) => {
                let order = state.order.as_ref();
                Reaction::new()
                    .record(CheckoutEvent::Reserved)
                    .cancel_timeout(INVENTORY)
                    .send(CheckoutCommand::ChargePayment {
                        order_id: state.order_id(),
                        request_id: state.request_id(),
                        payment_token: order.map(|o| o.payment_token.clone()).unwrap_or_default(),
                        amount_cents: order.map_or(0, |o| o.total_cents),
                    })
                    .start_timeout(PAYMENT, self.step_timeout)
            }
            (Stage::Reserving, I::Rejected(reason)) => fail(state, INVENTORY, reason),
            (Stage::Charging, I::Charged) => Reaction::new()
                .record(CheckoutEvent::Charged)
                .cancel_timeout(PAYMENT)
                .send(CheckoutCommand::CreateShipment {
                    order_id: state.order_id(),
                    request_id: state.request_id(),
                    address: state
                        .order
                        .as_ref()
                        .map(|o| o.shipping_address.clone())
                        .unwrap_or_default(),
                })
                .start_timeout(SHIPPING, self.step_timeout),
            (Stage::Charging, I::Declined(reason)) => fail(state, PAYMENT, reason),
            (Stage::Shipping, I::Shipped) => Reaction::new()
                .record(CheckoutEvent::Shipped)
                .cancel_timeout(SHIPPING)
                .complete(),
            // Late, repeated or out of place: nothing to do.
            _ => Reaction::new(),
        }
    }

    /// A step that did not answer may still have happened: compensate it
    /// too (the services do nothing for what never happened).
    fn on_timeout(&self, state: &CheckoutState, step: &str, _: &SagaContext) -> Reaction<Self> {
        let reason = format!("no answer from {step} within {:?}", self.step_timeout);
        Reaction::new()
            .record(CheckoutEvent::Failed {
                step: step.into(),
                reason: reason.clone(),
            })
            .send_all(state.steps.compensations_with_in_flight())
            .send(CheckoutCommand::CancelOrder {
                order_id: state.order_id(),
                request_id: state.request_id(),
                reason,
            })
            .compensated()
    }

    fn apply(state: &mut CheckoutState, event: &CheckoutEvent) {
        match event {
            CheckoutEvent::Started(order) => {
                state.order = Some(PlacedOrder::clone(order));
                state.stage = Stage::Reserving;
                let release = CheckoutCommand::ReleaseStock {
                    order_id: order.order_id,
                    request_id: order.request_id,
                    lines: state.lines(),
                };
                state.steps.start(INVENTORY, Some(release));
            }
            CheckoutEvent::Reserved => {
                state.steps.complete(INVENTORY);
                state.steps.start(
                    PAYMENT,
                    Some(CheckoutCommand::RefundPayment {
                        order_id: state.order_id(),
                        request_id: state.request_id(),
                    }),
                );
                state.stage = Stage::Charging;
            }
            CheckoutEvent::Charged => {
                state.steps.complete(PAYMENT);
                state.steps.start(SHIPPING, None);
                state.stage = Stage::Shipping;
            }
            CheckoutEvent::Shipped => {
                state.steps.complete(SHIPPING);
                state.stage = Stage::Done;
            }
            CheckoutEvent::Failed { step, .. } => {
                state.steps.fail(step);
                state.stage = Stage::Done;
            }
        }
    }
}

/// Step `step` failed and did nothing: undo the completed steps, most
/// recent first, then cancel the order.
fn fail(state: &CheckoutState, step: &str, reason: String) -> Reaction<CheckoutSaga> {
    Reaction::new()
        .record(CheckoutEvent::Failed {
            step: step.into(),
            reason: reason.clone(),
        })
        .cancel_timeout(step)
        .send_all(state.steps.compensations())
        .send(CheckoutCommand::CancelOrder {
            order_id: state.order_id(),
            request_id: state.request_id(),
            reason,
        })
        .compensated()
}

#[cfg(test)]
mod tests {
    use composable_rust_testing::SagaTest;

    use super::*;
    use crate::domain::order::OrderLine;

    fn order() -> PlacedOrder {
        PlacedOrder {
            order_id: Uuid::from_u128(7),
            customer_id: Uuid::from_u128(8),
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
            request_id: REQUEST,
            placed_at: chrono::DateTime::UNIX_EPOCH,
            cart_version: 1,
        }
    }

    const ID: Uuid = Uuid::from_u128(7);
    /// Every command carries the placing request, for the outcomes' correlation id.
    const REQUEST: Option<Uuid> = Some(Uuid::from_u128(9));

    fn lines() -> Vec<(String, u64)> {
        vec![("kettle".into(), 2)]
    }

    fn saga() -> SagaTest<CheckoutSaga> {
        SagaTest::new(CheckoutSaga {
            step_timeout: Duration::from_secs(30),
        })
    }

    #[test]
    fn a_checkout_reserves_charges_ships_and_completes() {
        let mut test = saga();
        test.when(CheckoutInput::Placed(Box::new(order())))
            .then_commands([CheckoutCommand::ReserveStock {
                order_id: ID,
                request_id: REQUEST,
                lines: lines(),
            }])
            .when(CheckoutInput::Reserved)
            .then_commands([CheckoutCommand::ChargePayment {
                order_id: ID,
                request_id: REQUEST,
                payment_token: "tok_visa".into(),
                amount_cents: 9_000,
            }])
            .when(CheckoutInput::Charged)
            .then_commands([CheckoutCommand::CreateShipment {
                order_id: ID,
                request_id: REQUEST,
                address: order().shipping_address,
            }])
            .when(CheckoutInput::Shipped)
            .then_no_commands()
            .then_completed()
            .then_no_timeouts();
        test.finish();
    }

    #[test]
    fn a_decline_releases_the_stock_and_cancels() {
        let mut test = saga();
        test.given([
            CheckoutInput::Placed(Box::new(order())),
            CheckoutInput::Reserved,
        ])
        .when(CheckoutInput::Declined("the card was declined".into()))
        .then_commands([
            CheckoutCommand::ReleaseStock {
                order_id: ID,
                request_id: REQUEST,
                lines: lines(),
            },
            CheckoutCommand::CancelOrder {
                order_id: ID,
                request_id: REQUEST,
                reason: "the card was declined".into(),
            },
        ])
        .then_compensated();
        test.finish();
    }

    #[test]
    fn missing_stock_cancels_without_compensation() {
        let mut test = saga();
        test.given([CheckoutInput::Placed(Box::new(order()))])
            .when(CheckoutInput::Rejected("kettle is out of stock".into()))
            .then_commands([CheckoutCommand::CancelOrder {
                order_id: ID,
                request_id: REQUEST,
                reason: "kettle is out of stock".into(),
            }])
            .then_compensated();
        test.finish();
    }

    #[test]
    fn a_payment_without_answer_is_refunded_and_released_on_the_clock() {
        let mut test = saga();
        test.given([
            CheckoutInput::Placed(Box::new(order())),
            CheckoutInput::Reserved,
        ])
        .then_timeout("payment", Duration::from_secs(30))
        .advance(Duration::from_secs(29))
        .then_no_commands()
        .advance(Duration::from_secs(1))
        .then_commands([
            CheckoutCommand::RefundPayment {
                order_id: ID,
                request_id: REQUEST,
            },
            CheckoutCommand::ReleaseStock {
                order_id: ID,
                request_id: REQUEST,
                lines: lines(),
            },
            CheckoutCommand::CancelOrder {
                order_id: ID,
                request_id: REQUEST,
                reason: "no answer from payment within 30s".into(),
            },
        ])
        .then_compensated();
        test.finish();
    }
}
