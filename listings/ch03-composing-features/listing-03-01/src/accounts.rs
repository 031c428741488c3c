//! The accounts feature: balances, and the rule that they never go below
//! zero. It knows nothing about notifications, nor about the app it ends up
//! in.

use std::collections::BTreeMap;

use composable_rust::prelude::*;

// ANCHOR: types
/// What the accounts feature knows.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AccountsState {
    /// The balance of every open account, by account number.
    pub balances: BTreeMap<u32, u64>,
    /// Why the last action was refused, if it was.
    pub refused: Option<String>,
}

/// What can happen to accounts.
#[derive(Debug, Clone, PartialEq)]
pub enum AccountsAction {
    Open {
        account: u32,
    },
    Deposit {
        account: u32,
        amount: u64,
    },
    Withdraw {
        account: u32,
        amount: u64,
    },
    /// Sent by the feature itself (through an effect) when a withdrawal
    /// leaves a balance below the threshold. The feature does nothing with
    /// it: it is an announcement, for whoever embeds the feature.
    BalanceLow {
        account: u32,
        balance: u64,
    },
}

/// What the accounts feature depends on.
#[derive(Debug, Clone)]
pub struct AccountsEnvironment {
    /// A balance below this is announced with `BalanceLow`.
    pub low_balance_below: u64,
}
// ANCHOR_END: types

// ANCHOR: reducer
/// The rules of the accounts feature.
#[derive(Debug)]
pub struct AccountsReducer;

impl Reducer for AccountsReducer {
    type State = AccountsState;
    type Action = AccountsAction;
    type Environment = AccountsEnvironment;

    fn reduce(
        &self,
        state: &mut AccountsState,
        action: AccountsAction,
        env: &AccountsEnvironment,
    ) -> Effects<AccountsAction> {
        state.refused = None;
        match action {
            AccountsAction::Open { account } => {
                state.balances.entry(account).or_insert(0);
            }
            AccountsAction::Deposit { account, amount } => match state.balances.get_mut(&account) {
                Some(balance) => *balance += amount,
                None => state.refused = Some(format!("no account {account}")),
            },
            AccountsAction::Withdraw { account, amount } => {
                let Some(balance) = state.balances.get_mut(&account) else {
                    state.refused = Some(format!("no account {account}"));
                    return Effects::new();
                };
                if amount > *balance {
                    state.refused = Some(format!("account {account} has only {balance}"));
                    return Effects::new();
                }
                *balance -= amount;
                if *balance < env.low_balance_below {
                    let balance = *balance;
                    return vec![Effect::send(AccountsAction::BalanceLow {
                        account,
                        balance,
                    })];
                }
            }
            // An announcement: nothing to do here.
            AccountsAction::BalanceLow { .. } => {}
        }
        Effects::new()
    }
}
// ANCHOR_END: reducer

// ANCHOR: tests
#[cfg(test)]
mod tests {
    use super::*;
    use composable_rust::EffectKind;
    use composable_rust::testing::{assert_effects_count, assert_has_effect, assert_no_effects};

    fn env() -> AccountsEnvironment {
        AccountsEnvironment {
            low_balance_below: 50,
        }
    }

    fn with_account(balance: u64) -> AccountsState {
        AccountsState {
            balances: BTreeMap::from([(1, balance)]),
            refused: None,
        }
    }

    #[test]
    fn an_overdraft_is_refused() {
        ReducerTest::new(AccountsReducer, env())
            .given_state(with_account(30))
            .when_action(AccountsAction::Withdraw {
                account: 1,
                amount: 80,
            })
            .then_state(|state| {
                assert_eq!(state.balances[&1], 30);
                assert_eq!(state.refused.as_deref(), Some("account 1 has only 30"));
            })
            .then_effects(|effects| assert_no_effects(effects))
            .run();
    }

    #[test]
    fn a_low_balance_is_announced() {
        ReducerTest::new(AccountsReducer, env())
            .given_state(with_account(100))
            .when_action(AccountsAction::Withdraw {
                account: 1,
                amount: 80,
            })
            .then_state(|state| assert_eq!(state.balances[&1], 20))
            .then_effects(|effects| {
                assert_effects_count(effects, 1);
                assert_has_effect(effects, EffectKind::Future);
            })
            .run();
    }
}
// ANCHOR_END: tests
