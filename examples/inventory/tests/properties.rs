//! A property of the `Product` aggregate, without a database: under any
//! sequence of receive, reserve, release and commit commands, what is
//! reserved never exceeds what is on hand (available is never negative),
//! and the numbers agree with a plain sum over the events.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use composable_rust::prelude::*;
use composable_rust::{Clock, TestClock};
use composable_rust_testing::proptest::prelude::*;
use inventory::{Product, ProductCommand, ProductEvent, ReleaseReason};

const WAREHOUSES: [&str; 2] = ["east", "west"];

fn command() -> impl Strategy<Value = ProductCommand> {
    let warehouse = prop::sample::select(WAREHOUSES.to_vec()).prop_map(str::to_owned);
    let reservation = (0..6u8).prop_map(|n| format!("r{n}"));
    prop_oneof![
        (warehouse.clone(), 0..20u32).prop_map(|(warehouse, quantity)| ProductCommand::Receive {
            warehouse,
            quantity,
            purchase_order: None,
        }),
        (reservation.clone(), warehouse, 0..25u32).prop_map(|(id, warehouse, quantity)| {
            ProductCommand::Reserve {
                order_id: format!("order-{id}"),
                reservation_id: id,
                warehouse,
                quantity,
                ttl: Duration::from_secs(60),
            }
        }),
        reservation
            .clone()
            .prop_map(|reservation_id| ProductCommand::Release {
                reservation_id,
                reason: ReleaseReason::Cancelled,
            }),
        reservation.prop_map(|reservation_id| ProductCommand::Commit { reservation_id }),
    ]
}

proptest! {
    #[test]
    fn available_is_never_negative(commands in prop::collection::vec(command(), 1..60)) {
        let clock: Arc<dyn Clock> = Arc::new(TestClock::new());
        let mut product = Product::default();
        let register = ProductCommand::Register {
            sku: "P".into(),
            name: "P".into(),
            reorder_point: 5,
            reorder_quantity: 10,
        };
        for event in product.decide(register, &clock).unwrap() {
            product.apply(&event);
        }
        // (on hand, reserved) per warehouse, summed from the events with
        // signed numbers: an underflow would show as a negative.
        let mut sums: BTreeMap<String, (i64, i64)> = BTreeMap::new();
        for command in commands {
            // A refused command must leave no trace: nothing to apply.
            let Ok(events) = product.decide(command, &clock) else { continue };
            for event in &events {
                match event {
                    ProductEvent::StockReceived { warehouse, quantity, .. } => {
                        sums.entry(warehouse.clone()).or_default().0 += i64::from(*quantity);
                    }
                    ProductEvent::Reserved { warehouse, quantity, .. } => {
                        sums.entry(warehouse.clone()).or_default().1 += i64::from(*quantity);
                    }
                    ProductEvent::Released { warehouse, quantity, .. } => {
                        sums.entry(warehouse.clone()).or_default().1 -= i64::from(*quantity);
                    }
                    ProductEvent::Committed { warehouse, quantity, .. } => {
                        let sum = sums.entry(warehouse.clone()).or_default();
                        sum.0 -= i64::from(*quantity);
                        sum.1 -= i64::from(*quantity);
                    }
                    _ => {}
                }
                product.apply(event);
            }
            for (warehouse, (on_hand, reserved)) in &sums {
                prop_assert!(*reserved >= 0 && *reserved <= *on_hand, "{warehouse}: {on_hand} on hand, {reserved} reserved");
                let stock = product.warehouse(warehouse);
                prop_assert_eq!(i64::from(stock.on_hand), *on_hand);
                prop_assert_eq!(i64::from(stock.reserved), *reserved);
                prop_assert_eq!(i64::from(stock.available()), on_hand - reserved);
            }
        }
    }
}
