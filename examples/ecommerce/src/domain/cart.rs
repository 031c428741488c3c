//! The cart: one per customer (stream `cart-{customer uuid}`), event
//! sourced. The price is taken from the catalog when a product goes in,
//! and the order takes the cart's lines as they are.
//!
//! Checking out empties the cart *through a version*: the order records
//! the cart version it was placed from, and `cart.checked_out` removes
//! only the lines set at or before it. A line the customer set while the
//! order was being placed stays, so the checkout event can be appended
//! without reading the cart again (no concurrency conflict to retry).

use std::collections::{BTreeMap, BTreeSet};

use composable_rust::prelude::*;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::Cents;

/// The most of one product a cart may hold.
pub const MAX_QUANTITY: u32 = 100;

/// One line of a cart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CartLine {
    /// The product.
    pub product_id: String,
    /// Its name, when it went in.
    pub name: String,
    /// How many.
    pub quantity: u32,
    /// Its unit price, when it went in.
    pub unit_price_cents: Cents,
}

/// What happens to a cart.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
pub enum CartEvent {
    /// A product's quantity was set (added, or changed).
    #[serde(rename = "cart.item_set")]
    ItemSet(CartLine),
    /// A product was taken out.
    #[serde(rename = "cart.item_removed")]
    ItemRemoved {
        /// The product.
        product_id: String,
    },
    /// The cart became order `order_id`: its lines set at or before
    /// `through_version` are gone.
    #[serde(rename = "cart.checked_out")]
    CheckedOut {
        /// The order placed from it.
        order_id: Uuid,
        /// The cart version the order was placed from; `None` (events
        /// written before it was recorded) empties the whole cart.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        through_version: Option<u64>,
    },
}

/// The cart's state.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Cart {
    /// The lines, by product id.
    pub lines: BTreeMap<String, CartLine>,
    /// The orders placed from this cart: checking out is idempotent per order.
    pub orders: BTreeSet<Uuid>,
    /// The stream version: how many events were applied.
    #[serde(default)]
    pub version: u64,
    /// The version at which each line was last set.
    #[serde(default)]
    pub set_at: BTreeMap<String, u64>,
}

impl Cart {
    /// The sum of the lines.
    pub fn total_cents(&self) -> Cents {
        self.lines
            .values()
            .map(|line| line.unit_price_cents * Cents::from(line.quantity))
            .sum()
    }
}

/// What a cart can be asked to do.
#[derive(Debug, Clone)]
pub enum CartCommand {
    /// Set a product's quantity (1..=[`MAX_QUANTITY`]).
    SetItem(CartLine),
    /// Take a product out (nothing happens if it is not in).
    RemoveItem {
        /// The product.
        product_id: String,
    },
    /// Empty the cart because order `order_id` took its lines as they
    /// were at `through_version`.
    CheckOut {
        /// The order.
        order_id: Uuid,
        /// The cart version the order was placed from.
        through_version: u64,
    },
}

/// Why a cart command is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CartError {
    /// The quantity is out of range.
    #[error("quantities are 1 to {MAX_QUANTITY}, not {0}")]
    Quantity(u32),
}

impl Aggregate for Cart {
    const KIND: &'static str = "cart";
    // 2: the state counts its version and each line's (a snapshot of the
    // first shape would restart the count at 0).
    const SNAPSHOT_VERSION: u32 = 2;
    type Event = CartEvent;
    type Command = CartCommand;
    type Error = CartError;
    type Environment = ();

