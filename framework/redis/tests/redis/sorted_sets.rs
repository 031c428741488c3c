//! Sorted sets: top-N, pages, score, rank, length, and the query API.

use composable_rust_core::projection::{ProjectionStore, QueryableProjectionStore};
use composable_rust_core::{CodedError, ProjectionError};
use composable_rust_redis::{Ranked, SortedSetQuery};

use super::support::fresh_store;

fn ranked(rank: u64, member: &str, score: f64) -> Ranked {
    Ranked {
        rank,
        member: member.to_owned(),
        score,
    }
}

#[tokio::test]
async fn a_leaderboard_answers_top_n_score_rank_and_length() {
    let store = fresh_store().await;
    let mut tx = store.begin().await.unwrap();
    tx.zadd("scores", "alice", 30.0).unwrap();
    tx.zadd("scores", "bob", 10.0).unwrap();
    tx.zadd("scores", "carol", 20.0).unwrap();
    tx.zadd("scores", "dave", 5.0).unwrap();
    tx.zincr_by("scores", "bob", 25.0).unwrap(); // 35: bob leads
    tx.zincr_by("scores", "erin", 1.5).unwrap(); // new member
    tx.zrem("scores", "dave").unwrap();
    tx.zrem("scores", "nobody").unwrap();
    store.commit(tx).await.unwrap();

    let scores = store.sorted_set("scores");
    assert_eq!(scores.key(), "scores");
    assert_eq!(
        scores.top(3).await.unwrap(),
        [
            ranked(0, "bob", 35.0),
            ranked(1, "alice", 30.0),
            ranked(2, "carol", 20.0)
        ]
    );
    assert_eq!(scores.top(10).await.unwrap().len(), 4);
    assert!(scores.top(0).await.unwrap().is_empty());
    assert_eq!(
        scores.page(2, 5).await.unwrap(),
        [ranked(2, "carol", 20.0), ranked(3, "erin", 1.5)]
    );
    assert_eq!(scores.score("alice").await.unwrap(), Some(30.0));
    assert_eq!(scores.score("dave").await.unwrap(), None);
    assert_eq!(scores.rank("bob").await.unwrap(), Some(0));
    assert_eq!(scores.rank("erin").await.unwrap(), Some(3));
    assert_eq!(scores.rank("dave").await.unwrap(), None);
    assert_eq!(scores.len().await.unwrap(), 4);
    assert!(!scores.is_empty().await.unwrap());
    assert!(store.sorted_set("missing").is_empty().await.unwrap());

    assert_eq!(
        store
            .query(&SortedSetQuery::top("scores", 1))
            .await
            .unwrap(),
        [ranked(0, "bob", 35.0)]
    );
    assert_eq!(
        store
            .query(&SortedSetQuery::page("scores", 1, 1))
            .await
            .unwrap(),
        [ranked(1, "alice", 30.0)]
    );
}

#[tokio::test]
async fn a_nan_score_is_refused_before_it_reaches_redis() {
    let store = fresh_store().await;
    let mut tx = store.begin().await.unwrap();
    let error = tx.zadd("scores", "alice", f64::NAN).unwrap_err();
    assert!(matches!(error, ProjectionError::Apply { .. }), "{error:?}");
    assert_eq!(error.code().as_str(), "CR-E0011");
    assert!(tx.zincr_by("scores", "alice", f64::NAN).is_err());
    assert_eq!(tx.pending(), 0);
}
