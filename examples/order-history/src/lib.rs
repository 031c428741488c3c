//! Customer order history: CQRS with a separate read database.
//!
//! - [`order`]: the write side, an `Order` aggregate whose events go to a
//!   `PostgresEventStore` through an `AggregateRepository`;
//! - [`projection`]: the update side of the read model, [`OrderHistory`],
//!   run by a `ProjectionManager`: one JSON document per order in a
//!   document table of a `PostgresProjectionStore`;
//! - [`queries`]: the read side, [`OrderHistoryQueries`], which only reads
//!   the read database;
//! - [`read_model`]: the document both of them agree on.

pub mod order;
pub mod projection;
pub mod queries;
pub mod read_model;

use std::sync::Arc;

use composable_rust::postgres::{DocumentTable, PostgresEventStore, PostgresProjectionStore};
use sqlx::PgPool;

pub use order::{Line, Order, OrderCommand, OrderError, OrderEvent, Status};
pub use projection::OrderHistory;
pub use queries::OrderHistoryQueries;
pub use read_model::OrderView;

/// Any error, for `main` and the tests.
pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// The two sides, each with its own pool: the event store in
/// `DATABASE_URL`, the read models in `READ_DATABASE_URL` (another
/// database, or another server), which defaults to `DATABASE_URL`.
#[derive(Debug)]
pub struct OrderHistoryApp {
    pub events: PostgresEventStore,
    pub read_models: Arc<PostgresProjectionStore>,
    pub table: DocumentTable,
}

impl OrderHistoryApp {
    /// Connects both sides, in the schemas given, and creates their tables.
    pub async fn connect(events_schema: &str, read_schema: &str) -> Result<Self, Error> {
        let url = std::env::var("DATABASE_URL")
            .map_err(|_| "set DATABASE_URL, e.g. postgres://postgres@localhost:5432/postgres")?;
        let read_url = std::env::var("READ_DATABASE_URL").unwrap_or_else(|_| url.clone());

        let events =
            PostgresEventStore::new(PgPool::connect(&url).await?).with_schema(events_schema)?;
        events.migrate().await?;
        let read_pool = PgPool::connect(&read_url).await?;
        let read_models = PostgresProjectionStore::new(read_pool).with_schema(read_schema)?;
        read_models.migrate().await?;
        let table = DocumentTable::new(&read_models, read_model::TABLE)?;
        table.ensure().await?;
        let read_models = Arc::new(read_models);
        Ok(Self {
            events,
            read_models,
            table,
        })
    }

    /// Drops both schemas (for runs and tests that clean up after themselves).
    pub async fn drop_schemas(&self) -> Result<(), Error> {
        let sides = [
            (self.events.pool(), self.events.schema()),
            (self.read_models.pool(), self.read_models.schema()),
        ];
        for (pool, schema) in sides {
            sqlx::query(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
                .execute(pool)
                .await?;
        }
        Ok(())
    }
}
