//! The domain every framework in the comparison implements: a bank account
//! that can be opened, credited and debited, and may go below zero only
//! down to its overdraft limit.

pub mod account;
pub mod balances;
