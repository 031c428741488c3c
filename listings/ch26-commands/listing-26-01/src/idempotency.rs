//! Idempotent commands: the client sends an idempotency key with each
//! request; a retried request with the same key changes nothing.

use std::collections::BTreeSet;

use composable_rust::prelude::*;
use composable_rust::uuid::Uuid;
use serde::{Deserialize, Serialize};

// ANCHOR: aggregate
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
pub enum WalletEvent {
    /// The request id travels in the event, so the state can remember it.
    ToppedUp { request_id: Uuid, amount: u64 },
}

#[derive(Debug)]
pub struct TopUp {
    pub request_id: Uuid,
    pub amount: u64,
}

#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct Wallet {
    pub balance: u64,
    pub handled: BTreeSet<Uuid>,
}

#[derive(Debug, thiserror::Error)]
#[error("never refused in this listing")]
pub struct Never;

impl Aggregate for Wallet {
    const KIND: &'static str = "wallet";
    type Event = WalletEvent;
    type Command = TopUp;
    type Error = Never;
    type Environment = ();

    fn decide(&self, top_up: TopUp, _: &()) -> Result<Vec<WalletEvent>, Never> {
        if self.handled.contains(&top_up.request_id) {
            return Ok(vec![]); // done already: succeed, change nothing
        }
        let TopUp { request_id, amount } = top_up;
        Ok(vec![WalletEvent::ToppedUp { request_id, amount }])
    }

    fn apply(&mut self, WalletEvent::ToppedUp { request_id, amount }: &WalletEvent) {
        self.balance += amount;
        self.handled.insert(*request_id);
    }
}
// ANCHOR_END: aggregate

// ANCHOR: test
#[cfg(test)]
mod tests {
    use composable_rust::{
        AggregateRepository, EventStoreError, ExpectedVersion, InMemoryEventStore, NewEvent,
    };

    use super::*;

    #[tokio::test]
    async fn a_retried_request_takes_effect_once() {
        let wallets = AggregateRepository::<Wallet, _>::new(InMemoryEventStore::new(), ());
        let ada = wallets.stream_id("ada").unwrap();
        let request_id = Uuid::now_v7(); // from the client's Idempotency-Key header
        let first = wallets
            .execute(
                &ada,
                TopUp {
                    request_id,
                    amount: 50,
                },
            )
            .await
            .unwrap();
        // The response was lost; the client sends the same request again.
        let retry = wallets
            .execute(
                &ada,
                TopUp {
                    request_id,
                    amount: 50,
                },
            )
            .await
            .unwrap();
        assert_eq!(first.state.balance, 50);
        assert_eq!(retry.state.balance, 50);
        assert!(retry.events.is_empty(), "the retry stored nothing");
    }

    #[tokio::test]
    async fn an_event_id_derived_from_the_request_is_stored_once() {
        let events = InMemoryEventStore::new();
        let request_id = Uuid::now_v7();
        let event = WalletEvent::ToppedUp {
            request_id,
            amount: 50,
        };
        let new = || vec![NewEvent::from_event(&event).unwrap().with_id(request_id)];
        let stream = StreamId::new("wallet-ada").unwrap();
        events
            .append(&stream, ExpectedVersion::Any, new())
            .await
            .unwrap();
        let again = events.append(&stream, ExpectedVersion::Any, new()).await;
        assert!(matches!(
            again,
            Err(EventStoreError::DuplicateEventId { .. })
        ));
        assert_eq!(events.len(), 1);
    }
}
// ANCHOR_END: test
