//! Listing 20-3: a wallet projection and a wallet reducer, tested with the
//! ready-made properties over random inputs.

use std::marker::PhantomData;

use composable_rust::event::decode;
use composable_rust::prelude::*;
use composable_rust::{Position, ProjectionError, Upcasters};
use serde::{Deserialize, Serialize};

/// What happened to a wallet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum WalletEvent {
    ToppedUp { cents: u32 },
    Spent { cents: u32 },
}

impl Event for WalletEvent {}

// ANCHOR: projection
/// A balance and the position of the last event applied to it.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Balance {
    pub cents: i64,
    pub applied_up_to: Position,
}

/// Balances per wallet, generic over the store (so the properties can run
/// it on theirs). `guarded: false` leaves out the redelivery guard.
#[derive(Debug)]
pub struct Balances<S> {
    pub guarded: bool,
    store: PhantomData<fn() -> S>,
}

impl<S> Balances<S> {
    pub fn new() -> Self {
        Self::with_guard(true)
    }

    pub fn with_guard(guarded: bool) -> Self {
        Self {
            guarded,
            store: PhantomData,
        }
    }
}

impl<S> Default for Balances<S> {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait]
impl<S: ProjectionCheckpoint> Projection for Balances<S> {
    type Store = S;

    fn name(&self) -> &str {
        "balances"
    }

    async fn apply(&self, event: &StoredEvent, tx: &mut S::Tx) -> Result<(), ProjectionError> {
        let key = format!("balance:{}", event.stream_id);
        let mut balance: Balance = tx.get_json(&key).await?.unwrap_or_default();
        if self.guarded && event.position <= balance.applied_up_to {
            return Ok(()); // already applied: a redelivery
        }
        match decode::<WalletEvent>(event, &Upcasters::new())? {
            Some(WalletEvent::ToppedUp { cents }) => balance.cents += i64::from(cents),
            Some(WalletEvent::Spent { cents }) => balance.cents -= i64::from(cents),
            None => {}
        }
        balance.applied_up_to = event.position;
        tx.save_json(&key, &balance).await
    }

    async fn reset(&self, tx: &mut S::Tx) -> Result<(), ProjectionError> {
        tx.delete_prefix("balance:").await.map(|_| ())
    }
}
// ANCHOR_END: projection

/// A wallet that refuses to go below zero.
#[derive(Debug)]
pub struct WalletReducer;

impl Reducer for WalletReducer {
    type State = i64;
    type Action = WalletEvent;
    type Environment = ();

    fn reduce(&self, balance: &mut i64, action: WalletEvent, _: &()) -> Effects<WalletEvent> {
        match action {
            WalletEvent::ToppedUp { cents } => *balance += i64::from(cents),
            WalletEvent::Spent { cents } if i64::from(cents) <= *balance => {
                *balance -= i64::from(cents);
            }
            WalletEvent::Spent { .. } => {} // refused: not enough money
        }
        Effects::new()
    }
}

#[cfg(test)]
mod tests {
    use composable_rust::InMemoryProjectionStore;
    use composable_rust::testing::properties::{CrashStore, Properties};
    use composable_rust::testing::proptest::prelude::*;
    use composable_rust::testing::strategies;

    use super::*;

    // ANCHOR: strategies
    /// Any wallet event, top-ups more often than spending.
    fn wallet_events() -> impl Strategy<Value = WalletEvent> {
        prop_oneof![
            3 => (1u32..10_000).prop_map(|cents| WalletEvent::ToppedUp { cents }),
            1 => (1u32..10_000).prop_map(|cents| WalletEvent::Spent { cents }),
        ]
    }

    /// Up to 30 events, spread over the streams wallet-1 .. wallet-3.
    fn histories() -> impl Strategy<Value = Vec<(StreamId, WalletEvent)>> {
        strategies::history("wallet", 3, wallet_events(), 0..30)
    }
    // ANCHOR_END: strategies

    // ANCHOR: properties
    #[test]
    fn balances_are_idempotent_and_rebuild() {
        let properties = Properties::new().with_cases(100);
        properties.projection_idempotent(Balances::<InMemoryProjectionStore>::new, histories());
        properties.rebuild_matches(Balances::<InMemoryProjectionStore>::new, histories());
    }

    #[test]
    fn balances_survive_a_crash_anywhere() {
        Properties::new()
            .with_cases(100)
            .crash_anywhere(Balances::<CrashStore>::new, histories());
    }

    #[test]
    fn a_wallet_never_goes_below_zero() {
        Properties::new().reducer_invariant(
            &WalletReducer,
            &(),
            || 0,
            wallet_events(),
            |b| {
                if *b >= 0 {
                    Ok(())
                } else {
                    Err(format!("balance {b}"))
                }
            },
        );
    }
    // ANCHOR_END: properties

    // ANCHOR: shrunk
    /// Without the guard, a redelivered event counts twice. Whatever random
    /// history fails first, proptest shrinks it to the smallest: one event,
    /// applied twice.
    #[test]
    #[should_panic(expected = "with a history of 1 event(s), applying the first 1 twice")]
    fn without_the_guard_a_redelivery_counts_twice() {
        Properties::new().projection_idempotent(
            || Balances::<InMemoryProjectionStore>::with_guard(false),
            histories(),
        );
    }
    // ANCHOR_END: shrunk
}
