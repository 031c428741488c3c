//! Querying a read model: the accounts in a table of their own, written by
//! a projection in the manager's transaction and read by typed query
//! functions.

use bank::account::AccountEvent;
use composable_rust::chrono::{DateTime, Utc};
use composable_rust::event::decode;
use composable_rust::postgres::{PostgresProjectionStore, PostgresProjectionTx, sql_error};
use composable_rust::prelude::*;
use composable_rust::{ProjectionError, Upcasters};
use sqlx::PgPool;

use crate::table;

// ANCHOR: table
/// The table and the indexes its queries need: the primary key serves
/// `by_id`, `accounts_owner` serves `owned_by`, `accounts_balance` serves
/// `richest` (already in the order the query wants).
pub async fn create_table(store: &PostgresProjectionStore) -> Result<(), ProjectionError> {
    let accounts = table(store.schema(), "accounts");
    for statement in [
        format!(
            "CREATE TABLE IF NOT EXISTS {accounts} (
                 id text PRIMARY KEY,
                 owner text NOT NULL,
                 balance bigint NOT NULL,
                 opened_at timestamptz NOT NULL)"
        ),
        format!("CREATE INDEX IF NOT EXISTS accounts_owner ON {accounts} (owner)"),
        format!("CREATE INDEX IF NOT EXISTS accounts_balance ON {accounts} (balance DESC)"),
    ] {
        sqlx::query(&statement)
            .execute(store.pool())
            .await
            .map_err(sql_error)?;
    }
    Ok(())
}
// ANCHOR_END: table

// ANCHOR: projection
/// Keeps one row per account in `accounts`.
#[derive(Debug, Default)]
pub struct Accounts {
    upcasters: Upcasters,
}

#[async_trait]
impl Projection for Accounts {
    type Store = PostgresProjectionStore;

    fn name(&self) -> &str {
        "accounts"
    }

    fn handles(&self, event: &StoredEvent) -> bool {
        event.stream_id.as_str().starts_with("account-")
    }

    async fn apply(
        &self,
        event: &StoredEvent,
        tx: &mut PostgresProjectionTx,
    ) -> Result<(), ProjectionError> {
        let Some(account_event) = decode::<AccountEvent>(event, &self.upcasters)? else {
            return Ok(());
        };
        let accounts = table(tx.schema(), "accounts");
        let id = event.stream_id.as_str();
        let change = match account_event {
            AccountEvent::Opened { owner } => {
                sqlx::query(&format!(
                    "INSERT INTO {accounts} (id, owner, balance, opened_at) VALUES ($1, $2, 0, $3)"
                ))
                .bind(id)
                .bind(owner)
                .bind(event.recorded_at)
                // The manager's transaction: the row commits with the checkpoint.
                .execute(tx.connection().await?)
                .await
                .map_err(sql_error)?;
                return Ok(());
            }
            AccountEvent::Deposited { amount } => cents(amount)?,
            AccountEvent::Withdrawn { amount } => -cents(amount)?,
        };
        sqlx::query(&format!(
            "UPDATE {accounts} SET balance = balance + $2 WHERE id = $1"
        ))
        .bind(id)
        .bind(change)
        .execute(tx.connection().await?)
        .await
        .map_err(sql_error)?;
        Ok(())
    }

    async fn reset(&self, tx: &mut PostgresProjectionTx) -> Result<(), ProjectionError> {
        let accounts = table(tx.schema(), "accounts");
        sqlx::query(&format!("DELETE FROM {accounts}"))
            .execute(tx.connection().await?)
            .await
            .map_err(sql_error)?;
        Ok(())
    }
}

/// An amount as the `bigint` PostgreSQL stores.
pub fn cents(amount: u64) -> Result<i64, ProjectionError> {
    i64::try_from(amount).map_err(ProjectionError::apply)
}
// ANCHOR_END: projection

// ANCHOR: queries
/// One account, as the screens show it.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct AccountRow {
    pub id: String,
    pub owner: String,
    pub balance: i64,
    pub opened_at: DateTime<Utc>,
}

/// The queries of the accounts screens: the only code that knows the SQL.
#[derive(Debug, Clone)]
pub struct AccountQueries {
    pool: PgPool,
    select: String,
}

