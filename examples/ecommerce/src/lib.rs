//! # The shop: Composable Rust's flagship reference application
//!
//! An HTTP service (axum) for a small coffee-gear shop: customers register,
//! fill a cart, and place orders; a checkout saga reserves the stock,
//! charges the payment and books the shipment over the event bus, and
//! compensates in reverse when a step fails. Everything is event sourced
//! in PostgreSQL; the read models (order history, product catalog) are
//! JSONB documents kept by projection managers.
//!
//! | module | what |
//! |---|---|
//! | [`config`] | the environment variables |
//! | [`domain`] | the aggregates and the gateways |
//! | [`checkout`] | the saga and the services that carry out its commands |
//! | [`projections`] | the read models |
//! | [`bus`] | the event bus between the store and the saga |
//! | [`http`] | the routes, the layers, the OpenAPI document |
//! | [`auth`] | bearer tokens |
//! | [`telemetry`] | metrics and logs |
//! | [`client`] | a typed HTTP client (tests, load test) |
//!
//! [`start`] wires it all and returns a [`RunningShop`].

pub mod auth;
pub mod bus;
pub mod checkout;
pub mod client;
pub mod codes;
pub mod config;
pub mod domain;
pub mod error;
pub mod http;
pub mod projections;
pub mod telemetry;
pub mod write;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use composable_rust::event_bus::{EventPublisher, PublisherConfig, SubscribeOptions, Topic};
use composable_rust::health::{EventBusCheck, HealthRegistry, ProjectionCheck};
use composable_rust::postgres::{
    DocumentTable, PostgresEventStore, PostgresHealthCheck, PostgresProjectionStore,
};
use composable_rust::prelude::*;
use composable_rust::projection::{CacheMode, CachedProjectionStore, ProjectionConfig};
use composable_rust::redis::{RedisHealthCheck, RedisProjectionStore};
use composable_rust::resilience::{Backoff, RetryPolicy};
use composable_rust::shutdown::{CancellationToken, ShutdownGroup, ShutdownReport};
use composable_rust::{
    AggregateRepository, EventMetadata, EventStoreError, ExpectedVersion, NewEvent, Position,
    ProjectionManager, SagaRuntime,
};
use tokio::task::JoinHandle;
use uuid::Uuid;

pub use config::Config;
pub use error::ShopError;

use crate::checkout::{CheckoutSaga, CheckoutServices};
use crate::domain::catalog::{self, ProductEvent};
use crate::domain::inventory::{StockEvent, stock_stream};
use crate::domain::order::{Order, OrderStatus, order_stream};
use crate::domain::payment::FakePayments;
use crate::domain::shipping::FakeCarrier;
use crate::http::AppState;
use crate::projections::best_sellers::BestSellers;
use crate::projections::cart::Carts;
use crate::projections::order_history::{self, OrderHistory, OrderHistoryQueries};
use crate::projections::products::{self, Products};
use crate::write::Events;

/// How long graceful shutdown may take in all before unfinished work is
/// cut off (it is not acknowledged, so it is redone after a restart).
pub const SHUTDOWN_DEADLINE: Duration = Duration::from_secs(20);

/// PostgreSQL connections of the shop (the HTTP handlers, the projection
/// managers, the publisher and the saga share them).
const POOL_SIZE: u32 = 32;
/// How long the publisher and the projections wait, once caught up while
/// orders keep coming, before reading the next events: at a few hundred
/// orders a second this turns one read and one checkpoint per event into
/// one per few events, for at most this much more lag.
const LINGER: Duration = Duration::from_millis(5);

/// The shop, running: its address, and what [`shutdown`](Self::shutdown)
/// stops.
#[derive(Debug)]
pub struct RunningShop {
    addr: SocketAddr,
    server: JoinHandle<std::io::Result<()>>,
    stop_server: CancellationToken,
    runners: ShutdownGroup,
    events: Events,
    order_history: ProjectionManager<OrderHistory>,
    products: ProjectionManager<Products>,
    best_sellers: ProjectionManager<BestSellers>,
    saga: SagaRuntime<CheckoutSaga>,
    payments: Arc<FakePayments>,
}

