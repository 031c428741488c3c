//! Listing 17-2: read-after-write. A deposit endpoint that reads the
//! balance back from a projection right after writing sees stale data;
//! three ways to read your own write instead.

use std::time::Duration;

use bank::account::{Account, AccountCommand};
use composable_rust::aggregate::Executed;
use composable_rust::prelude::*;
use composable_rust::{
    AggregateRepository, InMemoryEventStore, InMemoryProjectionStore, ProjectionManager,
};
use listing_10_01::{Balance, Balances};

/// The accounts, stored in memory for this listing.
pub type Accounts = AggregateRepository<Account, InMemoryEventStore>;
/// The balances read model and the manager that keeps it up to date.
pub type BalancesManager = ProjectionManager<Balances<InMemoryProjectionStore>>;

/// Anything that can go wrong in these endpoints.
pub type Error = Box<dyn std::error::Error + Send + Sync>;

async fn deposit(
    accounts: &Accounts,
    account: u64,
    amount: u64,
) -> Result<Executed<Account>, Error> {
    let stream = accounts.stream_id(account)?;
    Ok(accounts
        .execute(&stream, AccountCommand::Deposit { amount })
        .await?)
}

async fn read_balance(manager: &BalancesManager, account: u64) -> Result<u64, Error> {
    let key = format!("balance:account-{account}");
    let balance: Option<Balance> = manager.store().get_json(&key).await?;
    Ok(balance.map_or(0, |balance| balance.balance))
}

// ANCHOR: stale
/// ❌ Deposits, then reads the new balance from the read model, which may
/// not have applied the deposit yet.
pub async fn deposit_then_read_projection(
    accounts: &Accounts,
    balances: &BalancesManager,
    account: u64,
    amount: u64,
) -> Result<u64, Error> {
    deposit(accounts, account, amount).await?;
    read_balance(balances, account).await
}
// ANCHOR_END: stale

// ANCHOR: from_command
/// ✅ Pattern 1: the command returns the aggregate's new state. The
/// write knows its own outcome; use it.
pub async fn deposit_returning_balance(
    accounts: &Accounts,
    account: u64,
    amount: u64,
) -> Result<u64, Error> {
    let executed = deposit(accounts, account, amount).await?;
    Ok(executed.state.balance)
}
// ANCHOR_END: from_command

// ANCHOR: from_store
/// ✅ Pattern 2: read the aggregate from the event store, which is never
/// behind its own writes.
pub async fn balance_from_event_store(accounts: &Accounts, account: u64) -> Result<u64, Error> {
    let stream = accounts.stream_id(account)?;
    Ok(accounts.load(&stream).await?.state.balance)
}
// ANCHOR_END: from_store

// ANCHOR: wait_for
/// ✅ Pattern 3: when the answer must come from the read model (it has
/// data the aggregate does not), wait until the read model has applied
/// the write's position, then read it.
pub async fn deposit_then_wait_for_projection(
    accounts: &Accounts,
    balances: &BalancesManager,
    account: u64,
    amount: u64,
    patience: Duration,
) -> Result<u64, Error> {
    let executed = deposit(accounts, account, amount).await?;
    if let Some(position) = executed.position {
        balances.wait_for(position, patience).await?;
    }
    read_balance(balances, account).await
}
// ANCHOR_END: wait_for

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use composable_rust::ProjectionError;

    use super::*;

    // ANCHOR: setup
    /// Account 1, opened with 100 deposited, and a balances projection that
    /// has applied both.
    async fn world() -> (Accounts, BalancesManager) {
        let events = InMemoryEventStore::new();
        let accounts = Accounts::new(events.clone(), ());
        let store = Arc::new(InMemoryProjectionStore::new());
        let balances = ProjectionManager::new(Balances::default(), store, events);
        let ada = accounts.stream_id(1).unwrap();
        let open = AccountCommand::Open {
            owner: "Ada".into(),
        };
        accounts.execute(&ada, open).await.unwrap();
        deposit(&accounts, 1, 100).await.unwrap();
        balances.catch_up().await.unwrap();
        (accounts, balances)
    }
    // ANCHOR_END: setup

    // ANCHOR: stale_test
    #[tokio::test]
    async fn reading_the_projection_right_after_a_write_sees_the_old_balance() {
        let (accounts, balances) = world().await;
        // The projection's next batch has not run yet: the deposit is
        // stored, and the read model does not know.
        let shown = deposit_then_read_projection(&accounts, &balances, 1, 25)
            .await
            .unwrap();
        assert_eq!(shown, 100, "the user sees their deposit missing");
    }
    // ANCHOR_END: stale_test

    // ANCHOR: fresh_tests
    #[tokio::test]
    async fn the_command_returns_the_new_balance() {
        let (accounts, _lagging) = world().await;
        let shown = deposit_returning_balance(&accounts, 1, 25).await.unwrap();
        assert_eq!(shown, 125);
    }

    #[tokio::test]
    async fn the_event_store_is_never_behind_its_own_writes() {
        let (accounts, _lagging) = world().await;
        deposit(&accounts, 1, 25).await.unwrap();
        assert_eq!(balance_from_event_store(&accounts, 1).await.unwrap(), 125);
    }

    #[tokio::test]
    async fn waiting_for_the_position_reads_your_own_write() {
        let (accounts, balances) = world().await;
        let running = balances.start();
        let shown =
            deposit_then_wait_for_projection(&accounts, &balances, 1, 25, Duration::from_secs(5))
                .await
                .unwrap();
        assert_eq!(shown, 125);
        balances.shutdown();
        running.await.unwrap().unwrap();
    }
    // ANCHOR_END: fresh_tests

    // ANCHOR: wait_fails
    #[tokio::test]
    async fn waiting_for_a_projection_that_is_not_running_fails_and_says_where_it_is() {
        let (accounts, balances) = world().await;
        // Nobody started the manager: the position is never reached.
        let error = deposit_then_wait_for_projection(
            &accounts,
            &balances,
            1,
            25,
            Duration::from_millis(50),
        )
        .await
        .unwrap_err();
        let error = error.downcast::<ProjectionError>().unwrap();
        assert!(
            matches!(*error, ProjectionError::WaitTimedOut { .. }),
            "{error}"
        );
        println!("{error}");
    }
    // ANCHOR_END: wait_fails
}
