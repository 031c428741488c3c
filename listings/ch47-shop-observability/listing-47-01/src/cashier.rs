//! The cashier carries out the checkout saga's commands: it is the saga's
//! `CommandDispatcher`, and the only code that talks to the payment
//! gateway.
//!
//! Commands arrive at least once, so each one is safe to carry out twice:
//! a charge is keyed by the command's id, and the order's own rules turn a
//! second payment or cancellation into "already done".

use std::sync::Arc;

use composable_rust::postgres::PostgresEventStore;
use composable_rust::prelude::*;
use composable_rust::saga::{DispatchError, SagaCommand};
use composable_rust::uuid::Uuid;
use composable_rust::{EventStoreError, ExpectedVersion, NewEvent};

use crate::catalog::Cents;
use crate::checkout::{CheckoutCommand, PaymentEvent, payment_stream};
use crate::order::{OrderError, Status};
use crate::payment::{Charge, PaymentGateway};
use crate::shop::{Shop, ShopError};

/// Carries out checkout commands with the shop and a payment gateway.
#[derive(Debug)]
pub struct Cashier<G> {
    shop: Arc<Shop>,
    events: PostgresEventStore,
    gateway: Arc<G>,
}

impl<G: PaymentGateway> Cashier<G> {
    /// A cashier that records payments in `events` and charges through
    /// `gateway`.
    pub fn new(shop: Arc<Shop>, events: PostgresEventStore, gateway: Arc<G>) -> Self {
        Self {
            shop,
            events,
            gateway,
        }
    }
}

// ANCHOR: dispatch
#[async_trait]
impl<G: PaymentGateway> CommandDispatcher<CheckoutCommand> for Cashier<G> {
    async fn dispatch(&self, command: &SagaCommand<CheckoutCommand>) -> Result<(), DispatchError> {
        match &command.command {
            CheckoutCommand::Charge { order, amount } => {
                self.charge(command, *order, *amount).await
            }
            CheckoutCommand::Confirm { order, amount } => {
                done_once(self.shop.pay(*order, *amount).await, Status::Paid)
            }
            CheckoutCommand::Cancel { order, reason } => {
                done_once(self.shop.cancel(*order, reason).await, Status::Cancelled)
            }
        }
    }
}
// ANCHOR_END: dispatch

// ANCHOR: charge
impl<G: PaymentGateway> Cashier<G> {
    /// Charges the order and records the answer in `payment-<order>`.
    async fn charge(
        &self,
        command: &SagaCommand<CheckoutCommand>,
        order: Uuid,
        amount: Cents,
    ) -> Result<(), DispatchError> {
        let stream = payment_stream(order).map_err(store_failed)?;
        // The command's id is the gateway's idempotency key: delivered
        // again, it charges nothing more and gets the same answer.
        let charge = self
            .gateway
            .charge(command.id.as_str(), amount)
            .await
            .map_err(|error| DispatchError::new(error.to_string()).with_source(error))?;
        let outcome = match charge {
            Charge::Approved => PaymentEvent::Charged { amount },
            Charge::Declined { reason } => PaymentEvent::Declined { reason },
        };
        let event = NewEvent::from_event(&outcome)
            .map_err(store_failed)?
            .with_metadata(command.metadata());
        // A payment is recorded once: the stream must not exist yet.
        match self
            .events
            .append(&stream, ExpectedVersion::NoStream, vec![event])
            .await
        {
            Ok(_) | Err(EventStoreError::WrongExpectedVersion { .. }) => Ok(()),
            Err(error) => Err(store_failed(error)),
        }
    }
}
// ANCHOR_END: charge

/// A payment or cancellation delivered again finds the order already in
/// the `status` it asks for: that is success, not an error.
fn done_once<T>(result: Result<T, ShopError>, status: Status) -> Result<(), DispatchError> {
    match result {
        Ok(_) => Ok(()),
        Err(ShopError::Rejected(OrderError::NotAllowed { status: now, .. })) if now == status => {
            Ok(())
        }
        // The order refuses it as it is: delivering again cannot help.
        Err(ShopError::Rejected(refusal)) => Err(DispatchError::permanent(format!(
            "[{}] {refusal}",
            refusal.code()
        ))),
        Err(error) => Err(DispatchError::new(error.to_string()).with_source(error)),
    }
}

/// The command could not be carried out now; the runtime delivers it again.
fn store_failed(error: EventStoreError) -> DispatchError {
    DispatchError::new("the event store failed").with_source(error)
}