impl AccountQueries {
    /// Queries of the `accounts` table in `store`'s schema.
    pub fn new(store: &PostgresProjectionStore) -> Self {
        let accounts = table(store.schema(), "accounts");
        Self {
            pool: store.pool().clone(),
            select: format!("SELECT id, owner, balance, opened_at FROM {accounts}"),
        }
    }

    /// One account, if the projection has seen it opened.
    pub async fn by_id(&self, id: &StreamId) -> Result<Option<AccountRow>, ProjectionError> {
        sqlx::query_as(&format!("{} WHERE id = $1", self.select))
            .bind(id.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(sql_error)
    }

    /// Every account of `owner`, oldest first.
    pub async fn owned_by(&self, owner: &str) -> Result<Vec<AccountRow>, ProjectionError> {
        sqlx::query_as(&format!(
            "{} WHERE owner = $1 ORDER BY opened_at, id",
            self.select
        ))
        .bind(owner)
        .fetch_all(&self.pool)
        .await
        .map_err(sql_error)
    }

    /// The `n` largest balances.
    pub async fn richest(&self, n: i64) -> Result<Vec<AccountRow>, ProjectionError> {
        sqlx::query_as(&format!("{} ORDER BY balance DESC LIMIT $1", self.select))
            .bind(n)
            .fetch_all(&self.pool)
            .await
            .map_err(sql_error)
    }
}
// ANCHOR_END: queries

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use bank::account::AccountCommand;
    use composable_rust::ProjectionManager;

    use super::*;
    use crate::fixture::Fixture;

    // ANCHOR: test
    #[tokio::test]
    async fn the_queries_read_what_the_projection_wrote() {
        let f = Fixture::new().await;
        create_table(&f.store).await.unwrap();
        let ada = f.open(1, "Ada").await;
        let bob = f.open(2, "Bob").await;
        let ada_savings = f.open(3, "Ada").await;
        f.run(&ada, AccountCommand::Deposit { amount: 100 }).await;
        f.run(&bob, AccountCommand::Deposit { amount: 250 }).await;
        f.run(&ada_savings, AccountCommand::Deposit { amount: 40 })
            .await;
        f.run(&ada, AccountCommand::Withdraw { amount: 30 }).await;

        let manager =
            ProjectionManager::new(Accounts::default(), Arc::clone(&f.store), f.events.clone());
        assert_eq!(manager.catch_up().await.unwrap(), 7);

        let queries = AccountQueries::new(&f.store);
        let row = queries.by_id(&ada).await.unwrap().unwrap();
        assert_eq!((row.owner.as_str(), row.balance), ("Ada", 70));
        let adas: Vec<_> = queries.owned_by("Ada").await.unwrap();
        let ids: Vec<_> = adas.iter().map(|a| a.id.as_str()).collect();
        assert_eq!(ids, ["account-1", "account-3"]);
        let top: Vec<_> = queries.richest(2).await.unwrap();
        let balances: Vec<_> = top.iter().map(|a| (a.id.as_str(), a.balance)).collect();
        assert_eq!(balances, [("account-2", 250), ("account-1", 70)]);
        assert_eq!(
            queries
                .by_id(&f.accounts.stream_id(9).unwrap())
                .await
                .unwrap(),
            None
        );
    }
    // ANCHOR_END: test

    // ANCHOR: explain
    /// A table of a few rows never needs an index, so the planner would scan it
    /// anyway; with sequential scans off, it must show that an index *can*
    /// serve the query. A query the index cannot serve (say
    /// `lower(owner) = $1`) would still be a Seq Scan here.
    #[tokio::test]
    async fn the_owner_query_can_use_its_index() {
        let f = Fixture::new().await;
        create_table(&f.store).await.unwrap();
        let accounts = table(f.store.schema(), "accounts");
        let mut tx = f.store.pool().begin().await.unwrap();
        sqlx::query("SET LOCAL enable_seqscan = off")
            .execute(&mut *tx)
            .await
            .unwrap();
        let plan: Vec<String> = sqlx::query_scalar(&format!(
            "EXPLAIN SELECT * FROM {accounts} WHERE owner = 'Ada' ORDER BY opened_at"
        ))
        .fetch_all(&mut *tx)
        .await
        .unwrap();
        tx.rollback().await.unwrap();
        let plan = plan.join("\n");
        assert!(plan.contains("accounts_owner"), "{plan}");
    }
    // ANCHOR_END: explain
}
