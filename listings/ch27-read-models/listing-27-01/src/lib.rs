//! Listing 27-1: recipes for read models kept in PostgreSQL tables of
//! their own, and the queries that read them.
//!
//! - [`accounts`]: a table per read model, typed query functions, and the
//!   indexes they need;
//! - [`transfers`]: one projection joining two aggregates' events;
//! - [`daily`]: the state as of a day, from the events and from a
//!   temporal read model;
//! - [`activity`]: a column added to a live read model and filled by a
//!   rebuild request.
//!
//! The tests run on the `DATABASE_URL` server, each in a schema of its own
//! that is dropped when the test ends.

pub mod accounts;
pub mod activity;
pub mod daily;
pub mod transfers;

#[cfg(test)]
mod fixture;

/// `"schema".name`, a table in a projection store's schema. The schema was
/// validated when the store was built (`with_schema`), and `name` is a
/// constant of this crate, so the text is safe to put into SQL.
pub fn table(schema: &str, name: &'static str) -> String {
    format!("\"{schema}\".{name}")
}

/// The account number of an account's stream (`account-7` is 7), as the
/// `bigint` the tables store.
pub fn account_number(stream: &composable_rust::StreamId) -> Option<i64> {
    stream.as_str().strip_prefix("account-")?.parse().ok()
}
