//! The order's rules, given/when/then: no store, no I/O, so they run in
//! microseconds.

use composable_rust::prelude::*;
use storefront::order::Order;
use storefront::order::{Line, OrderCommand, OrderError, OrderEvent, SoldLine, Status};

fn line(sku: &str, quantity: u32) -> Line {
    Line {
        sku: sku.into(),
        quantity,
    }
}

fn placed() -> OrderEvent {
    OrderEvent::Placed {
        customer: "ada@example.com".into(),
        lines: vec![SoldLine {
            sku: "tee".into(),
            quantity: 2,
            unit_price: 2_500,
        }],
        total: 5_000,
    }
}

fn place(lines: Vec<Line>) -> OrderCommand {
    OrderCommand::Place {
        customer: "ada@example.com".into(),
        lines,
    }
}

#[test]
fn placing_prices_the_lines_from_the_catalog() {
    let order = AggregateTest::<Order>::new(())
        .when(place(vec![line("tee", 2)]))
        .then_events([placed()]);
    assert_eq!(order.status, Status::Placed);
    assert_eq!(order.total, 5_000);
}

#[test]
fn a_bad_order_is_refused_with_its_code() {
    AggregateTest::<Order>::new(())
        .when(place(vec![]))
        .then_rejected(OrderError::NoLines);
    AggregateTest::<Order>::new(())
        .when(place(vec![line("hat", 1)]))
        .then_rejected(OrderError::UnknownProduct { sku: "hat".into() });
    AggregateTest::<Order>::new(())
        .when(place(vec![line("mug", 101)]))
        .then_rejected(OrderError::BadQuantity {
            sku: "mug".into(),
            quantity: 101,
        });
    AggregateTest::<Order>::new(())
        .given([placed()])
        .when(place(vec![line("mug", 1)]))
        .then_rejected(OrderError::AlreadyPlaced);
    assert_eq!(OrderError::NoLines.code(), "STORE-E0002");
}

#[test]
fn an_order_is_paid_its_total_then_shipped() {
    AggregateTest::<Order>::new(())
        .given([placed()])
        .when(OrderCommand::Pay { amount: 4_000 })
        .then_rejected(OrderError::WrongAmount {
            total: 5_000,
            amount: 4_000,
        });
    AggregateTest::<Order>::new(())
        .given([placed()])
        .when(OrderCommand::Ship)
        .then_rejected(OrderError::NotAllowed {
            status: Status::Placed,
            action: "shipped",
        });
    let order = AggregateTest::<Order>::new(())
        .given([placed(), OrderEvent::Paid { amount: 5_000 }])
        .when(OrderCommand::Ship)
        .then_events([OrderEvent::Shipped]);
    assert_eq!(order.status, Status::Shipped);
}

#[test]
fn cancelling_stops_at_shipping_and_twice_is_harmless() {
    let cancel = || OrderCommand::Cancel {
        reason: "changed my mind".into(),
    };
    AggregateTest::<Order>::new(())
        .given([placed(), OrderEvent::Paid { amount: 5_000 }])
        .when(cancel())
        .then_events([OrderEvent::Cancelled {
            reason: "changed my mind".into(),
        }]);
    AggregateTest::<Order>::new(())
        .given([
            placed(),
            OrderEvent::Cancelled {
                reason: "once".into(),
            },
        ])
        .when(cancel())
        .then_events([]);
    AggregateTest::<Order>::new(())
        .given([
            placed(),
            OrderEvent::Paid { amount: 5_000 },
            OrderEvent::Shipped,
        ])
        .when(cancel())
        .then_rejected(OrderError::NotAllowed {
            status: Status::Shipped,
            action: "cancelled",
        });
}
