//! The `Account` aggregate: a bank account as a stream of events
//! (`account-{id}`), with its rules.
//!
//! - open with an owner and an overdraft limit (0 or more);
//! - deposit and withdraw positive amounts of cents; a withdrawal may take
//!   the balance below zero, but never below `-overdraft_limit`;
//! - close, only at a zero balance;
//! - the three steps a transfer takes on an account (debit, credit,
//!   refund), each **idempotent by transfer id**: the account remembers
//!   which transfers it saw, so a step delivered twice moves money once.
//!   Debits and credits carry the transfer's deadline and are refused at
//!   or after it, which is what makes a timed-out transfer safe to undo
//!   (see [`crate::transfer`]).
//!
//! The events are fat: each carries the account id, the balance after it
//! and what caused it ([`Movement`]), so the read models need nothing but
//! the event.

use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use composable_rust::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{BankError, check_id};

/// What caused a deposit or a withdrawal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Movement {
    /// Cash at the counter.
    Cash,
    /// Money leaving for another account.
    TransferOut {
        /// The transfer.
        transfer_id: String,
        /// The target account.
        to: String,
    },
    /// Money arriving from another account.
    TransferIn {
        /// The transfer.
        transfer_id: String,
        /// The source account.
        from: String,
    },
    /// A transfer undone: its money back to the source.
    Refund {
        /// The transfer.
        transfer_id: String,
    },
}

impl Movement {
    /// The transfer this movement belongs to, if any.
    pub fn transfer_id(&self) -> Option<&str> {
        match self {
            Self::Cash => None,
            Self::TransferOut { transfer_id, .. }
            | Self::TransferIn { transfer_id, .. }
            | Self::Refund { transfer_id } => Some(transfer_id),
        }
    }

    /// A line of a statement describing it.
    pub fn describe(&self) -> String {
        match self {
            Self::Cash => "cash".to_owned(),
            Self::TransferOut { transfer_id, to } => format!("transfer {transfer_id} to {to}"),
            Self::TransferIn { transfer_id, from } => {
                format!("transfer {transfer_id} from {from}")
            }
            Self::Refund { transfer_id } => format!("refund of transfer {transfer_id}"),
        }
    }
}

/// What happens to an account. Past tense: facts, never refused.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
pub enum AccountEvent {
    /// The account was opened.
    #[serde(rename = "account.opened")]
    Opened {
        /// The account id.
        account_id: String,
        /// Who owns it.
        owner: String,
        /// How far below zero the balance may go, in cents.
        overdraft_limit: i64,
        /// When, on the bank's clock.
        at: DateTime<Utc>,
    },
    /// Money came in.
    #[serde(rename = "account.deposited")]
    Deposited {
        /// The account id.
        account_id: String,
        /// How much, in cents (always positive).
        amount: i64,
        /// The balance afterwards, in cents.
        balance: i64,
        /// Why.
        movement: Movement,
        /// When, on the bank's clock.
        at: DateTime<Utc>,
    },
    /// Money went out.
    #[serde(rename = "account.withdrawn")]
    Withdrawn {
        /// The account id.
        account_id: String,
        /// How much, in cents (always positive).
        amount: i64,
        /// The balance afterwards, in cents.
        balance: i64,
        /// Why.
        movement: Movement,
        /// When, on the bank's clock.
        at: DateTime<Utc>,
    },
    /// The account was closed.
    #[serde(rename = "account.closed")]
    Closed {
        /// The account id.
        account_id: String,
        /// When, on the bank's clock.
        at: DateTime<Utc>,
    },
}

/// Where an account stands.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Status {
    /// Never opened.
    #[default]
    New,
    /// Open.
    Open,
    /// Closed.
    Closed,
}

/// What an account knows: only what its rules need.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    /// The account id (empty until opened).
    pub id: String,
    /// Who owns it.
    pub owner: String,
    /// How far below zero the balance may go, in cents.
    pub overdraft_limit: i64,
    /// The balance, in cents; may be negative, down to `-overdraft_limit`.
    pub balance: i64,
    /// Open, closed, or never opened.
    pub status: Status,
    /// Transfers this account paid out (debits), by id.
    pub debited: BTreeSet<String>,
    /// Transfers this account received (credits), by id.
    pub credited: BTreeSet<String>,
    /// Transfers whose debit was refunded to this account, by id.
    pub refunded: BTreeSet<String>,
}

