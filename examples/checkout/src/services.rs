//! The services that carry out the saga's commands: they call the gateways
//! and record each outcome as an event (which then reaches the saga), or
//! run the `Order` aggregate.
//!
//! Commands arrive **at least once**. Each service is idempotent by the
//! command's id: the gateways take it as their idempotency key, and an
//! outcome event carries it in its metadata, so a command delivered again
//! finds its outcome already recorded and records nothing twice.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use composable_rust::aggregate::RepositoryError;
use composable_rust::prelude::*;
use composable_rust::saga::CommandId;
use composable_rust::saga::{DispatchError, SagaCommand};
use composable_rust::{AggregateRepository, ExpectedVersion};
use composable_rust::{EventStoreError, NewEvent};

use crate::domain::{
    InventoryEvent, Order, OrderCommand, PaymentEvent, inventory_stream, money, payment_stream,
};
use crate::gateways::{InventoryError, InventoryGateway, PaymentError, PaymentGateway};
use crate::saga::CheckoutCommand;

/// A line per command carried out: `(order id, what happened)`.
#[derive(Debug, Clone, Default)]
pub struct Journal {
    lines: Arc<Mutex<Vec<(String, String)>>>,
}

impl Journal {
    fn write(&self, order_id: &str, line: String) {
        self.lines
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((order_id.to_owned(), line));
    }

    /// What happened to `order_id`, in order.
    pub fn of(&self, order_id: &str) -> Vec<String> {
        self.lines
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter(|(order, _)| order == order_id)
            .map(|(_, line)| line.clone())
            .collect()
    }
}

/// Carries out the checkout saga's commands: the saga's
/// [`CommandDispatcher`].
#[derive(Debug)]
pub struct CheckoutServices {
    store: Arc<dyn EventStore>,
    orders: AggregateRepository<Order, Arc<dyn EventStore>>,
    inventory: Arc<dyn InventoryGateway>,
    payment: Arc<dyn PaymentGateway>,
    journal: Journal,
    reachable: AtomicBool,
}

impl CheckoutServices {
    pub fn new(
        store: Arc<dyn EventStore>,
        inventory: Arc<dyn InventoryGateway>,
        payment: Arc<dyn PaymentGateway>,
    ) -> Self {
        Self {
            orders: AggregateRepository::new(Arc::clone(&store), ()),
            store,
            inventory,
            payment,
            journal: Journal::default(),
            reachable: AtomicBool::new(true),
        }
    }

    /// What the services did, per order.
    pub fn journal(&self) -> &Journal {
        &self.journal
    }

    /// Makes the services unreachable for the saga (or reachable again):
    /// every command fails to be delivered meanwhile.
    pub fn set_reachable(&self, reachable: bool) {
        self.reachable.store(reachable, Ordering::SeqCst);
    }

    // ANCHOR: record
    /// Appends `event` to `stream` with the command's metadata, unless an
    /// event recording this command is already there.
    async fn record<E: Event>(
        &self,
        stream: &StreamId,
        event: &E,
        command: &SagaCommand<CheckoutCommand>,
    ) -> Result<(), DispatchError> {
        loop {
            let existing = self
                .store
                .load_stream(stream, 0)
                .await
                .map_err(store_error)?;
            if existing
                .iter()
                .any(|stored| CommandId::of_event(stored).as_ref() == Some(&command.id))
            {
                return Ok(());
            }
            let expected = match existing.last() {
                Some(last) => ExpectedVersion::Exact(last.stream_version),
                None => ExpectedVersion::NoStream,
            };
            let event = NewEvent::from_event(event)
                .map_err(store_error)?
                .with_metadata(command.metadata());
            match self.store.append(stream, expected, vec![event]).await {
                Err(EventStoreError::WrongExpectedVersion { .. }) => continue,
                result => return result.map(|_| ()).map_err(store_error),
            }
        }
    }
    // ANCHOR_END: record

    async fn order(&self, order_id: &str, command: OrderCommand) -> Result<String, DispatchError> {
        let stream = StreamId::for_aggregate("order", order_id).map_err(store_error)?;
        match self
            .orders
            .execute_with_retry(&stream, 3, || command.clone())
            .await
        {
            Ok(done) => Ok(done.state.status.to_string()),
            // Refused (confirming a cancelled order): nothing to retry.
            Err(RepositoryError::Rejected(refusal)) => Ok(format!("refused: {refusal}")),
            Err(RepositoryError::Store(error)) => Err(store_error(error)),
        }
    }
}

fn store_error(error: EventStoreError) -> DispatchError {
    DispatchError::new("the event store failed").with_source(error)
}

