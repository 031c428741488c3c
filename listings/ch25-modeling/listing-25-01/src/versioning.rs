//! Changing an event's shape: version 1 of `Registered` had one `name`;
//! version 2 splits it. Old events stay as they are and are upcast on load.

use composable_rust::Upcasters;
use composable_rust::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::json;

// ANCHOR: event
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
pub enum CustomerEvent {
    /// Version 1 was `{ "name": "Ada Lovelace" }`.
    #[event(version = 2)]
    Registered {
        first_name: String,
        last_name: String,
    },
    /// A field added with a default needs no new version: old payloads
    /// simply lack it.
    NewsletterChosen {
        subscribed: bool,
        #[serde(default)]
        weekly: bool,
    },
}
// ANCHOR_END: event

// ANCHOR: upcasters
/// Turns a version 1 `Registered` into version 2 when it is loaded.
pub fn upcasters() -> Upcasters {
    Upcasters::new().migrate("Registered", 1, |old| {
        let name = old["name"].as_str().ok_or("`name` must be a string")?;
        let (first, last) = name.split_once(' ').unwrap_or((name, ""));
        Ok(json!({ "first_name": first, "last_name": last }))
    })
}
// ANCHOR_END: upcasters

#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct Customer {
    pub first_name: String,
    pub last_name: String,
}

/// This listing's customer takes no commands; it is only loaded.
#[derive(Debug, thiserror::Error)]
#[error("customers take no commands in this listing")]
pub struct NoCommands;

impl Aggregate for Customer {
    const KIND: &'static str = "customer";
    type Event = CustomerEvent;
    type Command = ();
    type Error = NoCommands;
    type Environment = ();

    fn decide(&self, (): (), _: &()) -> Result<Vec<CustomerEvent>, NoCommands> {
        Err(NoCommands)
    }

    fn apply(&mut self, event: &CustomerEvent) {
        if let CustomerEvent::Registered {
            first_name,
            last_name,
        } = event
        {
            self.first_name.clone_from(first_name);
            self.last_name.clone_from(last_name);
        }
    }
}

// ANCHOR: test
#[cfg(test)]
mod tests {
    use composable_rust::{
        AggregateRepository, EventStoreError, ExpectedVersion, InMemoryEventStore, NewEvent,
    };

    use super::*;

    /// A stream written by last year's release.
    async fn old_stream(store: &InMemoryEventStore) -> StreamId {
        let ada = StreamId::for_aggregate("customer", 1).unwrap();
        let v1 = NewEvent::new("Registered", json!({ "name": "Ada Lovelace" }));
        store
            .append(&ada, ExpectedVersion::NoStream, vec![v1])
            .await
            .unwrap();
        ada
    }

    #[tokio::test]
    async fn old_events_load_in_todays_shape() {
        let store = InMemoryEventStore::new();
        let ada = old_stream(&store).await;
        let customers =
            AggregateRepository::<Customer, _>::new(store, ()).with_upcasters(upcasters());
        let loaded = customers.load(&ada).await.unwrap().state;
        assert_eq!(
            (loaded.first_name.as_str(), loaded.last_name.as_str()),
            ("Ada", "Lovelace")
        );
    }

    #[tokio::test]
    async fn without_the_upcaster_loading_fails_loudly() {
        let store = InMemoryEventStore::new();
        let ada = old_stream(&store).await;
        let customers = AggregateRepository::<Customer, _>::new(store, ());
        let error = customers.load(&ada).await.unwrap_err();
        assert!(
            matches!(error, EventStoreError::MissingUpcaster { .. }),
            "{error}"
        );
    }
}
// ANCHOR_END: test
