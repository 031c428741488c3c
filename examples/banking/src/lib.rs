//! # Banking: a reference application
//!
//! Bank accounts with overdraft limits, transfers between them carried
//! out by a saga (with compensation and a deadline), and three read
//! models, on PostgreSQL and Redis. Read it in this order:
//!
//! 1. [`error`]: the bank's error codes (`BANK-E0001`..);
//! 2. [`account`]: the `Account` aggregate and its rules;
//! 3. [`transfer`]: how a transfer is requested, the [`TransferSaga`]
//!    that runs it, and the [`Teller`] that executes its commands;
//! 4. [`bank`]: the write side wired together;
//! 5. [`read_models`]: balances, statements and daily totals;
//! 6. `src/main.rs`: a scenario that runs all of it.
//!
//! The README maps each framework feature to where it is used.

pub mod account;
pub mod bank;
pub mod error;
pub mod read_models;
pub mod transfer;

pub use account::{Account, AccountCommand, AccountEvent, Movement};
pub use bank::{Bank, TransferStatus};
pub use error::{BankError, ServiceError};
pub use read_models::{ReadModelSettings, ReadModels};
pub use transfer::saga::TransferSaga;
pub use transfer::teller::Teller;
pub use transfer::{Requested, TransferRequest};

/// Formats cents as `1234.56` (with a `-` for negative amounts).
pub fn money(cents: i64) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    let cents = cents.unsigned_abs();
    format!("{sign}{}.{:02}", cents / 100, cents % 100)
}

/// `whole` euros in cents: `euros(120)` is 12 000 cents.
pub const fn euros(whole: i64) -> i64 {
    whole * 100
}