/// Starts the shop: connects and migrates PostgreSQL, seeds the catalog
/// (idempotent), starts the projection managers, the publisher, the
/// checkout saga and its bus consumer, and the HTTP server on
/// `config.bind` (port 0: any free port; see [`RunningShop::addr`]).
///
/// # Errors
///
/// [`ShopError`]: a backend unreachable, an invalid schema or prefix, the
/// address taken.
pub async fn start(config: Config) -> Result<RunningShop, ShopError> {
    let pool = PostgresEventStore::pool_options()
        .max_connections(POOL_SIZE)
        .connect(&config.database_url)
        .await
        .map_err(|e| ShopError::startup("connect to PostgreSQL (DATABASE_URL)", e))?;
    let store = PostgresEventStore::new(pool.clone())
        .with_schema(&config.schema)
        .map_err(|e| ShopError::startup("use SHOP_SCHEMA", e))?;
    store
        .migrate()
        .await
        .map_err(|e| ShopError::startup("migrate the event store", e))?;
    let read_store = PostgresProjectionStore::new(pool.clone())
        .with_schema(&config.schema)
        .map_err(|e| ShopError::startup("use SHOP_SCHEMA", e))?;
    read_store
        .migrate()
        .await
        .map_err(|e| ShopError::startup("migrate the read models", e))?;
    let history_table = document_table(&read_store, order_history::TABLE).await?;
    let products_table = document_table(&read_store, products::TABLE).await?;
    let read_store = Arc::new(read_store);
    let events: Events = Arc::new(store);
    let seeded = seed(&events)
        .await
        .map_err(|e| ShopError::startup("seed the catalog", e))?;

    let redis = RedisProjectionStore::connect(&config.redis_url, &config.redis_prefix)
        .await
        .map_err(|e| ShopError::startup("connect to Redis (REDIS_URL)", e))?;
    let bus = bus::connect(&config).await?;
    let topic =
        Topic::new(bus::ORDERS_TOPIC).map_err(|e| ShopError::startup("name the topic", e))?;

    // Intake first, then what follows the event store: the group stops
    // them in this order.
    let mut runners = ShutdownGroup::new();

    let publisher = EventPublisher::builder(
        "shop-publisher",
        Arc::clone(&events),
        Arc::clone(&bus),
        Arc::clone(&read_store),
        bus::route,
    )
    .with_config(PublisherConfig {
        linger: LINGER,
        ..PublisherConfig::default()
    })
    .build();
    runners.add("publisher", publisher.clone());
    drop(publisher.start());

    let payments = Arc::new(FakePayments::default());
    let services = CheckoutServices::new(
        Arc::clone(&events),
        Arc::clone(&payments) as _,
        Arc::new(FakeCarrier),
    );
    // A transient dispatch failure (the store unreachable for a moment) is
    // retried within the step; what still fails stays pending and the
    // consumer retries it (bus::consume).
    let dispatch_retry = RetryPolicy::new(Backoff::new(
        Duration::from_millis(50),
        Duration::from_secs(2),
    ))
    .with_max_attempts(5);
    let saga = SagaRuntime::builder(
        CheckoutSaga::default(),
        Arc::clone(&events),
        Arc::new(services),
    )
    .with_dispatch_retry(dispatch_retry)
    .build();
    saga.resume()
        .await
        .map_err(|e| ShopError::startup("resume the running checkouts", e))?;
    let options = SubscribeOptions::new(topic.clone(), "checkout", "checkout-1")
        .map_err(|e| ShopError::startup("subscribe the saga", e))?
        .with_take_over_pending(true);
    let subscription = bus
        .subscribe(options)
        .await
        .map_err(|e| ShopError::startup("subscribe the saga to the bus", e))?;
    let consumer_runtime = saga.clone();
    let backlog = bus::Backlog {
        bus: Arc::clone(&bus),
        topic: topic.clone(),
        group: "checkout".to_owned(),
    };
    runners.spawn("consumer:checkout", move |token| {
        bus::consume(subscription, consumer_runtime, backlog, token)
    });
    runners.add("saga:checkout", saga.clone());

    let history = ProjectionManager::builder(
        OrderHistory::new(history_table.clone()),
        Arc::clone(&read_store),
        Arc::clone(&events),
    )
    .with_config(following())
    .build();
    let catalog_manager = ProjectionManager::builder(
        Products::new(products_table.clone()),
        Arc::clone(&read_store),
        Arc::clone(&events),
    )
    .with_config(following())
    .build();
    runners.add("projection:order-history", history.clone());
    runners.add("projection:products", catalog_manager.clone());
    drop(history.start());
    drop(catalog_manager.start());
    // Serve the catalog only once it shows the seed (a first start).
    if let Some(seeded) = seeded {
        catalog_manager
            .wait_for(seeded, Duration::from_secs(30))
            .await
            .map_err(|e| ShopError::startup("build the catalog read model", e))?;
    }

    // The carts: PostgreSQL (the truth, with the checkpoint) and Redis
    // (a write-through cache; its outage degrades reads to PostgreSQL).
    let cart_views = Arc::new(CachedProjectionStore::new(
        PostgresProjectionStore::new(pool.clone())
            .with_schema(&config.schema)
            .map_err(|e| ShopError::startup("use SHOP_SCHEMA", e))?,
        redis.clone(),
        CacheMode::WriteThrough,
    ));
    let cart_projection = ProjectionManager::builder(
        Carts::default(),
        Arc::clone(&cart_views),
        Arc::clone(&events),
    )
    .with_config(following())
    .build();
    runners.add("projection:carts", cart_projection.clone());
    drop(cart_projection.start());

    let best_sellers = ProjectionManager::builder(
        BestSellers::default(),
        Arc::new(redis.clone()),
        Arc::clone(&events),
    )
    .with_config(following())
    .build();
    runners.add("projection:best-sellers", best_sellers.clone());
    drop(best_sellers.start());

    let health = HealthRegistry::new()
        .with_timeout(Duration::from_secs(2))
        .with_liveness(ProjectionCheck::alive(history.clone()))
        .with_liveness(ProjectionCheck::alive(catalog_manager.clone()))
        .with_liveness(ProjectionCheck::alive(cart_projection.clone()))
        .with_liveness(ProjectionCheck::alive(best_sellers.clone()))
        .with_readiness(PostgresHealthCheck::new(pool))
        .with_readiness(RedisHealthCheck::new(redis.connection()))
        .with_readiness(EventBusCheck::new(Arc::clone(&bus), topic))
        .with_readiness(ProjectionCheck::lag(history.clone(), 10_000));

    let state = AppState {
        events: Arc::clone(&events),
        carts: Arc::new(AggregateRepository::new(Arc::clone(&events), ())),
        orders: Arc::new(AggregateRepository::new(Arc::clone(&events), ())),
        cart_views,
        history: OrderHistoryQueries::new(history_table),
        products: products_table,
        redis: redis.clone(),
        tokens: auth::Tokens::new(config.token_secret.clone()),
        health: Arc::new(health),
        metrics: config.metrics.clone(),
    };
    let app = http::router(state, config.max_in_flight, config.max_body_bytes);
    let listener = tokio::net::TcpListener::bind(config.bind)
        .await
        .map_err(|e| ShopError::startup("listen on SHOP_BIND", e))?;
    let addr = listener
        .local_addr()
        .map_err(|e| ShopError::startup("read the bound address", e))?;
    let stop_server = CancellationToken::new();
    let stopped = stop_server.clone();
    let server = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move { stopped.cancelled().await })
            .await
    });
    tracing::info!(%addr, bus = ?config.bus, "the shop is listening");
    Ok(RunningShop {
        addr,
        server,
        stop_server,
        runners,
        events,
        order_history: history,
        products: catalog_manager,
        best_sellers,
        saga,
        payments,
    })
}

