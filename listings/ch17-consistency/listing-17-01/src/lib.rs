//! Listing 17-1: a shopping cart whose checkout is announced by a thin
//! event or by a fat one, a projection of cart totals, and two versions of
//! a checkout saga's payment step: one that looks the total up in the
//! projection (wrong), one that takes it from the event (right).

use async_trait::async_trait;
use composable_rust::event::decode;
use composable_rust::prelude::*;
use composable_rust::{EventStoreError, Upcasters};
use composable_rust::{InMemoryProjectionStore, ProjectionError};
use serde::{Deserialize, Serialize};

/// Amounts are in cents.
pub type Cents = u64;

/// One item in a cart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Item {
    pub sku: String,
    pub price: Cents,
}

impl Item {
    pub fn new(sku: &str, price: Cents) -> Self {
        Self {
            sku: sku.into(),
            price,
        }
    }
}

/// What happens to a cart (stream `cart-{id}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
pub enum CartEvent {
    #[serde(rename = "cart.item_added")]
    ItemAdded(Item),
    // ANCHOR: thin
    /// Thin: says *that* the cart was checked out, and nothing else. A
    /// consumer that needs the total has to look it up somewhere.
    #[serde(rename = "cart.checked_out")]
    CheckedOut { cart_id: String },
    // ANCHOR_END: thin
    // ANCHOR: fat
    /// Fat: carries everything a consumer needs, as the cart knew it when
    /// it was placed.
    #[serde(rename = "cart.placed")]
    Placed {
        cart_id: String,
        customer: String,
        items: Vec<Item>,
        total: Cents,
    },
    // ANCHOR_END: fat
}

/// What a cart can be asked to do.
#[derive(Debug, Clone)]
pub enum CartCommand {
    Add(Item),
    /// Check out, announced with a thin event.
    CheckOut {
        cart_id: String,
    },
    /// Check out, announced with a fat event.
    Place {
        cart_id: String,
        customer: String,
    },
}

/// Why a cart command is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CartError {
    #[error("the cart is empty")]
    Empty,
    #[error("the cart was already checked out")]
    CheckedOut,
}

/// What a cart knows.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Cart {
    pub items: Vec<Item>,
    pub checked_out: bool,
}

// ANCHOR: decide
impl Aggregate for Cart {
    const KIND: &'static str = "cart";
    type Event = CartEvent;
    type Command = CartCommand;
    type Error = CartError;
    type Environment = ();

    fn decide(&self, command: CartCommand, _env: &()) -> Result<Vec<CartEvent>, CartError> {
        if self.checked_out {
            return Err(CartError::CheckedOut);
        }
        match command {
            CartCommand::Add(item) => Ok(vec![CartEvent::ItemAdded(item)]),
            _ if self.items.is_empty() => Err(CartError::Empty),
            CartCommand::CheckOut { cart_id } => Ok(vec![CartEvent::CheckedOut { cart_id }]),
            // The cart knows its items and total right now, in its own
            // consistency boundary: it puts them in the event.
            CartCommand::Place { cart_id, customer } => Ok(vec![CartEvent::Placed {
                cart_id,
                customer,
                items: self.items.clone(),
                total: self.items.iter().map(|item| item.price).sum(),
            }]),
        }
    }

    fn apply(&mut self, event: &CartEvent) {
        match event {
            CartEvent::ItemAdded(item) => self.items.push(item.clone()),
            CartEvent::CheckedOut { .. } | CartEvent::Placed { .. } => self.checked_out = true,
        }
    }
}
// ANCHOR_END: decide

/// A cart's total as the read model sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CartTotal {
    pub items: u32,
    pub total: Cents,
}

/// The read model's key for cart `cart_id`.
pub fn total_key(cart_id: &str) -> String {
    format!("cart-total:{cart_id}")
}

/// A projection of each cart's running total, for the UI.
#[derive(Debug)]
pub struct CartTotals;

#[async_trait]
impl Projection for CartTotals {
    type Store = InMemoryProjectionStore;

    fn name(&self) -> &str {
        "cart-totals"
    }

    fn handles(&self, event: &StoredEvent) -> bool {
        event.stream_id.as_str().starts_with("cart-")
    }

    async fn apply(
        &self,
        event: &StoredEvent,
        tx: &mut <InMemoryProjectionStore as ProjectionStore>::Tx,
    ) -> Result<(), ProjectionError> {
        if let Some(CartEvent::ItemAdded(item)) = decode(event, &Upcasters::new())? {
            let cart_id = event.stream_id.as_str().trim_start_matches("cart-");
            let key = total_key(cart_id);
            let mut total: CartTotal = tx.get_json(&key).await?.unwrap_or_default();
            total.items += 1;
            total.total += item.price;
            tx.save_json(&key, &total).await?;
        }
        Ok(())
    }

