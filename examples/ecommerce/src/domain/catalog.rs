//! The catalog: the products for sale. The seed list is the source of the
//! catalog (prices are looked up here when a product goes into a cart);
//! seeding also records a `product.listed` event per product so that the
//! product search read model is built from events like every other.

use composable_rust::prelude::*;
use serde::{Deserialize, Serialize};

use super::Cents;

/// A product for sale.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Product {
    /// Stable id, also the stream id suffix (`product-{id}`).
    pub product_id: String,
    /// What the customer sees.
    pub name: String,
    /// The unit price.
    pub price_cents: Cents,
    /// The stock the inventory starts with.
    pub initial_stock: u64,
}

/// What happens to a product (stream `product-{id}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
pub enum ProductEvent {
    /// The product was put on sale.
    #[serde(rename = "product.listed")]
    Listed {
        /// The product's id.
        product_id: String,
        /// Its name.
        name: String,
        /// Its unit price.
        price_cents: Cents,
    },
}

/// The id of the seeded product that is never in stock: ordering it makes
/// the inventory reservation fail (the saga cancels the order).
pub const OUT_OF_STOCK: &str = "out-of-stock";

/// The seeded catalog.
pub fn seed() -> Vec<Product> {
    let product = |id: &str, name: &str, price_cents: Cents, initial_stock: u64| Product {
        product_id: id.into(),
        name: name.into(),
        price_cents,
        initial_stock,
    };
    vec![
        product(
            "espresso-cup",
            "Espresso cup, white porcelain",
            900,
            1_000_000,
        ),
        product("pour-over", "Pour-over coffee dripper", 2_450, 1_000_000),
        product("grinder", "Hand coffee grinder", 6_900, 1_000_000),
        product("kettle", "Gooseneck kettle", 4_500, 1_000_000),
        product("beans-1kg", "Coffee beans, 1 kg", 2_800, 1_000_000),
        product("scale", "Coffee scale with timer", 3_200, 1_000_000),
        product(OUT_OF_STOCK, "Limited edition mug (sold out)", 1_500, 0),
    ]
}

/// The product `product_id` of the seeded catalog.
pub fn find(product_id: &str) -> Option<Product> {
    seed().into_iter().find(|p| p.product_id == product_id)
}

/// The stream of product `product_id`.
///
/// # Errors
///
/// An invalid stream id (the seed's ids are valid).
pub fn product_stream(product_id: &str) -> Result<StreamId, composable_rust::EventStoreError> {
    StreamId::for_aggregate("product", product_id)
}
