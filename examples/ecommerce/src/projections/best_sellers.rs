//! Best-sellers: a Redis sorted set of products by units held by orders
//! (reserved and not released), `GET /v1/products/best-sellers`.
//!
//! Redis projections are at-least-once: an event may be applied again
//! after a lost reply. Increments are not idempotent, so each one is
//! guarded by `apply_once` with a marker per product stream: an event at
//! or before the marker's position is skipped.

use async_trait::async_trait;
use composable_rust::event::decode;
use composable_rust::prelude::*;
use composable_rust::redis::{RedisProjectionStore, RedisTx};
use composable_rust::{ProjectionError, Upcasters};
use serde::{Deserialize, Serialize};

use crate::domain::inventory::StockEvent;

/// The read-model key of the sorted set.
pub const KEY: &str = "best-sellers:units";

/// A product and the units its orders hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BestSeller {
    /// The product.
    pub product_id: String,
    /// Units reserved by orders and not released.
    pub units: u64,
}

/// Keeps the sorted set.
#[derive(Debug, Default)]
pub struct BestSellers {
    upcasters: Upcasters,
}

#[async_trait]
impl Projection for BestSellers {
    type Store = RedisProjectionStore;

    fn name(&self) -> &str {
        "best-sellers"
    }

    fn handles(&self, event: &StoredEvent) -> bool {
        event.stream_id.as_str().starts_with("stock-")
    }

    async fn apply(&self, event: &StoredEvent, tx: &mut RedisTx) -> Result<(), ProjectionError> {
        let Some(stock_event) = decode::<StockEvent>(event, &self.upcasters)? else {
            return Ok(());
        };
        let (product_id, delta) = match stock_event {
            StockEvent::Reserved {
                product_id,
                quantity,
                ..
            } => (product_id, quantity),
            StockEvent::Released {
                product_id,
                quantity,
                ..
            } => (product_id, quantity.wrapping_neg()),
            StockEvent::Added { .. } => return Ok(()),
        };
        let marker = format!("best-sellers:applied:{}", event.stream_id);
        if tx.apply_once(&marker, event.position).await? {
            // Two's complement: a release subtracts.
            #[expect(
                clippy::cast_precision_loss,
                clippy::cast_possible_wrap,
                reason = "unit counts stay far below 2^53"
            )]
            tx.zincr_by(KEY, &product_id, delta as i64 as f64)?;
        }
        Ok(())
    }

    async fn reset(&self, tx: &mut RedisTx) -> Result<(), ProjectionError> {
        tx.delete_prefix("best-sellers:").await.map(|_| ())
    }
}

/// The `limit` products with the most units held, most first.
///
/// # Errors
///
/// The read model's error.
pub async fn top(
    store: &RedisProjectionStore,
    limit: u64,
) -> Result<Vec<BestSeller>, ProjectionError> {
    let ranked = store.sorted_set(KEY).top(limit).await?;
    Ok(ranked
        .into_iter()
        .filter(|r| r.score >= 1.0)
        .map(|r| BestSeller {
            product_id: r.member,
            #[expect(
                clippy::cast_possible_truncation,
                clippy::cast_sign_loss,
                reason = "a positive whole count"
            )]
            units: r.score as u64,
        })
        .collect())
}
