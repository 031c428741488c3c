//! Isolated places on real servers for tests, benchmarks and examples,
//! each removed when its guard is dropped (even after a panic), so tests
//! run in parallel and leave nothing behind:
//!
//! - `TestSchema` (feature `postgres`): a uniquely named PostgreSQL
//!   schema, dropped with `CASCADE`;
//! - `TestDatabase` (feature `postgres`): a database of its own, for a
//!   test that needs a second database (a separate read side);
//! - `TestKeyPrefix` (feature `redis`): a unique Redis key prefix whose
//!   keys are deleted.
//!
//! The features are off by default, so `composable-rust-testing` (and the
//! facade's `testing` feature) pulls in neither sqlx nor redis-rs. Turn
//! them on where the fixtures are used, usually as a dev-dependency:
//!
//! ```toml
//! [dev-dependencies]
//! composable-rust-testing = { workspace = true, features = ["postgres", "redis"] }
//! ```
//!
//! Each guard reads its server's URL through [`services`](crate::services)
//! (`DATABASE_URL`, `REDIS_URL`), or takes one with `from_url`. Names are
//! generated (`cr_test_<uuid>`, `cr-test:<uuid>`) and checked before they
//! reach a statement; a schema or database name is double-quoted as well.
//!
//! Dropping a guard works inside and outside a tokio runtime: PostgreSQL
//! clean-up runs on a thread of its own with its own runtime and
//! connection (a `Drop` cannot await, and must not `block_on` the test's
//! runtime); Redis clean-up uses a plain blocking connection. Async code
//! that wants to clean up at a moment of its choosing, and see the error,
//! has async methods too (`TestSchema::drop_now`,
//! `TestKeyPrefix::clear`).

#[cfg(feature = "postgres")]
mod postgres;
#[cfg(feature = "redis")]
mod redis;

#[cfg(feature = "postgres")]
pub use self::postgres::{TestDatabase, TestSchema};
#[cfg(feature = "redis")]
pub use self::redis::TestKeyPrefix;
