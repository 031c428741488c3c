//! Listing 20-1: a command with a test-data builder (bon), a reducer that
//! publishes an event through an effect, and the assertions that test it.

use std::sync::Arc;

use composable_rust::aggregate::append_events;
use composable_rust::prelude::*;
use composable_rust::{EventStore, ExpectedVersion};
use serde::{Deserialize, Serialize};

// ANCHOR: builder
/// A command with many fields, most of which a test does not care about.
#[derive(Debug, Clone, PartialEq, composable_rust::bon::Builder)]
#[builder(crate = ::composable_rust::bon)]
pub struct PlaceOrder {
    #[builder(into)]
    pub customer: String,
    #[builder(into, default = String::from("tea"))]
    pub sku: String,
    #[builder(default = 1)]
    pub quantity: u32,
    #[builder(default)]
    pub gift_wrap: bool,
}
// ANCHOR_END: builder

/// What happened to orders.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum OrderEvent {
    OrderPlaced {
        customer: String,
        sku: String,
        quantity: u32,
    },
}

impl composable_rust::Event for OrderEvent {}

#[derive(Debug, Clone, PartialEq)]
pub enum OrderAction {
    Place(PlaceOrder),
    Saved,
    SaveFailed(String),
}

/// How many orders were placed, and how many were saved.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Orders {
    pub placed: u32,
    pub saved: u32,
}

/// Places orders: each becomes an `OrderPlaced` event in its own stream.
#[derive(Debug)]
pub struct OrderReducer;

impl Reducer for OrderReducer {
    type State = Orders;
    type Action = OrderAction;
    type Environment = Arc<dyn EventStore>;

    fn reduce(
        &self,
        orders: &mut Orders,
        action: OrderAction,
        events: &Arc<dyn EventStore>,
    ) -> Effects<OrderAction> {
        match action {
            OrderAction::Place(order) => {
                orders.placed += 1;
                let stream = StreamId::for_aggregate("order", orders.placed)
                    .expect("order-N is a valid stream id");
                vec![append_events(
                    Arc::clone(events),
                    stream,
                    ExpectedVersion::NoStream,
                    vec![OrderEvent::OrderPlaced {
                        customer: order.customer,
                        sku: order.sku,
                        quantity: order.quantity,
                    }],
                    |result| match result {
                        Ok(_) => OrderAction::Saved,
                        Err(error) => OrderAction::SaveFailed(error.to_string()),
                    },
                )]
            }
            OrderAction::Saved => {
                orders.saved += 1;
                Effects::new()
            }
            OrderAction::SaveFailed(_) => Effects::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use composable_rust::testing::{assert_effect_type, assert_event_published};
    use composable_rust::{EffectKind, InMemoryEventStore};

    use super::*;

    // ANCHOR: builder_test
    #[test]
    fn a_builder_spells_out_only_what_the_test_is_about() {
        let order = PlaceOrder::builder().customer("Ada").quantity(3).build();
        assert_eq!(order.sku, "tea");
        assert!(!order.gift_wrap);
        assert_eq!(order.quantity, 3);
    }
    // ANCHOR_END: builder_test

    // ANCHOR: effect_type
    #[test]
    fn placing_an_order_returns_one_future() {
        let events: Arc<dyn EventStore> = Arc::new(InMemoryEventStore::new());
        ReducerTest::new(OrderReducer, events)
            .given_state(Orders::default())
            .when_action(OrderAction::Place(
                PlaceOrder::builder().customer("Ada").build(),
            ))
            .then_state(|orders| assert_eq!(orders.placed, 1))
            .then_effects(|effects| assert_effect_type(effects, 0, EffectKind::Future))
            .run();
    }
    // ANCHOR_END: effect_type

    // ANCHOR: published
    #[tokio::test]
    async fn placing_an_order_publishes_order_placed() {
        let events = InMemoryEventStore::new();
        let env: Arc<dyn EventStore> = Arc::new(events.clone());
        let mut store = TestStore::new(Orders::default(), OrderReducer, env);

        let order = PlaceOrder::builder().customer("Ada").sku("coffee").build();
        store
            .send(OrderAction::Place(order), |orders| orders.placed = 1)
            .await;
        store
            .receive(OrderAction::Saved, |orders| orders.saved = 1)
            .await;
        store.finish().await;

        let placed = assert_event_published(&events, "OrderPlaced").await;
        assert_eq!(placed.stream_id.as_str(), "order-1");
        assert_eq!(placed.payload["sku"], "coffee");
    }
    // ANCHOR_END: published
}
