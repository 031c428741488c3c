//! The shipping desk carries out the fulfillment saga's commands on the
//! orders: it is the saga's `CommandDispatcher`.
//!
//! The runtime delivers a command at least once, so carrying one out twice
//! must do no harm. Here the order's own rules give that for free: an order
//! that is already shipped refuses `Ship`, and the desk counts a refusal
//! that says "already done" as done.

use composable_rust::AggregateRepository;
use composable_rust::aggregate::RepositoryError;
use composable_rust::prelude::*;
use composable_rust::saga::{DispatchError, SagaCommand};

use crate::aggregates::order::{Order, OrderCommand, OrderError, OrderStatus};
use crate::sagas::fulfillment::FulfillmentCommand;

/// Carries out fulfillment commands on the orders in an event store.
#[derive(Debug)]
pub struct ShippingDesk<S> {
    orders: AggregateRepository<Order, S>,
}

impl<S: EventStore + Clone> ShippingDesk<S> {
    pub fn new(events: S) -> Self {
        Self {
            orders: AggregateRepository::new(events, ()),
        }
    }
}

#[async_trait]
impl<S: EventStore + Clone> CommandDispatcher<FulfillmentCommand> for ShippingDesk<S> {
    async fn dispatch(
        &self,
        command: &SagaCommand<FulfillmentCommand>,
    ) -> Result<(), DispatchError> {
        // Which order, what to ask it, and the status that means "done".
        let (order, change, done) = match &command.command {
            FulfillmentCommand::Ship { order } => (order, OrderCommand::Ship, OrderStatus::Shipped),
            FulfillmentCommand::Cancel { order, reason } => (
                order,
                OrderCommand::Cancel {
                    reason: reason.clone(),
                },
                OrderStatus::Cancelled,
            ),
        };
        let stream = self
            .orders
            .stream_id(order)
            .map_err(|e| DispatchError::permanent("not a valid order id").with_source(e))?;
        // Another writer may append between our load and our append: decide again.
        match self
            .orders
            .execute_with_retry(&stream, 3, || change.clone())
            .await
        {
            Ok(_) => Ok(()),
            Err(RepositoryError::Rejected(OrderError::WrongStatus { status, .. }))
                if status == done =>
            {
                Ok(())
            }
            Err(RepositoryError::Rejected(refusal)) => Err(DispatchError::permanent(format!(
                "{stream} refused {change:?}: {refusal}"
            ))),
            Err(error) => Err(DispatchError::new("the event store failed").with_source(error)),
        }
    }
}
