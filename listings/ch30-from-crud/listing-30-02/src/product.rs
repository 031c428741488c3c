//! A product as an event-sourced aggregate. `Imported` is the one event
//! the old system could not have written: the row as it was on the day of
//! the migration, standing for all the history before it.

use composable_rust::prelude::*;
use serde::{Deserialize, Serialize};

// ANCHOR: events
/// What can happen to a product.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
pub enum ProductEvent {
    /// The row of the legacy table, as the import found it.
    Imported {
        name: String,
        price_cents: i64,
    },
    Created {
        name: String,
        price_cents: i64,
    },
    Renamed {
        name: String,
    },
    Repriced {
        price_cents: i64,
    },
    Deleted,
}
// ANCHOR_END: events

// ANCHOR: state
/// What the rules need to know, which is also what a legacy row holds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Product {
    pub status: Status,
    pub name: String,
    pub price_cents: i64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Status {
    /// No event yet: the id is free.
    #[default]
    New,
    Live,
    Deleted,
}

/// The commands: the CRUD operations of the old code, kept as they were,
/// so the callers can switch over without changing.
#[derive(Debug, Clone)]
pub enum ProductCommand {
    Create {
        name: String,
        price_cents: i64,
    },
    /// Set both fields; only what changes becomes an event.
    Update {
        name: String,
        price_cents: i64,
    },
    Delete,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProductError {
    #[error("the product exists already (ids are never reused)")]
    AlreadyExists,
    #[error("there is no such product")]
    NotFound,
    #[error("a price cannot be negative ({0} cents)")]
    NegativePrice(i64),
}
// ANCHOR_END: state

// ANCHOR: rules
impl Aggregate for Product {
    const KIND: &'static str = "product";
    type Event = ProductEvent;
    type Command = ProductCommand;
    type Error = ProductError;
    type Environment = ();

    fn decide(
        &self,
        command: ProductCommand,
        _env: &(),
    ) -> Result<Vec<ProductEvent>, ProductError> {
        use ProductCommand::*;
        let creating = matches!(command, Create { .. });
        match self.status {
            Status::New if !creating => return Err(ProductError::NotFound),
            Status::Live | Status::Deleted if creating => return Err(ProductError::AlreadyExists),
            Status::Deleted => return Err(ProductError::NotFound),
            _ => {}
        }
        match command {
            // The table's CHECK (price_cents >= 0), now a rule of the aggregate.
            Create { price_cents, .. } | Update { price_cents, .. } if price_cents < 0 => {
                Err(ProductError::NegativePrice(price_cents))
            }
            Create { name, price_cents } => Ok(vec![ProductEvent::Created { name, price_cents }]),
            Update { name, price_cents } => {
                // The old UPDATE overwrote both columns; here each change
                // that really happened is its own fact, and no change is
                // no event at all.
                let mut events = Vec::new();
                if name != self.name {
                    events.push(ProductEvent::Renamed { name });
                }
                if price_cents != self.price_cents {
                    events.push(ProductEvent::Repriced { price_cents });
                }
                Ok(events)
            }
            Delete => Ok(vec![ProductEvent::Deleted]),
        }
    }

    fn apply(&mut self, event: &ProductEvent) {
        match event {
            ProductEvent::Imported { name, price_cents }
            | ProductEvent::Created { name, price_cents } => {
                self.status = Status::Live;
                self.name = name.clone();
                self.price_cents = *price_cents;
            }
            ProductEvent::Renamed { name } => self.name = name.clone(),
            ProductEvent::Repriced { price_cents } => self.price_cents = *price_cents,
            ProductEvent::Deleted => self.status = Status::Deleted,
        }
    }
}
// ANCHOR_END: rules

/// The stream of the product whose legacy id is `id`: `product-<id>`.
/// Deterministic, so importing a row twice finds the stream of the
/// first time.
pub fn product_stream(id: i64) -> Result<StreamId, composable_rust::EventStoreError> {
    StreamId::for_aggregate(Product::KIND, id)
}

/// The legacy id of a product stream (`product-7` -> 7).
pub fn legacy_id(stream: &StreamId) -> Option<i64> {
    stream.as_str().strip_prefix("product-")?.parse().ok()
}
