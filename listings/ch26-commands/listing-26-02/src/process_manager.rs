//! A process manager: when an order is placed (one aggregate), reserve the
//! stock (another aggregate). A saga that reacts to the event and sends a
//! command; the receiver carries each command out once.

use std::collections::BTreeSet;

use composable_rust::event::decode;
use composable_rust::prelude::*;
use composable_rust::saga::{
    DispatchError, Reaction, Routed, SagaCommand, SagaContext, SagaError, SagaId,
};
use composable_rust::{AggregateRepository, InMemoryEventStore, Upcasters};
use serde::{Deserialize, Serialize};

/// The order's event (the order aggregate itself is not shown).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
pub enum OrderEvent {
    Placed { sku: String, quantity: u32 },
}

// ANCHOR: stock
/// The stock remembers which commands it carried out: a command delivered
/// twice (at least once, after a crash) reserves once.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stock {
    pub reserved: u32,
    pub handled: BTreeSet<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
pub enum StockEvent {
    Reserved { quantity: u32, command_id: String },
}

#[derive(Debug, thiserror::Error)]
#[error("never refused in this listing")]
pub struct Never;

impl Aggregate for Stock {
    const KIND: &'static str = "stock";
    type Event = StockEvent;
    type Command = (u32, String);
    type Error = Never;
    type Environment = ();

    fn decide(
        &self,
        (quantity, command_id): (u32, String),
        _: &(),
    ) -> Result<Vec<StockEvent>, Never> {
        if self.handled.contains(&command_id) {
            return Ok(vec![]);
        }
        Ok(vec![StockEvent::Reserved {
            quantity,
            command_id,
        }])
    }

    fn apply(
        &mut self,
        StockEvent::Reserved {
            quantity,
            command_id,
        }: &StockEvent,
    ) {
        self.reserved += quantity;
        self.handled.insert(command_id.clone());
    }
}
// ANCHOR_END: stock

// ANCHOR: saga
/// Reacts to `order-*` streams' `Placed` events.
#[derive(Debug)]
pub struct Fulfillment;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
pub enum FulfillmentEvent {
    ReservationRequested,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReserveStock {
    pub sku: String,
    pub quantity: u32,
}

impl Saga for Fulfillment {
    const KIND: &'static str = "fulfillment";
    type State = bool; // whether the reservation was requested
    type Input = OrderEvent;
    type Event = FulfillmentEvent;
    type Command = ReserveStock;

    fn route(&self, event: &StoredEvent) -> Result<Option<Routed<OrderEvent>>, SagaError> {
        let Some(order) = event.stream_id.as_str().strip_prefix("order-") else {
            return Ok(None);
        };
        let input = decode::<OrderEvent>(event, &Upcasters::new())?;
        Ok(input.map(|input| Routed {
            saga_id: SagaId::new(order).expect("a valid id"),
            input,
        }))
    }

    fn react(&self, requested: &bool, input: OrderEvent, _: &SagaContext) -> Reaction<Self> {
        let OrderEvent::Placed { sku, quantity } = input;
        if *requested {
            return Reaction::new();
        }
        Reaction::new()
            .record(FulfillmentEvent::ReservationRequested)
            .send(ReserveStock { sku, quantity })
            .complete()
    }

    fn apply(requested: &mut bool, FulfillmentEvent::ReservationRequested: &FulfillmentEvent) {
        *requested = true;
    }
}
// ANCHOR_END: saga

// ANCHOR: dispatcher
/// Delivers `ReserveStock` to the stock aggregate, with the command's
/// stable id as its idempotency key.
#[derive(Debug, Clone)]
pub struct StockDesk(pub std::sync::Arc<AggregateRepository<Stock, InMemoryEventStore>>);

#[async_trait]
impl CommandDispatcher<ReserveStock> for StockDesk {
    async fn dispatch(&self, command: &SagaCommand<ReserveStock>) -> Result<(), DispatchError> {
        // Retrying helps only a transient failure (a lost connection).
        let refused = |error: &dyn CodedError| {
            if error.is_transient() {
                DispatchError::new(error.to_string())
            } else {
                DispatchError::permanent(error.to_string())
            }
        };
        let stream = self
            .0
            .stream_id(&command.command.sku)
            .map_err(|e| refused(&e))?;
        let reserve = || (command.command.quantity, command.id.to_string());
        match self.0.execute_with_retry(&stream, 3, reserve).await {
            Ok(_) => Ok(()),
            Err(error) => Err(refused(&error)),
        }
    }
}
// ANCHOR_END: dispatcher

// ANCHOR: test
#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use composable_rust::saga::{CommandId, Handled};
    use composable_rust::{ExpectedVersion, NewEvent, Position, SagaRuntime};

    use super::*;

    #[tokio::test]
    async fn a_placed_order_reserves_stock_once() {
        let events = InMemoryEventStore::new();
        let stock = Arc::new(AggregateRepository::<Stock, _>::new(events.clone(), ()));
        let desk = StockDesk(Arc::clone(&stock));
        let runtime = SagaRuntime::new(Fulfillment, events.clone(), desk.clone());

        let order = StreamId::new("order-1001").unwrap();
        let placed = OrderEvent::Placed {
            sku: "mug".into(),
            quantity: 2,
        };
        let placed = vec![NewEvent::from_event(&placed).unwrap()];
        events
            .append(&order, ExpectedVersion::NoStream, placed)
            .await
            .unwrap();

        runtime.catch_up(&events, Position::START).await.unwrap();
        let mug = stock.stream_id("mug").unwrap();
        assert_eq!(stock.load(&mug).await.unwrap().state.reserved, 2);

        // The order event is delivered again: the saga is over, and ignores it.
        let again = &events.load_stream(&order, 0).await.unwrap()[0];
        assert!(matches!(
            runtime.handle(again).await.unwrap(),
            Handled::Ended(_)
        ));
        // The command is delivered again: the stock has carried it out.
        let command = SagaCommand {
            id: CommandId::new("saga-fulfillment-1001#1"),
            saga_id: SagaId::new("1001").unwrap(),
            command: ReserveStock {
                sku: "mug".into(),
                quantity: 2,
            },
        };
        let handled = stock.load(&mug).await.unwrap().state.handled;
        assert!(handled.contains(command.id.as_str()), "{handled:?}");
        desk.dispatch(&command).await.unwrap();
        assert_eq!(stock.load(&mug).await.unwrap().state.reserved, 2);
        runtime.shutdown().await;
    }
}
// ANCHOR_END: test
