//! The inventory service: the event store, the `Product` aggregate, the two
//! sagas, the publisher that feeds the event bus, and the two read models,
//! wired together.
//!
//! ```text
//! commands ─► Product (product-{sku}) ─► event store ─┬─► expiry saga ──────► Release (expired)
//!                                                     ├─► replenishment saga ► supplier, RecordPurchaseOrder
//!                                                     ├─► StockLevels projection (PostgreSQL)
//!                                                     └─► publisher ─► bus topic inventory-alerts
//!                                                                        └─► group stock-alerts ─► AlertLog (PostgreSQL)
//! ```
//!
//! [`Inventory::process`] moves everything along until nothing is left to
//! do, which keeps the demo and the tests deterministic; a long-running
//! service would run the same steps in background loops (the managers'
//! `start`, the publisher's `start`, a consumer loop per saga).
//!
//! What survives a restart: the event store, the sagas' own streams (steps,
//! pending commands, armed timeouts), the read models and the publisher's
//! checkpoint. What does not: how far events were handed to the sagas,
//! which is kept in memory; a new process hands them every event again
//! from the start, and the runtimes ignore those they handled (by event
//! id), so nothing happens twice.

use std::sync::Arc;
use std::time::Duration;

use composable_rust::aggregate::RepositoryError;
use composable_rust::event_bus::SubscriptionSource;
use composable_rust::postgres::{PostgresEventStore, PostgresProjectionStore};
use composable_rust::prelude::*;
use composable_rust::{
    AggregateRepository, EventPublisher, Position, ProjectionManager, SagaRuntime, SnapshotPolicy,
    SubscribeOptions, Topic,
};
use tokio::sync::Mutex;

use crate::commands::{Journal, SagaCommands};
use crate::errors::{InventoryError, Rejection};
use crate::expiry::ExpirySaga;
use crate::product::{
    Product, ProductCommand, ReleaseReason, WarehouseStock, check_identifier, product_stream,
};
use crate::read_model::{AlertLog, ReadModels, StockLevels};
use crate::replenishment::ReplenishmentSaga;
use crate::supplier::{Delivery, Supplier};

/// The topic low-stock alerts travel on.
pub const ALERTS_TOPIC: &str = "inventory-alerts";
/// The consumer group that records them.
pub const ALERTS_GROUP: &str = "stock-alerts";
/// How many times a command is tried on a concurrency conflict (two
/// requests for the same sku at the same moment) before the conflict is
/// returned.
const CONFLICT_ATTEMPTS: usize = 5;

/// What the service is built from.
#[derive(Debug)]
pub struct Parts {
    /// The event store (its schema is migrated on start).
    pub events: PostgresEventStore,
    /// The read models' store (migrated on start; the same database and
    /// schema as the events, or another).
    pub read_store: PostgresProjectionStore,
    /// The event bus alerts travel on: Redis Streams in production, in
    /// memory in a test that is not about the bus.
    pub bus: Arc<dyn EventBus>,
    /// The clock reservations expire on.
    pub clock: Arc<dyn Clock>,
    /// Where purchase orders go.
    pub supplier: Arc<dyn Supplier>,
    /// How long a reservation holds stock unless it is committed.
    pub reservation_ttl: Duration,
    /// How long a read of the bus waits for alerts before it counts as
    /// "nothing new".
    pub bus_wait: Duration,
}

/// A reservation to make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReserveRequest {
    pub reservation_id: String,
    pub order_id: String,
    pub sku: String,
    pub warehouse: String,
    pub quantity: u32,
}

/// What one [`Inventory::process`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Progress {
    /// Rounds of handing new events to the sagas (a saga's command
    /// appends events, handed over in the next round).
    pub saga_rounds: u32,
    /// Events the publisher went past: the alert events it published
    /// and the others, which it routes nowhere.
    pub published: u64,
    /// Events the stock levels applied.
    pub stock_updates: u64,
    /// Alert events the alert log applied.
    pub alert_updates: u64,
}

/// One inventory service process.
#[derive(Debug)]
pub struct Inventory {
    store: Arc<dyn EventStore>,
    products: Arc<AggregateRepository<Product, Arc<dyn EventStore>>>,
    clock: Arc<dyn Clock>,
    reservation_ttl: Duration,
    expiry: SagaRuntime<ExpirySaga>,
    replenishment: SagaRuntime<ReplenishmentSaga>,
    /// How far events were handed to each saga runtime (in memory only).
    delivered: Mutex<(Position, Position)>,
    publisher: EventPublisher<PostgresProjectionStore>,
    stock: ProjectionManager<StockLevels>,
    alerts: ProjectionManager<AlertLog>,
    read_models: ReadModels,
    journal: Journal,
}

