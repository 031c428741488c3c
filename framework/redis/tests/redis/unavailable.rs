//! Redis unavailable: coded, helpful errors, and no call hangs.

use std::time::{Duration, Instant};

use composable_rust_core::projection::{
    CacheMode, CachedProjectionStore, ProjectionCheckpoint, ProjectionStore, ProjectionTx,
};
use composable_rust_core::{CodedError, InMemoryProjectionStore, ProjectionError};
use composable_rust_redis::{RedisConnectionSettings, RedisStoreError, RedisStoreOptions};
use composable_rust_testing::fixtures::TestSchema;

/// Nothing listens on port 1.
const CLOSED: &str = "redis://127.0.0.1:1";
/// Every call must give up well within this.
const BOUND: Duration = Duration::from_secs(10);

fn assert_unreachable(message: &str) {
    assert!(message.starts_with("[CR-E0203] "), "{message}");
    assert!(
        message.contains("127.0.0.1:1"),
        "names the address: {message}"
    );
    assert!(message.contains("is Redis running?"), "{message}");
    assert!(message.contains("REDIS_URL"), "{message}");
}

#[tokio::test]
async fn connecting_to_a_closed_port_fails_fast_with_a_coded_helpful_error() {
    let started = Instant::now();
    let result = tokio::time::timeout(
        BOUND,
        RedisStoreOptions::new("cr-test:closed")
            .unwrap()
            .connect(CLOSED),
    )
    .await
    .expect("connect gave up in time");
    let error = result.unwrap_err();
    assert!(
        matches!(error, RedisStoreError::Unreachable { .. }),
        "{error:?}"
    );
    assert_eq!(error.code().as_str(), "CR-E0203");
    assert_unreachable(&error.to_string());
    assert!(std::error::Error::source(&error).is_some());
    assert!(started.elapsed() < BOUND);
}

#[tokio::test]
async fn a_lazy_store_returns_transient_backend_errors_while_redis_is_down() {
    let store = RedisStoreOptions::new("cr-test:closed")
        .unwrap()
        .connect_lazy(CLOSED)
        .expect("a lazy store is built without connecting");

    let started = Instant::now();
    let error = tokio::time::timeout(BOUND, store.get("k"))
        .await
        .expect("in time")
        .unwrap_err();
    assert!(
        matches!(error, ProjectionError::Backend { .. }),
        "{error:?}"
    );
    assert!(
        error.is_transient(),
        "the manager retries it, never dead-letters"
    );
    assert_eq!(error.code().as_str(), "CR-E0203");
    assert_unreachable(&error.to_string());

    let mut tx = store.begin().await.unwrap();
    tx.save("k", b"v").await.unwrap();
    let error = tokio::time::timeout(BOUND, store.commit(tx))
        .await
        .expect("in time")
        .unwrap_err();
    assert_eq!(error.code().as_str(), "CR-E0203");
    let error = tokio::time::timeout(BOUND, store.load_position("p"))
        .await
        .expect("in time")
        .unwrap_err();
    assert_eq!(error.code().as_str(), "CR-E0203");
    assert!(started.elapsed() < BOUND);
}

#[tokio::test]
async fn an_invalid_url_is_a_coded_error_without_the_password() {
    let error = RedisStoreOptions::new("cr-test:x")
        .unwrap()
        .connect_lazy("http://user:hunter2@example")
        .unwrap_err();
    assert_eq!(error.code().as_str(), "CR-E0202");
    let message = error.to_string();
    assert!(message.starts_with("[CR-E0202] "), "{message}");
    assert!(!message.contains("hunter2"), "{message}");
}

#[tokio::test]
async fn a_cached_store_keeps_serving_from_its_primary_when_redis_is_down() {
    // Tuned for a cache: fail fast rather than wait for reconnects.
    let cache = RedisStoreOptions::new("cr-test:closed")
        .unwrap()
        .with_connection(
            RedisConnectionSettings::default()
                .with_reconnect_attempts(0)
                .with_connection_timeout(Duration::from_millis(100)),
        )
        .connect_lazy(CLOSED)
        .unwrap();
    let started = Instant::now();
    let primary = InMemoryProjectionStore::new();
    let store = CachedProjectionStore::new(primary, cache, CacheMode::WriteThrough);
    let work = async {
        store.save("k", b"v1").await.unwrap();
        assert_eq!(store.get("k").await.unwrap(), Some(b"v1".to_vec()));
        store.save("k", b"v2").await.unwrap();
        assert_eq!(store.get("k").await.unwrap(), Some(b"v2".to_vec()));
    };
    tokio::time::timeout(BOUND, work).await.expect("in time");
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    assert!(store.stats().errors > 0);
    assert_eq!(store.stats().hits, 0);
}

#[tokio::test]
async fn a_cached_store_keeps_serving_from_postgres_when_redis_is_down() {
    // Dropped last (declared first), after the store and its pool.
    let schema = TestSchema::new();
    let pool = sqlx::PgPool::connect(schema.url())
        .await
        .expect("PostgreSQL");
    let primary = composable_rust_postgres::PostgresProjectionStore::new(pool.clone())
        .with_schema(schema.name())
        .unwrap();
    primary.migrate().await.unwrap();
    let cache = RedisStoreOptions::new("cr-test:closed")
        .unwrap()
        .with_connection(
            RedisConnectionSettings::default()
                .with_reconnect_attempts(0)
                .with_connection_timeout(Duration::from_millis(100)),
        )
        .connect_lazy(CLOSED)
        .unwrap();
    let store = CachedProjectionStore::new(primary, cache, CacheMode::CacheAside);
    let work = async {
        store.save("order:1", b"placed").await.unwrap();
        assert_eq!(
            store.get("order:1").await.unwrap(),
            Some(b"placed".to_vec())
        );
        store.save("order:1", b"shipped").await.unwrap();
        assert_eq!(
            store.get("order:1").await.unwrap(),
            Some(b"shipped".to_vec())
        );
        store.delete("order:1").await.unwrap();
        assert_eq!(store.get("order:1").await.unwrap(), None);
    };
    let outcome = tokio::time::timeout(BOUND, work).await;
    outcome.expect("every read and write succeeds in time, from PostgreSQL");
    assert!(store.stats().errors > 0, "the cache failures are counted");
    assert_eq!(store.stats().hits, 0);
}
