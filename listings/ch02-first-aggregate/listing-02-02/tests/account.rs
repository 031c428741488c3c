//! The account's rules and its hold timer: single steps with ReducerTest,
//! whole flows (effects included) with TestStore.

use std::time::Duration;

use bank::account::{Account, AccountAction, AccountEnvironment, AccountReducer, Refusal};
use composable_rust::prelude::*;
use composable_rust::testing::{assert_delayed_action, assert_no_effects};

const HOLD: Duration = Duration::from_secs(24 * 60 * 60);

fn env() -> AccountEnvironment {
    AccountEnvironment { hold: HOLD }
}

fn opened_by_ada() -> Account {
    Account {
        owner: Some("Ada".into()),
        ..Account::default()
    }
}

#[test]
fn a_deposit_is_held_and_its_clearing_scheduled() {
    ReducerTest::new(AccountReducer, env())
        .given_state(opened_by_ada())
        .when_action(AccountAction::Deposit { amount: 100 })
        .then_state(|account| {
            assert_eq!(account.on_hold, 100);
            assert_eq!(account.balance, 0);
        })
        .then_effects(|effects| {
            assert_delayed_action(effects, HOLD, &AccountAction::Cleared { amount: 100 });
        })
        .run();
}

#[test]
fn an_overdraft_is_refused_without_effects() {
    ReducerTest::new(AccountReducer, env())
        .given_state(opened_by_ada())
        .when_action(AccountAction::Withdraw { amount: 80 })
        .then_state(|account| {
            assert_eq!(
                account.refused,
                Some(Refusal::InsufficientFunds {
                    balance: 0,
                    requested: 80
                })
            );
        })
        .then_effects(|effects| assert_no_effects(effects))
        .run();
}

#[tokio::test]
async fn a_deposit_can_be_withdrawn_once_it_cleared() {
    let mut store = TestStore::new(opened_by_ada(), AccountReducer, env());

    store
        .send(AccountAction::Deposit { amount: 100 }, |account| {
            account.on_hold = 100;
        })
        .await;
    store
        .send(AccountAction::Withdraw { amount: 30 }, |account| {
            account.refused = Some(Refusal::InsufficientFunds {
                balance: 0,
                requested: 30,
            });
        })
        .await;

    // A day passes in no time: the store's clock is a TestClock.
    store.advance(HOLD).await;
    store
        .receive(AccountAction::Cleared { amount: 100 }, |account| {
            account.on_hold = 0;
            account.balance = 100;
            account.refused = None; // every action resets the last refusal
        })
        .await;

    store
        .send(AccountAction::Withdraw { amount: 30 }, |account| {
            account.balance = 70;
        })
        .await;
    store.finish().await;
}

#[tokio::test]
#[should_panic(expected = "1 fed-back action(s) never asserted")]
async fn a_test_that_ignores_what_an_effect_sent_back_fails() {
    let mut store = TestStore::new(opened_by_ada(), AccountReducer, env());
    store
        .send(AccountAction::Deposit { amount: 100 }, |account| {
            account.on_hold = 100;
        })
        .await;
    store.advance(HOLD).await;
    // Forgot: store.receive(AccountAction::Cleared { amount: 100 }, ...)
    store.finish().await;
}
