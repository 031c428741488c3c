//! Sorted-set reads: leaderboards and other rankings written with
//! [`RedisTx::zadd`](crate::RedisTx::zadd) /
//! [`zincr_by`](crate::RedisTx::zincr_by).
//!
//! ```no_run
//! # async fn demo(store: &composable_rust_redis::RedisProjectionStore) -> Result<(), composable_rust_core::ProjectionError> {
//! let scores = store.sorted_set("leaderboard:scores");
//! let podium = scores.top(3).await?;          // highest score first
//! let alice = scores.rank("alice").await?;    // Some(0) if she leads
//! # let _ = (podium, alice);
//! # Ok(())
//! # }
//! ```
//!
//! Ranks are 0-based and count from the **highest** score; members with
//! equal scores are ordered by member, descending (Redis' order). The
//! same queries are available as values through
//! [`QueryableProjectionStore`] with [`SortedSetQuery`].

use async_trait::async_trait;
use composable_rust_core::ProjectionError;
use composable_rust_core::projection::QueryableProjectionStore;

use crate::store::RedisProjectionStore;

/// A member of a sorted set with its score and rank.
#[derive(Debug, Clone, PartialEq)]
pub struct Ranked {
    /// 0-based, highest score first.
    pub rank: u64,
    /// The member.
    pub member: String,
    /// Its score.
    pub score: f64,
}

/// Reads of the sorted set at one read-model key; see
/// [`RedisProjectionStore::sorted_set`].
#[derive(Debug, Clone, Copy)]
pub struct SortedSet<'a> {
    store: &'a RedisProjectionStore,
    key: &'a str,
}

impl<'a> SortedSet<'a> {
    /// The `n` members with the highest scores, highest first
    /// (`ZREVRANGE ... WITHSCORES`).
    pub async fn top(&self, n: u64) -> Result<Vec<Ranked>, ProjectionError> {
        self.page(0, n).await
    }

    /// Up to `limit` members from rank `offset` on, highest score first
    /// (for paging through a leaderboard).
    pub async fn page(&self, offset: u64, limit: u64) -> Result<Vec<Ranked>, ProjectionError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let last = offset.saturating_add(limit - 1);
        let (Ok(start), Ok(stop)) = (i64::try_from(offset), i64::try_from(last)) else {
            return Ok(Vec::new());
        };
        let members: Vec<(String, f64)> = self
            .store
            .redis()
            .query(
                redis::cmd("ZREVRANGE")
                    .arg(self.redis_key())
                    .arg(start)
                    .arg(stop)
                    .arg("WITHSCORES"),
                "read a sorted set",
            )
            .await?;
        Ok(members
            .into_iter()
            .zip(offset..)
            .map(|((member, score), rank)| Ranked {
                rank,
                member,
                score,
            })
            .collect())
    }

    /// The score of `member`, or `None` if it is not in the set.
    pub async fn score(&self, member: &str) -> Result<Option<f64>, ProjectionError> {
        Ok(self
            .store
            .redis()
            .query(
                redis::cmd("ZSCORE").arg(self.redis_key()).arg(member),
                "read a score",
            )
            .await?)
    }

    /// The 0-based rank of `member`, highest score first (`ZREVRANK`), or
    /// `None` if it is not in the set.
    pub async fn rank(&self, member: &str) -> Result<Option<u64>, ProjectionError> {
        Ok(self
            .store
            .redis()
            .query(
                redis::cmd("ZREVRANK").arg(self.redis_key()).arg(member),
                "read a rank",
            )
            .await?)
    }

    /// How many members the set has (`ZCARD`); 0 if it does not exist.
    pub async fn len(&self) -> Result<u64, ProjectionError> {
        Ok(self
            .store
            .redis()
            .query(
                redis::cmd("ZCARD").arg(self.redis_key()),
                "count a sorted set",
            )
            .await?)
    }

    /// Whether the set has no members.
    pub async fn is_empty(&self) -> Result<bool, ProjectionError> {
        Ok(self.len().await? == 0)
    }

    /// The read-model key.
    pub fn key(&self) -> &'a str {
        self.key
    }

    fn redis_key(&self) -> String {
        self.store.keyspace().data(self.key)
    }
}

impl RedisProjectionStore {
    /// Reads of the sorted set at read-model key `key`.
    pub fn sorted_set<'a>(&'a self, key: &'a str) -> SortedSet<'a> {
        SortedSet { store: self, key }
    }
}

/// A page of a sorted set, highest score first, as a value (for
/// [`QueryableProjectionStore::query`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SortedSetQuery {
    /// The read-model key of the sorted set.
    pub key: String,
    /// The first rank wanted (0 = the highest score).
    pub offset: u64,
    /// At most this many members.
    pub limit: u64,
}

impl SortedSetQuery {
    /// The `n` highest-scoring members of the set at `key`.
    pub fn top(key: impl Into<String>, n: u64) -> Self {
        Self {
            key: key.into(),
            offset: 0,
            limit: n,
        }
    }

    /// Up to `limit` members from rank `offset` on.
    pub fn page(key: impl Into<String>, offset: u64, limit: u64) -> Self {
        Self {
            key: key.into(),
            offset,
            limit,
        }
    }
}

#[async_trait]
impl QueryableProjectionStore for RedisProjectionStore {
    type Query = SortedSetQuery;
    type Output = Vec<Ranked>;

    /// Runs [`SortedSet::page`] on the query's key.
    async fn query(&self, query: &SortedSetQuery) -> Result<Vec<Ranked>, ProjectionError> {
        self.sorted_set(&query.key)
            .page(query.offset, query.limit)
            .await
    }
}
