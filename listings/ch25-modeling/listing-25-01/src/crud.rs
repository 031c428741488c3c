//! CRUD over events: a product catalog entry whose create, update and
//! delete become events that say what changed.

use composable_rust::prelude::*;
use serde::{Deserialize, Serialize};

// ANCHOR: events
/// One event per kind of change, not one `Updated` with the whole row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
pub enum ProductEvent {
    Created { name: String, price_cents: u64 },
    Renamed { name: String },
    Repriced { price_cents: u64 },
    Deleted,
}

/// The API's verbs stay CRUD: `Update` carries the fields the client sent.
#[derive(Debug)]
pub enum ProductCommand {
    Create {
        name: String,
        price_cents: u64,
    },
    Update {
        name: Option<String>,
        price_cents: Option<u64>,
    },
    Delete,
}
// ANCHOR_END: events

/// Why a product command is refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ProductError {
    #[error("the product already exists")]
    AlreadyExists,
    #[error("no such product (it was never created, or it was deleted)")]
    NotFound,
}

/// The current row, rebuilt from the events.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct Product {
    pub exists: bool,
    pub name: String,
    pub price_cents: u64,
}

// ANCHOR: decide
impl Aggregate for Product {
    const KIND: &'static str = "product";
    type Event = ProductEvent;
    type Command = ProductCommand;
    type Error = ProductError;
    type Environment = ();

    fn decide(&self, command: ProductCommand, _: &()) -> Result<Vec<ProductEvent>, ProductError> {
        match command {
            ProductCommand::Create { .. } if self.exists => Err(ProductError::AlreadyExists),
            ProductCommand::Create { name, price_cents } => {
                Ok(vec![ProductEvent::Created { name, price_cents }])
            }
            _ if !self.exists => Err(ProductError::NotFound),
            ProductCommand::Update { name, price_cents } => {
                // Only what really changed becomes an event; an update that
                // changes nothing records nothing.
                let mut events = Vec::new();
                if let Some(name) = name.filter(|name| *name != self.name) {
                    events.push(ProductEvent::Renamed { name });
                }
                if let Some(price_cents) = price_cents.filter(|p| *p != self.price_cents) {
                    events.push(ProductEvent::Repriced { price_cents });
                }
                Ok(events)
            }
            ProductCommand::Delete => Ok(vec![ProductEvent::Deleted]),
        }
    }

    fn apply(&mut self, event: &ProductEvent) {
        match event {
            ProductEvent::Created { name, price_cents } => {
                *self = Product {
                    exists: true,
                    name: name.clone(),
                    price_cents: *price_cents,
                };
            }
            ProductEvent::Renamed { name } => self.name.clone_from(name),
            ProductEvent::Repriced { price_cents } => self.price_cents = *price_cents,
            ProductEvent::Deleted => self.exists = false,
        }
    }
}
// ANCHOR_END: decide

// ANCHOR: test
#[cfg(test)]
mod tests {
    use composable_rust::testing::AggregateTest;
    use composable_rust::{AggregateRepository, InMemoryEventStore};

    use super::*;

    fn created() -> ProductEvent {
        ProductEvent::Created {
            name: "Mug".into(),
            price_cents: 900,
        }
    }

    #[test]
    fn an_update_records_only_what_changed() {
        let update = ProductCommand::Update {
            name: Some("Mug".into()),
            price_cents: Some(1200),
        };
        AggregateTest::<Product>::new(())
            .given([created()])
            .when(update)
            .then_events([ProductEvent::Repriced { price_cents: 1200 }]);
    }

    #[test]
    fn a_deleted_product_is_not_found() {
        let update = ProductCommand::Update {
            name: Some("Cup".into()),
            price_cents: None,
        };
        AggregateTest::<Product>::new(())
            .given([created(), ProductEvent::Deleted])
            .when(update)
            .then_rejected(ProductError::NotFound);
    }

    #[tokio::test]
    async fn the_history_is_the_audit_log() {
        let products = AggregateRepository::<Product, _>::new(InMemoryEventStore::new(), ());
        let mug = products.stream_id("mug").unwrap();
        let create = ProductCommand::Create {
            name: "Mug".into(),
            price_cents: 900,
        };
        products.execute(&mug, create).await.unwrap();
        let unchanged = ProductCommand::Update {
            name: Some("Mug".into()),
            price_cents: None,
        };
        let executed = products.execute(&mug, unchanged).await.unwrap();
        assert!(
            executed.events.is_empty(),
            "nothing changed, nothing stored"
        );
        products
            .execute(&mug, ProductCommand::Delete)
            .await
            .unwrap();

        let history = products.store().load_stream(&mug, 0).await.unwrap();
        let types: Vec<_> = history.iter().map(|e| e.event_type.as_str()).collect();
        assert_eq!(types, ["Created", "Deleted"]);
    }
}
// ANCHOR_END: test
