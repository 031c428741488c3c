//! Sizing the connection pool: count what holds a connection at the same
//! time, build the pool from the store's recommended options, and bound how
//! long a caller waits for a connection.

use std::time::Duration;

use composable_rust::postgres::PostgresEventStore;
use sqlx::PgPool;

// ANCHOR: budget
/// What one instance of a service holds open on PostgreSQL at the same
/// time, at most.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolBudget {
    /// Commands (and queries) in flight at once: the bound on concurrent
    /// work, e.g. the `concurrency` of a batch job or the web server's
    /// limit on requests in flight. Each holds one connection per round
    /// trip, and a repository command runs its load and append on one.
    pub concurrent_commands: u32,
    /// Projection managers and event publishers running in this instance:
    /// each holds one connection while it reads or commits a batch.
    pub followers: u32,
}

impl PoolBudget {
    /// The pool size: every command and follower at once, plus one for the
    /// store's LISTEN connection (opened by the first `subscribe()`, held
    /// for as long as the process runs).
    pub fn max_connections(&self) -> u32 {
        self.concurrent_commands + self.followers + 1
    }

    /// Whether `instances` copies of the service fit on a server that
    /// accepts `server_max` connections (`SHOW max_connections`; 100 by
    /// default), keeping the 3 that PostgreSQL reserves for superusers
    /// plus `spare` for migrations, psql and the operations tools.
    pub fn fits(&self, instances: u32, server_max: u32, spare: u32) -> bool {
        instances * self.max_connections() + 3 + spare <= server_max
    }
}
// ANCHOR_END: budget

// ANCHOR: pool
/// The event store's pool: the store's recommended options (no ping before
/// every statement), sized by `budget`, and an acquire timeout, so that when
/// every connection is busy a caller fails after `wait` with a transient
/// error (retry, or answer 503) instead of queueing without end.
pub async fn event_store_pool(
    url: &str,
    budget: PoolBudget,
    wait: Duration,
) -> Result<PgPool, sqlx::Error> {
    PostgresEventStore::pool_options()
        .max_connections(budget.max_connections())
        .min_connections(1)
        .acquire_timeout(wait)
        .connect(url)
        .await
}
// ANCHOR_END: pool

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use composable_rust::{AggregateRepository, CodedError, ErrorClass};
    use composable_rust_testing::fixtures::TestSchema;

    use super::*;
    use crate::batching::{Error, post_all};
    use crate::ledger::{Ledger, LedgerCommand};

    #[test]
    fn the_budget_adds_up() {
        let budget = PoolBudget {
            concurrent_commands: 16,
            followers: 3,
        };
        assert_eq!(budget.max_connections(), 20);
        // Four instances: 80 connections, plus 3 reserved and 10 spare.
        assert!(budget.fits(4, 100, 10));
        assert!(!budget.fits(5, 100, 10));
    }

    // ANCHOR: test
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_small_pool_queues_then_times_out() -> Result<(), Error> {
        let schema = TestSchema::new();
        // Two connections: one command at a time, and the LISTEN one.
        let budget = PoolBudget {
            concurrent_commands: 1,
            followers: 0,
        };
        let pool = event_store_pool(schema.url(), budget, Duration::from_millis(300)).await?;
        let store = PostgresEventStore::new(pool.clone()).with_schema(schema.name())?;
        store.migrate().await?;
        let ledgers = Arc::new(AggregateRepository::<Ledger, _>::new(store, ()));

        // 40 postings, 8 tasks at a time, over 2 connections: the tasks
        // wait their turn for a connection, and every posting is written.
        let work = (0..40).map(|i| (format!("l{}", i % 4), 1)).collect();
        assert_eq!(post_all(Arc::clone(&ledgers), work, 8).await?, 40);

        // Every connection busy for longer than the acquire timeout: the
        // command fails, transiently, and wrote nothing.
        let held = (pool.acquire().await?, pool.acquire().await?);
        let id = ledgers.stream_id("l0")?;
        let error = ledgers
            .execute(&id, LedgerCommand::Post(1))
            .await
            .unwrap_err();
        assert_eq!(error.class(), ErrorClass::Transient, "{error}");
        drop(held);
        assert_eq!(ledgers.load(&id).await?.state.postings, 10);
        Ok(())
    }
    // ANCHOR_END: test
}