async fn document_table(
    store: &PostgresProjectionStore,
    name: &str,
) -> Result<DocumentTable, ShopError> {
    let table =
        DocumentTable::new(store, name).map_err(|e| ShopError::startup("name a read model", e))?;
    table
        .ensure()
        .await
        .map_err(|e| ShopError::startup("create a read model", e))?;
    Ok(table)
}

/// Records each catalog product and its initial stock, once: each stream
/// is appended expecting no stream, so a restart (or a second instance)
/// finds them there and writes nothing. Returns the position of the last
/// event written, if any.
async fn seed(events: &Events) -> Result<Option<Position>, EventStoreError> {
    let mut last = None;
    for product in catalog::seed() {
        let listed = ProductEvent::Listed {
            product_id: product.product_id.clone(),
            name: product.name.clone(),
            price_cents: product.price_cents,
        };
        let stocked = StockEvent::Added {
            product_id: product.product_id.clone(),
            quantity: product.initial_stock,
        };
        let writes = [
            (
                catalog::product_stream(&product.product_id)?,
                NewEvent::from_event(&listed)?,
            ),
            (
                stock_stream(&product.product_id)?,
                NewEvent::from_event(&stocked)?,
            ),
        ];
        for (stream, event) in writes {
            match events
                .append(
                    &stream,
                    ExpectedVersion::NoStream,
                    vec![event.with_metadata(EventMetadata::default())],
                )
                .await
            {
                Ok(outcome) => last = last.max(Some(outcome.last_position)),
                Err(EventStoreError::WrongExpectedVersion { .. }) => {}
                Err(error) => return Err(error),
            }
        }
    }
    Ok(last)
}

