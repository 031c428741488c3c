//! A read model: every account's balance, kept by a projection.

use std::marker::PhantomData;

use composable_rust::event::decode;
use composable_rust::prelude::*;
use composable_rust::{ProjectionError, Upcasters};

use crate::account::AccountEvent;

// ANCHOR: projection
/// `balance:<stream>` -> the account's balance, in any projection store.
#[derive(Debug, Default)]
pub struct Balances<S> {
    upcasters: Upcasters,
    _store: PhantomData<fn() -> S>,
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
        let balance: i64 = tx.get_json(&key).await?.unwrap_or(0);
        let balance = match decode::<AccountEvent>(event, &self.upcasters)? {
            Some(AccountEvent::Deposited { amount }) => balance + amount as i64,
            Some(AccountEvent::Withdrawn { amount }) => balance - amount as i64,
            Some(AccountEvent::Opened { .. }) | None => balance,
        };
        tx.save_json(&key, &balance).await
    }

    async fn reset(&self, tx: &mut S::Tx) -> Result<(), ProjectionError> {
        tx.delete_prefix("balance:").await.map(|_| ())
    }
}
// ANCHOR_END: projection