/// What an account can be asked to do. Imperative: may be refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccountCommand {
    /// Open the account.
    Open {
        /// The account id (becomes the stream id `account-{id}`).
        account_id: String,
        /// Who owns it.
        owner: String,
        /// How far below zero the balance may go, in cents (0 or more).
        overdraft_limit: i64,
    },
    /// Cash in.
    Deposit {
        /// Cents, above 0.
        amount: i64,
    },
    /// Cash out.
    Withdraw {
        /// Cents, above 0.
        amount: i64,
    },
    /// Close the account (balance must be zero).
    Close,
    /// A transfer's first step: pay `amount` out to `to`.
    DebitTransfer {
        /// The transfer.
        transfer_id: String,
        /// The target account.
        to: String,
        /// Cents, above 0.
        amount: i64,
        /// Refused at or after this time.
        deadline: DateTime<Utc>,
    },
    /// A transfer's second step: receive `amount` from `from`.
    CreditTransfer {
        /// The transfer.
        transfer_id: String,
        /// The source account.
        from: String,
        /// Cents, above 0.
        amount: i64,
        /// Refused at or after this time.
        deadline: DateTime<Utc>,
    },
    /// A transfer's compensation: give back what its debit took. Does
    /// nothing if the debit never happened or was refunded already.
    RefundTransfer {
        /// The transfer.
        transfer_id: String,
        /// Cents, above 0.
        amount: i64,
    },
}

/// The account's environment: the bank's clock, for the time stamped on
/// each event and for transfer deadlines. Tests pass a `TestClock`.
pub type AccountEnvironment = Arc<dyn Clock>;

impl Account {
    fn require_open(&self) -> Result<(), BankError> {
        match self.status {
            Status::Open => Ok(()),
            Status::New => Err(BankError::AccountNotOpen {
                account: self.id.clone(),
            }),
            Status::Closed => Err(BankError::AccountClosed {
                account: self.id.clone(),
            }),
        }
    }

    /// The most that can be taken out now, in cents.
    pub fn available(&self) -> i64 {
        self.balance.saturating_add(self.overdraft_limit)
    }

    fn check_withdrawal(&self, amount: i64) -> Result<(), BankError> {
        check_amount(amount)?;
        // `balance - amount < -limit` written without a subtraction that
        // could overflow: the amount must fit in what is available.
        if amount > self.available() {
            return Err(BankError::InsufficientFunds {
                account: self.id.clone(),
                balance: self.balance,
                overdraft_limit: self.overdraft_limit,
                requested: amount,
                available: self.available().max(0),
            });
        }
        Ok(())
    }

    fn deposited(&self, amount: i64, movement: Movement, at: DateTime<Utc>) -> AccountEvent {
        AccountEvent::Deposited {
            account_id: self.id.clone(),
            amount,
            balance: self.balance + amount,
            movement,
            at,
        }
    }

    fn withdrawn(&self, amount: i64, movement: Movement, at: DateTime<Utc>) -> AccountEvent {
        AccountEvent::Withdrawn {
            account_id: self.id.clone(),
            amount,
            balance: self.balance - amount,
            movement,
            at,
        }
    }
}

/// Amounts are whole cents above zero; the cap keeps every balance far
/// from `i64` overflow (a trillion euros).
pub(crate) fn check_amount(amount: i64) -> Result<(), BankError> {
    const MAX: i64 = 100_000_000_000_000;
    if amount <= 0 || amount > MAX {
        return Err(BankError::InvalidAmount { amount });
    }
    Ok(())
}

