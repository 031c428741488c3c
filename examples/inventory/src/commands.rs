//! Carries out the sagas' commands: the [`CommandDispatcher`] of both the
//! expiry saga and the replenishment saga.
//!
//! Commands arrive **at least once** (a process may die after sending one
//! and before recording that it did). Each handler is idempotent: releasing
//! a reservation twice is a no-op in the `Product` aggregate, the supplier
//! takes the purchase order number as its idempotency key, and recording
//! the supplier's answer twice writes it once.

use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use composable_rust::aggregate::RepositoryError;
use composable_rust::prelude::*;
use composable_rust::saga::{DispatchError, SagaCommand};
use composable_rust::{AggregateRepository, EventStoreError};

use crate::errors::Rejection;
use crate::expiry::ExpiryCommand;
use crate::product::{Product, ProductCommand, ReleaseReason, product_stream};
use crate::replenishment::ReplenishmentCommand;
use crate::supplier::{PurchaseOrderRequest, Supplier};

/// How many times a command is tried again on a concurrency conflict (a
/// customer reserving the same sku at the same moment).
const CONFLICT_ATTEMPTS: usize = 5;

/// What the commands did, one line each, in order: what the demo prints.
#[derive(Debug, Clone, Default)]
pub struct Journal {
    lines: Arc<Mutex<Vec<String>>>,
}

impl Journal {
    fn write(&self, line: String) {
        self.lines
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(line);
    }

    /// Takes the lines written since the last call.
    pub fn drain(&self) -> Vec<String> {
        std::mem::take(&mut *self.lines.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

/// Carries out the sagas' commands against the `Product` aggregate and the
/// supplier.
#[derive(Debug)]
pub struct SagaCommands {
    products: Arc<AggregateRepository<Product, Arc<dyn EventStore>>>,
    supplier: Arc<dyn Supplier>,
    journal: Journal,
}

impl SagaCommands {
    /// Commands executed on `products`, purchase orders sent to `supplier`.
    pub fn new(
        products: Arc<AggregateRepository<Product, Arc<dyn EventStore>>>,
        supplier: Arc<dyn Supplier>,
        journal: Journal,
    ) -> Self {
        Self {
            products,
            supplier,
            journal,
        }
    }

    /// Executes `command` on product `sku`, retrying conflicts.
    async fn execute(&self, sku: &str, command: ProductCommand) -> Result<usize, DispatchError> {
        let stream = product_stream(sku).map_err(store_error)?;
        match self
            .products
            .execute_with_retry(&stream, CONFLICT_ATTEMPTS, || command.clone())
            .await
        {
            Ok(done) => Ok(done.events.len()),
            // A refusal will not change on retry: report it as permanent.
            Err(RepositoryError::Rejected(rejection)) => Err(rejected(rejection)),
            Err(RepositoryError::Store(error)) => Err(store_error(error)),
        }
    }
}

fn store_error(error: EventStoreError) -> DispatchError {
    DispatchError::new("the event store failed; the command is retried").with_source(error)
}

fn rejected(rejection: Rejection) -> DispatchError {
    DispatchError::permanent("the product refused the command").with_source(rejection)
}

#[async_trait]
impl CommandDispatcher<ExpiryCommand> for SagaCommands {
    async fn dispatch(&self, command: &SagaCommand<ExpiryCommand>) -> Result<(), DispatchError> {
        let ExpiryCommand::Release {
            sku,
            reservation_id,
        } = &command.command;
        let release = ProductCommand::Release {
            reservation_id: reservation_id.clone(),
            reason: ReleaseReason::Expired,
        };
        let written = self.execute(sku, release).await?;
        let outcome = if written > 0 {
            "released"
        } else {
            "already closed, nothing to do"
        };
        self.journal.write(format!(
            "expiry: reservation {reservation_id} of {sku} -> {outcome}"
        ));
        Ok(())
    }
}

#[async_trait]
impl CommandDispatcher<ReplenishmentCommand> for SagaCommands {
    async fn dispatch(
        &self,
        command: &SagaCommand<ReplenishmentCommand>,
    ) -> Result<(), DispatchError> {
        let ReplenishmentCommand::PlacePurchaseOrder {
            purchase_order,
            sku,
            warehouse,
            quantity,
        } = &command.command;
        let request = PurchaseOrderRequest {
            purchase_order: purchase_order.clone(),
            sku: sku.clone(),
            warehouse: warehouse.clone(),
            quantity: *quantity,
        };
        // Transient: the runtime keeps the command pending and sends it
        // again (same number, so the supplier still orders once).
        let supplier_reference = self.supplier.place_order(&request).await.map_err(|error| {
            DispatchError::new("the supplier did not take the purchase order").with_source(error)
        })?;
        let record = ProductCommand::RecordPurchaseOrder {
            warehouse: warehouse.clone(),
            purchase_order: purchase_order.clone(),
            supplier_reference: supplier_reference.clone(),
        };
        self.execute(sku, record).await?;
        self.journal.write(format!(
            "replenishment: {purchase_order} for {quantity} x {sku} to {warehouse} -> \
             placed with the supplier ({supplier_reference})"
        ));
        Ok(())
    }
}
