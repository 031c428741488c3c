//! Listing 3-2: the bank app. Its state holds the state of each feature of
//! listing 3-1, its action wraps theirs, and its reducer is theirs, scoped
//! in and combined with the app's own rules.

use composable_rust::prelude::*;
use composable_rust::{Scope, combine, embed, scope};
use listing_03_01::accounts::{
    AccountsAction, AccountsEnvironment, AccountsReducer, AccountsState,
};
use listing_03_01::notifications::{
    NotificationsAction, NotificationsEnvironment, NotificationsReducer, NotificationsState,
};

// ANCHOR: app_types
/// The whole app's state: one field per feature, plus the app's own.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BankState {
    pub accounts: AccountsState,
    pub notifications: NotificationsState,
    /// The sum of all balances, for the dashboard: the app's own state.
    pub total_balance: u64,
}

/// Everything that can happen in the app: one variant per feature.
/// `#[child]` makes each variant the way to and from its feature's
/// actions: `From<AccountsAction> for BankAction` and
/// `TryFrom<BankAction> for AccountsAction` (and the same for
/// notifications), which `embed` below uses.
#[derive(Debug, Clone, PartialEq, Action)]
pub enum BankAction {
    #[child]
    Accounts(AccountsAction),
    #[child]
    Notifications(NotificationsAction),
}

/// Everything the app depends on: one field per feature.
#[derive(Debug, Clone)]
pub struct BankEnvironment {
    pub accounts: AccountsEnvironment,
    pub notifications: NotificationsEnvironment,
}
// ANCHOR_END: app_types

// ANCHOR: scope_accounts
/// The accounts feature, embedded in the app.
pub fn accounts() -> Scope<AccountsReducer, BankState, BankAction, BankEnvironment> {
    scope(
        AccountsReducer,
        // Where the child's state lives in the parent's.
        |state: &mut BankState| &mut state.accounts,
        // Which parent actions are the child's (the others are ignored).
        |action| match action {
            BankAction::Accounts(action) => Some(action),
            BankAction::Notifications(_) => None,
        },
        // How the actions the child's effects feed back are wrapped.
        BankAction::Accounts,
        // Where the child's dependencies live in the parent's.
        |env: &BankEnvironment| &env.accounts,
    )
}
// ANCHOR_END: scope_accounts

// ANCHOR: scope_notifications
/// The notifications feature, embedded in the app.
pub fn notifications() -> Scope<NotificationsReducer, BankState, BankAction, BankEnvironment> {
    // `scope` with the two action mappings taken from `#[child]`'s
    // conversions: only where the state and environment live is left.
    embed(
        NotificationsReducer,
        |state: &mut BankState| &mut state.notifications,
        |env: &BankEnvironment| &env.notifications,
    )
}
// ANCHOR_END: scope_notifications

// ANCHOR: rules
/// The app's own rules: what no single feature can decide, because it
/// involves two of them, or the app's own state.
#[derive(Debug)]
pub struct BankRules;

impl Reducer for BankRules {
    type State = BankState;
    type Action = BankAction;
    type Environment = BankEnvironment;

    fn reduce(
        &self,
        state: &mut BankState,
        action: BankAction,
        _env: &BankEnvironment,
    ) -> Effects<BankAction> {
        match action {
            // One feature announces, the app tells the other one.
            BankAction::Accounts(AccountsAction::BalanceLow { account, balance }) => {
                let text = format!("account {account} is low: {balance} left");
                vec![Effect::send(NotificationsAction::Notify { text }.into())]
            }
            // Reads the balances the accounts reducer has just changed.
            BankAction::Accounts(_) => {
                state.total_balance = state.accounts.balances.values().sum();
                Effects::new()
            }
            BankAction::Notifications(_) => Effects::new(),
        }
    }
}
// ANCHOR_END: rules

// ANCHOR: app
/// The app's reducer: both features, then the app's rules.
pub fn bank() -> impl Reducer<State = BankState, Action = BankAction, Environment = BankEnvironment>
{
    combine(combine(accounts(), notifications()), BankRules)
}
// ANCHOR_END: app
