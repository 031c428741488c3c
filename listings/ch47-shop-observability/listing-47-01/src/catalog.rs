//! The products the shop sells. A fixed list keeps the domain small; a real
//! shop would have a catalog service, and the order would still copy the
//! price it was sold at into its event.

/// Amounts are in cents: integers add up exactly, floats do not.
pub type Cents = u64;

/// Every product: its SKU, its name, its unit price.
pub const PRODUCTS: [(&str, &str, Cents); 3] = [
    ("mug", "Mug", 1_200),
    ("tee", "T-shirt", 2_500),
    ("cap", "Cap", 1_800),
];

/// The unit price of `sku`, if the shop sells it.
pub fn price(sku: &str) -> Option<Cents> {
    PRODUCTS
        .iter()
        .find(|(product, _, _)| *product == sku)
        .map(|(_, _, price)| *price)
}
