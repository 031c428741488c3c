//! The read models, both in PostgreSQL document tables (queryable JSONB):
//!
//! - **stock levels** (`stock_levels`, one document per sku and warehouse,
//!   plus `catalog`, one per product for names and reorder points), kept by
//!   [`StockLevels`] from the event store: "what is in warehouse X", "where
//!   is sku Y";
//! - **alerts** (`stock_alerts`, one document per low-stock episode), kept
//!   by [`AlertLog`] from the `inventory-alerts` topic of the event bus
//!   (consumer group `stock-alerts`): "which alerts are open".
//!
//! Why PostgreSQL for the alerts too, and not Redis: an alert is an
//! operational record someone acts on and audits later (when did it open,
//! when was it resolved), so it must not vanish with a TTL or a Redis
//! restart, and "open alerts" is a filter the document table's GIN index
//! answers directly. PostgreSQL also commits each document with the
//! projection's checkpoint in one transaction, so an event redelivered by
//! the (at-least-once) bus is applied exactly once. Redis would fit a
//! high-volume, short-lived signal better; alerts are neither.

use composable_rust::chrono::{DateTime, Utc};
use composable_rust::event::decode;
use composable_rust::postgres::{
    DocumentTable, PostgresError, PostgresProjectionStore, PostgresProjectionTx, SortOrder,
};
use composable_rust::prelude::*;
use composable_rust::{ProjectionError, Upcasters};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::product::ProductEvent;

/// One product as the catalog shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatalogEntry {
    pub sku: String,
    pub name: String,
    pub reorder_point: u32,
    pub reorder_quantity: u32,
}

/// One sku in one warehouse.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StockLevel {
    pub sku: String,
    pub name: String,
    pub warehouse: String,
    pub on_hand: u32,
    pub reserved: u32,
    pub available: u32,
    /// Ordered from the supplier and not received yet.
    pub on_order: u32,
    pub shipped: u32,
    pub reorder_point: u32,
}

/// Whether an alert still needs attention.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertStatus {
    Open,
    Resolved,
}

/// One low-stock episode of a sku in a warehouse.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alert {
    /// `{sku}@{warehouse}#{n}`.
    pub id: String,
    pub sku: String,
    pub warehouse: String,
    pub status: AlertStatus,
    /// Available when the alert opened.
    pub available: u32,
    pub reorder_point: u32,
    pub raised_at: DateTime<Utc>,
    pub resolved_at: Option<DateTime<Utc>>,
}

fn stock_key(sku: &str, warehouse: &str) -> String {
    format!("{sku}@{warehouse}")
}

fn alert_key(sku: &str, warehouse: &str, alert: u32) -> String {
    format!("{sku}@{warehouse}#{alert}")
}

/// The document tables, for queries (and for the projections' writes).
#[derive(Debug, Clone)]
pub struct ReadModels {
    catalog: DocumentTable,
    stock: DocumentTable,
    alerts: DocumentTable,
}

impl ReadModels {
    /// The tables in `store`'s schema. Table names are constants, validated
    /// by `DocumentTable::new` all the same.
    pub fn new(store: &PostgresProjectionStore) -> Result<Self, PostgresError> {
        Ok(Self {
            catalog: DocumentTable::new(store, "catalog")?,
            stock: DocumentTable::new(store, "stock_levels")?,
            alerts: DocumentTable::new(store, "stock_alerts")?,
        })
    }

    /// Creates the tables if needed (after the store's `migrate`).
    pub async fn ensure(&self) -> Result<(), PostgresError> {
        self.catalog.ensure().await?;
        self.stock.ensure().await?;
        self.alerts.ensure().await
    }

    /// `sku` in `warehouse`, if anything ever happened to it there.
    pub async fn stock_level(
        &self,
        sku: &str,
        warehouse: &str,
    ) -> Result<Option<StockLevel>, ProjectionError> {
        self.stock.fetch(&stock_key(sku, warehouse)).await
    }

    /// `sku` in every warehouse, by warehouse.
    pub async fn stock_of_sku(&self, sku: &str) -> Result<Vec<StockLevel>, ProjectionError> {
        self.stock
            .query()
            .contains(json!({ "sku": sku }))
            .order_by("warehouse", SortOrder::Ascending)
            .fetch_as()
            .await
    }

    /// Everything in `warehouse`, by sku.
    pub async fn stock_in_warehouse(
        &self,
        warehouse: &str,
    ) -> Result<Vec<StockLevel>, ProjectionError> {
        self.stock
            .query()
            .contains(json!({ "warehouse": warehouse }))
            .order_by("sku", SortOrder::Ascending)
            .fetch_as()
            .await
    }

    /// Every stock level, by sku, then warehouse (ties on the sku are
    /// ordered by document id, `{sku}@{warehouse}`).
    pub async fn all_stock(&self) -> Result<Vec<StockLevel>, ProjectionError> {
        self.stock
            .query()
            .order_by("sku", SortOrder::Ascending)
            .fetch_as()
            .await
    }

    /// The alerts with `status` (all of them with `None`), oldest first.
    pub async fn alerts(&self, status: Option<AlertStatus>) -> Result<Vec<Alert>, ProjectionError> {
        let query = self
            .alerts
            .query()
            .order_by("raised_at", SortOrder::Ascending);
        let query = match status {
            Some(status) => query.contains(json!({ "status": status })),
            None => query,
        };
        query.fetch_as().await
    }
}

/// Keeps the catalog and the stock levels from the product events.
#[derive(Debug)]
pub struct StockLevels {
    tables: ReadModels,
    upcasters: Upcasters,
}

impl StockLevels {
    /// The projection, writing to `tables`.
    pub fn new(tables: ReadModels) -> Self {
        Self {
            tables,
            upcasters: Upcasters::new(),
        }
    }
}

