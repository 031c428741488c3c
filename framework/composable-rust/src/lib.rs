//! # Composable Rust
//!
//! Event-sourced, CQRS backends built from five small types: **state**,
//! **actions**, pure **reducers**, **effects** as values, and an injected
//! **environment**, run by a **store**. This is the crate applications
//! depend on; it re-exports the framework's crates and offers a prelude:
//!
//! ```
//! use composable_rust::prelude::*;
//! ```
//!
//! Features:
//!
//! | feature | adds |
//! |---|---|
//! | `testing` | [`testing`]: `TestStore`, `ReducerTest` and assertion helpers (enable it in `[dev-dependencies]`) |
//! | `postgres` | [`postgres`]: `PostgresEventStore`, the event store in PostgreSQL; `PostgresProjectionStore`, exactly-once read models (key/value and queryable JSONB documents), in the same or a separate database |
//! | `redis` | [`redis`]: `RedisProjectionStore`, read models in Redis (TTLs, counters, sorted sets) and a cache for `CachedProjectionStore`; `RedisStreamsEventBus`, the event bus on Redis Streams |
//!
//! The Composable Rust Book teaches the framework from the first reducer to
//! production projections.
#![deny(missing_docs)]

pub use composable_rust_core as core;
pub use composable_rust_core::{
    Aggregate, AggregateRepository, AppendOutcome, BackendError, BusMessage, Clock, CodedError,
    Effect, EffectId, EffectKind, Effects, ErrorClass, ErrorCode, Event, EventBus, EventBusError,
    EventMetadata, EventPublisher, EventStore, EventStoreError, ExpectedVersion, InMemoryEventBus,
    InMemoryEventStore, InMemoryProjectionStore, NewEvent, Position, Projection, ProjectionError,
    ProjectionManager, ProjectionStore, Reducer, Saga, SagaError, SagaRuntime, SendHandle,
    Snapshot, SnapshotPolicy, Store, StoreError, StoredEvent, StreamId, SubscribeOptions,
    Subscription, SubscriptionSource, SystemClock, TestClock, Topic, Upcasters, aggregate, clock,
    combine, composition, effect, environment, error, event, event_bus, event_store, projection,
    reducer, saga, scope, store,
};

/// PostgreSQL backends (the `postgres` feature): `PostgresEventStore`,
/// `PostgresProjectionStore` and `DocumentTable`.
#[cfg(feature = "postgres")]
pub use composable_rust_postgres as postgres;

/// Redis backends (the `redis` feature): `RedisProjectionStore` and
/// `RedisStreamsEventBus`.
#[cfg(feature = "redis")]
pub use composable_rust_redis as redis;

/// Crates whose types appear in the framework's API (event ids, timestamps,
/// payloads), re-exported so that your code uses the same versions.
pub use {chrono, serde_json, uuid};

/// Test tools (the `testing` feature): `TestStore`, `ReducerTest`,
/// `AggregateTest`, `SagaTest`, `ProjectionTestHarness`, assertion helpers,
/// the event store conformance suite.
#[cfg(feature = "testing")]
pub use composable_rust_testing as testing;

/// The names almost every feature needs, in one import.
pub mod prelude {
    pub use composable_rust_core::projection::{
        ProjectionCheckpoint, ProjectionStoreExt, ProjectionTx, ProjectionTxExt,
    };
    pub use composable_rust_core::saga::{
        CommandDispatcher, DispatchError, Reaction, Routed, Saga, SagaCommand, SagaContext, SagaId,
        SagaRuntime, SagaSteps,
    };
    pub use composable_rust_core::{
        Aggregate, AggregateRepository, Clock, CodedError, Effect, EffectId, EffectKind, Effects,
        Event, EventStore, ExpectedVersion, InMemoryEventStore, InMemoryProjectionStore,
        Projection, ProjectionError, ProjectionManager, ProjectionStore, Reducer, SnapshotPolicy,
        Store, StoredEvent, StreamId, SystemClock, TestClock, combine, scope,
    };

    #[cfg(feature = "testing")]
    pub use composable_rust_testing::{
        AggregateTest, ProjectionTestHarness, ReducerTest, SagaTest, TestStore,
        assert_delayed_action, assert_effects_count, assert_has_effect, assert_no_effects,
        assert_state_changed, assert_state_unchanged,
    };
}
