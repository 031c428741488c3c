//! The order: the shop's one aggregate. A customer places it with lines
//! from the catalog, pays its total, and it is shipped; it can be cancelled
//! until it ships.

use std::fmt;

use composable_rust::prelude::*;
use serde::{Deserialize, Serialize};

use crate::catalog::{self, Cents};

// ANCHOR: events
/// A line of an order as the customer asks for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Line {
    /// The product, as the catalog names it.
    pub sku: String,
    /// How many: 1 to 100.
    pub quantity: u32,
}

/// A line as it was sold: the price is copied in, so a later price change
/// does not rewrite history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SoldLine {
    /// The product.
    pub sku: String,
    /// How many.
    pub quantity: u32,
    /// Its price when the order was placed.
    pub unit_price: Cents,
}

/// What happens to an order (stream `order-<id>`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
pub enum OrderEvent {
    /// The order was placed: who, what, at which prices, for how much.
    Placed {
        customer: String,
        lines: Vec<SoldLine>,
        total: Cents,
    },
    /// The total was paid.
    Paid { amount: Cents },
    /// The order left the warehouse.
    Shipped,
    /// The order was cancelled, and why.
    Cancelled { reason: String },
}
// ANCHOR_END: events

// ANCHOR: state
/// Where an order stands.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Status {
    #[default]
    New,
    Placed,
    Paid,
    Shipped,
    Cancelled,
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            Status::New => "new",
            Status::Placed => "placed",
            Status::Paid => "paid",
            Status::Shipped => "shipped",
            Status::Cancelled => "cancelled",
        };
        f.write_str(name)
    }
}

/// What the order's rules need to know: its status and what it costs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Order {
    /// Where the order stands.
    pub status: Status,
    /// What it costs, in cents (0 until placed).
    pub total: Cents,
}

/// What an order can be asked to do.
#[derive(Debug, Clone, PartialEq)]
pub enum OrderCommand {
    Place { customer: String, lines: Vec<Line> },
    Pay { amount: Cents },
    Ship,
    Cancel { reason: String },
}
// ANCHOR_END: state

// ANCHOR: errors
/// Why a command is refused. Each has a stable code: `STORE-E…` codes are
/// the shop's own (the framework's are `CR-E…`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OrderError {
    #[error("the order was already placed; place a new order with a new id")]
    AlreadyPlaced,
    #[error("an order needs at least one line; add a product")]
    NoLines,
    #[error("the shop sells no product `{sku}`; use one of mug, tee, cap")]
    UnknownProduct { sku: String },
    #[error("{quantity} of `{sku}` cannot be ordered; order 1 to 100")]
    BadQuantity { sku: String, quantity: u32 },
    #[error("the order costs {total} cents, not {amount}; pay the total")]
    WrongAmount { total: Cents, amount: Cents },
    #[error("an order that is {status} cannot be {action}")]
    NotAllowed {
        status: Status,
        action: &'static str,
    },
}

impl OrderError {
    /// The error's stable code, for logs, API responses and documentation.
    pub fn code(&self) -> &'static str {
        match self {
            OrderError::AlreadyPlaced => "STORE-E0001",
            OrderError::NoLines => "STORE-E0002",
            OrderError::UnknownProduct { .. } => "STORE-E0003",
            OrderError::BadQuantity { .. } => "STORE-E0004",
            OrderError::WrongAmount { .. } => "STORE-E0005",
            OrderError::NotAllowed { .. } => "STORE-E0006",
        }
    }
}
// ANCHOR_END: errors

// ANCHOR: aggregate
impl Aggregate for Order {
    const KIND: &'static str = "order";
    type Event = OrderEvent;
    type Command = OrderCommand;
    type Error = OrderError;
    type Environment = ();

    fn decide(&self, command: OrderCommand, _env: &()) -> Result<Vec<OrderEvent>, OrderError> {
        let not_allowed = |action| OrderError::NotAllowed {
            status: self.status,
            action,
        };
        match (self.status, command) {
            (Status::New, OrderCommand::Place { customer, lines }) => place(customer, lines),
            (_, OrderCommand::Place { .. }) => Err(OrderError::AlreadyPlaced),
            (Status::Placed, OrderCommand::Pay { amount }) if amount != self.total => {
                Err(OrderError::WrongAmount {
                    total: self.total,
                    amount,
                })
            }
            (Status::Placed, OrderCommand::Pay { amount }) => Ok(vec![OrderEvent::Paid { amount }]),
            (_, OrderCommand::Pay { .. }) => Err(not_allowed("paid")),
            (Status::Paid, OrderCommand::Ship) => Ok(vec![OrderEvent::Shipped]),
            (_, OrderCommand::Ship) => Err(not_allowed("shipped")),
            // Cancelling twice changes nothing: a retried request is harmless.
            (Status::Cancelled, OrderCommand::Cancel { .. }) => Ok(vec![]),
            (Status::Placed | Status::Paid, OrderCommand::Cancel { reason }) => {
                Ok(vec![OrderEvent::Cancelled { reason }])
            }
            (_, OrderCommand::Cancel { .. }) => Err(not_allowed("cancelled")),
        }
    }

    fn apply(&mut self, event: &OrderEvent) {
        match event {
            OrderEvent::Placed { total, .. } => {
                self.status = Status::Placed;
                self.total = *total;
            }
            OrderEvent::Paid { .. } => self.status = Status::Paid,
            OrderEvent::Shipped => self.status = Status::Shipped,
            OrderEvent::Cancelled { .. } => self.status = Status::Cancelled,
        }
    }
}

/// Checks the lines against the catalog and prices them.
fn place(customer: String, lines: Vec<Line>) -> Result<Vec<OrderEvent>, OrderError> {
    if lines.is_empty() {
        return Err(OrderError::NoLines);
    }
    let mut sold = Vec::with_capacity(lines.len());
    for Line { sku, quantity } in lines {
        let Some(unit_price) = catalog::price(&sku) else {
            return Err(OrderError::UnknownProduct { sku });
        };
        if !(1..=100).contains(&quantity) {
            return Err(OrderError::BadQuantity { sku, quantity });
        }
        sold.push(SoldLine {
            sku,
            quantity,
            unit_price,
        });
    }
    let total = sold
        .iter()
        .map(|line| line.unit_price * Cents::from(line.quantity))
        .sum();
    Ok(vec![OrderEvent::Placed {
        customer,
        lines: sold,
        total,
    }])
}
// ANCHOR_END: aggregate
