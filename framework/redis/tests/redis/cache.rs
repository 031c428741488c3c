//! The cache API, directly and as the core's `ProjectionCache` behind a
//! `CachedProjectionStore`.

use std::time::Duration;

use composable_rust_core::InMemoryProjectionStore;
use composable_rust_core::projection::{
    CacheMode, CachedProjectionStore, ProjectionCache, ProjectionStore,
};

use super::support::{fresh_store, fresh_store_with};

#[tokio::test]
async fn cache_entries_are_set_read_expired_and_deleted() {
    let store = fresh_store().await;
    assert_eq!(store.cache_get("a").await.unwrap(), None);
    store.cache_set("a", b"1", None).await.unwrap();
    store.cache_set("list:1", b"x", None).await.unwrap();
    store
        .cache_set("list:2", b"y", Some(Duration::from_secs(30)))
        .await
        .unwrap();
    assert_eq!(store.cache_get("a").await.unwrap(), Some(b"1".to_vec()));
    assert_eq!(
        ProjectionStore::get(&*store, "a").await.unwrap(),
        None,
        "not a read-model key"
    );

    store.cache_delete("a").await.unwrap();
    store.cache_delete("a").await.unwrap();
    assert_eq!(store.cache_get("a").await.unwrap(), None);
    assert_eq!(store.cache_delete_prefix("list:").await.unwrap(), 2);
    assert_eq!(store.cache_get("list:1").await.unwrap(), None);

    store
        .cache_set("short", b"x", Some(Duration::from_millis(50)))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(store.cache_get("short").await.unwrap(), None, "expired");
}

#[tokio::test]
async fn a_store_default_ttl_applies_to_cache_entries_without_one() {
    let store =
        fresh_store_with(|options| options.with_default_ttl(Duration::from_millis(50))).await;
    store.cache_set("k", b"v", None).await.unwrap();
    assert_eq!(store.cache_get("k").await.unwrap(), Some(b"v".to_vec()));
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(store.cache_get("k").await.unwrap(), None);
}

#[tokio::test]
async fn redis_caches_a_primary_store_write_through() {
    let redis = fresh_store().await;
    let primary = InMemoryProjectionStore::new();
    let store = CachedProjectionStore::new(
        primary.clone(),
        redis.store.clone(),
        CacheMode::WriteThrough,
    )
    .with_ttl(Duration::from_secs(60));

    store.save("order:1", b"v1").await.unwrap();
    assert_eq!(
        redis.cache_get("order:1").await.unwrap(),
        Some(b"v1".to_vec())
    );
    assert_eq!(
        ProjectionStore::get(&store, "order:1").await.unwrap(),
        Some(b"v1".to_vec())
    );
    assert_eq!(store.stats().hits, 1);

    let mut tx = store.begin().await.unwrap();
    composable_rust_core::projection::ProjectionTx::delete_prefix(&mut tx, "order:")
        .await
        .unwrap();
    store.commit(tx).await.unwrap();
    assert_eq!(redis.cache_get("order:1").await.unwrap(), None);
    assert_eq!(ProjectionStore::get(&store, "order:1").await.unwrap(), None);
}