impl Inventory {
    /// Migrates the stores, builds everything, joins the alert consumer
    /// group and resumes the sagas a previous process left running (their
    /// pending commands are sent, their timeouts armed again).
    pub async fn start(parts: Parts) -> Result<Self, InventoryError> {
        parts.events.migrate().await?;
        parts.read_store.migrate().await?;
        let read_models = ReadModels::new(&parts.read_store)?;
        read_models.ensure().await?;
        let read_store = Arc::new(parts.read_store);

        let store: Arc<dyn EventStore> = Arc::new(parts.events);
        // A busy product's stream grows with every reservation: a snapshot
        // every 100 events keeps loading it to one snapshot and a few
        // events.
        let products = Arc::new(
            AggregateRepository::new(Arc::clone(&store), Arc::clone(&parts.clock))
                .with_snapshots(SnapshotPolicy::every(100)),
        );
        let journal = Journal::default();
        let commands = Arc::new(SagaCommands::new(
            Arc::clone(&products),
            parts.supplier,
            journal.clone(),
        ));
        // Both sagas run on the service's clock: the expiry timeouts are
        // as fast as a test clock lets them be.
        let expiry = SagaRuntime::builder(ExpirySaga, Arc::clone(&store), Arc::clone(&commands))
            .with_clock(Arc::clone(&parts.clock))
            .build();
        let replenishment = SagaRuntime::builder(ReplenishmentSaga, Arc::clone(&store), commands)
            .with_clock(Arc::clone(&parts.clock))
            .build();
        expiry.resume().await?;
        replenishment.resume().await?;

        // Only the alert events go on the bus: other services care about
        // them; nobody outside needs every reservation.
        let topic = Topic::new(ALERTS_TOPIC)?;
        let route = topic.clone();
        let publisher = EventPublisher::builder(
            "alerts-publisher",
            Arc::clone(&store),
            Arc::clone(&parts.bus),
            Arc::clone(&read_store),
            move |event: &StoredEvent| {
                matches!(
                    event.event_type.as_str(),
                    "inventory.low_stock" | "inventory.stock_restored"
                )
                .then(|| route.clone())
            },
        )
        .build();

        let stock = ProjectionManager::new(
            StockLevels::new(read_models.clone()),
            Arc::clone(&read_store),
            Arc::clone(&store),
        );
        // One consumer in the group, under a stable name, taking over what
        // a previous process held: the projection applies events in order.
        // The manager dead-letters a failing event itself, so the bus never
        // should.
        let options = SubscribeOptions::new(topic, ALERTS_GROUP, "stock-alerts-1")?
            .with_take_over_pending(true)
            .with_max_deliveries(u32::MAX);
        let source =
            SubscriptionSource::new(parts.bus.subscribe(options).await?).with_wait(parts.bus_wait);
        let alerts = ProjectionManager::new(AlertLog::new(read_models.clone()), read_store, source);

        Ok(Self {
            store,
            products,
            clock: parts.clock,
            reservation_ttl: parts.reservation_ttl,
            expiry,
            replenishment,
            delivered: Mutex::new((Position::START, Position::START)),
            publisher,
            stock,
            alerts,
            read_models,
            journal,
        })
    }

    /// Executes `command` on product `sku`: one load, one decision, one
    /// append (retried on a concurrency conflict). Returns the product's
    /// state afterwards. A refusal writes nothing.
    async fn execute(&self, sku: &str, command: ProductCommand) -> Result<Product, InventoryError> {
        check_identifier("sku", sku)?;
        let stream = product_stream(sku)?;
        match self
            .products
            .execute_with_retry(&stream, CONFLICT_ATTEMPTS, || command.clone())
            .await
        {
            Ok(done) => Ok(done.state),
            // The aggregate cannot know the sku of a product that does not
            // exist; the caller does.
            Err(RepositoryError::Rejected(Rejection::UnknownProduct { .. })) => {
                Err(Rejection::UnknownProduct { sku: sku.into() }.into())
            }
            Err(RepositoryError::Rejected(rejection)) => Err(rejection.into()),
            Err(RepositoryError::Store(error)) => Err(error.into()),
        }
    }

    /// Registers a product.
    pub async fn register(
        &self,
        sku: &str,
        name: &str,
        reorder_point: u32,
        reorder_quantity: u32,
    ) -> Result<(), InventoryError> {
        let register = ProductCommand::Register {
            sku: sku.into(),
            name: name.into(),
            reorder_point,
            reorder_quantity,
        };
        self.execute(sku, register).await.map(|_| ())
    }

    /// Books `quantity` of `sku` into `warehouse`; returns the warehouse's
    /// stock afterwards.
    pub async fn receive(
        &self,
        sku: &str,
        warehouse: &str,
        quantity: u32,
    ) -> Result<WarehouseStock, InventoryError> {
        let receive = ProductCommand::Receive {
            warehouse: warehouse.into(),
            quantity,
            purchase_order: None,
        };
        Ok(self.execute(sku, receive).await?.warehouse(warehouse))
    }