#[async_trait]
impl Projection for StockLevels {
    type Store = PostgresProjectionStore;

    fn name(&self) -> &str {
        "stock-levels"
    }

    fn handles(&self, event: &StoredEvent) -> bool {
        event.stream_id.as_str().starts_with("product-")
    }

    async fn apply(
        &self,
        event: &StoredEvent,
        tx: &mut PostgresProjectionTx,
    ) -> Result<(), ProjectionError> {
        let Some(event) = decode::<ProductEvent>(event, &self.upcasters)? else {
            return Ok(());
        };
        let ReadModels { catalog, stock, .. } = &self.tables;
        // Which document changes, and how.
        let (sku, warehouse, change): (String, String, Box<dyn FnOnce(&mut StockLevel) + Send>) =
            match event {
                ProductEvent::Registered {
                    sku,
                    name,
                    reorder_point,
                    reorder_quantity,
                } => {
                    let entry = CatalogEntry {
                        sku: sku.clone(),
                        name,
                        reorder_point,
                        reorder_quantity,
                    };
                    return catalog.upsert(tx, &sku, &entry).await;
                }
                ProductEvent::StockReceived {
                    sku,
                    warehouse,
                    quantity,
                    purchase_order,
                } => (
                    sku,
                    warehouse,
                    Box::new(move |level| {
                        level.on_hand += quantity;
                        if purchase_order.is_some() {
                            level.on_order = 0;
                        }
                    }),
                ),
                ProductEvent::Reserved {
                    sku,
                    warehouse,
                    quantity,
                    ..
                } => (
                    sku,
                    warehouse,
                    Box::new(move |level| level.reserved += quantity),
                ),
                ProductEvent::Released {
                    sku,
                    warehouse,
                    quantity,
                    ..
                } => (
                    sku,
                    warehouse,
                    Box::new(move |level| level.reserved = level.reserved.saturating_sub(quantity)),
                ),
                ProductEvent::Committed {
                    sku,
                    warehouse,
                    quantity,
                    ..
                } => (
                    sku,
                    warehouse,
                    Box::new(move |level| {
                        level.reserved = level.reserved.saturating_sub(quantity);
                        level.on_hand = level.on_hand.saturating_sub(quantity);
                        level.shipped += quantity;
                    }),
                ),
                ProductEvent::ReorderRequested {
                    sku,
                    warehouse,
                    quantity,
                    ..
                } => (
                    sku,
                    warehouse,
                    Box::new(move |level| level.on_order = quantity),
                ),
                ProductEvent::LowStock { .. }
                | ProductEvent::StockRestored { .. }
                | ProductEvent::PurchaseOrderPlaced { .. } => return Ok(()),
            };
        let key = stock_key(&sku, &warehouse);
        let mut level = match stock.get::<StockLevel>(tx, &key).await? {
            Some(level) => level,
            None => {
                let product: CatalogEntry = catalog.get(tx, &sku).await?.unwrap_or_default();
                StockLevel {
                    sku,
                    name: product.name,
                    warehouse,
                    reorder_point: product.reorder_point,
                    ..StockLevel::default()
                }
            }
        };
        change(&mut level);
        level.available = level.on_hand.saturating_sub(level.reserved);
        stock.upsert(tx, &key, &level).await
    }

    async fn reset(&self, tx: &mut PostgresProjectionTx) -> Result<(), ProjectionError> {
        self.tables.catalog.clear(tx).await?;
        self.tables.stock.clear(tx).await.map(|_| ())
    }
}

/// Records low-stock alerts from the bus: opens one on `LowStock`,
/// resolves it on `StockRestored`.
#[derive(Debug)]
pub struct AlertLog {
    tables: ReadModels,
    upcasters: Upcasters,
}

impl AlertLog {
    /// The projection, writing to `tables`.
    pub fn new(tables: ReadModels) -> Self {
        Self {
            tables,
            upcasters: Upcasters::new(),
        }
    }
}

#[async_trait]
impl Projection for AlertLog {
    type Store = PostgresProjectionStore;

    fn name(&self) -> &str {
        "stock-alerts"
    }

    async fn apply(
        &self,
        stored: &StoredEvent,
        tx: &mut PostgresProjectionTx,
    ) -> Result<(), ProjectionError> {
        let alerts = &self.tables.alerts;
        match decode::<ProductEvent>(stored, &self.upcasters)? {
            Some(ProductEvent::LowStock {
                sku,
                warehouse,
                alert,
                available,
                reorder_point,
            }) => {
                let id = alert_key(&sku, &warehouse, alert);
                // Opened once: a copy of the event never reopens an alert
                // resolved since.
                if alerts.get::<Alert>(tx, &id).await?.is_some() {
                    return Ok(());
                }
                let opened = Alert {
                    id: id.clone(),
                    sku,
                    warehouse,
                    status: AlertStatus::Open,
                    available,
                    reorder_point,
                    raised_at: stored.recorded_at,
                    resolved_at: None,
                };
                alerts.upsert(tx, &id, &opened).await
            }
            Some(ProductEvent::StockRestored {
                sku,
                warehouse,
                alert,
                ..
            }) => {
                let id = alert_key(&sku, &warehouse, alert);
                let Some(mut open) = alerts.get::<Alert>(tx, &id).await? else {
                    return Ok(());
                };
                open.status = AlertStatus::Resolved;
                open.resolved_at = Some(stored.recorded_at);
                alerts.upsert(tx, &id, &open).await
            }
            _ => Ok(()),
        }
    }

    async fn reset(&self, tx: &mut PostgresProjectionTx) -> Result<(), ProjectionError> {
        self.tables.alerts.clear(tx).await.map(|_| ())
    }
}