fn check_deadline(
    transfer_id: &str,
    deadline: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<(), BankError> {
    if now >= deadline {
        return Err(BankError::TransferExpired {
            transfer: transfer_id.to_owned(),
            deadline,
        });
    }
    Ok(())
}

impl Aggregate for Account {
    const KIND: &'static str = "account";
    type Event = AccountEvent;
    type Command = AccountCommand;
    type Error = BankError;
    type Environment = AccountEnvironment;

    fn decide(
        &self,
        command: AccountCommand,
        clock: &AccountEnvironment,
    ) -> Result<Vec<AccountEvent>, BankError> {
        let now = clock.now();
        match command {
            AccountCommand::Open {
                account_id,
                owner,
                overdraft_limit,
            } => {
                check_id(&account_id)?;
                if self.status != Status::New {
                    return Err(BankError::AccountAlreadyOpen {
                        account: account_id,
                    });
                }
                if overdraft_limit < 0 {
                    return Err(BankError::InvalidOverdraftLimit {
                        limit: overdraft_limit,
                    });
                }
                Ok(vec![AccountEvent::Opened {
                    account_id,
                    owner,
                    overdraft_limit,
                    at: now,
                }])
            }
            AccountCommand::Deposit { amount } => {
                self.require_open()?;
                check_amount(amount)?;
                Ok(vec![self.deposited(amount, Movement::Cash, now)])
            }
            AccountCommand::Withdraw { amount } => {
                self.require_open()?;
                self.check_withdrawal(amount)?;
                Ok(vec![self.withdrawn(amount, Movement::Cash, now)])
            }
            AccountCommand::Close => {
                self.require_open()?;
                if self.balance != 0 {
                    return Err(BankError::BalanceNotZero {
                        account: self.id.clone(),
                        balance: self.balance,
                    });
                }
                Ok(vec![AccountEvent::Closed {
                    account_id: self.id.clone(),
                    at: now,
                }])
            }
            AccountCommand::DebitTransfer {
                transfer_id,
                to,
                amount,
                deadline,
            } => {
                // Delivered again: it happened once, and that is enough.
                if self.debited.contains(&transfer_id) {
                    return Ok(vec![]);
                }
                self.require_open()?;
                check_deadline(&transfer_id, deadline, now)?;
                self.check_withdrawal(amount)?;
                let movement = Movement::TransferOut { transfer_id, to };
                Ok(vec![self.withdrawn(amount, movement, now)])
            }
            AccountCommand::CreditTransfer {
                transfer_id,
                from,
                amount,
                deadline,
            } => {
                if self.credited.contains(&transfer_id) {
                    return Ok(vec![]);
                }
                self.require_open()?;
                check_deadline(&transfer_id, deadline, now)?;
                check_amount(amount)?;
                let movement = Movement::TransferIn { transfer_id, from };
                Ok(vec![self.deposited(amount, movement, now)])
            }
            AccountCommand::RefundTransfer {
                transfer_id,
                amount,
            } => {
                // Nothing was taken, or it was given back already.
                if !self.debited.contains(&transfer_id) || self.refunded.contains(&transfer_id) {
                    return Ok(vec![]);
                }
                check_amount(amount)?;
                // Deliberately allowed on a closed account: the money was
                // the customer's, and it must not vanish. (An account can
                // only be closed at zero, so this is rare.)
                Ok(vec![self.deposited(
                    amount,
                    Movement::Refund { transfer_id },
                    now,
                )])
            }
        }
    }

    fn apply(&mut self, event: &AccountEvent) {
        match event {
            AccountEvent::Opened {
                account_id,
                owner,
                overdraft_limit,
                ..
            } => {
                self.id.clone_from(account_id);
                self.owner.clone_from(owner);
                self.overdraft_limit = *overdraft_limit;
                self.status = Status::Open;
            }
            AccountEvent::Deposited {
                balance, movement, ..
            } => {
                self.balance = *balance;
                match movement {
                    Movement::TransferIn { transfer_id, .. } => {
                        self.credited.insert(transfer_id.clone());
                    }
                    Movement::Refund { transfer_id } => {
                        self.refunded.insert(transfer_id.clone());
                    }
                    Movement::Cash | Movement::TransferOut { .. } => {}
                }
            }
            AccountEvent::Withdrawn {
                balance, movement, ..
            } => {
                self.balance = *balance;
                if let Movement::TransferOut { transfer_id, .. } = movement {
                    self.debited.insert(transfer_id.clone());
                }
            }
            AccountEvent::Closed { .. } => self.status = Status::Closed,
        }
    }
}

/// The stream of account `id`: `account-{id}`.
pub fn account_stream(id: &str) -> Result<StreamId, composable_rust::EventStoreError> {
    StreamId::for_aggregate(Account::KIND, id)
}

/// A never-opened account does not know its own id (no event told it):
/// names it in the refusal, for the message.
pub fn name_account(refusal: BankError, id: &str) -> BankError {
    match refusal {
        BankError::AccountNotOpen { account } if account.is_empty() => BankError::AccountNotOpen {
            account: id.to_owned(),
        },
        other => other,
    }
}
