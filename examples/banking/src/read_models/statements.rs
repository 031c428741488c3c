//! The statements read model: one JSON document per movement in a
//! PostgreSQL document table (`statement_lines`), queried by account and
//! date range, the way a bank statement is.
//!
//! Each line carries the day it happened (`"date": "2025-01-01"`, ISO, so
//! text order is date order), the signed amount and the balance after it.
//! The query filters the account with JSON containment (`data @> ...`,
//! answered by the table's GIN index) and the range with a text
//! comparison on `date`; the table name comes from the validated
//! [`DocumentTable`], and every value is a bind parameter.

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use composable_rust::event::decode;
use composable_rust::postgres::{
    DocumentTable, PostgresError, PostgresProjectionStore, PostgresProjectionTx, sql_error,
};
use composable_rust::prelude::*;
use composable_rust::{ProjectionError, Upcasters};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::account::AccountEvent;
use crate::error::{BankError, ServiceError};

/// The table's name (in the read model's schema).
pub const TABLE: &str = "statement_lines";

/// One line of a statement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatementLine {
    /// The account id.
    pub account: String,
    /// The account stream's version: the line's order.
    pub version: u64,
    /// The day, `YYYY-MM-DD`.
    pub date: NaiveDate,
    /// When, on the bank's clock.
    pub at: DateTime<Utc>,
    /// What happened (`cash`, `transfer t-1 to bob`, ...).
    pub description: String,
    /// Cents: positive in, negative out.
    pub amount: i64,
    /// The balance after it, in cents.
    pub balance: i64,
}

/// Keeps a [`StatementLine`] per deposit and withdrawal.
#[derive(Debug, Clone)]
pub struct Statements {
    table: DocumentTable,
    store: PostgresProjectionStore,
    upcasters: Upcasters,
}

impl Statements {
    /// The projection, on the table `statement_lines` of `store`'s schema;
    /// creates the table if needed (after `store.migrate()`).
    pub async fn new(store: &PostgresProjectionStore) -> Result<Self, PostgresError> {
        let table = DocumentTable::new(store, TABLE)?;
        table.ensure().await?;
        Ok(Self {
            table,
            store: store.clone(),
            upcasters: Upcasters::new(),
        })
    }

    /// The lines of `account` from `from` to `to` (both days included),
    /// oldest first, as committed.
    pub async fn statement(
        &self,
        account: &str,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<StatementLine>, ServiceError> {
        if from > to {
            return Err(BankError::InvalidDateRange { from, to }.into());
        }
        // The qualified name is validated and quoted by DocumentTable; the
        // account and the dates are bound, never formatted in.
        let sql = format!(
            "SELECT data FROM {} WHERE data @> $1 AND data->>'date' >= $2 AND data->>'date' <= $3 \
             ORDER BY (data->>'version')::bigint",
            self.table.qualified_name()
        );
        let rows: Vec<serde_json::Value> = sqlx::query_scalar(&sql)
            .bind(json!({ "account": account }))
            .bind(from.to_string())
            .bind(to.to_string())
            .fetch_all(self.store.pool())
            .await
            .map_err(sql_error)?;
        rows.into_iter()
            .map(|row| {
                serde_json::from_value(row).map_err(|error| {
                    ServiceError::from(ProjectionError::Serialization {
                        key: format!("{TABLE}/{account}"),
                        reason: error.to_string(),
                    })
                })
            })
            .collect()
    }
}

#[async_trait]
impl Projection for Statements {
    type Store = PostgresProjectionStore;

    fn name(&self) -> &str {
        "banking-statements"
    }

    fn handles(&self, event: &StoredEvent) -> bool {
        event.stream_id.as_str().starts_with("account-")
    }

    async fn apply(
        &self,
        event: &StoredEvent,
        tx: &mut PostgresProjectionTx,
    ) -> Result<(), ProjectionError> {
        let line = match decode::<AccountEvent>(event, &self.upcasters)? {
            Some(AccountEvent::Deposited {
                account_id,
                amount,
                balance,
                movement,
                at,
            }) => (account_id, amount, balance, movement, at),
            Some(AccountEvent::Withdrawn {
                account_id,
                amount,
                balance,
                movement,
                at,
            }) => (account_id, -amount, balance, movement, at),
            _ => return Ok(()),
        };
        let (account, amount, balance, movement, at) = line;
        let line = StatementLine {
            version: event.stream_version,
            date: at.date_naive(),
            at,
            description: movement.describe(),
            amount,
            balance,
            account,
        };
        // One document per event: applying it again writes the same row.
        let id = format!("{}-{:010}", line.account, line.version);
        self.table.upsert(tx, &id, &line).await
    }

    async fn reset(&self, tx: &mut PostgresProjectionTx) -> Result<(), ProjectionError> {
        self.table.clear(tx).await.map(|_| ())
    }
}
