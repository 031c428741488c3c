//! The services that carry out the checkout saga's commands: they call
//! the inventory, the payment provider and the carrier, and record each
//! outcome on the order's stream, where the saga (through the bus) picks
//! it up.
//!
//! Commands arrive at least once. Everything here is idempotent: the
//! gateways take the command id as their idempotency key, the stock
//! aggregate reserves and releases once per order, and the order records
//! an outcome only when it fits its status. A transient failure (a
//! gateway or the store unreachable) is a `DispatchError`: the runtime
//! retries the command later; nothing is lost.

use std::sync::Arc;

use composable_rust::aggregate::RepositoryError;
use composable_rust::aggregate::SnapshotPolicy;
use composable_rust::prelude::*;
use composable_rust::saga::{DispatchError, SagaCommand};
use composable_rust::{AggregateRepository, EventMetadata};
use uuid::Uuid;

use crate::checkout::CheckoutCommand;
use crate::domain::inventory::{Stock, StockCommand, StockError, stock_stream};
use crate::domain::order::{Order, OrderCommand, OrderEvent, order_stream};
use crate::domain::payment::{PaymentError, PaymentGateway};
use crate::domain::shipping::ShippingGateway;
use crate::telemetry;
use crate::write::{Events, execute};

/// Orders whose checkout this process has recently worked on, kept in
/// memory: each checkout records three or four outcomes on its order in
/// quick succession, and only the first needs to load it. The saga is the
/// only writer of an order after it is placed; anyone else's append shows
/// as a conflict, and the command is decided again on the reloaded order.
const HOT_ORDERS: usize = 10_000;
/// Products whose stock is kept in memory between reservations.
const HOT_PRODUCTS: usize = 1_000;
/// A stock stream takes an event per reservation and release, for ever:
/// a snapshot every so many events keeps a load (after a conflict, or in
/// a new process) short.
const STOCK_SNAPSHOT_EVERY: u64 = 200;

/// Carries out the checkout saga's commands: its `CommandDispatcher`.
#[derive(Debug)]
pub struct CheckoutServices {
    orders: AggregateRepository<Order, Events>,
    stock: AggregateRepository<Stock, Events>,
    payment: Arc<dyn PaymentGateway>,
    shipping: Arc<dyn ShippingGateway>,
}

impl CheckoutServices {
    /// Services on `events`, with these gateways.
    pub fn new(
        events: Events,
        payment: Arc<dyn PaymentGateway>,
        shipping: Arc<dyn ShippingGateway>,
    ) -> Self {
        Self {
            orders: AggregateRepository::new(Arc::clone(&events), ())
                .with_hot_aggregates(HOT_ORDERS),
            stock: AggregateRepository::new(events, ())
                .with_hot_aggregates(HOT_PRODUCTS)
                .with_snapshots(SnapshotPolicy::every(STOCK_SNAPSHOT_EVERY)),
            payment,
            shipping,
        }
    }

    /// The metadata of the events recording `command`'s outcome: the
    /// command and saga ids (from the framework), and the correlation id
    /// of the HTTP request that placed the order, which the saga copies
    /// into every command (from `order.placed`), so no order is loaded for
    /// it. A command without one keeps the saga id (the order id).
    fn metadata(command: &SagaCommand<CheckoutCommand>) -> EventMetadata {
        let mut metadata = command.metadata();
        if let Some(request_id) = command.command.request_id() {
            metadata.correlation_id = Some(request_id);
        }
        metadata
    }

    /// Records `command` on the order; counts the checkouts that end.
    async fn record(
        &self,
        order_id: Uuid,
        command: OrderCommand,
        metadata: &EventMetadata,
    ) -> Result<(), DispatchError> {
        let stream = order_stream(order_id).map_err(store_error)?;
        match execute(&self.orders, &stream, || command.clone(), metadata).await {
            Ok(written) => {
                for event in &written.events {
                    match event {
                        OrderEvent::Shipped { .. } => telemetry::checkout_outcome("shipped"),
                        OrderEvent::Cancelled { .. } => telemetry::checkout_outcome("cancelled"),
                        _ => {}
                    }
                }
                Ok(())
            }
            // The order refuses (never placed): nothing to record, nothing
            // to retry.
            Err(RepositoryError::Rejected(refusal)) => {
                tracing::warn!(%order_id, %refusal, "order refused a checkout outcome");
                Ok(())
            }
            Err(RepositoryError::Store(error)) => Err(store_error(error)),
        }
    }

