//! The cart: one per customer (stream `cart-{customer uuid}`), event
//! sourced. The price is taken from the catalog when a product goes in,
//! and the order takes the cart's lines as they are.

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
    /// The cart became order `order_id`, and is empty again.
    #[serde(rename = "cart.checked_out")]
    CheckedOut {
        /// The order placed from it.
        order_id: Uuid,
    },
}

/// The cart's state.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Cart {
    /// The lines, by product id.
    pub lines: BTreeMap<String, CartLine>,
    /// The orders placed from this cart: checking out is idempotent per order.
    pub orders: BTreeSet<Uuid>,
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
    /// Empty the cart because order `order_id` took its lines.
    CheckOut {
        /// The order.
        order_id: Uuid,
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
            CartCommand::CheckOut { order_id } if self.orders.contains(&order_id) => Ok(vec![]),
            CartCommand::CheckOut { order_id } => Ok(vec![CartEvent::CheckedOut { order_id }]),
        }
    }

    fn apply(&mut self, event: &CartEvent) {
        match event {
            CartEvent::ItemSet(line) => {
                self.lines.insert(line.product_id.clone(), line.clone());
            }
            CartEvent::ItemRemoved { product_id } => {
                self.lines.remove(product_id);
            }
            CartEvent::CheckedOut { order_id } => {
                self.lines.clear();
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
        for event in cart
            .decide(CartCommand::CheckOut { order_id }, &())
            .unwrap()
        {
            cart.apply(&event);
        }
        cart.apply(&CartEvent::ItemSet(line(1)));
        assert!(
            cart.decide(CartCommand::CheckOut { order_id }, &())
                .unwrap()
                .is_empty()
        );
    }
}
