//! Listing 10-1: an account balance projection that is safe to apply twice,
//! and the tests that prove it.

use std::marker::PhantomData;

use async_trait::async_trait;
use bank::account::AccountEvent;
use composable_rust::Position;
use composable_rust::ProjectionError;
use composable_rust::Upcasters;
use composable_rust::event::decode;
use composable_rust::prelude::*;
use serde::{Deserialize, Serialize};

// ANCHOR: versioned
/// A balance, and the position of the last event applied to it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Balance {
    pub balance: u64,
    pub applied_up_to: Position,
}

/// Balances per account, safe on stores that may deliver an event twice.
#[derive(Debug)]
pub struct Balances<S>(PhantomData<fn() -> S>);

impl<S> Default for Balances<S> {
    fn default() -> Self {
        Self(PhantomData)
    }
}

#[async_trait]
impl<S: ProjectionCheckpoint> Projection for Balances<S> {
    type Store = S;

    fn name(&self) -> &str {
        "balances"
    }

    fn handles(&self, event: &StoredEvent) -> bool {
        event.stream_id.as_str().starts_with("account-")
    }

    async fn apply(&self, event: &StoredEvent, tx: &mut S::Tx) -> Result<(), ProjectionError> {
        let key = format!("balance:{}", event.stream_id);
        let mut value: Balance = tx.get_json(&key).await?.unwrap_or_default();
        // Events arrive in position order: one at or before the position
        // already applied to this value is a redelivery. Skip it.
        if event.position <= value.applied_up_to {
            return Ok(());
        }
        match decode::<AccountEvent>(event, &Upcasters::new())? {
            Some(AccountEvent::Deposited { amount }) => value.balance += amount,
            Some(AccountEvent::Withdrawn { amount }) => value.balance -= amount,
            Some(AccountEvent::Opened { .. }) | None => {}
        }
        value.applied_up_to = event.position;
        tx.save_json(&key, &value).await
    }

    async fn reset(&self, tx: &mut S::Tx) -> Result<(), ProjectionError> {
        tx.delete_prefix("balance:").await.map(|_| ())
    }
}
// ANCHOR_END: versioned

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use bank::account::{Account, AccountCommand};
    use bank::summaries::AccountSummaries;

    use super::*;
    use composable_rust::{
        AggregateRepository, InMemoryEventStore, InMemoryProjectionStore, ProjectionManager,
    };

    fn history() -> [AccountEvent; 3] {
        [
            AccountEvent::Opened {
                owner: "Ada".into(),
            },
            AccountEvent::Deposited { amount: 100 },
            AccountEvent::Withdrawn { amount: 30 },
        ]
    }

    // ANCHOR: idempotent
    #[tokio::test]
    async fn balances_survive_redelivery() {
        let mut harness =
            ProjectionTestHarness::new(Balances::<InMemoryProjectionStore>::default());
        harness.given_events("account-1", history()).await;
        let ada: Balance = harness.get_json("balance:account-1").await.unwrap();
        assert_eq!(ada.balance, 70);
        harness.assert_idempotent().await;
        harness.assert_rebuild_matches().await;
    }
    // ANCHOR_END: idempotent

    // ANCHOR: not_idempotent
    #[tokio::test]
    #[should_panic(expected = "the projection is not idempotent")]
    async fn summaries_count_a_redelivered_deposit_twice() {
        let mut harness =
            ProjectionTestHarness::new(AccountSummaries::<InMemoryProjectionStore>::new());
        harness.given_events("account-1", history()).await;
        harness.assert_idempotent().await;
    }
    // ANCHOR_END: not_idempotent

    // ANCHOR: manager_test
    #[tokio::test]
    async fn the_manager_keeps_balances_up_to_date() {
        let events = InMemoryEventStore::new();
        let accounts = AggregateRepository::<Account, _>::new(events.clone(), ());
        let store = Arc::new(InMemoryProjectionStore::new());
        let manager =
            ProjectionManager::new(Balances::default(), Arc::clone(&store), events.clone());
        let running = manager.start();

        let ada = accounts.stream_id(1).unwrap();
        accounts
            .execute(
                &ada,
                AccountCommand::Open {
                    owner: "Ada".into(),
                },
            )
            .await
            .unwrap();
        let deposit = accounts
            .execute(&ada, AccountCommand::Deposit { amount: 25 })
            .await
            .unwrap();

        // No sleeps: wait for exactly the position the write produced.
        manager
            .wait_for(deposit.position.unwrap(), Duration::from_secs(5))
            .await
            .unwrap();
        let balance: Balance = store.get_json("balance:account-1").await.unwrap().unwrap();
        assert_eq!(balance.balance, 25);

        manager.shutdown();
        running.await.unwrap().unwrap();
    }
    // ANCHOR_END: manager_test
}