    /// Reserves every line, in product order; on a shortage releases what
    /// this call reserved and says why.
    async fn reserve(
        &self,
        order_id: Uuid,
        lines: &[(String, u64)],
        metadata: &EventMetadata,
    ) -> Result<Result<(), String>, DispatchError> {
        let mut sorted = lines.to_vec();
        sorted.sort();
        for (index, (product_id, quantity)) in sorted.iter().enumerate() {
            let stream = stock_stream(product_id).map_err(store_error)?;
            let reserve = || StockCommand::Reserve {
                product_id: product_id.clone(),
                order_id,
                quantity: *quantity,
            };
            match execute(&self.stock, &stream, reserve, metadata).await {
                Ok(_) => {}
                Err(RepositoryError::Rejected(refusal)) => {
                    self.release(order_id, &sorted[..index], metadata).await?;
                    return Ok(Err(match refusal {
                        StockError::OutOfStock { product_id, .. } => {
                            format!("{product_id} is out of stock")
                        }
                        other => other.to_string(),
                    }));
                }
                Err(RepositoryError::Store(error)) => return Err(store_error(error)),
            }
        }
        Ok(Ok(()))
    }

    /// Releases what `order_id` holds of each product (nothing if none).
    async fn release(
        &self,
        order_id: Uuid,
        lines: &[(String, u64)],
        metadata: &EventMetadata,
    ) -> Result<(), DispatchError> {
        for (product_id, _) in lines {
            let stream = stock_stream(product_id).map_err(store_error)?;
            let release = || StockCommand::Release {
                product_id: product_id.clone(),
                order_id,
            };
            match execute(&self.stock, &stream, release, metadata).await {
                Ok(_) | Err(RepositoryError::Rejected(_)) => {}
                Err(RepositoryError::Store(error)) => return Err(store_error(error)),
            }
        }
        Ok(())
    }
}

fn store_error(error: composable_rust::EventStoreError) -> DispatchError {
    DispatchError::new("the event store failed").with_source(error)
}

#[async_trait]
impl CommandDispatcher<CheckoutCommand> for CheckoutServices {
    async fn dispatch(&self, command: &SagaCommand<CheckoutCommand>) -> Result<(), DispatchError> {
        let key = command.id.as_str();
        let metadata = Self::metadata(command);
        match &command.command {
            CheckoutCommand::ReserveStock {
                order_id, lines, ..
            } => {
                let outcome = match self.reserve(*order_id, lines, &metadata).await? {
                    Ok(()) => OrderCommand::RecordReserved,
                    Err(reason) => OrderCommand::RecordRejected { reason },
                };
                self.record(*order_id, outcome, &metadata).await
            }
            CheckoutCommand::ReleaseStock {
                order_id, lines, ..
            } => {
                self.release(*order_id, lines, &metadata).await?;
                self.record(*order_id, OrderCommand::RecordReleased, &metadata)
                    .await
            }
            CheckoutCommand::ChargePayment {
                order_id,
                payment_token,
                amount_cents,
                ..
            } => {
                let outcome = match self
                    .payment
                    .charge(key, *order_id, payment_token, *amount_cents)
                    .await
                {
                    Ok(charge_id) => OrderCommand::RecordCharged { charge_id },
                    Err(PaymentError::Declined { reason }) => {
                        OrderCommand::RecordDeclined { reason }
                    }
                    Err(error @ PaymentError::Unreachable) => {
                        return Err(DispatchError::new("payment").with_source(error));
                    }
                };
                self.record(*order_id, outcome, &metadata).await
            }
            CheckoutCommand::RefundPayment { order_id, .. } => {
                self.payment
                    .refund(key, *order_id)
                    .await
                    .map_err(|error| DispatchError::new("payment").with_source(error))?;
                self.record(*order_id, OrderCommand::RecordRefunded, &metadata)
                    .await
            }
            CheckoutCommand::CreateShipment {
                order_id, address, ..
            } => {
                let tracking_number = self
                    .shipping
                    .create_shipment(key, *order_id, address)
                    .await
                    .map_err(|error| DispatchError::new("shipping").with_source(error))?;
                let shipped = OrderCommand::RecordShipped { tracking_number };
                self.record(*order_id, shipped, &metadata).await
            }
            CheckoutCommand::CancelOrder {
                order_id, reason, ..
            } => {
                let cancel = OrderCommand::Cancel {
                    reason: reason.clone(),
                };
                self.record(*order_id, cancel, &metadata).await
            }
        }
    }
}
