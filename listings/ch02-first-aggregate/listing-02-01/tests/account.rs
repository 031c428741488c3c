//! The account's rules, tested by calling the reducer directly: no store,
//! no runtime, no waiting.

use bank::account::{Account, AccountAction, AccountReducer, Refusal};
use composable_rust::prelude::*;

fn opened_by_ada() -> Account {
    Account {
        owner: Some("Ada".into()),
        ..Account::default()
    }
}

#[test]
fn a_deposit_adds_to_the_balance() {
    let mut account = opened_by_ada();

    let effects = AccountReducer.reduce(&mut account, AccountAction::Deposit { amount: 100 }, &());

    assert!(effects.is_empty());
    assert_eq!(account.balance, 100);
    assert_eq!(account.refused, None);
}

#[test]
fn an_overdraft_is_refused_and_changes_nothing() {
    let mut account = opened_by_ada();
    AccountReducer.reduce(&mut account, AccountAction::Deposit { amount: 50 }, &());

    AccountReducer.reduce(&mut account, AccountAction::Withdraw { amount: 80 }, &());

    assert_eq!(account.balance, 50);
    assert_eq!(
        account.refused,
        Some(Refusal::InsufficientFunds {
            balance: 50,
            requested: 80
        })
    );
}

#[test]
fn nothing_happens_to_an_account_that_was_never_opened() {
    let mut account = Account::default();

    AccountReducer.reduce(&mut account, AccountAction::Deposit { amount: 10 }, &());

    assert_eq!(account.balance, 0);
    assert_eq!(account.refused, Some(Refusal::NotOpen));
}
