//! Environment conventions.
//!
//! An *environment* is a plain struct holding the dependencies a reducer
//! needs: a [`Clock`](crate::Clock), an id generator, an event store, a
//! payment gateway. Reducers receive it by reference and only *describe*
//! work with it; the effects they return do the actual calls.
//!
//! Conventions:
//!
//! - Hold each dependency behind a trait object (`Arc<dyn Clock>`), so the
//!   production environment and the test environment differ only in which
//!   implementations they plug in.
//! - Reducers read time only via `env.clock.now()`, never `Utc::now()`.
//! - Test doubles fail loudly: a double a test did not expect to be called
//!   panics with a message naming the dependency, rather than returning a
//!   default that hides a bug.
//!
//! ```
//! use std::sync::Arc;
//! use composable_rust_core::{Clock, SystemClock, TestClock};
//!
//! struct TodoEnvironment {
//!     clock: Arc<dyn Clock>,
//! }
//!
//! impl TodoEnvironment {
//!     fn live() -> Self {
//!         Self { clock: Arc::new(SystemClock) }
//!     }
//!
//!     fn test(clock: &TestClock) -> Self {
//!         Self { clock: Arc::new(clock.clone()) }
//!     }
//! }
//!
//! let clock = TestClock::new();
//! let env = TodoEnvironment::test(&clock);
//! assert_eq!(env.clock.now(), clock.now());
//! # let _ = TodoEnvironment::live();
//! ```
