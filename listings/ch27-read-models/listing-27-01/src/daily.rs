//! State at a version or a time: an account's balance in the past, asked
//! of the events (`load_at`) and of a temporal read model that keeps the
//! balance at the end of every day.

use bank::account::AccountEvent;
use composable_rust::chrono::NaiveDate;
use composable_rust::event::decode;
use composable_rust::postgres::{PostgresProjectionStore, PostgresProjectionTx, sql_error};
use composable_rust::prelude::*;
use composable_rust::{ProjectionError, Upcasters};

use crate::accounts::cents;
use crate::table;

/// One row per account and day with a movement; the primary key serves
/// `balance_on`'s lookup (the last day at or before the date).
pub async fn create_table(store: &PostgresProjectionStore) -> Result<(), ProjectionError> {
    let daily = table(store.schema(), "daily_balances");
    sqlx::query(&format!(
        "CREATE TABLE IF NOT EXISTS {daily} (
             account text NOT NULL, day date NOT NULL, balance bigint NOT NULL,
             PRIMARY KEY (account, day))"
    ))
    .execute(store.pool())
    .await
    .map_err(sql_error)?;
    Ok(())
}

// ANCHOR: projection
/// The balance of every account at the end of each day it moved, by the
/// day the store recorded the movement (UTC).
#[derive(Debug, Default)]
pub struct DailyBalances {
    upcasters: Upcasters,
}

#[async_trait]
impl Projection for DailyBalances {
    type Store = PostgresProjectionStore;

    fn name(&self) -> &str {
        "daily-balances"
    }

    fn handles(&self, event: &StoredEvent) -> bool {
        event.stream_id.as_str().starts_with("account-")
    }

    async fn apply(
        &self,
        event: &StoredEvent,
        tx: &mut PostgresProjectionTx,
    ) -> Result<(), ProjectionError> {
        let change = match decode::<AccountEvent>(event, &self.upcasters)? {
            Some(AccountEvent::Deposited { amount }) => cents(amount)?,
            Some(AccountEvent::Withdrawn { amount }) => -cents(amount)?,
            _ => return Ok(()),
        };
        let daily = table(tx.schema(), "daily_balances");
        // The day's row starts from the last known balance; later
        // movements of the same day change it.
        sqlx::query(&format!(
            "INSERT INTO {daily} (account, day, balance)
             SELECT $1, $2, coalesce((SELECT balance FROM {daily}
                 WHERE account = $1 ORDER BY day DESC LIMIT 1), 0) + $3
             ON CONFLICT (account, day) DO UPDATE SET balance = {daily}.balance + $3"
        ))
        .bind(event.stream_id.as_str())
        .bind(event.recorded_at.date_naive())
        .bind(change)
        .execute(tx.connection().await?)
        .await
        .map_err(sql_error)?;
        Ok(())
    }

    async fn reset(&self, tx: &mut PostgresProjectionTx) -> Result<(), ProjectionError> {
        let daily = table(tx.schema(), "daily_balances");
        sqlx::query(&format!("DELETE FROM {daily}"))
            .execute(tx.connection().await?)
            .await
            .map_err(sql_error)?;
        Ok(())
    }
}

/// The balance of `account` at the end of `day`: one index lookup, however
/// long the account's history.
pub async fn balance_on(
    store: &PostgresProjectionStore,
    account: &StreamId,
    day: NaiveDate,
) -> Result<i64, ProjectionError> {
    let daily = table(store.schema(), "daily_balances");
    let balance: Option<i64> = sqlx::query_scalar(&format!(
        "SELECT balance FROM {daily} WHERE account = $1 AND day <= $2 \
         ORDER BY day DESC LIMIT 1"
    ))
    .bind(account.as_str())
    .bind(day)
    .fetch_optional(store.pool())
    .await
    .map_err(sql_error)?;
    Ok(balance.unwrap_or(0))
}
// ANCHOR_END: projection

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use bank::account::AccountCommand;
    use composable_rust::{AsOf, ProjectionManager};

    use super::*;
    use crate::fixture::Fixture;

    const DAY: Duration = Duration::from_secs(24 * 60 * 60);

    // ANCHOR: load_at
    #[tokio::test]
    async fn the_events_answer_as_of_a_version_or_a_time() {
        let f = Fixture::new().await; // the clock starts on March 2nd, 09:00
        let ada = f.open(1, "Ada").await;
        f.run(&ada, AccountCommand::Deposit { amount: 100 }).await;
        f.clock.advance(DAY);
        f.run(&ada, AccountCommand::Withdraw { amount: 30 }).await;

        let at_v2 = f.accounts.load_at(&ada, AsOf::Version(2)).await.unwrap();
        assert_eq!((at_v2.state.balance, at_v2.version), (100, 2));
        let evening: AsOf = "2026-03-02T23:59:59Z".parse().unwrap();
        let then = f.accounts.load_at(&ada, evening).await.unwrap();
        assert_eq!(then.state.balance, 100);
        assert!(f.accounts.load_at(&ada, AsOf::Version(4)).await.is_err());
    }
    // ANCHOR_END: load_at

    // ANCHOR: test
    #[tokio::test]
    async fn the_read_model_agrees_with_the_events_on_every_day() {
        let f = Fixture::new().await;
        create_table(&f.store).await.unwrap();
        let ada = f.open(1, "Ada").await;
        for (deposit, withdrawal) in [(100, 30), (0, 50), (250, 0), (0, 0), (5, 200)] {
            if deposit > 0 {
                f.run(&ada, AccountCommand::Deposit { amount: deposit })
                    .await;
            }
            if withdrawal > 0 {
                f.run(&ada, AccountCommand::Withdraw { amount: withdrawal })
                    .await;
            }
            f.clock.advance(DAY);
        }
        let manager = ProjectionManager::new(
            DailyBalances::default(),
            Arc::clone(&f.store),
            f.events.clone(),
        );
        manager.catch_up().await.unwrap();

        let first = NaiveDate::from_ymd_opt(2026, 3, 1).unwrap(); // before the account
        for day in first.iter_days().take(7) {
            let evening = day.and_hms_opt(23, 59, 59).unwrap().and_utc();
            let from_events = f.accounts.load_at(&ada, AsOf::Time(evening)).await.unwrap();
            let from_read_model = balance_on(&f.store, &ada, day).await.unwrap();
            assert_eq!(
                from_read_model, from_events.state.balance as i64,
                "on {day}"
            );
        }
        let march_4th = NaiveDate::from_ymd_opt(2026, 3, 4).unwrap();
        assert_eq!(balance_on(&f.store, &ada, march_4th).await.unwrap(), 270);
    }
    // ANCHOR_END: test
}
