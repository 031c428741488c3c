//! # composable-rust-postgres
//!
//! PostgreSQL backends for Composable Rust: [`PostgresEventStore`], an
//! [`EventStore`](composable_rust_core::EventStore) that passes the same
//! conformance suite as the in-memory store, and
//! [`PostgresProjectionStore`], where projections keep their read models,
//! checkpoints and dead letters, committed together (exactly once), on the
//! event store's database or a separate read database (see the
//! [`projection`] module).
//!
//! ```no_run
//! use composable_rust_core::{EventStore, ExpectedVersion, NewEvent, StreamId};
//! use composable_rust_postgres::PostgresEventStore;
//!
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! // Your pool, with your options (or PostgresEventStore::connect(url)).
//! let pool = sqlx::PgPool::connect("postgres://postgres@localhost:5432/postgres").await?;
//! let store = PostgresEventStore::new(pool).with_schema("shop")?;
//! store.migrate().await?; // once at startup: creates the schema and tables
//!
//! let stream = StreamId::for_aggregate("order", 42)?;
//! let event = NewEvent::new("order.placed", serde_json::json!({ "total": 1250 }));
//! store.append(&stream, ExpectedVersion::NoStream, vec![event]).await?;
//! let events = store.load_stream(&stream, 0).await?;
//! # Ok(())
//! # }
//! ```
//!
//! ## Schema and migrations
//!
//! The tables (`events`, `snapshots`) live in one schema,
//! [`DEFAULT_SCHEMA`] (`composable_rust`) unless you pass another to
//! [`PostgresEventStore::with_schema`]. Schema names are validated
//! (`^[a-z_][a-z0-9_]{0,55}$`, not `pg_...`; otherwise `CR-E0101`), and
//! they are the only text ever spliced into SQL.
//!
//! The migrations in this crate's `migrations/` folder are embedded with
//! `sqlx::migrate!` and run only when you call
//! [`PostgresEventStore::migrate`]. Until then every operation fails with
//! `CR-E0103`, which tells you to call it.
//!
//! ## Appending
//!
//! An append is one SQL statement, so one round trip and one transaction,
//! whatever the batch size: it reads the stream's version, compares it
//! with the expected one and inserts every event, all in the database. On
//! a conflict nothing is written and the error names the actual version.
//! Two writers racing for the same version are stopped by the primary key
//! on `(stream_id, stream_version)`; an `ExpectedVersion::Any` append that
//! loses such a race runs again (as often as it takes), so it always
//! appends. Where the stream cannot be behind the version appended after
//! (a new stream, a [`KnownVersion`](composable_rust_core::event_store::KnownVersion)
//! through [`EventStore::append_after`](composable_rust_core::EventStore::append_after),
//! a command's append right after its own replay), the statement skips
//! reading the stream's version and the primary key alone catches a
//! conflict.
//!
//! An append accepts only events that read back: payloads and metadata
//! nested at most 64 levels deep, without NUL characters, and at most
//! 16 MiB of JSON each (see
//! [`check_storable`](composable_rust_core::event::check_storable) and
//! [`PostgresEventStore::with_max_payload_bytes`]). Anything else, and
//! anything PostgreSQL itself refuses in a payload, fails with
//! `EventStoreError::UnstorablePayload` (`CR-E0019`) and writes nothing.
//!
//! ## Loading aggregates
//!
//! [`replay`](composable_rust_core::EventStore::replay), which the
//! `AggregateRepository` loads aggregates with, is one statement: the
//! stream's snapshot (of the wanted state version) and the events after
//! it, only the columns rebuilding needs (version, type, schema version,
//! payload as JSON text). Each row is handed over as it arrives, its
//! payload decoded straight into the event type, so reading and decoding
//! overlap. [`load_stream`](composable_rust_core::EventStore::load_stream)
//! still returns complete `StoredEvent`s, every column checked.
//!
//! ## Connection pool
//!
//! [`PostgresEventStore::pool_options`] are the pool options the store
//! recommends, and [`PostgresEventStore::connect`] uses them: sqlx's
//! defaults, except that a connection is pinged before it is handed out
//! only after sitting idle for [`PING_AFTER_IDLE`] (sqlx pings on every
//! acquire by default, one more round trip per statement). Build your own
//! pool from them: `PostgresEventStore::pool_options().max_connections(20)`.
//!
//! ## Corrupt rows
//!
//! Rows are decoded one at a time. A row that does not make an event (its
//! JSON edited by hand into something that does not decode, a payload
//! nested deeper than serde_json reads...) never fails the rows around it:
//! `read_all` returns the events before it, then reports it alone as
//! `EventStoreError::CorruptEvent` (`CR-E0018`, with its position and raw
//! content), and reading after its position goes on; a projection manager
//! turns it into a dead letter and moves past it. `load_stream` of its
//! stream fails with the same error, since an aggregate cannot skip an
//! event.
//!
//! ## No skipped events
//!
//! An event's [`Position`](composable_rust_core::Position) is
//! `(commit, sequence)`: the id of the transaction that wrote it (`xid8`)
//! and a sequence number. [`read_all`](composable_rust_core::EventStore::read_all)
//! returns only events of transactions older than the oldest one still in
//! flight, in `(commit, sequence)` order. Everything it returns is final,
//! and every event that commits later sorts after it, so a reader that
//! remembers its last position never misses an event, even though
//! concurrent transactions commit out of order. Ordering by a plain
//! sequence would: see the documentation of the `read_all` statement in
//! `src/sql.rs` for the full argument, and the `gaps` tests for the proof.
//!
//! The price: transaction ids are server-wide, so a *writing* transaction
//! that stays open anywhere on the server holds readers back (never
//! writers) until it ends. When committed events are held back, `read_all`
//! waits up to 1 s for the horizon to pass (ordinary appends finish
//! well within that, so a read right after your own append sees it), then
//! returns what is final and wakes subscribers again shortly after, since
//! the transaction holding the horizon may end without any notification.
//! Keep writing transactions short.
//!
//! A page of 1,000 events or more is read with the same statement inside
//! one binary `COPY ... TO STDOUT`, decoded here as the rows arrive (about
//! twice the rate for catch-ups and blue/green rebuilds); a page that comes
//! back short then asks whether events exist after it, and waits for the
//! horizon as above if they do.
//!
//! Because positions are transaction ids, events copied to another server
//! by a logical dump and restore keep the old server's ids, which may lie
//! ahead of the new server's: readers would never return them. `migrate`,
//! the first `read_all` and the first `append` detect this and fail with
//! [`PostgresError::TransactionIdsAhead`] (`CR-E0114`); move event stores
//! with physical replication or `pg_basebackup`, or renumber the positions
//! (the book's runbook, "Moving an event store between servers").
//!
//! ## Following new events
//!
//! Every insert into `events` notifies the channel `<schema>_events` (a
//! trigger, so it fires whoever writes). [`subscribe`](composable_rust_core::EventStore::subscribe)
//! returns a watch receiver that is bumped after this store's own appends
//! and, through a LISTEN task spawned by the first `subscribe()` (on its
//! own connection; reconnecting on failure), after anyone else's. A bump
//! means "read again".
//!
//! ## Errors
//!
//! Constructors and `migrate` return [`PostgresError`]; the
//! [`EventStore`](composable_rust_core::EventStore) methods return
//! `EventStoreError::Backend` with the same code and message; the
//! projection store's trait methods return `ProjectionError::Backend`
//! likewise. The codes (`CR-E0101` to `CR-E0114`) are listed in [`codes`].
#![deny(missing_docs)]

mod append;
mod append_streams;
mod copy_read;
pub mod error;
mod health;
mod inspect;
mod notify;
pub mod partition;
pub mod projection;
mod read;
mod rows;
mod schema;
mod snapshot;
mod sql;
mod store;

pub use error::{PostgresError, codes, sqlstate_class};
pub use health::PostgresHealthCheck;
pub use inspect::{SchemaStatus, StreamSummary};
pub use partition::{PartitionLeases, PartitionedWorker};
pub use projection::{
    BlueGreen, BlueGreenError, Document, DocumentQuery, DocumentTable, PostgresProjectionStore,
    PostgresProjectionTx, SortOrder, StoredCheckpoint, Switched, Version, VersionState, sql_error,
};
pub use schema::DEFAULT_SCHEMA;
pub use store::{MAX_JSONB_BYTES, PING_AFTER_IDLE, PostgresEventStore};
