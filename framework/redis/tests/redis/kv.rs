//! Values by key: units of work, what a unit of work sees, delete_prefix.

use composable_rust_core::Position;
use composable_rust_core::projection::ProjectionCache;
use composable_rust_core::projection::{
    Delivery, ProjectionCheckpoint, ProjectionStore, ProjectionStoreExt, ProjectionTx,
    ProjectionTxExt,
};

use super::support::fresh_store;

#[tokio::test]
async fn writes_are_invisible_until_commit_and_dropped_on_rollback() {
    let store = fresh_store().await;
    assert_eq!(store.delivery(), Delivery::AtLeastOnce);

    let mut tx = store.begin().await.unwrap();
    tx.save("a", b"1").await.unwrap();
    assert_eq!(
        tx.get("a").await.unwrap(),
        Some(b"1".to_vec()),
        "a tx sees its own writes"
    );
    assert_eq!(
        store.get("a").await.unwrap(),
        None,
        "nothing reaches Redis before commit"
    );
    drop(tx);
    assert!(
        !store.exists("a").await.unwrap(),
        "a dropped tx leaves nothing"
    );

    let mut tx = store.begin().await.unwrap();
    tx.save("a", b"1").await.unwrap();
    tx.save_json("b", &serde_json::json!({ "n": 2 }))
        .await
        .unwrap();
    store
        .save_position(&mut tx, "p", Position::new(1, 1))
        .await
        .unwrap();
    store.commit(tx).await.unwrap();
    assert_eq!(store.get("a").await.unwrap(), Some(b"1".to_vec()));
    assert_eq!(
        store.get_json::<serde_json::Value>("b").await.unwrap(),
        Some(serde_json::json!({ "n": 2 }))
    );
    assert!(store.exists("b").await.unwrap());
    assert_eq!(
        store.load_position("p").await.unwrap(),
        Some(Position::new(1, 1))
    );
    assert_eq!(store.load_position("other").await.unwrap(), None);

    store.delete("a").await.unwrap();
    store.delete("never-there").await.unwrap();
    assert_eq!(store.get("a").await.unwrap(), None);

    let empty = store.begin().await.unwrap();
    store.commit(empty).await.unwrap();
}

#[tokio::test]
async fn a_unit_of_work_sees_its_buffered_writes_over_committed_values() {
    let store = fresh_store().await;
    store.save("kept", b"committed").await.unwrap();
    store.save("orders:1", b"one").await.unwrap();
    store.save("hits", b"10").await.unwrap();

    let mut tx = store.begin().await.unwrap();
    assert_eq!(tx.get("kept").await.unwrap(), Some(b"committed".to_vec()));
    tx.delete("kept").await.unwrap();
    assert_eq!(tx.get("kept").await.unwrap(), None);
    tx.save("kept", b"again").await.unwrap();
    assert_eq!(tx.get("kept").await.unwrap(), Some(b"again".to_vec()));

    tx.delete_prefix("orders:").await.unwrap();
    assert_eq!(tx.get("orders:1").await.unwrap(), None);

    tx.incr_by("hits", 5).unwrap();
    tx.incr_by("hits", 2).unwrap();
    assert_eq!(tx.get("hits").await.unwrap(), Some(b"17".to_vec()));
    assert_eq!(tx.counter("hits").await.unwrap(), 17);
    assert_eq!(tx.counter("fresh").await.unwrap(), 0);
    tx.incr_by("fresh", 3).unwrap();
    assert_eq!(tx.counter("fresh").await.unwrap(), 3);
    assert_eq!(tx.pending(), 6);

    // The committed state is untouched until commit.
    assert_eq!(
        store.get("kept").await.unwrap(),
        Some(b"committed".to_vec())
    );
    assert_eq!(store.counter("hits").await.unwrap(), 10);
    store.commit(tx).await.unwrap();
    assert_eq!(store.get("kept").await.unwrap(), Some(b"again".to_vec()));
    assert_eq!(store.get("orders:1").await.unwrap(), None);
    assert_eq!(store.counter("hits").await.unwrap(), 17);
    assert_eq!(store.counter("fresh").await.unwrap(), 3);
}

#[tokio::test]
async fn delete_prefix_removes_every_kind_of_key_under_it_at_commit_and_nothing_else() {
    let store = fresh_store().await;
    let mut tx = store.begin().await.unwrap();
    tx.save("orders:1", b"x").await.unwrap();
    tx.incr_by("orders:count", 2).unwrap();
    tx.zadd("orders:by-total", "1", 9.5).unwrap();
    tx.hincr_by("orders:per-day", "2026-01-01", 1).unwrap();
    tx.save("other:1", b"y").await.unwrap();
    tx.save("a*b", b"star").await.unwrap();
    tx.save("axb", b"letter").await.unwrap();
    store
        .save_position(&mut tx, "orders", Position::new(3, 3))
        .await
        .unwrap();
    store.commit(tx).await.unwrap();
    store.cache_set("orders:1", b"cached", None).await.unwrap();

    let mut tx = store.begin().await.unwrap();
    assert_eq!(
        tx.delete_prefix("orders:").await.unwrap(),
        4,
        "committed keys now"
    );
    tx.save("orders:2", b"after the reset").await.unwrap();
    assert_eq!(
        tx.delete_prefix("a*").await.unwrap(),
        1,
        "glob characters are literal"
    );
    store
        .save_position(&mut tx, "orders", Position::START)
        .await
        .unwrap();
    assert!(
        store.exists("orders:1").await.unwrap(),
        "deleted at commit, not before"
    );
    store.commit(tx).await.unwrap();

    assert!(!store.exists("orders:1").await.unwrap());
    assert!(!store.exists("orders:count").await.unwrap());
    assert!(
        store
            .sorted_set("orders:by-total")
            .is_empty()
            .await
            .unwrap()
    );
    assert!(
        store
            .hash_counters("orders:per-day")
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store.get("orders:2").await.unwrap(),
        Some(b"after the reset".to_vec()),
        "writes after delete_prefix in the same unit of work survive"
    );
    assert_eq!(store.get("other:1").await.unwrap(), Some(b"y".to_vec()));
    assert_eq!(store.get("a*b").await.unwrap(), None);
    assert_eq!(store.get("axb").await.unwrap(), Some(b"letter".to_vec()));
    assert_eq!(
        store.load_position("orders").await.unwrap(),
        Some(Position::START)
    );
    assert_eq!(
        store.cache_get("orders:1").await.unwrap(),
        Some(b"cached".to_vec()),
        "the cache is another namespace"
    );

    // Resetting everything keeps checkpoints, dead letters and the cache.
    let mut tx = store.begin().await.unwrap();
    tx.delete_prefix("").await.unwrap();
    store.commit(tx).await.unwrap();
    assert!(!store.exists("other:1").await.unwrap());
    assert_eq!(
        store.load_position("orders").await.unwrap(),
        Some(Position::START)
    );
    assert!(store.cache_get("orders:1").await.unwrap().is_some());
}

#[tokio::test]
async fn clear_removes_every_key_of_the_prefix() {
    let store = fresh_store().await;
    let mut tx = store.begin().await.unwrap();
    tx.save("a", b"1").await.unwrap();
    tx.zadd("z", "m", 1.0).unwrap();
    store
        .save_position(&mut tx, "p", Position::new(1, 1))
        .await
        .unwrap();
    store.commit(tx).await.unwrap();
    store.cache_set("c", b"1", None).await.unwrap();
    assert_eq!(store.prefix.keys().unwrap().len(), 4);

    assert_eq!(store.clear().await.unwrap(), 4);
    assert!(store.prefix.keys().unwrap().is_empty());
}
