//! The bank's own error codes (`BANK-E0001`..) and its two error types:
//! [`BankError`], a business rule that refused a command, and
//! [`ServiceError`], anything a [`Bank`](crate::Bank) operation can
//! return, which keeps a framework error's own `CR-` code.
//!
//! Every message says what happened and what to do. Every error means
//! that nothing was written: the rules are checked before the append.

use composable_rust::error::{ErrorCode, coded_error};
use composable_rust::saga::SagaError;
use composable_rust::{EventStoreError, ProjectionError};

/// The codes, declared in one place; the README lists them.
pub mod codes {
    use super::ErrorCode;

    /// An amount was zero or negative.
    pub const INVALID_AMOUNT: ErrorCode = ErrorCode::new("BANK-E0001", "invalid amount");
    /// An overdraft limit was negative.
    pub const INVALID_OVERDRAFT_LIMIT: ErrorCode =
        ErrorCode::new("BANK-E0002", "invalid overdraft limit");
    /// The account was never opened.
    pub const ACCOUNT_NOT_OPEN: ErrorCode = ErrorCode::new("BANK-E0003", "account not open");
    /// The account was opened before.
    pub const ACCOUNT_ALREADY_OPEN: ErrorCode =
        ErrorCode::new("BANK-E0004", "account already open");
    /// The account is closed.
    pub const ACCOUNT_CLOSED: ErrorCode = ErrorCode::new("BANK-E0005", "account closed");
    /// The withdrawal would go past the overdraft limit.
    pub const INSUFFICIENT_FUNDS: ErrorCode = ErrorCode::new("BANK-E0006", "insufficient funds");
    /// Closing an account whose balance is not zero.
    pub const BALANCE_NOT_ZERO: ErrorCode = ErrorCode::new("BANK-E0007", "balance not zero");
    /// A transfer step arrived after the transfer's deadline.
    pub const TRANSFER_EXPIRED: ErrorCode = ErrorCode::new("BANK-E0008", "transfer expired");
    /// A transfer from an account to itself.
    pub const SAME_ACCOUNT: ErrorCode =
        ErrorCode::new("BANK-E0009", "transfer to the same account");
    /// A transfer id used again for a different transfer.
    pub const TRANSFER_ID_REUSED: ErrorCode = ErrorCode::new("BANK-E0010", "transfer id reused");
    /// An account or transfer id with characters the bank does not accept.
    pub const INVALID_ID: ErrorCode = ErrorCode::new("BANK-E0011", "invalid id");
    /// A date range whose start is after its end.
    pub const INVALID_DATE_RANGE: ErrorCode = ErrorCode::new("BANK-E0012", "invalid date range");
}

