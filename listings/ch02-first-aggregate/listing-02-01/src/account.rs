//! A bank account: what it knows (the state), what can happen to it (the
//! actions), and the reducer that decides what each action means.

use composable_rust::prelude::*;

/// What an account knows. Amounts are in cents.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Account {
    /// Who owns the account; `None` until it is opened.
    pub owner: Option<String>,
    /// The money that can be withdrawn.
    pub balance: u64,
    /// Why the last action was refused, if it was.
    pub refused: Option<Refusal>,
}

/// Why an action was refused.
#[derive(Debug, Clone, PartialEq)]
pub enum Refusal {
    AlreadyOpen,
    NotOpen,
    ZeroAmount,
    InsufficientFunds { balance: u64, requested: u64 },
}

/// Everything that can happen to an account.
#[derive(Debug, Clone, PartialEq)]
pub enum AccountAction {
    Open { owner: String },
    Deposit { amount: u64 },
    Withdraw { amount: u64 },
}

/// Decides what each action means for an account.
#[derive(Debug)]
pub struct AccountReducer;

impl Reducer for AccountReducer {
    type State = Account;
    type Action = AccountAction;
    type Environment = ();

    fn reduce(
        &self,
        account: &mut Account,
        action: AccountAction,
        _env: &(),
    ) -> Effects<AccountAction> {
        account.refused = check(account, &action).err();
        if account.refused.is_some() {
            return Effects::new();
        }
        match action {
            AccountAction::Open { owner } => account.owner = Some(owner),
            AccountAction::Deposit { amount } => account.balance += amount,
            AccountAction::Withdraw { amount } => account.balance -= amount,
        }
        Effects::new()
    }
}

/// The account's rules: `Err` says why `action` is refused.
fn check(account: &Account, action: &AccountAction) -> Result<(), Refusal> {
    match action {
        AccountAction::Open { .. } if account.owner.is_some() => Err(Refusal::AlreadyOpen),
        AccountAction::Open { .. } => Ok(()),
        _ if account.owner.is_none() => Err(Refusal::NotOpen),
        AccountAction::Deposit { amount: 0 } | AccountAction::Withdraw { amount: 0 } => {
            Err(Refusal::ZeroAmount)
        }
        AccountAction::Withdraw { amount } if *amount > account.balance => {
            Err(Refusal::InsufficientFunds {
                balance: account.balance,
                requested: *amount,
            })
        }
        AccountAction::Deposit { .. } | AccountAction::Withdraw { .. } => Ok(()),
    }
}
