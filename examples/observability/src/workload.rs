//! The workload: [`Shop::connect`] wires every component to the real
//! servers, [`Shop::run_once`] makes each of them report something (a
//! conflict, a timeout, a redelivery, a dead letter...), and
//! [`Shop::keep_busy`] keeps a trickle of orders going, so rates and
//! latencies on a dashboard have fresh samples.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use composable_rust::event_bus::{EventPublisher, InMemoryEventBus, SubscribeOptions, Topic};
use composable_rust::postgres::{PostgresEventStore, PostgresProjectionStore};
use composable_rust::prelude::*;
use composable_rust::projection::{
    CacheMode, CachedProjectionStore, ProjectionConfig, RetryPolicy,
};
use composable_rust::redis::RedisProjectionStore;
use composable_rust::saga::SagaRuntime;
use composable_rust::{
    ExpectedVersion, InMemoryProjectionStore, NewEvent, Position, ProjectionError,
    ProjectionManager, TestClock,
};
use tokio::task::JoinHandle;

use crate::shop::{
    Fulfilment, OrderAction, OrderEvent, Orders, ShopTotals, TOTALS_KEY, Totals, Warehouse,
    order_stream,
};

/// Any error, for `main` and the tests.
pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// The read model: PostgreSQL, with Redis in front.
pub type ReadModel = CachedProjectionStore<PostgresProjectionStore, RedisProjectionStore>;

/// Where the shop keeps its data.
#[derive(Debug, Clone)]
pub struct Settings {
    pub database_url: String,
    /// The event store's schema.
    pub events_schema: String,
    /// The read model's schema.
    pub read_schema: String,
    pub redis_url: String,
    /// The prefix of the Redis cache's keys.
    pub redis_prefix: String,
}

/// How long a bus consumer may hold a message before it is delivered again.
const VISIBILITY: Duration = Duration::from_secs(10);

/// Every component of the shop, connected.
pub struct Shop {
    pub events: PostgresEventStore,
    pub store: Store<Orders>,
    pub read_model: Arc<ReadModel>,
    pub manager: ProjectionManager<ShopTotals<ReadModel>>,
    pub sagas: SagaRuntime<Fulfilment>,
    pub warehouse: Arc<Warehouse>,
    pub publisher: EventPublisher<InMemoryProjectionStore>,
    pub bus: InMemoryEventBus,
    pub topic: Topic,
    /// The saga's timers and the bus's visibility timeouts run on it, so
    /// the workload can make a minute pass at once.
    pub clock: TestClock,
    mailer: tokio::sync::Mutex<Box<dyn Subscription>>,
    projection: std::sync::Mutex<Option<JoinHandle<Result<(), ProjectionError>>>>,
    next_order: AtomicU64,
}

impl std::fmt::Debug for Shop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shop").finish_non_exhaustive()
    }
}

/// What [`Shop::run_once`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// Orders placed, and refused (one was placed twice).
    pub placed: u64,
    pub refused: u64,
    /// The totals read back through the cache.
    pub totals: Totals,
    /// Events the projection dead-lettered.
    pub projection_dead_letters: usize,
    /// Messages the bus moved to the dead-letter topic.
    pub bus_dead_letters: u64,
    /// Commands the saga sent to the warehouse.
    pub warehouse_commands: Vec<String>,
}

