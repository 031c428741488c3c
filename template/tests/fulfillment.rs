//! The fulfillment saga, step by step with SagaTest: no store, no runtime,
//! and time on a test clock.

use std::time::Duration;

use composable_rust::prelude::*;
use composable_rust::saga::DeclaredSaga;
use {{crate_name}}::sagas::fulfillment::{
    FulfillmentCommand, FulfillmentInput, FulfillmentSaga, PAYMENT_DUE,
};

const WINDOW: Duration = Duration::from_secs(15 * 60);

/// The fulfillment of order 42 (a fulfillment's id is its order's id).
fn fulfillment() -> SagaTest<FulfillmentSaga> {
    SagaTest::new(FulfillmentSaga {
        payment_window: WINDOW,
    })
    .with_saga_id("42")
}

#[test]
fn a_paid_order_is_shipped() {
    let mut test = fulfillment();
    test.when(FulfillmentInput::Placed)
        .then_no_commands()
        .then_timeout(PAYMENT_DUE, WINDOW);
    test.when(FulfillmentInput::Paid)
        .then_commands([FulfillmentCommand::Ship { order: "42".into() }])
        .then_completed()
        .then_no_timeouts();
    test.finish();
}

#[test]
fn an_unpaid_order_is_cancelled_when_the_window_closes() {
    let mut test = fulfillment();
    test.given([FulfillmentInput::Placed]);
    test.advance(WINDOW - Duration::from_secs(1))
        .then_no_commands();
    test.advance(Duration::from_secs(1))
        .then_commands([FulfillmentCommand::Cancel {
            order: "42".into(),
            reason: "not paid in time".into(),
        }])
        .then_compensated();
    test.finish();
}

#[test]
fn an_order_cancelled_by_the_customer_ends_the_saga() {
    let mut test = fulfillment();
    test.given([FulfillmentInput::Placed]);
    test.when(FulfillmentInput::Cancelled)
        .then_no_commands()
        .then_completed()
        .then_no_timeouts();
    test.finish();
}

/// The map `ops saga graph` draws follows the saga's code: every path of it
/// (paid, cancelled elsewhere, not paid in time) runs through `react` and
/// `on_timeout` and sends what the map says.
#[test]
fn the_map_follows_the_code() {
    let map = FulfillmentSaga::map().unwrap();
    map.verify(
        &FulfillmentSaga {
            payment_window: WINDOW,
        },
        |name| match name {
            "Placed" => FulfillmentInput::Placed,
            "Paid" => FulfillmentInput::Paid,
            "Cancelled" => FulfillmentInput::Cancelled,
            other => panic!("the map names no input {other}"),
        },
    )
    .unwrap();
    let chart = map.to_mermaid();
    assert!(chart.contains("s1 -->|\"Paid\"| completed"), "{chart}");
    // `ops saga graph` prints it.
    let mut out = Vec::new();
    {{crate_name}}::ops::saga_graph(&mut out).unwrap();
    assert_eq!(String::from_utf8(out).unwrap(), chart);
}