    async fn reset(
        &self,
        tx: &mut <InMemoryProjectionStore as ProjectionStore>::Tx,
    ) -> Result<(), ProjectionError> {
        tx.delete_prefix("cart-total:").await.map(|_| ())
    }
}

/// What the payment step of a checkout saga asks the payment provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Charge {
    pub cart_id: String,
    pub amount: Cents,
}

// ANCHOR: bad_saga
/// ❌ The payment step of a checkout saga fed thin events: the event says
/// which cart, and the step looks the total up in the read model.
pub async fn charge_from_read_model(
    totals: &InMemoryProjectionStore,
    event: &StoredEvent,
) -> Result<Option<Charge>, ProjectionError> {
    let Some(CartEvent::CheckedOut { cart_id }) = decode(event, &Upcasters::new())? else {
        return Ok(None);
    };
    // The read model may not have applied the cart's last items yet.
    let seen: CartTotal = totals
        .get_json(&total_key(&cart_id))
        .await?
        .unwrap_or_default();
    Ok(Some(Charge {
        cart_id,
        amount: seen.total,
    }))
}
// ANCHOR_END: bad_saga

// ANCHOR: good_saga
/// ✅ The same step fed a fat event: everything it needs is in the event.
/// No read model, no I/O, nothing to race with.
pub fn charge_from_event(event: &StoredEvent) -> Result<Option<Charge>, EventStoreError> {
    let Some(CartEvent::Placed { cart_id, total, .. }) = decode(event, &Upcasters::new())? else {
        return Ok(None);
    };
    Ok(Some(Charge {
        cart_id,
        amount: total,
    }))
}
// ANCHOR_END: good_saga

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use composable_rust::{AggregateRepository, InMemoryEventStore, ProjectionManager};

    // ANCHOR: setup
    /// An event store with cart 7 holding a book (15.00), a projection of
    /// cart totals that has caught up with that, and then a lamp (30.00)
    /// added: the projection has not applied it yet.
    async fn cart_with_a_lagging_projection() -> (
        AggregateRepository<Cart, InMemoryEventStore>,
        ProjectionManager<CartTotals>,
        StreamId,
    ) {
        let events = InMemoryEventStore::new();
        let carts = AggregateRepository::<Cart, _>::new(events.clone(), ());
        let totals = Arc::new(InMemoryProjectionStore::new());
        let projection = ProjectionManager::new(CartTotals, totals, events.clone());
        let cart = carts.stream_id(7).unwrap();

        carts
            .execute(&cart, CartCommand::Add(Item::new("book", 1500)))
            .await
            .unwrap();
        projection.catch_up().await.unwrap();
        carts
            .execute(&cart, CartCommand::Add(Item::new("lamp", 3000)))
            .await
            .unwrap();
        (carts, projection, cart)
    }

    /// The event the saga is reacting to: the cart's last.
    async fn last_event(carts: &AggregateRepository<Cart, InMemoryEventStore>) -> StoredEvent {
        let cart = carts.stream_id(7).unwrap();
        carts
            .store()
            .load_stream(&cart, 0)
            .await
            .unwrap()
            .pop()
            .unwrap()
    }
    // ANCHOR_END: setup

    // ANCHOR: race
    #[tokio::test]
    async fn a_saga_that_queries_a_projection_charges_what_the_projection_has_seen() {
        let (carts, projection, cart) = cart_with_a_lagging_projection().await;
        carts
            .execute(
                &cart,
                CartCommand::CheckOut {
                    cart_id: "7".into(),
                },
            )
            .await
            .unwrap();

        // The checkout reaches the saga before the projection's next batch.
        let checked_out = last_event(&carts).await;
        let charge = charge_from_read_model(projection.store(), &checked_out)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(charge.amount, 1500, "the lamp was not charged");

        // A moment later the projection is right, and the card is charged
        // 15.00 for a 45.00 order.
        projection.catch_up().await.unwrap();
        let total: CartTotal = projection
            .store()
            .get_json(&total_key("7"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(total.total, 4500);
    }
    // ANCHOR_END: race

    // ANCHOR: fat_test
    #[tokio::test]
    async fn a_saga_fed_a_fat_event_charges_the_total_whatever_the_projection_says() {
        let (carts, projection, cart) = cart_with_a_lagging_projection().await;
        carts
            .execute(
                &cart,
                CartCommand::Place {
                    cart_id: "7".into(),
                    customer: "ada".into(),
                },
            )
            .await
            .unwrap();

        let placed = last_event(&carts).await;
        let charge = charge_from_event(&placed).unwrap().unwrap();
        assert_eq!(charge.amount, 4500);
        // The projection is still behind, and it does not matter.
        assert!(projection.position() < placed.position);
    }
    // ANCHOR_END: fat_test
}
