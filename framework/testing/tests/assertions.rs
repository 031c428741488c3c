//! `assert_event_published` on the events a `TestStore` ran into an
//! in-memory event store, and `assert_effect_type` on a reducer's effects.

use std::sync::Arc;

use composable_rust_core::aggregate::append_events;
use composable_rust_core::{
    EffectKind, Effects, Event, EventStore, ExpectedVersion, InMemoryEventStore, Reducer, StreamId,
};
use composable_rust_testing::{TestStore, assert_effect_type, assert_event_published};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum OrderEvent {
    OrderPlaced { sku: String },
}
impl Event for OrderEvent {}

#[derive(Debug, Clone, PartialEq)]
enum Action {
    Place(String),
    Saved,
    Failed(String),
}

struct Orders;

impl Reducer for Orders {
    type State = u32;
    type Action = Action;
    type Environment = Arc<dyn EventStore>;

    fn reduce(
        &self,
        placed: &mut u32,
        action: Action,
        store: &Arc<dyn EventStore>,
    ) -> Effects<Action> {
        match action {
            Action::Place(sku) => {
                *placed += 1;
                vec![append_events(
                    Arc::clone(store),
                    StreamId::new(format!("order-{placed}")).unwrap(),
                    ExpectedVersion::NoStream,
                    vec![OrderEvent::OrderPlaced { sku }],
                    |result| match result {
                        Ok(_) => Action::Saved,
                        Err(error) => Action::Failed(error.to_string()),
                    },
                )]
            }
            Action::Saved | Action::Failed(_) => Effects::new(),
        }
    }
}

#[test]
fn the_effect_that_appends_is_a_future() {
    let store: Arc<dyn EventStore> = Arc::new(InMemoryEventStore::new());
    let mut placed = 0;
    let effects = Orders.reduce(&mut placed, Action::Place("tea".into()), &store);
    assert_effect_type(&effects, 0, EffectKind::Future);
}

#[tokio::test]
async fn an_event_appended_by_an_effect_is_published() {
    let events = InMemoryEventStore::new();
    let mut store = TestStore::new(0, Orders, Arc::new(events.clone()) as Arc<dyn EventStore>);
    store
        .send(Action::Place("tea".into()), |placed| *placed = 1)
        .await;
    store.receive(Action::Saved, |_| {}).await;
    store.finish().await;

    let placed = assert_event_published(&events, "OrderPlaced").await;
    assert_eq!(placed.stream_id.as_str(), "order-1");
    assert_eq!(placed.payload, serde_json::json!({ "sku": "tea" }));
}

#[tokio::test]
#[should_panic(
    expected = "expected an event of type `OrderShipped` to be published, but only these were: OrderPlaced (stream order-1)"
)]
async fn a_missing_event_is_reported_with_what_was_published() {
    let events = InMemoryEventStore::new();
    let mut store = TestStore::new(0, Orders, Arc::new(events.clone()) as Arc<dyn EventStore>);
    store
        .send(Action::Place("tea".into()), |placed| *placed = 1)
        .await;
    store.receive(Action::Saved, |_| {}).await;
    store.finish().await;
    assert_event_published(&events, "OrderShipped").await;
}

#[tokio::test]
#[should_panic(expected = "none was appended at all")]
async fn an_empty_store_says_nothing_was_published() {
    assert_event_published(&InMemoryEventStore::new(), "OrderPlaced").await;
}
