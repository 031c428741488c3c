//! The order's rules, as given / when / then: given these events happened,
//! when this command arrives, then these events happen (or the command is
//! refused). No database.

use composable_rust::prelude::*;
use {{crate_name}}::aggregates::order::{Order, OrderCommand, OrderError, OrderEvent, OrderStatus};

fn placed() -> OrderEvent {
    OrderEvent::Placed {
        customer: "Ada".into(),
        total: 30,
    }
}

#[test]
fn an_order_is_placed_once() {
    let order = AggregateTest::<Order>::new(())
        .when(OrderCommand::Place {
            customer: "Ada".into(),
            total: 30,
        })
        .then_events([placed()]);
    assert_eq!(order.status, OrderStatus::Placed);

    AggregateTest::<Order>::new(())
        .given([placed()])
        .when(OrderCommand::Place {
            customer: "Grace".into(),
            total: 5,
        })
        .then_rejected(OrderError::AlreadyPlaced);
}

#[test]
fn the_payment_must_match_the_total() {
    AggregateTest::<Order>::new(())
        .given([placed()])
        .when(OrderCommand::Pay { amount: 29 })
        .then_rejected(OrderError::WrongAmount {
            total: 30,
            paid: 29,
        });
}

#[test]
fn only_a_paid_order_ships() {
    AggregateTest::<Order>::new(())
        .given([placed()])
        .when(OrderCommand::Ship)
        .then_rejected(OrderError::WrongStatus {
            status: OrderStatus::Placed,
            action: "shipped",
        });
    AggregateTest::<Order>::new(())
        .given([placed(), OrderEvent::Paid { amount: 30 }])
        .when(OrderCommand::Ship)
        .then_events([OrderEvent::Shipped]);
}