/// How often [`RunningShop::wait_for_checkout`] reads the order at most.
pub const CHECKOUT_RECHECK: Duration = Duration::from_millis(20);

/// Why [`RunningShop::wait_for_checkout`] gave up.
#[derive(Debug, thiserror::Error)]
pub enum WaitError {
    /// The checkout did not end in time.
    #[error("order {order_id} is still {status:?} after {timeout:?}")]
    Timeout {
        /// The order.
        order_id: Uuid,
        /// Where it stands.
        status: OrderStatus,
        /// How long we waited.
        timeout: Duration,
    },
    /// Reading the store or the read model failed.
    #[error(transparent)]
    Backend(#[from] Box<dyn std::error::Error + Send + Sync>),
}

impl RunningShop {
    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://<addr>`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The event store (tests check what was, or was not, written).
    pub fn events(&self) -> &Events {
        &self.events
    }

    /// The fake payment provider (tests check charges and refunds).
    pub fn payments(&self) -> &FakePayments {
        &self.payments
    }

    /// The checkout saga runtime.
    pub fn saga(&self) -> &SagaRuntime<CheckoutSaga> {
        &self.saga
    }

    /// Waits until order `order_id`'s checkout has ended (shipped or
    /// cancelled) and the read models have applied its last event; returns
    /// the final status. Woken by the event store's notifications, never
    /// by polling on a timer, and it reads the order at most once every
    /// [`CHECKOUT_RECHECK`]: under load the store notifies hundreds of
    /// times a second, and a read per notification would take the cores
    /// from the checkouts being waited for.
    ///
    /// # Errors
    ///
    /// [`WaitError::Timeout`] after `timeout`; [`WaitError::Backend`].
    pub async fn wait_for_checkout(
        &self,
        order_id: Uuid,
        timeout: Duration,
    ) -> Result<OrderStatus, WaitError> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut appended = self.events.subscribe();
        let stream = order_stream(order_id).map_err(boxed)?;
        let orders = AggregateRepository::<Order, Events>::new(Arc::clone(&self.events), ());
        loop {
            // Mark the notification seen before reading, so an append
            // between the read and the wait still wakes us.
            appended.borrow_and_update();
            let checked = tokio::time::Instant::now();
            let status = orders.load(&stream).await.map_err(boxed)?.state.status;
            if status.is_final() {
                let last = self
                    .events
                    .load_stream(&stream, 0)
                    .await
                    .map_err(boxed)?
                    .last()
                    .map_or(Position::START, |event| event.position);
                let left = deadline.saturating_duration_since(tokio::time::Instant::now());
                self.order_history
                    .wait_for(last, left)
                    .await
                    .map_err(boxed)?;
                self.products.wait_for(last, left).await.map_err(boxed)?;
                self.best_sellers
                    .wait_for(last, left)
                    .await
                    .map_err(boxed)?;
                return Ok(status);
            }
            let woke = tokio::time::timeout_at(deadline, async {
                let changed = appended.changed().await;
                tokio::time::sleep_until(checked + CHECKOUT_RECHECK).await;
                changed
            })
            .await;
            if !matches!(woke, Ok(Ok(()))) {
                return Err(WaitError::Timeout {
                    order_id,
                    status,
                    timeout,
                });
            }
        }
    }

    /// Stops gracefully: stops accepting connections and lets the requests
    /// in flight finish, then stops the publisher, the saga's consumer and
    /// runtime and the projection managers (each finishes its batch and
    /// saves its checkpoint), all within [`SHUTDOWN_DEADLINE`]. The report
    /// says how each runner stopped.
    pub async fn shutdown(self) -> ShutdownReport {
        self.stop_server.cancel();
        match tokio::time::timeout(SHUTDOWN_DEADLINE, self.server).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(error))) => tracing::error!(%error, "the HTTP server failed"),
            Ok(Err(error)) => tracing::error!(%error, "the HTTP server task panicked"),
            Err(_) => tracing::error!("requests were still running at the shutdown deadline"),
        }
        match self.runners.shutdown(SHUTDOWN_DEADLINE).await {
            Ok(report) => report,
            Err(error) => {
                tracing::error!(%error, "graceful shutdown was incomplete");
                error.report().clone()
            }
        }
    }
}

fn boxed(
    error: impl std::error::Error + Send + Sync + 'static,
) -> Box<dyn std::error::Error + Send + Sync> {
    Box::new(error)
}

/// The settings of the shop's projection managers.
fn following() -> ProjectionConfig {
    ProjectionConfig {
        linger: LINGER,
        ..ProjectionConfig::default()
    }
}
