//! The read model the service answers queries from: one summary per
//! account, kept up to date by a projection, in any projection store.

use std::marker::PhantomData;

use composable_rust::event::decode;
use composable_rust::prelude::*;
use composable_rust::{ProjectionError, Upcasters};
use serde::{Deserialize, Serialize};

use crate::account::AccountEvent;

// ANCHOR: summaries
/// One account, as the accounts screen shows it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AccountSummary {
    pub owner: String,
    pub balance: u64,
    pub transactions: u32,
}

/// The key of the summary of the account whose stream is `stream_id`.
pub fn summary_key(stream_id: &StreamId) -> String {
    format!("account-summary:{stream_id}")
}

/// Keeps an [`AccountSummary`] per account in the store `S`.
#[derive(Debug)]
pub struct AccountSummaries<S> {
    upcasters: Upcasters,
    _store: PhantomData<fn() -> S>,
}
// ANCHOR_END: summaries

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

    fn handles(&self, event: &StoredEvent) -> bool {
        event.stream_id.as_str().starts_with("account-")
    }

    async fn apply(&self, event: &StoredEvent, tx: &mut S::Tx) -> Result<(), ProjectionError> {
        let Some(account_event) = decode::<AccountEvent>(event, &self.upcasters)? else {
            return Ok(());
        };
        let key = summary_key(&event.stream_id);
        let mut summary: AccountSummary = tx.get_json(&key).await?.unwrap_or_default();
        match account_event {
            AccountEvent::Opened { owner } => summary.owner = owner,
            AccountEvent::Deposited { amount } => {
                summary.balance += amount;
                summary.transactions += 1;
            }
            AccountEvent::Withdrawn { amount } => {
                summary.balance -= amount;
                summary.transactions += 1;
            }
        }
        tx.save_json(&key, &summary).await
    }

    async fn reset(&self, tx: &mut S::Tx) -> Result<(), ProjectionError> {
        tx.delete_prefix("account-summary:").await.map(|_| ())
    }
}
