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
//! | `macros` (default) | the derives [`Event`](macro@Event) and [`Action`](macro@Action), re-exported here and in the prelude beside the traits of the same names |
//! | `testing` | [`testing`]: `TestStore`, `ReducerTest`, assertion helpers and the event-shape lock (enable it in `[dev-dependencies]`); implies `builders` |
//! | `snapshot` | `testing::snapshot` and `testing::insta`: insta snapshots of a reducer's steps, an aggregate's events, a read model; implies `testing` |
//! | `proptest` | `testing::strategies`, `testing::properties` and `testing::proptest`: strategies for framework types and ready-made properties; implies `testing` |
//! | `builders` | `bon`, re-exported: `#[derive(composable_rust::bon::Builder)]` test-data builders |
//! | `postgres` | [`postgres`]: `PostgresEventStore`, the event store in PostgreSQL; `PostgresProjectionStore`, exactly-once read models (key/value and queryable JSONB documents), in the same or a separate database |
//! | `redis` | [`redis`]: `RedisProjectionStore`, read models in Redis (TTLs, counters, sorted sets) and a cache for `CachedProjectionStore`; `RedisStreamsEventBus`, the event bus on Redis Streams |
//! | `kafka` | [`kafka`]: `KafkaEventBus`, the event bus on Apache Kafka, Redpanda or any Kafka-protocol broker |
//!
//! The Composable Rust Book teaches the framework from the first reducer to
//! production projections.
#![deny(missing_docs)]

pub use composable_rust_core as core;
// Everything the core exports, by the same name: a new core item is
// re-exported without anyone having to remember it (its `__private`
// internals come along, hidden and exempt from SemVer as in the core).
pub use composable_rust_core::*;

/// The attribute the framework's traits are implemented with
/// (`#[async_trait] impl Projection for ...`), re-exported so that an
/// application needs no dependency of its own for it (see ADR-016).
pub use async_trait::async_trait;

/// The derives (the `macros` feature, on by default): `#[derive(Event)]`
/// and `#[derive(Action)]`. Each shares its name with the trait it
/// implements, as serde's derives do: `use composable_rust::Event;` (or
/// the prelude) brings both.
#[cfg(feature = "macros")]
pub use composable_rust_macros::{Action, Event};

/// PostgreSQL backends (the `postgres` feature): `PostgresEventStore`,
/// `PostgresProjectionStore` and `DocumentTable`.
#[cfg(feature = "postgres")]
pub use composable_rust_postgres as postgres;

/// Redis backends (the `redis` feature): `RedisProjectionStore` and
/// `RedisStreamsEventBus`.
#[cfg(feature = "redis")]
pub use composable_rust_redis as redis;

/// The Kafka-protocol event bus (the `kafka` feature): `KafkaEventBus`
/// on Apache Kafka, Redpanda or any broker speaking the Kafka protocol.
#[cfg(feature = "kafka")]
pub use composable_rust_kafka as kafka;

/// OpenTelemetry: OTLP export of the framework's spans, W3C trace context
/// in event metadata (feature `otel`).
#[cfg(feature = "otel")]
pub use composable_rust_otel as otel;

/// Crates whose types appear in the framework's API (event ids, timestamps,
/// payloads), re-exported so that your code uses the same versions.
pub use {chrono, serde_json, uuid};

/// Test tools (the `testing` feature): `TestStore`, `ReducerTest`,
/// `AggregateTest`, `SagaTest`, `ProjectionTestHarness`, assertion helpers,
/// the event store conformance suite.
#[cfg(feature = "testing")]
pub use composable_rust_testing as testing;

/// [bon](https://bon-rs.com), re-exported (the `builders` feature, which
/// `testing` turns on): `#[derive(Builder)]` for test-data builders. bon's
/// generated code names its crate, so tell it the path:
/// `#[derive(composable_rust::bon::Builder)]` with
/// `#[builder(crate = ::composable_rust::bon)]`.
#[cfg(feature = "builders")]
pub use bon;

/// The traits (so that their methods resolve) and the few types almost
/// every feature names; everything else is imported by its path, e.g.
/// `use composable_rust::{AggregateRepository, InMemoryEventStore};`.
pub mod prelude {
    pub use composable_rust_core::event_bus::Subscription;
    pub use composable_rust_core::projection::{
        ProjectionCheckpoint, ProjectionStoreExt, ProjectionTx, ProjectionTxExt,
    };
    pub use composable_rust_core::saga::CommandDispatcher;
    pub use composable_rust_core::{
        Action, Aggregate, Clock, CodedError, Effect, Effects, Event, EventBus, EventStore,
        Projection, ProjectionStore, Reducer, Saga, Store, StoredEvent, StreamId,
    };

    pub use crate::async_trait;

    #[cfg(feature = "macros")]
    pub use composable_rust_macros::{Action, Event};

    #[cfg(feature = "testing")]
    pub use composable_rust_testing::{
        AggregateTest, ProjectionTestHarness, ReducerTest, SagaTest, TestStore,
    };
}
