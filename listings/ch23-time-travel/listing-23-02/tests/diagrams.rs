//! The transfer saga's map matches what the saga does, and the diagrams
//! the book shows are the ones the code generates. When one is stale:
//! `UPDATE_DIAGRAMS=1 cargo test -p listing-23-02` rewrites them.

use std::path::Path;
use std::time::Duration;

use bank::transfer::{TransferInput, TransferSaga};
use listing_23_02::{refused_transfer, transfer_map};

// ANCHOR: verify
#[test]
fn the_map_matches_what_the_saga_does() {
    let saga = TransferSaga {
        deadline: Duration::from_secs(30),
    };
    let sample = |input: &str| match input {
        "Requested" => TransferInput::Requested {
            from: 1,
            to: 2,
            amount: 30,
        },
        "Withdrawn" => TransferInput::Withdrawn,
        "Deposited" => TransferInput::Deposited,
        "Refused" => TransferInput::Refused {
            reason: "insufficient funds".into(),
        },
        other => panic!("the map names an input `{other}` the saga lacks"),
    };
    let map = transfer_map().unwrap();
    map.verify(&saga, sample)
        .unwrap_or_else(|error| panic!("{error}"));
}
// ANCHOR_END: verify

// ANCHOR: fresh
/// Fails when `file` (under this crate) is not `generated`; rewrites it
/// instead with `UPDATE_DIAGRAMS=1` (never in CI).
fn assert_fresh(file: &str, generated: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(file);
    let in_ci = std::env::var_os("CI").is_some_and(|v| v == "true" || v == "1");
    if !in_ci && std::env::var_os("UPDATE_DIAGRAMS").is_some_and(|v| v == "1") {
        std::fs::write(&path, generated).unwrap();
        return;
    }
    let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        checked_in == generated,
        "{file} is stale; run `UPDATE_DIAGRAMS=1 cargo test -p listing-23-02` to \
         update it.\n--- checked in\n{checked_in}\n--- generated\n{generated}"
    );
}

#[test]
fn the_flowchart_is_fresh() {
    assert_fresh(
        "diagrams/transfer-saga.mmd",
        &transfer_map().unwrap().to_mermaid(),
    );
}
// ANCHOR_END: fresh

#[tokio::test]
async fn the_history_is_fresh() {
    let history = refused_transfer().await.unwrap();
    assert_fresh("diagrams/refused-transfer.mmd", &history.to_mermaid());
}
