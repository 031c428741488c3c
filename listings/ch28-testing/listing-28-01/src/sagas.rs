//! Testing saga compensation: every way the bank's transfer can fail, and
//! what it must undo in each.

use std::time::Duration;

use bank::transfer::{TransferCommand, TransferInput, TransferSaga};
use composable_rust::prelude::*;
use listing_23_02::transfer_map;

const DEADLINE: Duration = Duration::from_secs(30);

fn requested() -> TransferInput {
    TransferInput::Requested {
        from: 1,
        to: 2,
        amount: 30,
    }
}

// ANCHOR: table
/// Where the transfer stops, and what must be sent to undo it, in order.
#[test]
fn every_failure_undoes_what_may_have_happened_most_recent_first() {
    let refused = || TransferInput::Refused {
        reason: "refused".into(),
    };
    let refund = TransferCommand::Refund {
        account: 1,
        amount: 30,
    };
    let reclaim = TransferCommand::Reclaim {
        account: 2,
        amount: 30,
    };
    // (what happened before the failure, the failure, the compensations)
    let cases: Vec<(
        Vec<TransferInput>,
        Option<TransferInput>,
        Vec<TransferCommand>,
    )> = vec![
        (vec![requested()], Some(refused()), vec![]), // the debit refused: nothing to undo
        (
            vec![requested(), TransferInput::Withdrawn],
            Some(refused()),
            vec![refund.clone()],
        ),
        (vec![requested()], None, vec![refund.clone()]), // timed out while debiting
        (
            vec![requested(), TransferInput::Withdrawn],
            None,
            vec![reclaim, refund],
        ),
    ];
    for (before, failure, undo) in cases {
        let mut test = SagaTest::new(TransferSaga { deadline: DEADLINE });
        test.given(before);
        match failure {
            Some(input) => test.when(input),
            None => test.advance(DEADLINE),
        };
        test.then_commands(undo)
            .then_compensated()
            .then_no_timeouts();
        test.finish();
    }
}
// ANCHOR_END: table

// ANCHOR: verify
/// The declared map names every path; `verify` runs the saga along each
/// one (every step succeeding, refused, timing out) and compares.
#[test]
fn the_map_and_the_saga_agree_on_every_path() {
    let sample = |input: &str| match input {
        "Requested" => requested(),
        "Withdrawn" => TransferInput::Withdrawn,
        "Deposited" => TransferInput::Deposited,
        "Refused" => TransferInput::Refused {
            reason: "refused".into(),
        },
        other => panic!("the map names an input `{other}` the saga lacks"),
    };
    let saga = TransferSaga { deadline: DEADLINE };
    transfer_map()
        .unwrap()
        .verify(&saga, sample)
        .unwrap_or_else(|error| panic!("{error}"));
}
// ANCHOR_END: verify
