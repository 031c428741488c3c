//! An order as an event-sourced aggregate: the events that can happen to
//! it, the state they build, the commands it accepts, and its rules.
//!
//! The state is never stored: the repository rebuilds it from the order's
//! events (its stream, `order-<id>`) before each command.

use composable_rust::prelude::*;
use serde::{Deserialize, Serialize};

/// What can happen to an order. Past tense: these are facts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
pub enum OrderEvent {
    Placed { customer: String, total: u64 },
    Paid { amount: u64 },
    Shipped,
    Cancelled { reason: String },
}

/// Where an order stands.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum OrderStatus {
    /// Nothing happened yet: the stream is empty.
    #[default]
    New,
    Placed,
    Paid,
    Shipped,
    Cancelled,
}

/// What the order knows: only what its rules need.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Order {
    pub status: OrderStatus,
    pub customer: String,
    pub total: u64,
}

/// What the order can be asked to do. Imperative: these may be refused.
#[derive(Debug, Clone)]
pub enum OrderCommand {
    Place { customer: String, total: u64 },
    Pay { amount: u64 },
    Ship,
    Cancel { reason: String },
}

/// Why a command is refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum OrderError {
    #[error("the order has already been placed")]
    AlreadyPlaced,
    #[error("an order's total must be positive")]
    ZeroTotal,
    #[error("the order is {status:?}, so it cannot be {action}")]
    WrongStatus {
        status: OrderStatus,
        action: &'static str,
    },
    #[error("the order's total is {total}, {paid} was paid")]
    WrongAmount { total: u64, paid: u64 },
}

impl Aggregate for Order {
    const KIND: &'static str = "order";
    type Event = OrderEvent;
    type Command = OrderCommand;
    type Error = OrderError;
    type Environment = ();

    fn decide(&self, command: OrderCommand, _env: &()) -> Result<Vec<OrderEvent>, OrderError> {
        use OrderStatus::*;
        let refuse = |action| OrderError::WrongStatus {
            status: self.status,
            action,
        };
        match command {
            OrderCommand::Place { .. } if self.status != New => Err(OrderError::AlreadyPlaced),
            OrderCommand::Place { total: 0, .. } => Err(OrderError::ZeroTotal),
            OrderCommand::Place { customer, total } => {
                Ok(vec![OrderEvent::Placed { customer, total }])
            }
            OrderCommand::Pay { .. } if self.status != Placed => Err(refuse("paid")),
            OrderCommand::Pay { amount } if amount != self.total => Err(OrderError::WrongAmount {
                total: self.total,
                paid: amount,
            }),
            OrderCommand::Pay { amount } => Ok(vec![OrderEvent::Paid { amount }]),
            OrderCommand::Ship if self.status != Paid => Err(refuse("shipped")),
            OrderCommand::Ship => Ok(vec![OrderEvent::Shipped]),
            OrderCommand::Cancel { .. } if self.status != Placed => Err(refuse("cancelled")),
            OrderCommand::Cancel { reason } => Ok(vec![OrderEvent::Cancelled { reason }]),
        }
    }

    fn apply(&mut self, event: &OrderEvent) {
        match event {
            OrderEvent::Placed { customer, total } => {
                self.status = OrderStatus::Placed;
                self.customer = customer.clone();
                self.total = *total;
            }
            OrderEvent::Paid { .. } => self.status = OrderStatus::Paid,
            OrderEvent::Shipped => self.status = OrderStatus::Shipped,
            OrderEvent::Cancelled { .. } => self.status = OrderStatus::Cancelled,
        }
    }
}