impl Shop {
    /// Connects to PostgreSQL and Redis, creates the tables, and starts the
    /// projection.
    pub async fn connect(settings: &Settings) -> Result<Self, Error> {
        let events = PostgresEventStore::connect(&settings.database_url)
            .await?
            .with_schema(&settings.events_schema)?;
        events.migrate().await?;
        let primary = PostgresProjectionStore::connect(&settings.database_url)
            .await?
            .with_schema(&settings.read_schema)?;
        primary.migrate().await?;
        let cache =
            RedisProjectionStore::connect(&settings.redis_url, &settings.redis_prefix).await?;
        let read_model = Arc::new(CachedProjectionStore::new(
            primary,
            cache,
            CacheMode::CacheAside,
        ));

        let clock = TestClock::new();
        let store = Store::new(
            Default::default(),
            Orders,
            Arc::new(events.clone()) as Arc<dyn EventStore>,
        );
        let config = ProjectionConfig {
            retry: RetryPolicy {
                max_attempts: 3,
                initial_backoff: Duration::from_millis(1),
                max_backoff: Duration::from_millis(10),
            },
            // Refresh the lag gauges after every batch.
            lag_interval: Duration::ZERO,
            ..ProjectionConfig::default()
        };
        let manager = ProjectionManager::builder(
            ShopTotals::default(),
            Arc::clone(&read_model),
            events.clone(),
        )
        .with_config(config)
        .build();
        let warehouse = Arc::new(Warehouse::default());
        let sagas = SagaRuntime::builder(Fulfilment, events.clone(), Arc::clone(&warehouse))
            .with_clock(Arc::new(clock.clone()))
            .build();
        let bus = InMemoryEventBus::builder()
            .with_clock(Arc::new(clock.clone()))
            .build();
        let topic = Topic::new("shop")?;
        let publisher = EventPublisher::new(
            "shop-publisher",
            events.clone(),
            bus.clone(),
            Arc::new(InMemoryProjectionStore::new()),
            topic.clone(),
        );
        let mailer = bus
            .subscribe(
                SubscribeOptions::new(topic.clone(), "mailer", "mailer-1")?
                    .with_visibility_timeout(VISIBILITY)
                    .with_max_deliveries(2),
            )
            .await?;
        let projection = manager.start();
        Ok(Self {
            events,
            store,
            read_model,
            manager,
            sagas,
            warehouse,
            publisher,
            bus,
            topic,
            clock,
            mailer: tokio::sync::Mutex::new(mailer),
            projection: std::sync::Mutex::new(Some(projection)),
            next_order: AtomicU64::new(1),
        })
    }