/// A business rule refused the command; nothing was written. Retrying the
/// same command on the same account is refused again (permanent), unless
/// the account changes first (a deposit makes room for a withdrawal).
#[coded_error(crate = ::composable_rust::core)]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BankError {
    /// An amount of zero or less, or beyond a trillion.
    #[code(codes::INVALID_AMOUNT, permanent)]
    #[error(
        "the amount {amount} is not positive: amounts are whole cents above 0; send a positive amount"
    )]
    InvalidAmount {
        /// The amount sent, in cents.
        amount: i64,
    },
    /// A negative overdraft limit.
    #[code(codes::INVALID_OVERDRAFT_LIMIT, permanent)]
    #[error(
        "the overdraft limit {limit} is negative: it is the most the balance may go below zero, in cents; send 0 or more"
    )]
    InvalidOverdraftLimit {
        /// The limit sent, in cents.
        limit: i64,
    },
    /// The account does not exist yet.
    #[code(codes::ACCOUNT_NOT_OPEN, permanent)]
    #[error("account {account} is not open: check the account id, or open the account first")]
    AccountNotOpen {
        /// The account id.
        account: String,
    },
    /// Opening an account that exists.
    #[code(codes::ACCOUNT_ALREADY_OPEN, permanent)]
    #[error("account {account} is already open: choose another account id")]
    AccountAlreadyOpen {
        /// The account id.
        account: String,
    },
    /// The account was closed.
    #[code(codes::ACCOUNT_CLOSED, permanent)]
    #[error(
        "account {account} is closed: it accepts no more deposits, withdrawals or transfers; use another account"
    )]
    AccountClosed {
        /// The account id.
        account: String,
    },
    /// The withdrawal would take the balance below `-overdraft_limit`.
    #[code(codes::INSUFFICIENT_FUNDS, permanent)]
    #[error(
        "account {account} cannot pay {requested} cents: the balance is {balance} and the overdraft limit {overdraft_limit}, so at most {available} cents are available; deposit first or ask for less"
    )]
    InsufficientFunds {
        /// The account id.
        account: String,
        /// The balance, in cents.
        balance: i64,
        /// The overdraft limit, in cents.
        overdraft_limit: i64,
        /// The amount asked for, in cents.
        requested: i64,
        /// The most that can be taken out now, in cents.
        available: i64,
    },
    /// Only an account at zero can be closed.
    #[code(codes::BALANCE_NOT_ZERO, permanent)]
    #[error(
        "account {account} holds {balance} cents: only an account with a zero balance can be closed; withdraw or deposit the difference first"
    )]
    BalanceNotZero {
        /// The account id.
        account: String,
        /// The balance, in cents.
        balance: i64,
    },
    /// A transfer step arrived at or after the transfer's deadline: the
    /// transfer is being undone, so the step must not happen.
    #[code(codes::TRANSFER_EXPIRED, permanent)]
    #[error(
        "transfer {transfer} expired at {deadline}: its money is returned to the source; request a new transfer"
    )]
    TransferExpired {
        /// The transfer id.
        transfer: String,
        /// When it expired.
        deadline: chrono::DateTime<chrono::Utc>,
    },
    /// A transfer needs two different accounts.
    #[code(codes::SAME_ACCOUNT, permanent)]
    #[error("transfer from account {account} to itself: choose a different target account")]
    SameAccount {
        /// The account id.
        account: String,
    },
    /// The transfer id was used for another transfer.
    #[code(codes::TRANSFER_ID_REUSED, permanent)]
    #[error(
        "transfer id {transfer} was already used for a different transfer ({existing}): a transfer id names one transfer; use a new id"
    )]
    TransferIdReused {
        /// The transfer id.
        transfer: String,
        /// What the id was used for.
        existing: String,
    },
    /// Ids become stream ids, so the bank keeps them simple.
    #[code(codes::INVALID_ID, permanent)]
    #[error("the id {id:?} is not valid: ids are 1 to 64 ASCII letters, digits, '-' or '_'")]
    InvalidId {
        /// The id sent.
        id: String,
    },
    /// `from` after `to`.
    #[code(codes::INVALID_DATE_RANGE, permanent)]
    #[error("the date range {from} to {to} is empty: `from` must not be after `to`")]
    InvalidDateRange {
        /// The first day.
        from: chrono::NaiveDate,
        /// The last day.
        to: chrono::NaiveDate,
    },
}

/// What a [`Bank`](crate::Bank) or read-model operation can fail with: a
/// refused command (`BANK-` code), or a framework error, which keeps its
/// `CR-` code and class (transient ones can be retried).
#[coded_error(crate = ::composable_rust::core)]
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// A business rule refused the command; nothing was written.
    #[code(transparent)]
    #[error(transparent)]
    Refused(#[from] BankError),
    /// The event store failed; nothing was written.
    #[code(transparent)]
    #[error(transparent)]
    Store(#[from] EventStoreError),
    /// The saga runtime failed.
    #[code(transparent)]
    #[error(transparent)]
    Saga(#[from] SagaError),
    /// A read model failed.
    #[code(transparent)]
    #[error(transparent)]
    ReadModel(#[from] ProjectionError),
}

impl ServiceError {
    /// The business rule that refused the command, if that is what this is.
    pub fn refusal(&self) -> Option<&BankError> {
        match self {
            Self::Refused(refusal) => Some(refusal),
            _ => None,
        }
    }
}

/// Checks an account or transfer id: 1 to 64 ASCII letters, digits, `-`
/// or `_` (it becomes part of a stream id and of read-model keys).
pub fn check_id(id: &str) -> Result<(), BankError> {
    let valid = !id.is_empty()
        && id.len() <= 64
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if valid {
        Ok(())
    } else {
        Err(BankError::InvalidId { id: id.to_owned() })
    }
}
