//! The checkout saga on its own, with SagaTest: every command it sends is
//! asserted, and timeouts pass instantly on the test clock.

use std::time::Duration;

use checkout::domain::{InventoryEvent, OrderEvent, PlacedOrder};
use checkout::saga::{INVENTORY, PAYMENT, Stage};
use checkout::{CheckoutCommand, CheckoutEvent, CheckoutInput, CheckoutSaga, LineItem};
use composable_rust::prelude::*;
use composable_rust::{NewEvent, Position};

const TIMEOUT: Duration = Duration::from_secs(30);

// ANCHOR: setup
fn saga() -> SagaTest<CheckoutSaga> {
    SagaTest::new(CheckoutSaga::new(TIMEOUT)).with_saga_id("1001")
}

fn order() -> PlacedOrder {
    PlacedOrder {
        order_id: "1001".into(),
        customer: "ada".into(),
        items: vec![LineItem::new("book", 2, 1500)],
        total: 3000,
    }
}

// ANCHOR_END: setup

fn placed() -> CheckoutInput {
    CheckoutInput::OrderPlaced(order())
}

fn reserve() -> CheckoutCommand {
    CheckoutCommand::ReserveInventory {
        order_id: "1001".into(),
        items: order().items,
    }
}

fn charge() -> CheckoutCommand {
    CheckoutCommand::ChargePayment {
        order_id: "1001".into(),
        customer: "ada".into(),
        amount: 3000,
    }
}

fn release() -> CheckoutCommand {
    CheckoutCommand::ReleaseInventory {
        order_id: "1001".into(),
    }
}

fn refund() -> CheckoutCommand {
    CheckoutCommand::RefundPayment {
        order_id: "1001".into(),
    }
}

fn cancel(reason: &str) -> CheckoutCommand {
    CheckoutCommand::CancelOrder {
        order_id: "1001".into(),
        reason: reason.into(),
    }
}

// ANCHOR: happy_path
#[test]
fn the_happy_path_reserves_charges_and_confirms() {
    let mut test = saga();
    test.when(placed())
        .then_commands([reserve()])
        .then_events([CheckoutEvent::Started { order: order() }])
        .then_timeout(INVENTORY, TIMEOUT);
    test.when(CheckoutInput::InventoryReserved)
        .then_commands([charge()])
        .then_timeout(PAYMENT, TIMEOUT);
    test.when(CheckoutInput::PaymentCharged {
        charge_id: "ch_1".into(),
    })
    .then_commands([CheckoutCommand::ConfirmOrder {
        order_id: "1001".into(),
    }])
    .then_completed()
    .then_no_timeouts()
    .then_state(|state| {
        assert_eq!(state.stage, Stage::Confirmed);
        assert_eq!(state.charge_id.as_deref(), Some("ch_1"));
        assert_eq!(state.steps.completed(), vec![INVENTORY, PAYMENT]);
    });
    test.finish();
}
// ANCHOR_END: happy_path

// ANCHOR: declined
#[test]
fn a_declined_payment_releases_the_inventory_and_cancels_the_order() {
    let mut test = saga();
    test.given([placed(), CheckoutInput::InventoryReserved]);
    test.when(CheckoutInput::PaymentDeclined {
        reason: "insufficient funds".into(),
    })
    .then_commands([release(), cancel("payment declined: insufficient funds")])
    .then_compensated()
    .then_no_timeouts();
    test.finish();
}
// ANCHOR_END: declined

#[test]
fn rejected_inventory_has_nothing_to_undo() {
    let mut test = saga();
    test.given([placed()]);
    test.when(CheckoutInput::InventoryRejected {
        reason: "book is out of stock".into(),
    })
    .then_commands([cancel("inventory rejected: book is out of stock")])
    .then_compensated();
    test.finish();
}

// ANCHOR: timeout
#[test]
fn no_answer_from_the_inventory_releases_whatever_it_may_have_reserved() {
    let mut test = saga();
    test.given([placed()]);
    test.advance(TIMEOUT - Duration::from_secs(1))
        .then_no_commands();
    test.advance(Duration::from_secs(1))
        .then_commands([release(), cancel("no answer from inventory within 30s")])
        .then_compensated();
    test.finish();
}

