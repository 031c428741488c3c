//! The checkout process: the event store, the `Order` aggregate, the saga
//! runtime and the services, wired together.
//!
//! What survives a crash: the event store (a database in production) and
//! the gateways (other companies' systems). What dies with the process: the
//! runtime, its timers, and the position up to which events were delivered
//! to the saga. [`CheckoutApp::start`] on the same store picks up where the
//! previous process stopped.

use std::sync::Arc;

use composable_rust::aggregate::RepositoryError;
use composable_rust::prelude::*;
use composable_rust::saga::SagaId;
use composable_rust::saga::{SagaError, SagaInstance};
use composable_rust::{AggregateRepository, SagaRuntime};
use composable_rust::{EventStoreError, Position};
use tokio::sync::Mutex;

use crate::domain::{LineItem, Order, OrderCommand, OrderError};
use crate::gateways::{InventoryGateway, PaymentGateway};
use crate::saga::CheckoutSaga;
use crate::services::CheckoutServices;

/// One checkout process.
#[derive(Debug)]
pub struct CheckoutApp {
    store: Arc<dyn EventStore>,
    orders: AggregateRepository<Order, Arc<dyn EventStore>>,
    runtime: SagaRuntime<CheckoutSaga>,
    services: Arc<CheckoutServices>,
    /// How far events were delivered to the saga. Kept in memory only: a
    /// new process starts from the beginning, and the saga recognises the
    /// events it already handled.
    delivered: Mutex<Position>,
}

impl CheckoutApp {
    /// Starts a process on `store`: timeouts on `clock`, commands carried
    /// out against `inventory` and `payment`. Resumes the sagas a previous
    /// process left running (sends what it recorded but did not send, and
    /// arms its timeouts again).
    pub async fn start(
        store: Arc<dyn EventStore>,
        clock: Arc<dyn Clock>,
        saga: CheckoutSaga,
        inventory: Arc<dyn InventoryGateway>,
        payment: Arc<dyn PaymentGateway>,
    ) -> Result<Self, SagaError> {
        // ANCHOR: start
        let services = Arc::new(CheckoutServices::new(
            Arc::clone(&store),
            inventory,
            payment,
        ));
        let runtime = SagaRuntime::builder(saga, Arc::clone(&store), Arc::clone(&services))
            .with_clock(clock)
            .build();
        runtime.resume().await?;
        // ANCHOR_END: start
        Ok(Self {
            orders: AggregateRepository::new(Arc::clone(&store), ()),
            store,
            runtime,
            services,
            delivered: Mutex::new(Position::START),
        })
    }

    /// Places an order: appends `order.placed` to its stream. The saga
    /// starts when the event is delivered.
    pub async fn place_order(
        &self,
        order_id: &str,
        customer: &str,
        items: Vec<LineItem>,
    ) -> Result<(), RepositoryError<OrderError>> {
        let stream = StreamId::for_aggregate("order", order_id)?;
        let place = OrderCommand::Place {
            order_id: order_id.into(),
            customer: customer.into(),
            items,
        };
        self.orders.execute(&stream, place).await?;
        Ok(())
    }

    /// Delivers every event appended since the last delivery to the saga,
    /// until nothing new happens (the services append the outcome of each
    /// command, which is delivered in turn).
    ///
    /// This is where events reach the saga: it follows the event store's
    /// global stream. To deliver through an event bus instead, publish the
    /// store to a topic with an `EventPublisher`, and in a consumer loop
    /// call `runtime().handle(&message.event)` for each message and
    /// acknowledge it once that returned `Ok`.
    // ANCHOR: deliver
    pub async fn deliver_events(&self) -> Result<(), SagaError> {
        let mut delivered = self.delivered.lock().await;
        *delivered = self.runtime.catch_up(&self.store, *delivered).await?;
        Ok(())
    }
    // ANCHOR_END: deliver

    /// Delivers only the next event, if there is one; `false` if there was
    /// none. Lets a test stop a flow between two events.
    pub async fn deliver_next(&self) -> Result<bool, SagaError> {
        let mut delivered = self.delivered.lock().await;
        let Some(event) = self.store.read_all(*delivered, 1).await?.pop() else {
            return Ok(false);
        };
        self.runtime.handle(&event).await?;
        *delivered = event.position;
        Ok(true)
    }

    /// The order `order_id`, from its events.
    pub async fn order(&self, order_id: &str) -> Result<Order, EventStoreError> {
        let stream = StreamId::for_aggregate("order", order_id)?;
        Ok(self.orders.load(&stream).await?.state)
    }

    /// The checkout saga of `order_id`.
    pub async fn saga(&self, order_id: &str) -> Result<SagaInstance<CheckoutSaga>, SagaError> {
        self.runtime.instance(&SagaId::new(order_id)?).await
    }

    /// The saga runtime.
    pub fn runtime(&self) -> &SagaRuntime<CheckoutSaga> {
        &self.runtime
    }

    /// The services carrying out the saga's commands.
    pub fn services(&self) -> &CheckoutServices {
        &self.services
    }

    /// The event store.
    pub fn store(&self) -> &Arc<dyn EventStore> {
        &self.store
    }
}