#[async_trait]
impl CommandDispatcher<CheckoutCommand> for CheckoutServices {
    async fn dispatch(&self, command: &SagaCommand<CheckoutCommand>) -> Result<(), DispatchError> {
        if !self.reachable.load(Ordering::SeqCst) {
            return Err(DispatchError::new("the checkout services are unreachable"));
        }
        let key = &command.id;
        match &command.command {
            CheckoutCommand::ReserveInventory { order_id, items } => {
                let stream = inventory_stream(order_id).map_err(store_error)?;
                let listed = items
                    .iter()
                    .map(|item| format!("{} x {}", item.quantity, item.sku))
                    .collect::<Vec<_>>()
                    .join(", ");
                let (event, outcome) = match self.inventory.reserve(key, order_id, items).await {
                    Ok(()) => (
                        InventoryEvent::Reserved {
                            order_id: order_id.clone(),
                            items: items.clone(),
                        },
                        "reserved".to_owned(),
                    ),
                    Err(InventoryError::OutOfStock { sku }) => (
                        InventoryEvent::Rejected {
                            order_id: order_id.clone(),
                            reason: format!("{sku} is out of stock"),
                        },
                        format!("rejected, {sku} is out of stock"),
                    ),
                    Err(error @ InventoryError::Unreachable) => {
                        return Err(DispatchError::new("inventory").with_source(error));
                    }
                };
                self.record(&stream, &event, command).await?;
                self.journal.write(
                    order_id,
                    format!("reserve inventory ({listed}) -> {outcome}"),
                );
            }
            CheckoutCommand::ReleaseInventory { order_id } => {
                let released = self
                    .inventory
                    .release(key, order_id)
                    .await
                    .map_err(|error| DispatchError::new("inventory").with_source(error))?;
                if released {
                    let event = InventoryEvent::Released {
                        order_id: order_id.clone(),
                    };
                    let stream = inventory_stream(order_id).map_err(store_error)?;
                    self.record(&stream, &event, command).await?;
                }
                let outcome = if released {
                    "released"
                } else {
                    "nothing was reserved"
                };
                self.journal
                    .write(order_id, format!("release inventory -> {outcome}"));
            }
            CheckoutCommand::ChargePayment {
                order_id,
                customer,
                amount,
            } => {
                let stream = payment_stream(order_id).map_err(store_error)?;
                let outcome = match self.payment.charge(key, order_id, customer, *amount).await {
                    Ok(charge_id) => {
                        let event = PaymentEvent::Charged {
                            order_id: order_id.clone(),
                            amount: *amount,
                            charge_id: charge_id.clone(),
                        };
                        self.record(&stream, &event, command).await?;
                        format!("charged ({charge_id})")
                    }
                    Err(PaymentError::Declined { reason }) => {
                        let event = PaymentEvent::Declined {
                            order_id: order_id.clone(),
                            reason: reason.clone(),
                        };
                        self.record(&stream, &event, command).await?;
                        format!("declined, {reason}")
                    }
                    // The request went out; the answer never came. Nothing
                    // to record: the saga's timeout deals with it.
                    Err(PaymentError::NoAnswer) => "no answer".to_owned(),
                };
                self.journal.write(
                    order_id,
                    format!("charge {} to {customer} -> {outcome}", money(*amount)),
                );
            }
            CheckoutCommand::RefundPayment { order_id } => {
                let refunded = self
                    .payment
                    .refund(key, order_id)
                    .await
                    .map_err(|error| DispatchError::new("payment").with_source(error))?;
                let outcome = match refunded {
                    Some(amount) => {
                        let event = PaymentEvent::Refunded {
                            order_id: order_id.clone(),
                            amount,
                        };
                        let stream = payment_stream(order_id).map_err(store_error)?;
                        self.record(&stream, &event, command).await?;
                        format!("refunded {}", money(amount))
                    }
                    None => "nothing was charged".to_owned(),
                };
                self.journal
                    .write(order_id, format!("refund payment -> {outcome}"));
            }
            CheckoutCommand::ConfirmOrder { order_id } => {
                let status = self.order(order_id, OrderCommand::Confirm).await?;
                self.journal
                    .write(order_id, format!("confirm order -> {status}"));
            }
            CheckoutCommand::CancelOrder { order_id, reason } => {
                let cancel = OrderCommand::Cancel {
                    reason: reason.clone(),
                };
                let status = self.order(order_id, cancel).await?;
                self.journal
                    .write(order_id, format!("cancel order -> {status}"));
            }
        }
        Ok(())
    }
}