    // ANCHOR: run_once
    /// Makes every component report: orders through the Store (one placed
    /// twice: a conflict), sagas that complete and sagas that time out, an
    /// event the projection cannot read (a dead letter), the publisher, and
    /// a bus consumer that fails to acknowledge a message in time (a
    /// redelivery, then a dead letter) next to one that holds three.
    pub async fn run_once(&self) -> Result<Outcome, Error> {
        for _ in 0..6 {
            self.place_order().await?;
        }
        // Placing order 1 again: the append expects no stream and conflicts.
        self.store
            .send(OrderAction::Place {
                order: 1,
                total_cents: 100,
            })
            .await?;
        for order in [2, 4, 6] {
            let shipped = NewEvent::from_event(&OrderEvent::Shipped)?;
            self.events
                .append(
                    &order_stream(order),
                    ExpectedVersion::Exact(1),
                    vec![shipped],
                )
                .await?;
        }
        // Another service wrote an order without its total: it cannot decode.
        let mut malformed = NewEvent::from_event(&OrderEvent::Shipped)?;
        malformed.event_type = "Placed".into();
        malformed.payload = serde_json::json!({ "note": "no total" });
        let last = self
            .events
            .append(
                &order_stream(999),
                ExpectedVersion::NoStream,
                vec![malformed],
            )
            .await?
            .last_position;

        // Sagas: orders 2, 4 and 6 ship; 1, 3 and 5 time out after a minute.
        // A read of the store shows only what no earlier transaction can
        // still precede (the projection manager and the publisher commit
        // meanwhile), so one pass may stop short of `last`: go on until it
        // has read that far.
        let mut read = Position::START;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while read < last {
            read = self.sagas.catch_up(&self.events, read).await?;
            if read < last {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "the sagas did not read up to {last:?} in 10 s"
                );
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
        self.clock.advance(crate::shop::SHIPPING_DEADLINE);
        self.sagas.idle().await;

        self.manager.wait_for(last, Duration::from_secs(10)).await?;
        self.publisher.publish_pending().await?;
        let bus_dead_letters = self.consume_with_a_crash().await?;

        // Read twice: a cache miss fills the cache, then a hit.
        let mut totals = Totals::default();
        for _ in 0..2 {
            totals = self
                .read_model
                .get_json(TOTALS_KEY)
                .await?
                .unwrap_or_default();
        }
        self.observe_bus().await?;
        let counts = self.store.state(Clone::clone);
        Ok(Outcome {
            placed: counts.placed,
            refused: counts.refused,
            totals,
            projection_dead_letters: self.manager.dead_letters().await?.len(),
            bus_dead_letters,
            warehouse_commands: self.warehouse.received(),
        })
    }
    // ANCHOR_END: run_once

    /// Places the next order through the Store and waits for its append.
    async fn place_order(&self) -> Result<(), Error> {
        let order = self.next_order.fetch_add(1, Ordering::Relaxed);
        self.store
            .send(OrderAction::Place {
                order,
                total_cents: order * 1_000,
            })
            .await?;
        Ok(())
    }

    /// The mailer takes every message but "crashes" before acknowledging the
    /// first: it comes back after the visibility timeout, is not
    /// acknowledged again, and goes to the dead-letter topic. An `audit`
    /// group takes three messages and holds them (pending). Returns the
    /// dead-letter topic's length.
    async fn consume_with_a_crash(&self) -> Result<u64, Error> {
        let mut mailer = self.mailer.lock().await;
        let first = mailer.receive(10_000, Duration::ZERO).await?;
        mailer.ack_many(first.get(1..).unwrap_or_default()).await?;
        for _ in 0..2 {
            self.clock.advance(VISIBILITY);
            mailer.receive(10, Duration::ZERO).await?;
        }
        let mut audit = self
            .bus
            .subscribe(SubscribeOptions::new(
                self.topic.clone(),
                "audit",
                "audit-1",
            )?)
            .await?;
        audit.receive(3, Duration::ZERO).await?;
        audit.backlog().await?;
        Ok(self.bus.topic_len(&self.topic.dead_letter()).await?)
    }

    /// Refreshes the bus gauges: pending messages per group, the mailer's lag.
    async fn observe_bus(&self) -> Result<(), Error> {
        for group in ["mailer", "audit"] {
            self.bus.pending(&self.topic, group).await?;
        }
        self.mailer.lock().await.backlog().await?;
        Ok(())
    }

    /// Every `every`, places an order, publishes it, lets the mailer take
    /// and acknowledge it, and reads the totals; until the task is dropped.
    pub async fn keep_busy(&self, every: Duration) -> Result<(), Error> {
        loop {
            self.place_order().await?;
            self.publisher.publish_pending().await?;
            {
                let mut mailer = self.mailer.lock().await;
                let messages = mailer.receive(100, Duration::ZERO).await?;
                mailer.ack_many(&messages).await?;
            }
            self.read_model.get_json::<Totals>(TOTALS_KEY).await?;
            self.observe_bus().await?;
            tokio::time::sleep(every).await;
        }
    }

    /// Deletes what the shop stored: both schemas and the cache's keys (for
    /// runs that clean up after themselves; the tests' fixtures do it for
    /// them).
    pub async fn drop_data(&self) -> Result<(), Error> {
        self.read_model.cache().clear().await?;
        let primary = self.read_model.primary();
        // Both names were validated when the stores were built.
        for (pool, schema) in [
            (self.events.pool(), self.events.schema()),
            (primary.pool(), primary.schema()),
        ] {
            sqlx::query(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
                .execute(pool)
                .await?;
        }
        Ok(())
    }

    /// Stops the projection (after its batch) and waits for it.
    pub async fn shutdown(&self) -> Result<(), Error> {
        self.manager.shutdown();
        let running = self
            .projection
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(running) = running {
            running.await??;
        }
        Ok(())
    }
}
