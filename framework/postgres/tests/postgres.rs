//! Integration tests of `PostgresEventStore` and `PostgresProjectionStore`
//! against a real PostgreSQL,
//! in one test binary (one link) with a module per topic.
//!
//! They need `DATABASE_URL`, e.g.
//! `DATABASE_URL=postgres://postgres@localhost:5432/postgres`; `ci/test`
//! exports it (through `ci/start-services`). Each test works in its own
//! randomly named schema and drops it at the end, so tests run in parallel
//! and leave nothing behind.

mod postgres {
    pub(crate) mod support;

    pub(crate) mod projection_support;

    mod any_version;
    mod append_streams;
    mod conformance;
    mod corrupt_rows;
    mod errors;
    mod gaps;
    mod notify;
    mod projection_documents;
    mod projection_manager;
    mod projection_store;
    mod time_travel;
    mod transaction_ids;
}
