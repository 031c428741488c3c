//! # composable-rust-testing
//!
//! Tools for testing Composable Rust features without a runtime, a
//! database or a real clock:
//!
//! - [`TestStore`]: drive a reducer action by action, asserting the exact
//!   state after each step and every action its effects feed back, in the
//!   manner of The Composable Architecture. It fails when an effect is still
//!   running or a fed-back action was never asserted.
//! - [`ReducerTest`]: a fluent given/when/then builder for a single reducer
//!   call, for tests that only care about state and the shape of effects.
//! - [`AggregateTest`]: given events, when a command, then events (or a
//!   refusal), for event-sourced aggregates.
//! - [`SagaTest`]: feed a saga inputs and let time pass on a test clock,
//!   asserting every command it sends (it fails on any left unasserted),
//!   its timeouts and how it ends.
//! - [`ProjectionTestHarness`]: given events, then the read model contains
//!   this; plus idempotency and rebuild checks.
//! - [`services`]: `DATABASE_URL` and `REDIS_URL` for tests, failing
//!   helpfully when unset.
//! - [`fixtures`]: a PostgreSQL schema or database, or a Redis key
//!   prefix, of a test's own, removed when dropped (features `postgres`
//!   and `redis`, off by default).
//! - one-line assertions on effects and state, such as
//!   [`assert_no_effects`], and on the events effects appended
//!   ([`assert_event_published`]).
//! - [`shape_lock`]: the event-shape lock, one recorded sample payload per
//!   event type and schema version in a checked-in folder; fails when an
//!   event's serialized shape changes without a version bump, and proves
//!   every recorded old payload still decodes into today's type.
//! - `snapshot` (feature `snapshot`): insta snapshots of a reducer's
//!   steps, an aggregate's events and a projection's read model.
//! - `strategies` and `properties` (feature `proptest`): proptest
//!   strategies for framework types, and ready-made properties: a
//!   reducer invariant, projection idempotency and rebuild equivalence,
//!   and crash-anywhere for a projection under the real manager.
//! - `prometheus` (feature `prometheus`): a real Prometheus process of a
//!   test's own, and the check that every panel of a Grafana dashboard
//!   has data.
//! - [`compose`]: a service's `docker-compose.yml`, read in tests (no
//!   Docker needed) to check it names every server and variable the code
//!   reads.
//! - [`event_store_conformance`]: the suite every event store must pass.
//! - [`event_bus_conformance`]: the suite every event bus must pass.
//! - [`faults`]: wrappers that make projection stores, event stores, event
//!   buses and saga dispatchers fail on purpose, with the error class a
//!   test chooses ([`faults::FaultyProjectionStore`],
//!   [`faults::FaultyEventStore`], [`faults::FaultyEventBus`],
//!   [`faults::FaultyDispatcher`]).
//!
//! Every item has one path: the test tools at the crate root, the suites,
//! fault injection, service URLs and fixtures in their modules. The clock tests
//! advance is core's `TestClock` (`composable_rust::TestClock`).
#![deny(missing_docs)]

mod aggregate_test;
mod assertions;
pub mod bench;
mod check_runtime;
pub mod compose;
mod diff;
pub mod event_bus_conformance;
pub mod event_store_conformance;
pub mod faults;
pub mod fixtures;
#[cfg(feature = "metrics")]
pub mod metrics;
mod projection_harness;
#[cfg(feature = "prometheus")]
pub mod prometheus;
#[cfg(feature = "proptest")]
pub mod properties;
mod reducer_test;
mod saga_test;
pub mod services;
pub mod shape_lock;
#[cfg(feature = "snapshot")]
pub mod snapshot;
#[cfg(feature = "proptest")]
pub mod strategies;
mod test_store;

/// insta, re-exported (feature `snapshot`): its assertion macros
/// (`insta::assert_json_snapshot!`) work through this path, so a test crate
/// needs no dependency of its own.
#[cfg(feature = "snapshot")]
pub use insta;
/// proptest, re-exported (feature `proptest`): `proptest::proptest!`,
/// `prop_assert!` and the strategies work through this path.
#[cfg(feature = "proptest")]
pub use proptest;

pub use aggregate_test::{AggregateOutcome, AggregateTest};
pub use assertions::{
    assert_delayed_action, assert_effect_type, assert_effects_count, assert_event_published,
    assert_has_effect, assert_no_effects, assert_state_changed, assert_state_unchanged,
};
pub use check_runtime::CHECK_DEADLINE;
pub use projection_harness::ProjectionTestHarness;
pub use reducer_test::ReducerTest;
pub use saga_test::SagaTest;
pub use test_store::TestStore;

/// The error codes owned by `composable-rust-testing`. They are only ever
/// reported by failures a test injects on purpose, never by a real
/// backend.
pub mod codes {
    composable_rust_core::error_codes! {
        /// A failure injected by a test through a [`faults`](crate::faults)
        /// wrapper (its class is the one the test asked for); not a real
        /// failure.
        FAULT_INJECTED = ("CR-E0099", "a failure injected on purpose by a test (fault injection)");
    }
}
