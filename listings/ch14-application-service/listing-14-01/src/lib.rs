//! Listing 14-1: the bridge between the two halves of the framework.
//!
//! - [`account`]: a bank account as an event-sourced aggregate;
//! - [`summaries`]: the account summaries read model, kept by a projection;
//! - [`failure`]: why a command or query failed, as plain data;
//! - [`teller`]: the aggregate run inside a `Store`: a reducer whose effect
//!   executes the command through an `AggregateRepository` and feeds the
//!   result back as an action;
//! - [`resident`]: an account whose state lives in the store, decided in
//!   the reducer and appended by an effect (`append_events`);
//! - [`service`]: an HTTP-style service: command, repository, projection,
//!   `wait_for`, query, response, with errors mapped to statuses by class.
//!
//! Everything runs on the in-memory stores; listing 14-2 runs the same
//! service on PostgreSQL.

pub mod account;
pub mod failure;
pub mod resident;
pub mod service;
pub mod summaries;
pub mod teller;
