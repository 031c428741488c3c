//! Integration tests of `RedisProjectionStore` against a real Redis, in one
//! test binary (one link) with a module per topic.
//!
//! They need `REDIS_URL`, e.g. `REDIS_URL=redis://127.0.0.1:6379`;
//! `ci/test` exports it (through `ci/start-services`). Each test works
//! under its own random key prefix and deletes its keys at the end, so
//! tests run in parallel and leave nothing behind.

mod redis {
    pub(crate) mod bus_support;
    pub(crate) mod support;

    mod blue_green;
    mod bus;
    mod bus_conformance;
    mod bus_reliability;
    mod cache;
    mod counters;
    mod idempotent;
    mod kv;
    mod manager;
    mod partial_failure;
    mod prefix;
    mod sorted_sets;
    mod ttl;
    mod unavailable;
}
