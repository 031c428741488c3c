//! TTLs: per call, the store's default, and on any kind of key.

use std::time::Duration;

use composable_rust_core::projection::{ProjectionStore, ProjectionTx};

use super::support::{fresh_store, fresh_store_with};

#[tokio::test]
async fn a_value_saved_with_a_ttl_expires() {
    let store = fresh_store().await;
    let mut tx = store.begin().await.unwrap();
    tx.save_with_ttl("session", b"alice", Duration::from_millis(150))
        .unwrap();
    tx.save("forever", b"x").await.unwrap();
    store.commit(tx).await.unwrap();

    let ttl = store.ttl("session").await.unwrap().expect("a TTL");
    assert!(
        ttl > Duration::ZERO && ttl <= Duration::from_millis(150),
        "{ttl:?}"
    );
    assert_eq!(store.ttl("forever").await.unwrap(), None, "no TTL");
    assert_eq!(store.ttl("missing").await.unwrap(), None, "no key");

    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(store.get("session").await.unwrap(), None, "expired");
    assert_eq!(store.get("forever").await.unwrap(), Some(b"x".to_vec()));
}

#[tokio::test]
async fn the_default_ttl_applies_to_saved_values_only_and_a_per_call_ttl_wins() {
    let store = fresh_store_with(|options| options.with_default_ttl(Duration::from_secs(60))).await;
    assert_eq!(store.default_ttl(), Some(Duration::from_secs(60)));
    let mut tx = store.begin().await.unwrap();
    tx.save("value", b"x").await.unwrap();
    tx.save_with_ttl("short", b"x", Duration::from_secs(5))
        .unwrap();
    tx.incr_by("counter", 1).unwrap();
    tx.zadd("ranking", "a", 1.0).unwrap();
    tx.expire("ranking", Duration::from_secs(30)).unwrap();
    store.commit(tx).await.unwrap();

    let value = store.ttl("value").await.unwrap().expect("default TTL");
    assert!(
        value > Duration::from_secs(55) && value <= Duration::from_secs(60),
        "{value:?}"
    );
    let short = store.ttl("short").await.unwrap().expect("per-call TTL");
    assert!(short <= Duration::from_secs(5), "{short:?}");
    assert_eq!(
        store.ttl("counter").await.unwrap(),
        None,
        "counters keep no default TTL"
    );
    let ranking = store
        .ttl("ranking")
        .await
        .unwrap()
        .expect("expire on a sorted set");
    assert!(ranking > Duration::from_secs(25) && ranking <= Duration::from_secs(30));
}
