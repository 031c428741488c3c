//! The checkout saga's declared map: it matches what the saga's code does
//! on every path it draws, and the flowchart the book shows
//! (`diagrams/checkout-saga.mmd`) is the one generated from it.
//!
//! When the map changes, regenerate the file:
//! `UPDATE_DIAGRAMS=1 cargo test -p checkout --test diagram`.

use std::path::Path;
use std::time::Duration;

use checkout::domain::PlacedOrder;
use checkout::{CheckoutInput, CheckoutSaga, LineItem};
use composable_rust::saga::DeclaredSaga;

/// Where the generated flowchart is checked in.
const FLOWCHART: &str = "diagrams/checkout-saga.mmd";

/// A sample input for each input name the map uses.
fn sample(name: &str) -> CheckoutInput {
    match name {
        "OrderPlaced" => CheckoutInput::OrderPlaced(PlacedOrder {
            order_id: "1001".into(),
            customer: "ada".into(),
            items: vec![LineItem::new("book", 2, 1500)],
            total: 3000,
        }),
        "InventoryReserved" => CheckoutInput::InventoryReserved,
        "InventoryRejected" => CheckoutInput::InventoryRejected {
            reason: "out of stock".into(),
        },
        "PaymentCharged" => CheckoutInput::PaymentCharged {
            charge_id: "ch_1".into(),
        },
        "PaymentDeclined" => CheckoutInput::PaymentDeclined {
            reason: "insufficient funds".into(),
        },
        other => panic!("the checkout map names an input `{other}` that CheckoutInput lacks"),
    }
}

#[test]
fn the_map_matches_what_the_saga_does() {
    let map = CheckoutSaga::map().expect("a valid map");
    map.verify(&CheckoutSaga::new(Duration::from_secs(30)), sample)
        .unwrap_or_else(|error| panic!("{error}"));
}

#[test]
fn the_checked_in_flowchart_is_the_generated_one() {
    let generated = CheckoutSaga::map().expect("a valid map").to_mermaid();
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(FLOWCHART);
    // Never rewritten in CI, where a stale file must fail.
    let in_ci = std::env::var_os("CI").is_some_and(|v| v == "true" || v == "1");
    if !in_ci && std::env::var_os("UPDATE_DIAGRAMS").is_some_and(|v| v == "1") {
        std::fs::write(&path, &generated).expect("write the flowchart");
        return;
    }
    let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        checked_in == generated,
        "examples/checkout/{FLOWCHART} is stale (the saga's map changed); run \
         `UPDATE_DIAGRAMS=1 cargo test -p checkout --test diagram` to update it, and \
         commit the result.\n--- checked in\n{checked_in}\n--- generated\n{generated}"
    );
}
