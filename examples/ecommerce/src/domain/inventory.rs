//! Inventory: the stock of each product (stream `stock-{product id}`) and
//! the reservations orders hold on it. Reserving and releasing are
//! idempotent per order, because the saga's commands arrive at least once:
//! an order reserves a product once, releases it once, and never reserves
//! it again after releasing it.

use std::collections::{BTreeMap, BTreeSet};

use composable_rust::prelude::*;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// What happens to a product's stock.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
pub enum StockEvent {
    /// Units arrived (the seed's initial stock).
    #[serde(rename = "stock.added")]
    Added {
        /// The product.
        product_id: String,
        /// How many.
        quantity: u64,
    },
    /// An order reserved units.
    #[serde(rename = "stock.reserved")]
    Reserved {
        /// The product.
        product_id: String,
        /// The order.
        order_id: Uuid,
        /// How many.
        quantity: u64,
    },
    /// An order's reservation went back.
    #[serde(rename = "stock.released")]
    Released {
        /// The product.
        product_id: String,
        /// The order.
        order_id: Uuid,
        /// How many.
        quantity: u64,
    },
}

/// A product's stock.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Stock {
    /// Units not reserved.
    pub available: u64,
    /// Reservations held, by order.
    pub reserved: BTreeMap<Uuid, u64>,
    /// Orders whose reservation went back.
    pub released: BTreeSet<Uuid>,
}

/// What a product's stock can be asked to do.
#[derive(Debug, Clone)]
pub enum StockCommand {
    /// Add units.
    Add {
        /// The product.
        product_id: String,
        /// How many.
        quantity: u64,
    },
    /// Reserve units for an order.
    Reserve {
        /// The product.
        product_id: String,
        /// The order.
        order_id: Uuid,
        /// How many.
        quantity: u64,
    },
    /// Give an order's reservation back.
    Release {
        /// The product.
        product_id: String,
        /// The order.
        order_id: Uuid,
    },
}

/// Why a stock command is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StockError {
    /// Not enough units.
    #[error("{product_id}: {requested} requested, {available} available")]
    OutOfStock {
        /// The product.
        product_id: String,
        /// Units asked for.
        requested: u64,
        /// Units left.
        available: u64,
    },
    /// The order released its reservation: the checkout is over.
    #[error("order {0} already released its reservation")]
    AlreadyReleased(Uuid),
}

impl Aggregate for Stock {
    const KIND: &'static str = "stock";
    type Event = StockEvent;
    type Command = StockCommand;
    type Error = StockError;
    type Environment = ();

    fn decide(&self, command: StockCommand, (): &()) -> Result<Vec<StockEvent>, StockError> {
        match command {
            StockCommand::Add {
                product_id,
                quantity,
            } => Ok(vec![StockEvent::Added {
                product_id,
                quantity,
            }]),
            StockCommand::Reserve { order_id, .. } if self.reserved.contains_key(&order_id) => {
                Ok(vec![])
            }
            StockCommand::Reserve { order_id, .. } if self.released.contains(&order_id) => {
                Err(StockError::AlreadyReleased(order_id))
            }
            StockCommand::Reserve {
                product_id,
                quantity,
                ..
            } if quantity > self.available => Err(StockError::OutOfStock {
                product_id,
                requested: quantity,
                available: self.available,
            }),
            StockCommand::Reserve {
                product_id,
                order_id,
                quantity,
            } => Ok(vec![StockEvent::Reserved {
                product_id,
                order_id,
                quantity,
            }]),
            StockCommand::Release {
                product_id,
                order_id,
            } => Ok(match self.reserved.get(&order_id) {
                Some(&quantity) => vec![StockEvent::Released {
                    product_id,
                    order_id,
                    quantity,
                }],
                None => vec![],
            }),
        }
    }

    fn apply(&mut self, event: &StockEvent) {
        match event {
            StockEvent::Added { quantity, .. } => self.available += quantity,
            StockEvent::Reserved {
                order_id, quantity, ..
            } => {
                self.available -= quantity;
                self.reserved.insert(*order_id, *quantity);
            }
            StockEvent::Released {
                order_id, quantity, ..
            } => {
                self.available += quantity;
                self.reserved.remove(order_id);
                self.released.insert(*order_id);
            }
        }
    }
}

/// The stream of product `product_id`'s stock.
///
/// # Errors
///
/// An invalid stream id (the catalog's ids are valid).
pub fn stock_stream(product_id: &str) -> Result<StreamId, composable_rust::EventStoreError> {
    StreamId::for_aggregate("stock", product_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservations_are_idempotent_and_released_once() {
        let mut stock = Stock::default();
        let run = |stock: &mut Stock, command| {
            let events = stock.decide(command, &())?;
            events.iter().for_each(|e| stock.apply(e));
            Ok::<_, StockError>(events.len())
        };
        let (p, order) = ("kettle".to_owned(), Uuid::new_v4());
        run(
            &mut stock,
            StockCommand::Add {
                product_id: p.clone(),
                quantity: 3,
            },
        )
        .unwrap();
        let reserve = || StockCommand::Reserve {
            product_id: p.clone(),
            order_id: order,
            quantity: 2,
        };
        assert_eq!(run(&mut stock, reserve()), Ok(1));
        assert_eq!(run(&mut stock, reserve()), Ok(0));
        assert_eq!(stock.available, 1);
        let release = || StockCommand::Release {
            product_id: p.clone(),
            order_id: order,
        };
        assert_eq!(run(&mut stock, release()), Ok(1));
        assert_eq!(run(&mut stock, release()), Ok(0));
        assert_eq!(stock.available, 3);
        assert_eq!(
            run(&mut stock, reserve()),
            Err(StockError::AlreadyReleased(order))
        );
        let other = StockCommand::Reserve {
            product_id: p,
            order_id: Uuid::new_v4(),
            quantity: 4,
        };
        assert!(matches!(
            run(&mut stock, other),
            Err(StockError::OutOfStock { .. })
        ));
    }
}
