//! The transfer saga, step by step with SagaTest: no store, no runtime, and
//! time on a test clock.

use std::time::Duration;

use bank::transfer::{DEADLINE, TransferCommand, TransferInput, TransferSaga};
use composable_rust::prelude::*;

const THIRTY_SECONDS: Duration = Duration::from_secs(30);

fn saga() -> TransferSaga {
    TransferSaga {
        deadline: THIRTY_SECONDS,
    }
}

fn requested() -> TransferInput {
    TransferInput::Requested {
        from: 1,
        to: 2,
        amount: 30,
    }
}

#[test]
fn a_transfer_debits_then_credits() {
    let mut test = SagaTest::new(saga());
    test.when(requested())
        .then_commands([TransferCommand::Debit {
            account: 1,
            amount: 30,
        }])
        .then_timeout(DEADLINE, THIRTY_SECONDS);
    test.when(TransferInput::Withdrawn)
        .then_commands([TransferCommand::Credit {
            account: 2,
            amount: 30,
        }]);
    test.when(TransferInput::Deposited)
        .then_no_commands()
        .then_completed()
        .then_no_timeouts();
    test.finish();
}

#[test]
fn a_refused_credit_refunds_the_debit() {
    let mut test = SagaTest::new(saga());
    test.given([requested(), TransferInput::Withdrawn]);
    test.when(TransferInput::Refused {
        reason: "the account is not open".into(),
    })
    .then_commands([TransferCommand::Refund {
        account: 1,
        amount: 30,
    }])
    .then_compensated()
    .then_no_timeouts();
    test.finish();
}

#[test]
fn a_refused_debit_has_nothing_to_undo() {
    let mut test = SagaTest::new(saga());
    test.given([requested()]);
    test.when(TransferInput::Refused {
        reason: "insufficient funds".into(),
    })
    .then_no_commands()
    .then_compensated();
    test.finish();
}

#[test]
fn a_late_transfer_is_undone_most_recent_step_first() {
    let mut test = SagaTest::new(saga());
    test.given([requested(), TransferInput::Withdrawn]);
    // The credit does not answer. 29 seconds: nothing yet.
    test.advance(Duration::from_secs(29)).then_no_commands();
    // The deadline: undo the credit (it may have happened), then the debit.
    test.advance(Duration::from_secs(1))
        .then_commands([
            TransferCommand::Reclaim {
                account: 2,
                amount: 30,
            },
            TransferCommand::Refund {
                account: 1,
                amount: 30,
            },
        ])
        .then_compensated();
    test.finish();
}

#[test]
fn an_input_delivered_twice_is_handled_once() {
    let mut test = SagaTest::new(saga());
    test.when(requested())
        .then_commands([TransferCommand::Debit {
            account: 1,
            amount: 30,
        }]);
    // The same event again (same id): the runtime ignores it.
    test.when_redelivered().then_no_commands();
    // The same fact as a new event: `react` ignores it, the stage has moved on.
    test.when(requested()).then_no_commands();
    test.finish();
}

#[test]
fn a_restarted_process_keeps_the_deadline() {
    let mut test = SagaTest::new(saga());
    test.given([requested()]);
    test.advance(Duration::from_secs(25)).then_no_commands();
    // The process dies; a new one rebuilds the saga from its stream.
    test.restart();
    // The deadline was stored: 5 seconds are left, not 30.
    test.advance(Duration::from_secs(5))
        .then_commands([TransferCommand::Refund {
            account: 1,
            amount: 30,
        }])
        .then_compensated();
    test.finish();
}

#[test]
#[should_panic(expected = "never asserted before when(Withdrawn)")]
fn a_test_that_ignores_a_command_fails() {
    let mut test = SagaTest::new(saga());
    test.when(requested()); // sends Debit, which the test never asserts
    test.when(TransferInput::Withdrawn);
    test.finish();
}
