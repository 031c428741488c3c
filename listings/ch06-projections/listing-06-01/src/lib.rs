//! Listing 6-1: a projection that keeps one summary per bank account (the
//! accounts of chapter 4) and a bank-wide total, in any key-value
//! projection store.

use std::marker::PhantomData;

use async_trait::async_trait;
use composable_rust::ProjectionError;
use composable_rust::Upcasters;
use composable_rust::event::decode;
use composable_rust::prelude::*;
use listing_04_01::AccountEvent;
use serde::{Deserialize, Serialize};

// ANCHOR: read_model
/// One row of the "accounts" screen.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AccountSummary {
    pub owner: String,
    pub balance: u64,
    pub transactions: u32,
}

/// The whole bank, for the dashboard.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BankTotals {
    pub accounts: u32,
    pub deposits: u64,
}

/// The key of one account's summary.
pub fn summary_key(stream_id: &StreamId) -> String {
    format!("account-summary:{stream_id}")
}

/// The key of the bank totals.
pub const TOTALS_KEY: &str = "account-summary:totals";
// ANCHOR_END: read_model

// ANCHOR: projection
/// Keeps an [`AccountSummary`] per account and the [`BankTotals`], in any
/// store `S` (in memory in tests, PostgreSQL or Redis in production).
pub struct AccountSummaries<S> {
    upcasters: Upcasters,
    _store: PhantomData<fn() -> S>,
}

impl<S> AccountSummaries<S> {
    pub fn new() -> Self {
        Self {
            upcasters: Upcasters::new(),
            _store: PhantomData,
        }
    }
}

impl<S> Default for AccountSummaries<S> {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait]
impl<S: ProjectionCheckpoint> Projection for AccountSummaries<S> {
    type Store = S;

    fn name(&self) -> &str {
        "account-summaries"
    }

    /// Only account streams; other aggregates' events are skipped.
    fn handles(&self, event: &StoredEvent) -> bool {
        event.stream_id.as_str().starts_with("account-")
    }

    async fn apply(&self, event: &StoredEvent, tx: &mut S::Tx) -> Result<(), ProjectionError> {
        let Some(account_event) = decode::<AccountEvent>(event, &self.upcasters)? else {
            return Ok(());
        };
        let key = summary_key(&event.stream_id);
        let mut summary: AccountSummary = tx.get_json(&key).await?.unwrap_or_default();
        let mut totals: BankTotals = tx.get_json(TOTALS_KEY).await?.unwrap_or_default();
        match account_event {
            AccountEvent::Opened { owner } => {
                summary.owner = owner;
                totals.accounts += 1;
            }
            AccountEvent::Deposited { amount } => {
                summary.balance += amount;
                summary.transactions += 1;
                totals.deposits += amount;
            }
            AccountEvent::Withdrawn { amount } => {
                summary.balance -= amount;
                summary.transactions += 1;
            }
        }
        tx.save_json(&key, &summary).await?;
        tx.save_json(TOTALS_KEY, &totals).await
    }

    async fn reset(&self, tx: &mut S::Tx) -> Result<(), ProjectionError> {
        tx.delete_prefix("account-summary:").await.map(|_| ())
    }
}
// ANCHOR_END: projection

// ANCHOR: tests
#[cfg(test)]
mod tests {
    use super::*;
    use composable_rust::InMemoryProjectionStore;

    fn harness() -> ProjectionTestHarness<AccountSummaries<InMemoryProjectionStore>> {
        ProjectionTestHarness::new(AccountSummaries::new())
    }

    #[tokio::test]
    async fn keeps_a_summary_per_account_and_bank_totals() {
        let mut harness = harness();
        harness
            .given_events(
                "account-1",
                [
                    AccountEvent::Opened {
                        owner: "Ada".into(),
                    },
                    AccountEvent::Deposited { amount: 100 },
                    AccountEvent::Withdrawn { amount: 30 },
                ],
            )
            .await
            .given_events(
                "account-2",
                [
                    AccountEvent::Opened {
                        owner: "Grace".into(),
                    },
                    AccountEvent::Deposited { amount: 5 },
                ],
            )
            .await;

        let ada: AccountSummary = harness.get_json("account-summary:account-1").await.unwrap();
        assert_eq!(
            ada,
            AccountSummary {
                owner: "Ada".into(),
                balance: 70,
                transactions: 2
            }
        );
        let totals: BankTotals = harness.get_json(TOTALS_KEY).await.unwrap();
        assert_eq!(
            totals,
            BankTotals {
                accounts: 2,
                deposits: 105
            }
        );
        harness.assert_rebuild_matches().await;
    }

    #[tokio::test]
    async fn ignores_other_aggregates() {
        let mut harness = harness();
        harness
            .given_events("loan-1", [AccountEvent::Deposited { amount: 1 }])
            .await;
        assert!(harness.store().is_empty());
    }
}
// ANCHOR_END: tests
