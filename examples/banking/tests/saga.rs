//! The transfer saga alone, step by step with `SagaTest`: no store, no
//! runtime, no teller; time on a test clock. What it asks for after each
//! input, and when it gives up.

mod common;

use std::time::Duration;

use banking::TransferRequest;
use banking::TransferSaga;
use banking::transfer::TransferCommand;
use banking::transfer::saga::{DEADLINE, TransferInput};
use composable_rust::prelude::*;
use composable_rust_testing::SagaTest;

fn test() -> SagaTest<TransferSaga> {
    SagaTest::new(TransferSaga).with_clock(common::clock())
}

/// Ada sends Bob 10.00; the deadline is 30 seconds after `test`'s now.
fn request(test: &SagaTest<TransferSaga>) -> TransferRequest {
    let now = test.clock().now();
    TransferRequest {
        transfer_id: "t-1".into(),
        from: "ada".into(),
        to: "bob".into(),
        amount: 1_000,
        requested_at: now,
        deadline: now + chrono::Duration::from_std(common::TIMEOUT).unwrap(),
    }
}

#[test]
fn a_transfer_debits_then_credits_then_completes() {
    let mut test = test();
    let request = request(&test);
    test.when(TransferInput::Requested(request.clone()))
        .then_commands([TransferCommand::Debit(request.clone())])
        .then_timeout(DEADLINE, common::TIMEOUT);
    test.when(TransferInput::Debited)
        .then_commands([TransferCommand::Credit(request)]);
    test.when(TransferInput::Credited)
        .then_no_commands()
        .then_completed()
        .then_no_timeouts();
    test.finish();
}

#[test]
fn a_refused_credit_refunds_and_a_refused_debit_undoes_nothing() {
    let mut refused_credit = test();
    let request = request(&refused_credit);
    refused_credit.given([
        TransferInput::Requested(request.clone()),
        TransferInput::Debited,
    ]);
    refused_credit
        .when(TransferInput::Refused {
            reason: "[BANK-E0005] closed".into(),
        })
        .then_commands([TransferCommand::Refund(request.clone())])
        .then_compensated()
        .then_no_timeouts();
    refused_credit.finish();

    let mut refused_debit = test();
    refused_debit.given([TransferInput::Requested(request)]);
    refused_debit
        .when(TransferInput::Refused {
            reason: "[BANK-E0006] insufficient funds".into(),
        })
        .then_no_commands()
        .then_compensated();
    refused_debit.finish();
}

#[test]
fn at_the_deadline_the_transfer_is_reversed() {
    let mut test = test();
    let request = request(&test);
    test.given([
        TransferInput::Requested(request.clone()),
        TransferInput::Debited,
    ]);
    test.advance(common::TIMEOUT - Duration::from_secs(1))
        .then_no_commands();
    test.advance(Duration::from_secs(1))
        .then_commands([TransferCommand::Reverse(request)])
        .then_compensated();
    test.finish();
}

#[test]
fn a_saga_that_starts_late_keeps_the_requested_deadline() {
    let mut test = test();
    let request = request(&test);
    // The request waited 20 seconds before the saga saw it.
    test.advance(Duration::from_secs(20));
    test.when(TransferInput::Requested(request.clone()))
        .then_commands([TransferCommand::Debit(request)])
        .then_timeout(DEADLINE, Duration::from_secs(10));
    test.finish();
}

#[test]
fn repeated_and_late_answers_change_nothing() {
    let mut test = test();
    let request = request(&test);
    test.when(TransferInput::Requested(request.clone()))
        .then_commands([TransferCommand::Debit(request.clone())]);
    // The same event again: the runtime recognises it.
    test.when_redelivered().then_no_commands();
    // The same request as a new event: the stage has moved on.
    test.when(TransferInput::Requested(request))
        .then_no_commands();
    // A credit before any debit is out of place.
    test.when(TransferInput::Credited)
        .then_no_commands()
        .then_running();
    test.finish();
}
