//! Queries across aggregates: the transfers screen shows each transfer
//! with the names of both owners. A transfer knows account numbers, an
//! account knows its owner: one projection reads both kinds of streams and
//! keeps the join ready in its own tables.

use bank::account::AccountEvent;
use bank::transfer::TransferEvent;
use composable_rust::event::decode;
use composable_rust::postgres::{PostgresProjectionStore, PostgresProjectionTx, sql_error};
use composable_rust::prelude::*;
use composable_rust::{ProjectionError, Upcasters};
use sqlx::PgPool;

use crate::accounts::cents;
use crate::{account_number, table};

/// The projection's two tables: the list itself, and the owner of every
/// account it has seen opened (its own copy: a projection never reads
/// another projection's tables, which may be behind or ahead of it).
pub async fn create_tables(store: &PostgresProjectionStore) -> Result<(), ProjectionError> {
    let lines = table(store.schema(), "transfer_lines");
    let owners = table(store.schema(), "transfer_owners");
    for statement in [
        format!(
            "CREATE TABLE IF NOT EXISTS {owners} (account bigint PRIMARY KEY, owner text NOT NULL)"
        ),
        format!(
            "CREATE TABLE IF NOT EXISTS {lines} (
                 transfer_id text PRIMARY KEY,
                 from_account bigint NOT NULL, from_owner text,
                 to_account bigint NOT NULL, to_owner text,
                 amount bigint NOT NULL, requested_at timestamptz NOT NULL)"
        ),
        format!("CREATE INDEX IF NOT EXISTS transfer_lines_from ON {lines} (from_account)"),
        format!("CREATE INDEX IF NOT EXISTS transfer_lines_to ON {lines} (to_account)"),
    ] {
        sqlx::query(&statement)
            .execute(store.pool())
            .await
            .map_err(sql_error)?;
    }
    Ok(())
}

// ANCHOR: projection
/// One row per transfer, with both owners' names.
#[derive(Debug, Default)]
pub struct TransferList {
    upcasters: Upcasters,
}

#[async_trait]
impl Projection for TransferList {
    type Store = PostgresProjectionStore;

    fn name(&self) -> &str {
        "transfer-list"
    }

    fn handles(&self, event: &StoredEvent) -> bool {
        let stream = event.stream_id.as_str();
        stream.starts_with("account-") || stream.starts_with("transfer-")
    }

    async fn apply(
        &self,
        event: &StoredEvent,
        tx: &mut PostgresProjectionTx,
    ) -> Result<(), ProjectionError> {
        let (lines, owners) = (
            table(tx.schema(), "transfer_lines"),
            table(tx.schema(), "transfer_owners"),
        );
        if let Some(account) = account_number(&event.stream_id) {
            let Some(AccountEvent::Opened { owner }) = decode(event, &self.upcasters)? else {
                return Ok(()); // deposits and withdrawals change no name
            };
            // Remember the name, and fill it into the transfers that came first.
            for sql in [
                format!("INSERT INTO {owners} (account, owner) VALUES ($1, $2)"),
                format!("UPDATE {lines} SET from_owner = $2 WHERE from_account = $1"),
                format!("UPDATE {lines} SET to_owner = $2 WHERE to_account = $1"),
            ] {
                sqlx::query(&sql)
                    .bind(account)
                    .bind(&owner)
                    .execute(tx.connection().await?)
                    .await
                    .map_err(sql_error)?;
            }
        } else if let Some(TransferEvent::Requested { from, to, amount }) =
            decode(event, &self.upcasters)?
        {
            // The names known now; an account opened later fills its own in.
            sqlx::query(&format!(
                "INSERT INTO {lines} (transfer_id, from_account, from_owner, \
                     to_account, to_owner, amount, requested_at) \
                 VALUES ($1, $2, (SELECT owner FROM {owners} WHERE account = $2), \
                     $3, (SELECT owner FROM {owners} WHERE account = $3), $4, $5)"
            ))
            .bind(event.stream_id.as_str())
            .bind(cents(from)?)
            .bind(cents(to)?)
            .bind(cents(amount)?)
            .bind(event.recorded_at)
            .execute(tx.connection().await?)
            .await
            .map_err(sql_error)?;
        }
        Ok(())
    }

    async fn reset(&self, tx: &mut PostgresProjectionTx) -> Result<(), ProjectionError> {
        for name in ["transfer_lines", "transfer_owners"] {
            let sql = format!("DELETE FROM {}", table(tx.schema(), name));
            sqlx::query(&sql)
                .execute(tx.connection().await?)
                .await
                .map_err(sql_error)?;
        }
        Ok(())
    }
}
// ANCHOR_END: projection

// ANCHOR: query
/// A row of the transfers screen. A name is `None` while the account has
/// not been opened (a transfer to an account that does not exist yet).
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct TransferLine {
    pub transfer_id: String,
    pub from_owner: Option<String>,
    pub to_owner: Option<String>,
    pub amount: i64,
}

/// The transfers that left or reached `account`, newest first: one table,
/// no join at query time.
pub async fn transfers_of(
    pool: &PgPool,
    schema: &str,
    account: i64,
) -> Result<Vec<TransferLine>, ProjectionError> {
    let lines = table(schema, "transfer_lines");
    sqlx::query_as(&format!(
        "SELECT transfer_id, from_owner, to_owner, amount FROM {lines} \
         WHERE from_account = $1 OR to_account = $1 ORDER BY requested_at DESC"
    ))
    .bind(account)
    .fetch_all(pool)
    .await
    .map_err(sql_error)
}
// ANCHOR_END: query

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use bank::transfer::request_transfer;
    use composable_rust::ProjectionManager;

    use super::*;
    use crate::fixture::Fixture;

    // ANCHOR: test
    #[tokio::test]
    async fn each_transfer_shows_both_owners_even_when_an_account_opens_later() {
        let f = Fixture::new().await;
        create_tables(&f.store).await.unwrap();
        let manager = ProjectionManager::new(
            TransferList::default(),
            Arc::clone(&f.store),
            f.events.clone(),
        );
        f.open(1, "Ada").await;
        f.open(2, "Bob").await;
        request_transfer(&f.events, 1, 2, 30).await.unwrap();
        f.clock.advance(Duration::from_secs(60));
        request_transfer(&f.events, 1, 3, 5).await.unwrap(); // account 3 is not open yet
        manager.catch_up().await.unwrap();

        let names = |lines: Vec<TransferLine>| -> Vec<(Option<String>, Option<String>, i64)> {
            lines
                .into_iter()
                .map(|l| (l.from_owner, l.to_owner, l.amount))
                .collect()
        };
        let (pool, schema) = (f.store.pool(), f.store.schema());
        let some = |name: &str| Some(name.to_owned());
        assert_eq!(
            names(transfers_of(pool, schema, 1).await.unwrap()),
            [(some("Ada"), None, 5), (some("Ada"), some("Bob"), 30)]
        );

        f.open(3, "Cy").await;
        manager.catch_up().await.unwrap();
        assert_eq!(
            names(transfers_of(pool, schema, 3).await.unwrap()),
            [(some("Ada"), some("Cy"), 5)]
        );
    }
    // ANCHOR_END: test
}
