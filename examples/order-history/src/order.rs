//! The write side: an `Order` aggregate. A customer places an order; it is
//! then shipped or cancelled, never both.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use composable_rust::prelude::*;
use serde::{Deserialize, Serialize};

/// One line of an order. Prices are in cents.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Line {
    pub sku: String,
    pub quantity: u32,
    pub unit_price: u64,
}

impl Line {
    pub fn new(sku: &str, quantity: u32, unit_price: u64) -> Self {
        let sku = sku.to_owned();
        Self {
            sku,
            quantity,
            unit_price,
        }
    }
}

/// What can happen to an order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
pub enum OrderEvent {
    Placed {
        customer: String,
        lines: Vec<Line>,
        placed_at: DateTime<Utc>,
    },
    Shipped {
        shipped_at: DateTime<Utc>,
    },
    Cancelled {
        reason: String,
    },
}

/// What an order can be asked to do.
#[derive(Debug, Clone)]
pub enum OrderCommand {
    Place { customer: String, lines: Vec<Line> },
    Ship,
    Cancel { reason: String },
}

/// Where an order is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Status {
    Placed,
    Shipped,
    Cancelled,
}

/// Why a command is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OrderError {
    #[error("an order needs at least one line")]
    NoLines,
    #[error("the order was already placed")]
    AlreadyPlaced,
    #[error("the order was never placed")]
    NotPlaced,
    #[error("the order is {0:?} already")]
    Closed(Status),
}

/// What the order's rules need to know: only its status (`None`: new).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Order {
    pub status: Option<Status>,
}

impl Aggregate for Order {
    const KIND: &'static str = "order";
    type Event = OrderEvent;
    type Command = OrderCommand;
    type Error = OrderError;
    /// Time comes from the environment, so tests and the story control it.
    type Environment = Arc<dyn Clock>;

    fn decide(
        &self,
        command: OrderCommand,
        clock: &Arc<dyn Clock>,
    ) -> Result<Vec<OrderEvent>, OrderError> {
        use OrderCommand::*;
        match (self.status, command) {
            (None, Place { lines, .. }) if lines.is_empty() => Err(OrderError::NoLines),
            (None, Place { customer, lines }) => Ok(vec![OrderEvent::Placed {
                customer,
                lines,
                placed_at: clock.now(),
            }]),
            (Some(_), Place { .. }) => Err(OrderError::AlreadyPlaced),
            (None, _) => Err(OrderError::NotPlaced),
            (Some(Status::Placed), Ship) => Ok(vec![OrderEvent::Shipped {
                shipped_at: clock.now(),
            }]),
            (Some(Status::Placed), Cancel { reason }) => Ok(vec![OrderEvent::Cancelled { reason }]),
            (Some(closed), _) => Err(OrderError::Closed(closed)),
        }
    }

    fn apply(&mut self, event: &OrderEvent) {
        self.status = Some(match event {
            OrderEvent::Placed { .. } => Status::Placed,
            OrderEvent::Shipped { .. } => Status::Shipped,
            OrderEvent::Cancelled { .. } => Status::Cancelled,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use composable_rust::TestClock;

    fn test() -> AggregateTest<Order> {
        AggregateTest::new(Arc::new(TestClock::new()) as Arc<dyn Clock>)
    }

    fn placed() -> OrderEvent {
        let lines = vec![Line::new("book", 1, 2500)];
        OrderEvent::Placed {
            customer: "ada".into(),
            lines,
            placed_at: TestClock::new().now(),
        }
    }

    #[test]
    fn a_placed_order_ships_once() {
        let shipped_at = TestClock::new().now();
        test()
            .given([placed()])
            .when(OrderCommand::Ship)
            .then_events([OrderEvent::Shipped { shipped_at }]);
        test()
            .given([placed(), OrderEvent::Shipped { shipped_at }])
            .when(OrderCommand::Ship)
            .then_rejected(OrderError::Closed(Status::Shipped));
    }

    #[test]
    fn a_cancelled_order_never_ships_and_an_empty_one_is_never_placed() {
        test()
            .given([
                placed(),
                OrderEvent::Cancelled {
                    reason: "no".into(),
                },
            ])
            .when(OrderCommand::Ship)
            .then_rejected(OrderError::Closed(Status::Cancelled));
        test()
            .when(OrderCommand::Place {
                customer: "ada".into(),
                lines: vec![],
            })
            .then_rejected(OrderError::NoLines);
    }
}
