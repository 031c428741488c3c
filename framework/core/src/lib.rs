//! # composable-rust-core
//!
//! The core of Composable Rust: the five types every feature is built from,
//! and the runtime that drives them.
//!
//! | type | role |
//! |---|---|
//! | **State** | plain data owned by a [`Store`] |
//! | **Action** | what can happen: commands from outside, results fed back by effects |
//! | [`Reducer`] | a pure function `(state, action, environment) -> effects` that mutates state in place |
//! | [`Effect`] | a *value* describing work to do later (a future, a delay, a group, a cancellation) |
//! | **Environment** | the dependencies a reducer may use (clock, gateways, stores), injected so tests can replace them |
//!
//! The [`Store`] owns the state, runs the reducer for every action, runs the
//! effects it returns on tokio and feeds the actions they produce back in.
//! Reducers are combined and scoped with the tools in [`composition`].
//!
//! Most applications depend on the `composable-rust` facade crate instead of
//! this one and import `composable_rust::prelude::*`.
#![deny(missing_docs)]

// Lets the `#[coded_error]` expansion name `::composable_rust_core` here too.
extern crate self as composable_rust_core;

pub mod action;
pub mod aggregate;
pub mod clock;
pub mod composition;
pub mod effect;
pub mod environment;
pub mod error;
pub mod event;
pub mod event_bus;
pub mod event_store;
pub mod health;
pub mod metrics;
pub mod projection;
pub mod reducer;
pub mod resilience;
pub mod saga;
pub mod shutdown;
pub mod store;
pub mod trace;

pub use action::Action;
pub use aggregate::{Aggregate, AggregateRepository, AsOf, SnapshotPolicy};
pub use clock::{Clock, SystemClock, TestClock};
pub use composition::{Combine, Scope, combine, embed, scope};
pub use effect::{Effect, EffectId, EffectKind, Effects};
pub use error::{BackendError, CodedError, ErrorClass, ErrorCode, StoreError};
pub use event::{
    Event, EventMetadata, ExpectedVersion, NewEvent, Position, Snapshot, StoredEvent, StreamId,
    Upcasters,
};
pub use event_bus::{
    BusMessage, EventBus, EventBusError, EventPublisher, InMemoryEventBus, SubscribeOptions,
    Subscription, SubscriptionSource, Topic,
};
pub use event_store::{AppendOutcome, EventStore, EventStoreError, InMemoryEventStore};
pub use projection::{
    InMemoryProjectionStore, Projection, ProjectionError, ProjectionManager, ProjectionStore,
};
pub use reducer::Reducer;
pub use resilience::{Bulkhead, CircuitBreaker, ResilienceError};
pub use saga::{Saga, SagaError, SagaRuntime};
pub use store::{SendHandle, Store, StoreBuilder};

/// Internals the framework's own crates share (`composable-rust-testing`
/// runs effects and sagas the way the runtime does). Not part of the
/// public API: exempt from SemVer, may change in any release.
#[doc(hidden)]
pub mod __private {
    pub use crate::saga::instance::{Cause, Decision, SagaMessage, Transition, saga_stream_id};
    pub use crate::store::runner::{ActionSink, EffectRunner};
    /// serde, for the bounds `#[derive(Event)]` puts on generic events.
    pub use serde;
}