    fn decide(&self, command: CartCommand, (): &()) -> Result<Vec<CartEvent>, CartError> {
        match command {
            CartCommand::SetItem(line) if !(1..=MAX_QUANTITY).contains(&line.quantity) => {
                Err(CartError::Quantity(line.quantity))
            }
            CartCommand::SetItem(line) if self.lines.get(&line.product_id) == Some(&line) => {
                Ok(vec![])
            }
            CartCommand::SetItem(line) => Ok(vec![CartEvent::ItemSet(line)]),
            CartCommand::RemoveItem { product_id } if self.lines.contains_key(&product_id) => {
                Ok(vec![CartEvent::ItemRemoved { product_id }])
            }
            CartCommand::RemoveItem { .. } => Ok(vec![]),
            // A retried order must not empty the cart a second time.
            CartCommand::CheckOut { order_id, .. } if self.orders.contains(&order_id) => Ok(vec![]),
            CartCommand::CheckOut {
                order_id,
                through_version,
            } => Ok(vec![CartEvent::CheckedOut {
                order_id,
                through_version: Some(through_version),
            }]),
        }
    }

    fn apply(&mut self, event: &CartEvent) {
        self.version += 1;
        match event {
            CartEvent::ItemSet(line) => {
                self.lines.insert(line.product_id.clone(), line.clone());
                self.set_at.insert(line.product_id.clone(), self.version);
            }
            CartEvent::ItemRemoved { product_id } => {
                self.lines.remove(product_id);
                self.set_at.remove(product_id);
            }
            CartEvent::CheckedOut {
                order_id,
                through_version,
            } => {
                let through = through_version.unwrap_or(u64::MAX);
                let set_at = &mut self.set_at;
                self.lines
                    .retain(|product, _| set_at.get(product).is_some_and(|v| *v > through));
                set_at.retain(|_, v| *v > through);
                self.orders.insert(*order_id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(quantity: u32) -> CartLine {
        CartLine {
            product_id: "kettle".into(),
            name: "Kettle".into(),
            quantity,
            unit_price_cents: 4_500,
        }
    }

    #[test]
    fn quantities_outside_1_to_100_are_refused() {
        let cart = Cart::default();
        assert_eq!(
            cart.decide(CartCommand::SetItem(line(0)), &()),
            Err(CartError::Quantity(0))
        );
        assert_eq!(
            cart.decide(CartCommand::SetItem(line(101)), &()),
            Err(CartError::Quantity(101))
        );
        assert_eq!(
            cart.decide(CartCommand::SetItem(line(100)), &())
                .unwrap()
                .len(),
            1
        );
    }

    #[test]
    fn checking_out_twice_for_one_order_empties_the_cart_once() {
        let mut cart = Cart::default();
        cart.apply(&CartEvent::ItemSet(line(2)));
        assert_eq!(cart.total_cents(), 9_000);
        let order_id = Uuid::new_v4();
        let check_out = || CartCommand::CheckOut {
            order_id,
            through_version: 1,
        };
        for event in cart.decide(check_out(), &()).unwrap() {
            cart.apply(&event);
        }
        assert!(cart.lines.is_empty());
        cart.apply(&CartEvent::ItemSet(line(1)));
        assert!(cart.decide(check_out(), &()).unwrap().is_empty());
    }

    #[test]
    fn a_line_set_after_the_ordered_version_stays() {
        let mut cart = Cart::default();
        cart.apply(&CartEvent::ItemSet(line(2)));
        let order_id = Uuid::new_v4();
        // Placed from version 1; the customer adds a grinder (version 2)
        // before the checkout event lands.
        cart.apply(&CartEvent::ItemSet(CartLine {
            product_id: "grinder".into(),
            name: "Grinder".into(),
            quantity: 1,
            unit_price_cents: 6_900,
        }));
        for event in cart
            .decide(
                CartCommand::CheckOut {
                    order_id,
                    through_version: 1,
                },
                &(),
            )
            .unwrap()
        {
            cart.apply(&event);
        }
        assert_eq!(cart.lines.keys().collect::<Vec<_>>(), ["grinder"]);
        assert_eq!(cart.total_cents(), 6_900);
    }

    #[test]
    fn a_checkout_without_a_version_empties_the_whole_cart() {
        let mut cart = Cart::default();
        cart.apply(&CartEvent::ItemSet(line(2)));
        cart.apply(&CartEvent::CheckedOut {
            order_id: Uuid::new_v4(),
            through_version: None,
        });
        assert!(cart.lines.is_empty());
    }
}
