//! Tests of the composed bank app (listing 3-2).

use std::collections::BTreeMap;

use composable_rust::prelude::*;
use composable_rust::testing::{assert_effects_count, assert_no_effects};
use composable_rust::{EffectKind, combine};
use listing_03_01::accounts::{AccountsAction, AccountsEnvironment, AccountsState};
use listing_03_01::notifications::{NotificationsAction, NotificationsEnvironment};
use listing_03_02::{
    BankAction, BankEnvironment, BankRules, BankState, accounts, bank, notifications,
};

// ANCHOR: env
fn env() -> BankEnvironment {
    BankEnvironment {
        accounts: AccountsEnvironment {
            low_balance_below: 50,
        },
        notifications: NotificationsEnvironment::default(),
    }
}

fn with_account(balance: u64) -> BankState {
    BankState {
        accounts: AccountsState {
            balances: BTreeMap::from([(1, balance)]),
            refused: None,
        },
        total_balance: balance,
        ..BankState::default()
    }
}
// ANCHOR_END: env

// ANCHOR: reducer_test
#[test]
fn a_withdrawal_changes_accounts_and_nothing_else() {
    ReducerTest::new(bank(), env())
        .given_state(with_account(100))
        .when_action(BankAction::Accounts(AccountsAction::Withdraw {
            account: 1,
            amount: 80,
        }))
        .then_state(|state| {
            assert_eq!(state.accounts.balances[&1], 20);
            assert_eq!(state.total_balance, 20);
            assert_eq!(state.notifications, Default::default());
        })
        // The accounts feature's `BalanceLow` announcement, mapped into a
        // `BankAction` by the scope.
        .then_effects(|effects| {
            assert_effects_count(effects, 1);
            assert_eq!(effects[0].kind(), EffectKind::Future);
        })
        .run();
}

#[test]
fn a_scoped_child_never_sees_another_features_actions() {
    ReducerTest::new(accounts(), env())
        .given_state(with_account(100))
        .when_action(BankAction::Notifications(NotificationsAction::Notify {
            text: "hello".into(),
        }))
        .then_state(|state| assert_eq!(*state, with_account(100)))
        .then_effects(|effects| assert_no_effects(effects))
        .run();
}
// ANCHOR_END: reducer_test

// ANCHOR: test_store
#[tokio::test]
async fn a_low_balance_notifies_the_customer() {
    let mut store = TestStore::new(with_account(100), bank(), env());
    let text = String::from("account 1 is low: 20 left");

    store
        .send(
            BankAction::Accounts(AccountsAction::Withdraw {
                account: 1,
                amount: 80,
            }),
            |state| {
                state.accounts.balances.insert(1, 20);
                state.total_balance = 20;
            },
        )
        .await;
    // The accounts feature announces the low balance...
    store
        .receive(
            BankAction::Accounts(AccountsAction::BalanceLow {
                account: 1,
                balance: 20,
            }),
            |_| {},
        )
        .await;
    // ...the app's rules turn it into a notification...
    store
        .receive(
            BankAction::Notifications(NotificationsAction::Notify { text: text.clone() }),
            |state| {
                state.notifications.last_id = 1;
                state.notifications.sending.insert(1, text.clone());
            },
        )
        .await;
    // ...and the notifications feature reports it delivered.
    store
        .receive(
            BankAction::Notifications(NotificationsAction::Delivered { id: 1 }),
            |state| {
                state.notifications.sending.clear();
                state.notifications.delivered = 1;
            },
        )
        .await;

    let outbox = store.environment().notifications.outbox.clone();
    store.finish().await;
    assert_eq!(outbox.sent(), [text]);
}
// ANCHOR_END: test_store

// ANCHOR: pitfalls
/// Combined the wrong way round, the rules run before the accounts
/// reducer and read the balances as they were before the action.
#[test]
fn rules_that_read_a_childs_state_must_run_after_the_child() {
    let rules_first = combine(BankRules, combine(accounts(), notifications()));
    ReducerTest::new(rules_first, env())
        .given_state(with_account(100))
        .when_action(BankAction::Accounts(AccountsAction::Deposit {
            account: 1,
            amount: 50,
        }))
        .then_state(|state| {
            assert_eq!(state.accounts.balances[&1], 150);
            assert_eq!(state.total_balance, 100); // one action behind
        })
        .run();
}

/// Without the app's rules, the announcement arrives and nobody acts on
/// it. The exhaustive TestStore makes that visible: the test has to
/// receive `BalanceLow`, and nothing follows it.
#[tokio::test]
async fn an_announcement_nobody_routes_goes_nowhere() {
    let features_only = combine(accounts(), notifications());
    let mut store = TestStore::new(with_account(100), features_only, env());
    store
        .send(
            BankAction::Accounts(AccountsAction::Withdraw {
                account: 1,
                amount: 80,
            }),
            |state| {
                state.accounts.balances.insert(1, 20);
                // No rules: nobody updates the total either.
            },
        )
        .await;
    store
        .receive(
            BankAction::Accounts(AccountsAction::BalanceLow {
                account: 1,
                balance: 20,
            }),
            |_| {},
        )
        .await;
    store.finish().await;
}
// ANCHOR_END: pitfalls
