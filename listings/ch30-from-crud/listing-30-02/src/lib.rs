//! The catalog of listing 30-1, migrated to events step by step:
//!
//! - [`product`]: the event-sourced model of a row;
//! - [`import`]: one stream per legacy row, idempotent and resumable;
//! - [`service`]: the new writer, with the old API;
//! - [`legacy_view`]: a projection that keeps the legacy table up to date
//!   for the old readers;
//! - [`verify`]: both sides compared, product by product.

pub mod import;
pub mod legacy_view;
pub mod product;
pub mod service;
pub mod verify;

use std::sync::Arc;

use composable_rust::postgres::{PostgresError, PostgresEventStore, PostgresProjectionStore};
use composable_rust::{EventStoreError, ProjectionError, ProjectionManager};
use legacy_catalog::Catalog;
use sqlx::PgPool;

use crate::legacy_view::LegacyProducts;
use crate::product::ProductError;
use crate::service::ProductService;

/// Everything that can go wrong in the migration's code.
#[derive(Debug, thiserror::Error)]
pub enum MigrationError {
    #[error(transparent)]
    Sql(#[from] sqlx::Error),
    #[error(transparent)]
    Postgres(#[from] PostgresError),
    #[error(transparent)]
    Store(#[from] EventStoreError),
    #[error(transparent)]
    Projection(#[from] ProjectionError),
    /// The aggregate refused a command; nothing was written.
    #[error("product {id}: refused: {source}")]
    Rejected { id: i64, source: ProductError },
}

// ANCHOR: deployment
/// Both sides in one PostgreSQL schema: the legacy `products` table, the
/// event store's tables and the projection store's (checkpoints, dead
/// letters), all on one pool whose `search_path` is the schema.
#[derive(Debug, Clone)]
pub struct Deployment {
    pub pool: PgPool,
    pub legacy: Catalog,
    pub events: PostgresEventStore,
    pub read: Arc<PostgresProjectionStore>,
}

impl Deployment {
    /// Connects and creates the event store's and projection store's
    /// tables if they are missing (the legacy table is the old
    /// application's business).
    pub async fn connect(url: &str, schema: &str) -> Result<Self, MigrationError> {
        let pool = legacy_catalog::connect(url, schema).await?;
        let events = PostgresEventStore::new(pool.clone()).with_schema(schema)?;
        events.migrate().await?;
        let read = PostgresProjectionStore::new(pool.clone()).with_schema(schema)?;
        read.migrate().await?;
        Ok(Self {
            legacy: Catalog::new(pool.clone()),
            pool,
            events,
            read: Arc::new(read),
        })
    }

    /// The new writer.
    pub fn service(&self) -> ProductService {
        ProductService::new(self.events.clone(), self.pool.clone())
    }

    /// The projection that writes the legacy table, run by a manager.
    pub fn legacy_view(&self) -> ProjectionManager<LegacyProducts> {
        ProjectionManager::new(
            LegacyProducts::default(),
            Arc::clone(&self.read),
            self.events.clone(),
        )
    }
}
// ANCHOR_END: deployment
