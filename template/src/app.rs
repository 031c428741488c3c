//! The service's wiring: where it finds PostgreSQL and Redis, the stores it
//! opens there, and the loops that move events along (projections, the
//! event bus, the fulfillment saga).
//!
//! ```text
//! command ─▶ Order (aggregate) ─▶ events in PostgreSQL ─┬─▶ projections (read model in PostgreSQL)
//!                                                       └─▶ publisher ─▶ Redis Streams ─▶ fulfillment saga
//!                                                                                          └─▶ shipping desk ─▶ Order
//! ```

use std::sync::Arc;
use std::time::Duration;

use composable_rust::postgres::{PostgresEventStore, PostgresProjectionStore};
use composable_rust::prelude::*;
use composable_rust::redis::RedisStreamsEventBus;
use composable_rust::saga::Handled;
use composable_rust::{AggregateRepository, EventPublisher, ProjectionManager, SagaRuntime};
use composable_rust::{SnapshotPolicy, SubscribeOptions, Topic};

use crate::aggregates::order::Order;
use crate::projections::order_summaries::OrderSummaries;
use crate::sagas::fulfillment::FulfillmentSaga;
use crate::sagas::shipping_desk::ShippingDesk;

/// Any error the service reports.
pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// Where the service finds its servers, read from the environment.
#[derive(Debug, Clone)]
pub struct Config {
    /// `DATABASE_URL`: the event store and the read model.
    pub database_url: String,
    /// `REDIS_URL`: the event bus.
    pub redis_url: String,
    /// The PostgreSQL schema of the event store and the read model, and the
    /// prefix of the service's Redis keys.
    pub schema: String,
}

/// A setting the service cannot start without.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error(
    "{variable} is not set: the service needs {needs}. Set it (e.g. {variable}={example}), or \
     start the servers of docker-compose.yml with `docker compose up -d` and use the URLs in \
     README.md"
)]
pub struct MissingSetting {
    pub variable: &'static str,
    pub needs: &'static str,
    pub example: &'static str,
}

impl Config {
    /// The schema the service uses unless told otherwise.
    pub const SCHEMA: &'static str = "{{crate_name}}";

    /// `DATABASE_URL` and `REDIS_URL` from the environment, and the default
    /// schema.
    pub fn from_env() -> Result<Self, MissingSetting> {
        let database_url = std::env::var("DATABASE_URL").map_err(|_| MissingSetting {
            variable: "DATABASE_URL",
            needs: "PostgreSQL",
            example: "postgres://postgres@localhost:5432/postgres",
        })?;
        let redis_url = std::env::var("REDIS_URL").map_err(|_| MissingSetting {
            variable: "REDIS_URL",
            needs: "Redis",
            example: "redis://127.0.0.1:6379",
        })?;
        Ok(Self {
            database_url,
            redis_url,
            schema: Self::SCHEMA.to_owned(),
        })
    }

    /// The same servers, another schema and key prefix (tests use their own).
    #[must_use]
    pub fn with_schema(mut self, schema: impl Into<String>) -> Self {
        self.schema = schema.into();
        self
    }
}

/// The service's stores, opened and migrated.
#[derive(Debug)]
pub struct App {
    pub events: PostgresEventStore,
    pub read_model: Arc<PostgresProjectionStore>,
    pub bus: RedisStreamsEventBus,
    pub orders: AggregateRepository<Order, PostgresEventStore>,
    topic: Topic,
}

/// What one [`App::work`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WorkReport {
    /// Events published to the bus.
    pub published: u64,
    /// Fulfillments that ended, with how.
    pub ended: Vec<String>,
    /// Events the projections applied.
    pub projected: u64,
}

impl App {
    /// Connects to PostgreSQL and Redis and creates the service's tables.
    pub async fn connect(config: &Config) -> Result<Self, Error> {
        let events = PostgresEventStore::connect(&config.database_url)
            .await?
            .with_schema(&config.schema)?;
        events.migrate().await?;
        let read_model = PostgresProjectionStore::connect(&config.database_url)
            .await?
            .with_schema(&config.schema)?;
        read_model.migrate().await?;
        let bus = RedisStreamsEventBus::connect(&config.redis_url, &config.schema).await?;
        let orders =
            AggregateRepository::new(events.clone(), ()).with_snapshots(SnapshotPolicy::every(100));
        Ok(Self {
            events,
            read_model: Arc::new(read_model),
            bus,
            orders,
            topic: Topic::new("events")?,
        })
    }

    /// Brings every projection up to date with the event store; returns how
    /// many events they applied.
    pub async fn catch_up_projections(&self) -> Result<u64, Error> {
        let mut applied = 0;
        applied += self.catch_up(OrderSummaries::new()).await?;
        // composable: projections (`composable add projection` adds its line above)
        Ok(applied)
    }

    /// One projection, caught up in the read model's database: its changes
    /// and its checkpoint commit together, so a restart resumes exactly.
    async fn catch_up<P>(&self, projection: P) -> Result<u64, Error>
    where
        P: Projection<Store = PostgresProjectionStore>,
    {
        let manager = ProjectionManager::new(
            projection,
            Arc::clone(&self.read_model),
            self.events.clone(),
        );
        Ok(manager.catch_up().await?)
    }

    /// Works until there is nothing left to do: publishes the store's new
    /// events to Redis Streams, lets the fulfillment saga handle them (its
    /// commands append more events, published in turn), then brings the
    /// projections up to date.
    pub async fn work(&self, payment_window: Duration) -> Result<WorkReport, Error> {
        let publisher = EventPublisher::new(
            "bus-publisher",
            self.events.clone(),
            self.bus.clone(),
            Arc::clone(&self.read_model),
            self.topic.clone(),
        );
        let saga = FulfillmentSaga { payment_window };
        let runtime = SagaRuntime::new(
            saga,
            self.events.clone(),
            ShippingDesk::new(self.events.clone()),
        );
        // Commands an earlier run decided but did not deliver.
        runtime.resume().await?;
        let options = SubscribeOptions::new(self.topic.clone(), "fulfillment", "worker-1")?;
        let mut subscription = self.bus.subscribe(options).await?;

        let mut report = WorkReport::default();
        loop {
            let published = publisher.publish_pending().await?;
            let messages = subscription
                .receive(100, Duration::from_millis(200))
                .await?;
            for message in &messages {
                // Not acknowledged on error: the bus delivers it again later.
                let handled = runtime.handle(&message.event).await?;
                subscription.ack(message).await?;
                if let Handled::Stepped {
                    saga_id,
                    outcome: Some(outcome),
                } = handled
                {
                    report
                        .ended
                        .push(format!("fulfillment {saga_id}: {outcome}"));
                }
            }
            report.published += published;
            if published == 0 && messages.is_empty() {
                break;
            }
        }
        runtime.shutdown().await;
        report.projected = self.catch_up_projections().await?;
        Ok(report)
    }
}
