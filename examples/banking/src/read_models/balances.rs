//! The balances read model: one JSON value per account in the PostgreSQL
//! projection store (`balance:{account}`), for the "my accounts" screen.
//!
//! PostgreSQL commits the value and the projection's checkpoint in one
//! transaction: exactly once. The events are fat (each carries the
//! balance after it), so applying one is a plain write, no arithmetic.

use async_trait::async_trait;
use composable_rust::event::decode;
use composable_rust::postgres::{PostgresProjectionStore, PostgresProjectionTx};
use composable_rust::prelude::*;
use composable_rust::{ProjectionError, Upcasters};
use serde::{Deserialize, Serialize};

use crate::account::AccountEvent;

/// The prefix of the keys.
const PREFIX: &str = "balance:";

/// One account, as the screen shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Balance {
    /// The account id.
    pub account: String,
    /// Who owns it.
    pub owner: String,
    /// The balance, in cents.
    pub balance: i64,
    /// How far below zero it may go, in cents.
    pub overdraft_limit: i64,
    /// Whether it is closed.
    pub closed: bool,
}

/// The key of `account`'s balance.
pub fn balance_key(account: &str) -> String {
    format!("{PREFIX}{account}")
}

/// Keeps a [`Balance`] per account.
#[derive(Debug, Default)]
pub struct Balances {
    upcasters: Upcasters,
}

#[async_trait]
impl Projection for Balances {
    type Store = PostgresProjectionStore;

    fn name(&self) -> &str {
        "banking-balances"
    }

    fn handles(&self, event: &StoredEvent) -> bool {
        event.stream_id.as_str().starts_with("account-")
    }

    async fn apply(
        &self,
        event: &StoredEvent,
        tx: &mut PostgresProjectionTx,
    ) -> Result<(), ProjectionError> {
        // A payload that does not decode is retried, then dead-lettered.
        let Some(account_event) = decode::<AccountEvent>(event, &self.upcasters)? else {
            return Ok(());
        };
        let account = match &account_event {
            AccountEvent::Opened { account_id, .. }
            | AccountEvent::Deposited { account_id, .. }
            | AccountEvent::Withdrawn { account_id, .. }
            | AccountEvent::Closed { account_id, .. } => account_id,
        };
        let key = balance_key(account);
        let mut balance: Balance = tx.get_json(&key).await?.unwrap_or_default();
        balance.account.clone_from(account);
        match &account_event {
            AccountEvent::Opened {
                owner,
                overdraft_limit,
                ..
            } => {
                balance.owner.clone_from(owner);
                balance.overdraft_limit = *overdraft_limit;
            }
            AccountEvent::Deposited { balance: after, .. }
            | AccountEvent::Withdrawn { balance: after, .. } => balance.balance = *after,
            AccountEvent::Closed { .. } => balance.closed = true,
        }
        tx.save_json(&key, &balance).await
    }

    async fn reset(&self, tx: &mut PostgresProjectionTx) -> Result<(), ProjectionError> {
        tx.delete_prefix(PREFIX).await.map(|_| ())
    }
}
