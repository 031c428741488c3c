//! Why a command or query failed, as plain data.

use composable_rust::aggregate::RepositoryError;
use composable_rust::error::{ErrorClass, ErrorCode};
use composable_rust::prelude::*;

use crate::account::AccountError;

// ANCHOR: failure
/// Why a command or query failed; nothing was written. Plain data, so that
/// actions can carry it, tests can compare it, and the service can turn
/// it into a response.
#[derive(Debug, Clone, PartialEq)]
pub enum Failure {
    /// The account's rules refused the command.
    Refused(AccountError),
    /// A store failed. `class` says whether trying again can help.
    Store {
        code: ErrorCode,
        class: ErrorClass,
        message: String,
    },
}

impl Failure {
    /// Any error of the framework: its code, class and message.
    pub fn from_error(error: &dyn CodedError) -> Self {
        Self::Store {
            code: error.code(),
            class: error.class(),
            message: error.to_string(),
        }
    }
}

impl From<RepositoryError<AccountError>> for Failure {
    fn from(error: RepositoryError<AccountError>) -> Self {
        match error {
            RepositoryError::Rejected(reason) => Self::Refused(reason),
            RepositoryError::Store(error) => Self::from_error(&error),
        }
    }
}
// ANCHOR_END: failure
