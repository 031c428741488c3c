//! Listing 7-2: version 2 of the account summaries, with a new shape, kept
//! under a new name and key prefix so it can run beside version 1.

use std::marker::PhantomData;

use async_trait::async_trait;
use bank::account::AccountEvent;
use composable_rust::ProjectionError;
use composable_rust::Upcasters;
use composable_rust::event::decode;
use composable_rust::prelude::*;
use serde::{Deserialize, Serialize};

// ANCHOR: v2
/// Version 2 of a row of the accounts screen: deposits and withdrawals are
/// counted apart, and the largest deposit is shown.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AccountSummaryV2 {
    pub owner: String,
    pub balance: u64,
    pub deposits: u32,
    pub withdrawals: u32,
    pub largest_deposit: u64,
}

/// Version 2 keeps its rows under a prefix of its own.
pub fn summary_v2_key(stream_id: &StreamId) -> String {
    format!("account-summary-v2:{stream_id}")
}

#[derive(Debug)]
pub struct AccountSummariesV2<S> {
    upcasters: Upcasters,
    _store: PhantomData<fn() -> S>,
}

#[async_trait]
impl<S: ProjectionCheckpoint> Projection for AccountSummariesV2<S> {
    type Store = S;

    /// A new name: a checkpoint of its own, starting from the first event.
    fn name(&self) -> &str {
        "account-summaries-v2"
    }

    fn handles(&self, event: &StoredEvent) -> bool {
        event.stream_id.as_str().starts_with("account-")
    }

    async fn apply(&self, event: &StoredEvent, tx: &mut S::Tx) -> Result<(), ProjectionError> {
        let Some(account_event) = decode::<AccountEvent>(event, &self.upcasters)? else {
            return Ok(());
        };
        let key = summary_v2_key(&event.stream_id);
        let mut row: AccountSummaryV2 = tx.get_json(&key).await?.unwrap_or_default();
        match account_event {
            AccountEvent::Opened { owner } => row.owner = owner,
            AccountEvent::Deposited { amount } => {
                row.balance += amount;
                row.deposits += 1;
                row.largest_deposit = row.largest_deposit.max(amount);
            }
            AccountEvent::Withdrawn { amount } => {
                row.balance -= amount;
                row.withdrawals += 1;
            }
        }
        tx.save_json(&key, &row).await
    }

    async fn reset(&self, tx: &mut S::Tx) -> Result<(), ProjectionError> {
        tx.delete_prefix("account-summary-v2:").await.map(|_| ())
    }
}
// ANCHOR_END: v2

impl<S> AccountSummariesV2<S> {
    pub fn new() -> Self {
        Self {
            upcasters: Upcasters::new(),
            _store: PhantomData,
        }
    }
}

impl<S> Default for AccountSummariesV2<S> {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use composable_rust::testing::ProjectionTestHarness;

    #[tokio::test]
    async fn counts_deposits_and_withdrawals_apart() {
        let mut harness = ProjectionTestHarness::new(AccountSummariesV2::new());
        harness
            .given_events(
                "account-1",
                [
                    AccountEvent::Opened {
                        owner: "Ada".into(),
                    },
                    AccountEvent::Deposited { amount: 100 },
                    AccountEvent::Deposited { amount: 20 },
                    AccountEvent::Withdrawn { amount: 30 },
                ],
            )
            .await;
        let row: AccountSummaryV2 = harness
            .get_json("account-summary-v2:account-1")
            .await
            .unwrap();
        assert_eq!(
            row,
            AccountSummaryV2 {
                owner: "Ada".into(),
                balance: 90,
                deposits: 2,
                withdrawals: 1,
                largest_deposit: 100,
            }
        );
        harness.assert_rebuild_matches().await;
    }
}