    /// Books a supplier's delivery against its purchase order (booking the
    /// same delivery note twice counts it once).
    pub async fn receive_delivery(
        &self,
        delivery: &Delivery,
    ) -> Result<WarehouseStock, InventoryError> {
        let receive = ProductCommand::Receive {
            warehouse: delivery.warehouse.clone(),
            quantity: delivery.quantity,
            purchase_order: Some(delivery.purchase_order.clone()),
        };
        let product = self.execute(&delivery.sku, receive).await?;
        Ok(product.warehouse(&delivery.warehouse))
    }

    /// Reserves stock for an order, for the service's reservation TTL.
    /// Asking again with the same reservation id and details is a no-op.
    pub async fn reserve(
        &self,
        request: &ReserveRequest,
    ) -> Result<WarehouseStock, InventoryError> {
        let reserve = ProductCommand::Reserve {
            reservation_id: request.reservation_id.clone(),
            order_id: request.order_id.clone(),
            warehouse: request.warehouse.clone(),
            quantity: request.quantity,
            ttl: self.reservation_ttl,
        };
        let product = self.execute(&request.sku, reserve).await?;
        Ok(product.warehouse(&request.warehouse))
    }

    /// Releases a reservation (the order was cancelled).
    pub async fn release(&self, sku: &str, reservation_id: &str) -> Result<(), InventoryError> {
        let release = ProductCommand::Release {
            reservation_id: reservation_id.into(),
            reason: ReleaseReason::Cancelled,
        };
        self.execute(sku, release).await.map(|_| ())
    }

    /// Ships a reservation: its stock leaves the shelves.
    pub async fn commit(&self, sku: &str, reservation_id: &str) -> Result<(), InventoryError> {
        let commit = ProductCommand::Commit {
            reservation_id: reservation_id.into(),
        };
        self.execute(sku, commit).await.map(|_| ())
    }

    /// The product `sku`, from its events.
    pub async fn product(&self, sku: &str) -> Result<Product, InventoryError> {
        Ok(self.products.load(&product_stream(sku)?).await?.state)
    }

    /// Moves everything along until nothing is left to do: lets due
    /// timeouts finish, hands new events to both sagas (their commands
    /// append more events, handed over in turn), sends commands that
    /// failed to go out before, publishes alert events to the bus, and
    /// brings both read models up to date.
    ///
    /// # Errors
    ///
    /// A saga command that could not be delivered (the supplier is down)
    /// fails the call with [`SagaError::Dispatch`](composable_rust::SagaError)
    /// (transient): the saga's step is recorded and its command pending,
    /// and the next call sends it again. Store, bus and read model errors
    /// keep their codes; what was done before the error stays done.
    pub async fn process(&self) -> Result<Progress, InventoryError> {
        let mut progress = Progress::default();
        loop {
            self.expiry.idle().await;
            self.replenishment.idle().await;
            self.expiry.retry_pending().await?;
            self.replenishment.retry_pending().await?;
            let mut delivered = self.delivered.lock().await;
            let (expiry_at, replenishment_at) = *delivered;
            let expiry_now = self.expiry.catch_up(&self.store, expiry_at).await?;
            let replenishment_now = self
                .replenishment
                .catch_up(&self.store, replenishment_at)
                .await?;
            *delivered = (expiry_now, replenishment_now);
            drop(delivered);
            if expiry_now == expiry_at && replenishment_now == replenishment_at {
                break;
            }
            progress.saga_rounds += 1;
        }
        progress.published = self.publisher.publish_pending().await?;
        progress.stock_updates = self.stock.catch_up().await?;
        progress.alert_updates = self.alerts.catch_up().await?;
        Ok(progress)
    }

    /// The read models, for queries.
    pub fn read_models(&self) -> &ReadModels {
        &self.read_models
    }

    /// What the sagas' commands did since the last call.
    pub fn journal(&self) -> &Journal {
        &self.journal
    }

    /// The expiry saga's runtime.
    pub fn expiry(&self) -> &SagaRuntime<ExpirySaga> {
        &self.expiry
    }

    /// The replenishment saga's runtime.
    pub fn replenishment(&self) -> &SagaRuntime<ReplenishmentSaga> {
        &self.replenishment
    }

    /// The stock levels' projection manager.
    pub fn stock_projection(&self) -> &ProjectionManager<StockLevels> {
        &self.stock
    }

    /// The alert log's projection manager.
    pub fn alert_projection(&self) -> &ProjectionManager<AlertLog> {
        &self.alerts
    }

    /// The event store.
    pub fn store(&self) -> &Arc<dyn EventStore> {
        &self.store
    }

    /// The service's clock.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// Stops the sagas (their armed timeouts are recorded: the next
    /// process arms them again).
    pub async fn shutdown(&self) {
        self.expiry.shutdown().await;
        self.replenishment.shutdown().await;
    }
}
