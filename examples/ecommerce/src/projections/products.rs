//! The product catalog read model: one [`ProductView`] per product, built
//! from `product.listed` and the stock events, so the stock shown follows
//! every reservation and release.

use async_trait::async_trait;
use composable_rust::event::decode;
use composable_rust::postgres::{
    DocumentTable, PostgresProjectionStore, PostgresProjectionTx, SortOrder,
};
use composable_rust::prelude::*;
use composable_rust::{ProjectionError, Upcasters};
use serde::{Deserialize, Serialize};

use crate::domain::Cents;
use crate::domain::catalog::ProductEvent;
use crate::domain::inventory::StockEvent;

/// The document table's name.
pub const TABLE: &str = "products";

/// A product as the catalog shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ProductView {
    /// The product.
    pub product_id: String,
    /// Its name.
    pub name: String,
    /// Its unit price.
    pub price_cents: Cents,
    /// Units not reserved.
    pub stock: u64,
}

/// Keeps the [`ProductView`]s.
#[derive(Debug)]
pub struct Products {
    table: DocumentTable,
    upcasters: Upcasters,
}

impl Products {
    /// The projection, writing to `table`.
    pub fn new(table: DocumentTable) -> Self {
        Self {
            table,
            upcasters: Upcasters::new(),
        }
    }

    async fn update(
        &self,
        tx: &mut PostgresProjectionTx,
        product_id: &str,
        change: impl FnOnce(&mut ProductView),
    ) -> Result<(), ProjectionError> {
        let mut view: ProductView =
            self.table
                .get(tx, product_id)
                .await?
                .unwrap_or_else(|| ProductView {
                    product_id: product_id.to_owned(),
                    ..ProductView::default()
                });
        change(&mut view);
        self.table.upsert(tx, product_id, &view).await
    }
}

#[async_trait]
impl Projection for Products {
    type Store = PostgresProjectionStore;

    fn name(&self) -> &str {
        "products"
    }

    fn handles(&self, event: &StoredEvent) -> bool {
        let stream = event.stream_id.as_str();
        stream.starts_with("product-") || stream.starts_with("stock-")
    }

    async fn apply(
        &self,
        event: &StoredEvent,
        tx: &mut PostgresProjectionTx,
    ) -> Result<(), ProjectionError> {
        if event.stream_id.as_str().starts_with("product-") {
            let Some(ProductEvent::Listed {
                product_id,
                name,
                price_cents,
            }) = decode::<ProductEvent>(event, &self.upcasters)?
            else {
                return Ok(());
            };
            return self
                .update(tx, &product_id, |view| {
                    view.name = name;
                    view.price_cents = price_cents;
                })
                .await;
        }
        let Some(stock_event) = decode::<StockEvent>(event, &self.upcasters)? else {
            return Ok(());
        };
        match stock_event {
            StockEvent::Added {
                product_id,
                quantity,
            }
            | StockEvent::Released {
                product_id,
                quantity,
                ..
            } => {
                self.update(tx, &product_id, |view| view.stock += quantity)
                    .await
            }
            StockEvent::Reserved {
                product_id,
                quantity,
                ..
            } => {
                self.update(tx, &product_id, |view| {
                    view.stock = view.stock.saturating_sub(quantity);
                })
                .await
            }
        }
    }

    async fn reset(&self, tx: &mut PostgresProjectionTx) -> Result<(), ProjectionError> {
        self.table.clear(tx).await.map(|_| ())
    }
}

/// Every product, by id; those whose name contains `query` (any case)
/// when one is given. The catalog is small, so the text filter runs here
/// after one indexed read; a large catalog would use PostgreSQL full-text
/// search on a generated column instead.
///
/// # Errors
///
/// The read model's error.
pub async fn search(
    table: &DocumentTable,
    query: Option<&str>,
) -> Result<Vec<ProductView>, ProjectionError> {
    let all: Vec<ProductView> = table
        .query()
        .order_by("product_id", SortOrder::Ascending)
        .fetch_as()
        .await?;
    let Some(query) = query.map(str::to_lowercase).filter(|q| !q.is_empty()) else {
        return Ok(all);
    };
    Ok(all
        .into_iter()
        .filter(|product| product.name.to_lowercase().contains(&query))
        .collect())
}
