//! Reading your own writes across requests: the write returns its
//! position as a consistency token; the next query waits for the read
//! model to reach it before answering.

use std::time::Duration;

use bank::account::{Account, AccountCommand};
use composable_rust::prelude::*;
use composable_rust::{
    AggregateRepository, InMemoryEventStore, InMemoryProjectionStore, Position, ProjectionManager,
};
use listing_10_01::{Balance, Balances};

pub type Accounts = AggregateRepository<Account, InMemoryEventStore>;
pub type BalancesManager = ProjectionManager<Balances<InMemoryProjectionStore>>;
pub type Error = Box<dyn std::error::Error + Send + Sync>;

// ANCHOR: token
/// `POST /accounts/{id}/deposits`: answers with the write's position,
/// which the client sends back with its next query (a header, a cookie).
pub async fn deposit(accounts: &Accounts, id: u64, amount: u64) -> Result<Position, Error> {
    let stream = accounts.stream_id(id)?;
    let executed = accounts
        .execute(&stream, AccountCommand::Deposit { amount })
        .await?;
    Ok(executed.position.expect("a deposit appends an event"))
}

/// `GET /accounts/{id}/balance`: if the client sent a token, waits (at most
/// `patience`) until the read model has applied it, then reads.
pub async fn balance(
    balances: &BalancesManager,
    id: u64,
    seen: Option<Position>,
    patience: Duration,
) -> Result<u64, Error> {
    if let Some(position) = seen {
        balances.wait_for(position, patience).await?;
    }
    let key = format!("balance:account-{id}");
    let balance: Option<Balance> = balances.store().get_json(&key).await?;
    Ok(balance.map_or(0, |balance| balance.balance))
}
// ANCHOR_END: token

// ANCHOR: test
#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use composable_rust::ProjectionError;

    use super::*;

    async fn bank() -> (Accounts, BalancesManager) {
        let events = InMemoryEventStore::new();
        let accounts = Accounts::new(events.clone(), ());
        let store = Arc::new(InMemoryProjectionStore::new());
        let balances = ProjectionManager::new(Balances::default(), store, events);
        let ada = accounts.stream_id(1).unwrap();
        let open = AccountCommand::Open {
            owner: "Ada".into(),
        };
        accounts.execute(&ada, open).await.unwrap();
        (accounts, balances)
    }

    #[tokio::test]
    async fn a_query_with_the_token_sees_the_write() {
        let (accounts, balances) = bank().await;
        let running = balances.start();
        let token = deposit(&accounts, 1, 25).await.unwrap();
        let shown = balance(&balances, 1, Some(token), Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(shown, 25);
        balances.shutdown();
        running.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn a_stuck_read_model_fails_the_query_instead_of_lying() {
        let (accounts, balances) = bank().await; // its manager is not running
        let token = deposit(&accounts, 1, 25).await.unwrap();
        let without = balance(&balances, 1, None, Duration::ZERO).await.unwrap();
        assert_eq!(without, 0, "no token: whatever the read model has");
        let error = balance(&balances, 1, Some(token), Duration::from_millis(20))
            .await
            .unwrap_err();
        let error = error.downcast::<ProjectionError>().unwrap();
        assert!(
            matches!(*error, ProjectionError::WaitTimedOut { .. }),
            "{error}"
        );
    }
}
// ANCHOR_END: test
