//! The account summaries: a read model with one summary per account (for
//! the accounts screen) and bank-wide totals (for the dashboard), kept up
//! to date from the account events, in any projection store.

use std::marker::PhantomData;

use composable_rust::event::decode;
use composable_rust::prelude::*;
use composable_rust::{ProjectionError, Upcasters};
use serde::{Deserialize, Serialize};

use crate::account::AccountEvent;

/// One row of the accounts screen.
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

/// Keeps an [`AccountSummary`] per account and the [`BankTotals`], in any
/// store `S` (in memory in tests, PostgreSQL or Redis in production).
#[derive(Debug)]
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
