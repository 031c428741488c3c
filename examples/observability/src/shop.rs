//! The shop the workload runs: orders placed through a [`Store`]
//! whose effect appends to the event store, a fulfilment saga that ships
//! each order or gives up after a minute, and a projection of totals.

use std::marker::PhantomData;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use composable_rust::event::decode;
use composable_rust::prelude::*;
use composable_rust::saga::{
    DispatchError, Reaction, Routed, Saga, SagaCommand, SagaContext, SagaError, SagaId,
};
use composable_rust::{ExpectedVersion, NewEvent, ProjectionError, Upcasters};
use serde::{Deserialize, Serialize};

/// What happens to an order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
pub enum OrderEvent {
    Placed { total_cents: u64 },
    Shipped,
}

/// The stream of order `order`.
pub fn order_stream(order: u64) -> StreamId {
    StreamId::for_aggregate("order", order).expect("a valid stream id")
}

// ---- the Store: placing orders -----------------------------------------------

/// Places orders: the reducer asks for an append, the effect does it and
/// reports back.
#[derive(Debug)]
pub struct Orders;

/// The Store's actions.
#[derive(Debug, Clone, PartialEq)]
pub enum OrderAction {
    /// A command: place order `order` (refused if it exists).
    Place { order: u64, total_cents: u64 },
    /// The effect appended it.
    Placed { order: u64 },
    /// The effect's append was refused (e.g. the order exists).
    Refused { order: u64 },
}

/// How many orders the Store saw placed and refused.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OrderCounts {
    pub placed: u64,
    pub refused: u64,
}

impl Reducer for Orders {
    type State = OrderCounts;
    type Action = OrderAction;
    type Environment = Arc<dyn EventStore>;

    fn reduce(
        &self,
        counts: &mut OrderCounts,
        action: OrderAction,
        events: &Arc<dyn EventStore>,
    ) -> Effects<OrderAction> {
        match action {
            OrderAction::Place { order, total_cents } => {
                let events = Arc::clone(events);
                vec![Effect::future(async move {
                    let placed = NewEvent::from_event(&OrderEvent::Placed { total_cents }).ok()?;
                    let appended = events
                        .append(
                            &order_stream(order),
                            ExpectedVersion::NoStream,
                            vec![placed],
                        )
                        .await;
                    Some(match appended {
                        Ok(_) => OrderAction::Placed { order },
                        Err(_) => OrderAction::Refused { order },
                    })
                })]
            }
            OrderAction::Placed { .. } => {
                counts.placed += 1;
                Effects::new()
            }
            OrderAction::Refused { .. } => {
                counts.refused += 1;
                Effects::new()
            }
        }
    }
}

// ---- the saga: fulfilment ------------------------------------------------------

/// How long fulfilment waits for an order to ship.
pub const SHIPPING_DEADLINE: Duration = Duration::from_secs(60);

/// What the fulfilment saga records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
pub enum FulfilmentStep {
    Started,
    Shipped,
    GaveUp,
}

/// Reserves stock when an order is placed; completes when it ships;
/// releases the stock (compensates) when it has not shipped in time.
#[derive(Debug)]
pub struct Fulfilment;

impl Saga for Fulfilment {
    const KIND: &'static str = "fulfilment";
    type State = ();
    type Input = OrderEvent;
    type Event = FulfilmentStep;
    type Command = String;

    fn route(&self, event: &StoredEvent) -> Result<Option<Routed<OrderEvent>>, SagaError> {
        if !event.stream_id.as_str().starts_with("order-") {
            return Ok(None);
        }
        // An order event this version cannot read is not the saga's to judge
        // (the projection dead-letters it).
        let Ok(Some(order_event)) = decode::<OrderEvent>(event, &Upcasters::new()) else {
            return Ok(None);
        };
        let saga_id = SagaId::new(event.stream_id.as_str())?;
        Ok(Some(Routed::new(saga_id, order_event)))
    }

    fn react(&self, (): &(), input: OrderEvent, _: &SagaContext) -> Reaction<Self> {
        match input {
            OrderEvent::Placed { .. } => Reaction::new()
                .record(FulfilmentStep::Started)
                .send("reserve stock".to_owned())
                .start_timeout("shipping", SHIPPING_DEADLINE),
            OrderEvent::Shipped => Reaction::new()
                .record(FulfilmentStep::Shipped)
                .cancel_timeout("shipping")
                .complete(),
        }
    }

    fn on_timeout(&self, (): &(), _: &str, _: &SagaContext) -> Reaction<Self> {
        Reaction::new()
            .record(FulfilmentStep::GaveUp)
            .send("release stock".to_owned())
            .compensated()
    }

    fn apply((): &mut (), _: &FulfilmentStep) {}
}

/// The warehouse: takes the saga's commands and remembers them.
#[derive(Debug, Default)]
pub struct Warehouse {
    received: Mutex<Vec<String>>,
}

impl Warehouse {
    /// The commands received, in order.
    pub fn received(&self) -> Vec<String> {
        self.received
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

#[async_trait]
impl CommandDispatcher<String> for Warehouse {
    async fn dispatch(&self, command: &SagaCommand<String>) -> Result<(), DispatchError> {
        self.received
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(command.command.clone());
        Ok(())
    }
}

// ---- the projection: totals ----------------------------------------------------

/// The totals the dashboard of the shop shows.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    pub placed: u64,
    pub shipped: u64,
    pub revenue_cents: u64,
}

/// The key of the [`Totals`].
pub const TOTALS_KEY: &str = "shop-totals:all";

/// Keeps the [`Totals`] up to date.
#[derive(Debug)]
pub struct ShopTotals<S> {
    upcasters: Upcasters,
    _store: PhantomData<fn() -> S>,
}

impl<S> Default for ShopTotals<S> {
    fn default() -> Self {
        Self {
            upcasters: Upcasters::new(),
            _store: PhantomData,
        }
    }
}

#[async_trait]
impl<S: ProjectionCheckpoint> Projection for ShopTotals<S> {
    type Store = S;

    fn name(&self) -> &str {
        "shop-totals"
    }

    async fn apply(&self, event: &StoredEvent, tx: &mut S::Tx) -> Result<(), ProjectionError> {
        if !event.stream_id.as_str().starts_with("order-") {
            return Ok(());
        }
        // A payload that does not decode is retried, then dead-lettered.
        let Some(order_event) = decode::<OrderEvent>(event, &self.upcasters)? else {
            return Ok(());
        };
        let mut totals: Totals = tx.get_json(TOTALS_KEY).await?.unwrap_or_default();
        match order_event {
            OrderEvent::Placed { total_cents } => {
                totals.placed += 1;
                totals.revenue_cents += total_cents;
            }
            OrderEvent::Shipped => totals.shipped += 1,
        }
        tx.save_json(TOTALS_KEY, &totals).await
    }

    async fn reset(&self, tx: &mut S::Tx) -> Result<(), ProjectionError> {
        tx.delete_prefix("shop-totals:").await.map(|_| ())
    }
}
