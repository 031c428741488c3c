//! Maintaining and rebuilding read models: the accounts table gets a new
//! column, `movements`. Adding the column is a migration; filling it for
//! the accounts that already exist is a rebuild, because only the events
//! know how many movements each account had.

use bank::account::AccountEvent;
use composable_rust::event::decode;
use composable_rust::postgres::{PostgresProjectionStore, PostgresProjectionTx, sql_error};
use composable_rust::prelude::*;
use composable_rust::{ProjectionError, Upcasters};

use crate::accounts::{self, Accounts};
use crate::table;

// ANCHOR: migration
/// Version 1's table, plus the new column. `IF NOT EXISTS` makes it safe
/// to run at every start, before the manager.
pub async fn migrate(store: &PostgresProjectionStore) -> Result<(), ProjectionError> {
    accounts::create_table(store).await?;
    let accounts = table(store.schema(), "accounts");
    sqlx::query(&format!(
        "ALTER TABLE {accounts} ADD COLUMN IF NOT EXISTS movements integer NOT NULL DEFAULT 0"
    ))
    .execute(store.pool())
    .await
    .map_err(sql_error)?;
    Ok(())
}
// ANCHOR_END: migration

// ANCHOR: projection
/// Version 2 of the accounts projection: the same name (so the same
/// checkpoint) and table, and it counts movements.
#[derive(Debug, Default)]
pub struct AccountsWithMovements {
    upcasters: Upcasters,
    version_1: Accounts,
}

#[async_trait]
impl Projection for AccountsWithMovements {
    type Store = PostgresProjectionStore;

    fn name(&self) -> &str {
        self.version_1.name()
    }

    fn handles(&self, event: &StoredEvent) -> bool {
        self.version_1.handles(event)
    }

    async fn apply(
        &self,
        event: &StoredEvent,
        tx: &mut PostgresProjectionTx,
    ) -> Result<(), ProjectionError> {
        self.version_1.apply(event, tx).await?;
        if let Some(AccountEvent::Deposited { .. } | AccountEvent::Withdrawn { .. }) =
            decode(event, &self.upcasters)?
        {
            let accounts = table(tx.schema(), "accounts");
            sqlx::query(&format!(
                "UPDATE {accounts} SET movements = movements + 1 WHERE id = $1"
            ))
            .bind(event.stream_id.as_str())
            .execute(tx.connection().await?)
            .await
            .map_err(sql_error)?;
        }
        Ok(())
    }

    async fn reset(&self, tx: &mut PostgresProjectionTx) -> Result<(), ProjectionError> {
        self.version_1.reset(tx).await
    }
}
// ANCHOR_END: projection

/// The movements of one account, if it has a row.
pub async fn movements(
    store: &PostgresProjectionStore,
    id: &StreamId,
) -> Result<Option<i32>, ProjectionError> {
    let accounts = table(store.schema(), "accounts");
    sqlx::query_scalar(&format!("SELECT movements FROM {accounts} WHERE id = $1"))
        .bind(id.as_str())
        .fetch_optional(store.pool())
        .await
        .map_err(sql_error)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use bank::account::AccountCommand;
    use composable_rust::ProjectionManager;
    use composable_rust::projection::ProjectionRequest;

    use super::*;
    use crate::fixture::Fixture;

    // ANCHOR: test
    #[tokio::test]
    async fn a_rebuild_request_fills_the_new_column() {
        let f = Fixture::new().await;
        accounts::create_table(&f.store).await.unwrap();
        let ada = f.open(1, "Ada").await;
        f.run(&ada, AccountCommand::Deposit { amount: 100 }).await;
        f.run(&ada, AccountCommand::Withdraw { amount: 30 }).await;
        // Version 1 has been running: its rows and checkpoint are there.
        let v1 =
            ProjectionManager::new(Accounts::default(), Arc::clone(&f.store), f.events.clone());
        v1.catch_up().await.unwrap();

        // The deploy: migrate, then start version 2 under the same name.
        migrate(&f.store).await.unwrap();
        let v2 = ProjectionManager::new(
            AccountsWithMovements::default(),
            Arc::clone(&f.store),
            f.events.clone(),
        );
        f.run(&ada, AccountCommand::Deposit { amount: 5 }).await;
        v2.catch_up().await.unwrap();
        // Only the movement after the deploy was counted.
        assert_eq!(movements(&f.store, &ada).await.unwrap(), Some(1));

        // What `composable checkpoint reset accounts` files from a terminal:
        let filed = f
            .store
            .request("accounts", ProjectionRequest::Rebuild)
            .await;
        assert!(filed.unwrap());
        // The manager takes it at its next catch-up (or, running, within
        // seconds): reset, then every event again, by version 2's code.
        v2.catch_up().await.unwrap();
        assert_eq!(movements(&f.store, &ada).await.unwrap(), Some(3));
        let balance = accounts::AccountQueries::new(&f.store)
            .by_id(&ada)
            .await
            .unwrap();
        assert_eq!(balance.map(|row| row.balance), Some(75));
    }
    // ANCHOR_END: test
}
