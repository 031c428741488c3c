//! The cart read model: one [`CartView`] per customer under the key
//! `cart:{customer id}`, in a `CachedProjectionStore`: PostgreSQL is the
//! truth (the view and the checkpoint commit together), Redis a
//! write-through cache in front of it. Reads hit Redis; when Redis is
//! down, the store falls back to PostgreSQL (never an error, never a stale
//! value after a write), and its circuit breaker stops trying Redis for a
//! while.
//!
//! The document records the cart version it shows, so `GET /v1/cart` can
//! tell a current view from a late one without waiting (see
//! [`StoredCart`]).

use std::collections::BTreeMap;

use async_trait::async_trait;
use composable_rust::event::decode;
use composable_rust::postgres::PostgresProjectionStore;
use composable_rust::prelude::*;
use composable_rust::projection::CachedProjectionStore;
use composable_rust::redis::RedisProjectionStore;
use composable_rust::{ProjectionError, Upcasters};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::domain::Cents;
use crate::domain::cart::CartEvent;

/// PostgreSQL with Redis in front.
pub type CartStore = CachedProjectionStore<PostgresProjectionStore, RedisProjectionStore>;

/// One line of the cart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CartItem {
    /// The product.
    pub product_id: String,
    /// Its name.
    pub name: String,
    /// How many.
    pub quantity: u32,
    /// The unit price when it went in.
    pub price_cents: Cents,
}

/// The cart.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CartView {
    /// The lines, by product id.
    pub items: Vec<CartItem>,
    /// The sum of the lines.
    pub total_cents: Cents,
}

impl CartView {
    fn set(&mut self, item: CartItem) {
        match self
            .items
            .binary_search_by(|i| i.product_id.cmp(&item.product_id))
        {
            Ok(index) => self.items[index] = item,
            Err(index) => self.items.insert(index, item),
        }
        self.total();
    }

    fn remove(&mut self, product_id: &str) {
        self.items.retain(|item| item.product_id != product_id);
        self.total();
    }

    fn total(&mut self) {
        self.total_cents = self
            .items
            .iter()
            .map(|item| item.price_cents * Cents::from(item.quantity))
            .sum();
    }
}

/// The document kept per cart: the view, and what the projection needs
/// to keep it and a reader needs to trust it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredCart {
    /// What `GET /v1/cart` answers.
    #[serde(flatten)]
    pub view: CartView,
    /// The cart stream version the view shows (0 for documents written
    /// before it was recorded: such a view is never trusted as current).
    #[serde(default)]
    pub version: u64,
    /// The version at which each line was last set: a checkout removes
    /// the lines set at or before the version the order was placed from.
    #[serde(default)]
    pub set_at: BTreeMap<String, u64>,
}

/// The key of `customer_id`'s cart.
pub fn cart_key(customer_id: Uuid) -> String {
    format!("cart:{customer_id}")
}

/// Keeps the [`CartView`]s.
#[derive(Debug, Default)]
pub struct Carts {
    upcasters: Upcasters,
}

#[async_trait]
impl Projection for Carts {
    type Store = CartStore;

    fn name(&self) -> &str {
        "carts"
    }

    fn handles(&self, event: &StoredEvent) -> bool {
        event.stream_id.as_str().starts_with("cart-")
    }

    async fn apply(
        &self,
        event: &StoredEvent,
        tx: &mut <CartStore as ProjectionStore>::Tx,
    ) -> Result<(), ProjectionError> {
        let Some(cart_event) = decode::<CartEvent>(event, &self.upcasters)? else {
            return Ok(());
        };
        let customer = event
            .stream_id
            .as_str()
            .strip_prefix("cart-")
            .unwrap_or_default();
        let key = format!("cart:{customer}");
        let mut cart: StoredCart = tx.get_json(&key).await?.unwrap_or_default();
        let version = event.stream_version;
        match cart_event {
            CartEvent::ItemSet(line) => {
                cart.set_at.insert(line.product_id.clone(), version);
                cart.view.set(CartItem {
                    product_id: line.product_id,
                    name: line.name,
                    quantity: line.quantity,
                    price_cents: line.unit_price_cents,
                });
            }
            CartEvent::ItemRemoved { product_id } => {
                cart.set_at.remove(&product_id);
                cart.view.remove(&product_id);
            }
            CartEvent::CheckedOut {
                through_version, ..
            } => {
                let through = through_version.unwrap_or(u64::MAX);
                cart.set_at.retain(|_, set| *set > through);
                let kept = &cart.set_at;
                cart.view
                    .items
                    .retain(|item| kept.contains_key(&item.product_id));
                cart.view.total();
            }
        }
        cart.version = version;
        tx.save_json(&key, &cart).await
    }

    async fn reset(
        &self,
        tx: &mut <CartStore as ProjectionStore>::Tx,
    ) -> Result<(), ProjectionError> {
        tx.delete_prefix("cart:").await.map(|_| ())
    }
}
