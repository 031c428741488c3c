//! Counters: INCRBY on a key, HINCRBY in a hash.

use composable_rust_core::projection::{ProjectionStore, ProjectionTx};
use composable_rust_core::{CodedError, ProjectionError};

use super::support::fresh_store;

#[tokio::test]
async fn counters_add_up_across_units_of_work() {
    let store = fresh_store().await;
    assert_eq!(
        store.counter("orders").await.unwrap(),
        0,
        "missing counts as 0"
    );
    for delta in [1, 2, -5, 10] {
        let mut tx = store.begin().await.unwrap();
        tx.incr_by("orders", delta).unwrap();
        store.commit(tx).await.unwrap();
    }
    assert_eq!(store.counter("orders").await.unwrap(), 8);
}

#[tokio::test]
async fn hash_counters_count_per_field() {
    let store = fresh_store().await;
    let mut tx = store.begin().await.unwrap();
    tx.hincr_by("per-day", "2026-01-01", 2).unwrap();
    tx.hincr_by("per-day", "2026-01-02", 1).unwrap();
    tx.hincr_by("per-day", "2026-01-01", 3).unwrap();
    store.commit(tx).await.unwrap();

    assert_eq!(
        store.hash_counter("per-day", "2026-01-01").await.unwrap(),
        5
    );
    assert_eq!(
        store.hash_counter("per-day", "2026-12-31").await.unwrap(),
        0
    );
    assert_eq!(store.hash_counter("missing", "x").await.unwrap(), 0);
    let all = store.hash_counters("per-day").await.unwrap();
    assert_eq!(
        all.into_iter().collect::<Vec<_>>(),
        [("2026-01-01".to_owned(), 5), ("2026-01-02".to_owned(), 1)]
    );
}

#[tokio::test]
async fn a_value_that_is_not_an_integer_is_a_coded_error() {
    let store = fresh_store().await;
    store.save("name", b"alice").await.unwrap();
    let error = store.counter("name").await.unwrap_err();
    assert!(
        matches!(error, ProjectionError::Backend { .. }),
        "{error:?}"
    );
    assert_eq!(error.code().as_str(), "CR-E0206");
    assert!(error.to_string().contains("alice"), "{error}");

    let mut tx = store.begin().await.unwrap();
    tx.incr_by("name", 1).unwrap();
    let error = tx.get("name").await.unwrap_err();
    assert_eq!(error.code().as_str(), "CR-E0206");
}
