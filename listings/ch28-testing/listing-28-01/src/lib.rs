//! Listing 28-1: testing recipes.
//!
//! - [`invitations`]: a feature with a clock and a mailer in its
//!   environment, and a fake mailer that is a real in-memory
//!   implementation of the trait;
//! - [`replies`]: what a service answers when the event store fails;
//! - the tests: reducers, doubles, saga compensation and properties in
//!   the modules, integration tests on real services in `tests/`.

pub mod invitations;
pub mod replies;

#[cfg(test)]
mod properties;
#[cfg(test)]
mod sagas;