#[test]
fn no_answer_from_the_payment_compensates_in_reverse_order() {
    let mut test = saga();
    test.given([placed(), CheckoutInput::InventoryReserved]);
    test.advance(TIMEOUT)
        .then_commands([
            refund(),
            release(),
            cancel("no answer from payment within 30s"),
        ])
        .then_events([CheckoutEvent::StepTimedOut {
            step: PAYMENT.into(),
        }])
        .then_compensated();
    // The answer arrives after all: the saga has ended, nothing happens
    // (the refund above already covers a charge that went through).
    test.when(CheckoutInput::PaymentCharged {
        charge_id: "ch_1".into(),
    })
    .then_no_commands();
    test.finish();
}
// ANCHOR_END: timeout

#[test]
fn the_inventory_timeout_stops_once_the_stock_is_reserved() {
    let mut test = saga();
    test.when(placed()).then_commands([reserve()]);
    test.advance(Duration::from_secs(20));
    test.when(CheckoutInput::InventoryReserved)
        .then_commands([charge()]);
    // 30 s after the order, only the payment's own timeout is running.
    test.advance(Duration::from_secs(10)).then_no_commands();
    test.then_timeout(PAYMENT, Duration::from_secs(20));
    test.finish();
}

// ANCHOR: redelivery
#[test]
fn repeated_and_out_of_place_replies_change_nothing() {
    let mut test = saga();
    test.when(placed()).then_commands([reserve()]);
    // The same event delivered again (same id).
    test.when_redelivered().then_no_commands();
    // A payment answer while waiting for the inventory.
    test.when(CheckoutInput::PaymentCharged {
        charge_id: "ch_9".into(),
    })
    .then_no_commands()
    .then_events([]);
    test.when(CheckoutInput::InventoryReserved)
        .then_commands([charge()]);
    // The inventory's answer recorded twice (another event id).
    test.when(CheckoutInput::InventoryReserved)
        .then_no_commands();
    test.finish();
}
// ANCHOR_END: redelivery

// ANCHOR: restart
#[test]
fn a_restarted_saga_keeps_its_timeout() {
    let mut test = saga();
    test.given([placed(), CheckoutInput::InventoryReserved]);
    test.advance(Duration::from_secs(25));
    test.restart();
    test.then_timeout(PAYMENT, Duration::from_secs(5));
    test.advance(Duration::from_secs(5)).then_commands([
        refund(),
        release(),
        cancel("no answer from payment within 30s"),
    ]);
    test.finish();
}
// ANCHOR_END: restart

fn stored(stream: &str, new: NewEvent) -> StoredEvent {
    StoredEvent::builder(new.event_type, new.payload)
        .with_id(new.event_id)
        .with_stream(StreamId::new(stream).unwrap(), 1)
        .with_position(Position::new(1, 1))
        .with_schema_version(new.schema_version)
        .with_recorded_at(composable_rust::chrono::Utc::now())
        .build()
}

#[test]
fn domain_events_are_routed_by_order_id() {
    let placed = stored(
        "order-1001",
        NewEvent::from_event(&OrderEvent::Placed(order())).unwrap(),
    );
    let reserved = stored(
        "inventory-1001",
        NewEvent::from_event(&InventoryEvent::Reserved {
            order_id: "1001".into(),
            items: order().items,
        })
        .unwrap(),
    );
    let mut test = saga();
    test.when_event(&placed).then_commands([reserve()]);
    test.when_event(&reserved).then_commands([charge()]);
    test.finish();

    // Events the saga does not need are not routed at all.
    let released = stored(
        "inventory-1001",
        NewEvent::from_event(&InventoryEvent::Released {
            order_id: "1001".into(),
        })
        .unwrap(),
    );
    assert!(
        CheckoutSaga::new(TIMEOUT)
            .route(&released)
            .unwrap()
            .is_none()
    );
}
