//! The account: events, state, commands, and the rules in `decide`.

use composable_rust::prelude::*;
use serde::{Deserialize, Serialize};

// ANCHOR: account
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
pub enum AccountEvent {
    Opened { owner: String, overdraft_limit: u64 },
    Deposited { amount: u64 },
    Withdrawn { amount: u64 },
}

#[derive(Debug, Clone)]
pub enum AccountCommand {
    Open { owner: String, overdraft_limit: u64 },
    Deposit { amount: u64 },
    Withdraw { amount: u64 },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccountError {
    #[error("the account is already open")]
    AlreadyOpen,
    #[error("the account is not open")]
    NotOpen,
    #[error("amounts must be positive")]
    ZeroAmount,
    #[error("withdrawing {requested} would take the balance {balance} below -{limit}")]
    OverdraftLimitExceeded {
        balance: i64,
        requested: u64,
        limit: u64,
    },
}

/// The state: only what the rules need.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Account {
    pub open: bool,
    pub balance: i64,
    pub overdraft_limit: u64,
}

impl Account {
    /// How much can be withdrawn: the balance plus the overdraft.
    pub fn available(&self) -> i64 {
        self.balance + self.overdraft_limit as i64
    }
}

impl Aggregate for Account {
    const KIND: &'static str = "account";
    type Event = AccountEvent;
    type Command = AccountCommand;
    type Error = AccountError;
    type Environment = ();

    /// Decides: looks at the state and the command, returns the events.
    /// Pure: it writes nothing, calls nothing, and cannot half-succeed.
    fn decide(
        &self,
        command: AccountCommand,
        _env: &(),
    ) -> Result<Vec<AccountEvent>, AccountError> {
        use AccountCommand::*;
        match command {
            Open { .. } if self.open => Err(AccountError::AlreadyOpen),
            Open {
                owner,
                overdraft_limit,
            } => Ok(vec![AccountEvent::Opened {
                owner,
                overdraft_limit,
            }]),
            _ if !self.open => Err(AccountError::NotOpen),
            Deposit { amount: 0 } | Withdraw { amount: 0 } => Err(AccountError::ZeroAmount),
            Deposit { amount } => Ok(vec![AccountEvent::Deposited { amount }]),
            Withdraw { amount } if amount as i64 > self.available() => {
                Err(AccountError::OverdraftLimitExceeded {
                    balance: self.balance,
                    requested: amount,
                    limit: self.overdraft_limit,
                })
            }
            Withdraw { amount } => Ok(vec![AccountEvent::Withdrawn { amount }]),
        }
    }

    /// Applies one event: no rules here, the event already happened.
    fn apply(&mut self, event: &AccountEvent) {
        match event {
            AccountEvent::Opened {
                overdraft_limit, ..
            } => {
                self.open = true;
                self.overdraft_limit = *overdraft_limit;
            }
            AccountEvent::Deposited { amount } => self.balance += *amount as i64,
            AccountEvent::Withdrawn { amount } => self.balance -= *amount as i64,
        }
    }
}
// ANCHOR_END: account
