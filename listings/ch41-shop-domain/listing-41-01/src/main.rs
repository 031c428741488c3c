//! Decides one order in memory and prints its events: the domain alone,
//! before any storage.

use composable_rust::prelude::*;
use storefront::order::{Line, Order, OrderCommand};

fn main() {
    let mut order = Order::default();
    let commands = [
        OrderCommand::Place {
            customer: "ada@example.com".into(),
            lines: vec![Line {
                sku: "mug".into(),
                quantity: 2,
            }],
        },
        OrderCommand::Pay { amount: 2_000 },
        OrderCommand::Pay { amount: 2_400 },
        OrderCommand::Ship,
    ];
    for command in commands {
        match order.decide(command, &()) {
            Ok(events) => {
                for event in &events {
                    println!("{event:?}");
                    order.apply(event);
                }
            }
            Err(error) => println!("refused: [{}] {error}", error.code()),
        }
    }
    println!("the order is {}", order.status);
}
