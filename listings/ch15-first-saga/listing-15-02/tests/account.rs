//! The account's rules, as given / when / then: given these events
//! happened, when this command arrives, then these events happen (or the
//! command is refused). No database.

use bank::account::{Account, AccountCommand, AccountError, AccountEvent};
use composable_rust::prelude::*;

fn opened() -> AccountEvent {
    AccountEvent::Opened {
        owner: "Ada".into(),
    }
}

#[test]
fn a_deposit_on_an_open_account_is_recorded() {
    let account = AggregateTest::<Account>::new(())
        .given([opened()])
        .when(AccountCommand::Deposit { amount: 100 })
        .then_events([AccountEvent::Deposited { amount: 100 }]);
    assert_eq!(account.balance, 100);
}

#[test]
fn an_overdraft_is_refused() {
    AggregateTest::<Account>::new(())
        .given([opened(), AccountEvent::Deposited { amount: 50 }])
        .when(AccountCommand::Withdraw { amount: 80 })
        .then_rejected(AccountError::InsufficientFunds {
            balance: 50,
            requested: 80,
        });
}

#[test]
fn nothing_happens_to_an_account_that_was_never_opened() {
    AggregateTest::<Account>::new(())
        .when(AccountCommand::Deposit { amount: 10 })
        .then_rejected(AccountError::NotOpen);
}
