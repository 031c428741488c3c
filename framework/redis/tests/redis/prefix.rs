//! Key prefixes: stores under different prefixes share one Redis without
//! seeing each other; bad prefixes are refused with a coded error.

use composable_rust_core::projection::ProjectionCache;
use composable_rust_core::projection::{ProjectionCheckpoint, ProjectionStore, ProjectionTx};
use composable_rust_core::{CodedError, Position};
use composable_rust_redis::{RedisProjectionStore, RedisStoreError, RedisStoreOptions};

use composable_rust_testing::fixtures::TestKeyPrefix;

use super::support::store_under;

#[tokio::test]
async fn stores_under_different_prefixes_never_see_each_others_keys() {
    let outer = TestKeyPrefix::new();
    // A prefix that extends the other's: "{p}:" vs "{p:data}:".
    let b = store_under(outer.child("data"), |options| options).await;
    let a = store_under(outer, |options| options).await;

    for store in [&a, &b] {
        let mut tx = store.begin().await.unwrap();
        tx.save("x", store.prefix.as_str().as_bytes())
            .await
            .unwrap();
        tx.zadd("z", "m", 1.0).unwrap();
        store
            .save_position(&mut tx, "p", Position::new(1, 1))
            .await
            .unwrap();
        store.commit(tx).await.unwrap();
    }
    assert_eq!(
        a.get("x").await.unwrap(),
        Some(a.prefix.as_str().as_bytes().to_vec())
    );
    assert_eq!(
        b.get("x").await.unwrap(),
        Some(b.prefix.as_str().as_bytes().to_vec())
    );

    // Resetting a's whole read model and clearing it leave b alone.
    let mut tx = a.begin().await.unwrap();
    tx.delete_prefix("").await.unwrap();
    a.commit(tx).await.unwrap();
    a.clear().await.unwrap();
    assert!(a.prefix.keys().unwrap().is_empty());
    assert_eq!(
        b.get("x").await.unwrap(),
        Some(b.prefix.as_str().as_bytes().to_vec())
    );
    assert_eq!(b.sorted_set("z").len().await.unwrap(), 1);
    assert_eq!(
        b.load_position("p").await.unwrap(),
        Some(Position::new(1, 1))
    );
    assert_eq!(b.prefix.keys().unwrap().len(), 3);
}

#[tokio::test]
async fn every_key_the_store_writes_is_under_its_prefix() {
    let store = store_under(TestKeyPrefix::new(), |options| options).await;
    let mut tx = store.begin().await.unwrap();
    tx.save("v", b"1").await.unwrap();
    store
        .save_position(&mut tx, "p", Position::new(1, 1))
        .await
        .unwrap();
    store.commit(tx).await.unwrap();
    store.cache_set("c", b"1", None).await.unwrap();
    let mut keys = store.prefix.keys().unwrap();
    keys.sort();
    let p = store.prefix.as_str();
    assert_eq!(
        keys,
        [
            format!("{{{p}}}:cache:c"),
            format!("{{{p}}}:checkpoints"),
            format!("{{{p}}}:data:v")
        ]
    );
    assert_eq!(store.keyspace().data("v"), format!("{{{p}}}:data:v"));
    assert_eq!(store.prefix().as_str(), p);
}

#[tokio::test]
async fn an_invalid_prefix_is_refused_with_its_code_before_connecting() {
    for prefix in [
        "",
        "has space",
        "new\nline",
        "glob*",
        "{braces}",
        &"x".repeat(200),
    ] {
        let error = RedisStoreOptions::new(prefix).unwrap_err();
        assert!(
            matches!(error, RedisStoreError::InvalidKeyPrefix { .. }),
            "{error:?}"
        );
        assert_eq!(error.code().as_str(), "CR-E0201");
        assert!(error.to_string().starts_with("[CR-E0201] "), "{error}");

        // Checked before any connection attempt: even a dead URL gives CR-E0201.
        let error = RedisProjectionStore::connect("redis://127.0.0.1:1", prefix)
            .await
            .unwrap_err();
        assert_eq!(error.code().as_str(), "CR-E0201", "{error}");
    }
}
