//! Listing 12-1: two read-model patterns over the bank's events: an
//! analytics aggregation (deposits per day) and a detail view that keeps
//! an account's recent history.

use std::marker::PhantomData;

use async_trait::async_trait;
use bank::account::AccountEvent;
use composable_rust::Position;
use composable_rust::ProjectionError;
use composable_rust::Upcasters;
use composable_rust::event::decode;
use composable_rust::prelude::*;
use serde::{Deserialize, Serialize};

// ANCHOR: daily
/// Deposits of one day, for the dashboard's chart.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DailyDeposits {
    pub count: u32,
    pub total: u64,
    /// The last event counted, so a redelivered event is not counted twice.
    pub applied_up_to: Position,
}

/// One key per day: `deposits:2025-01-01`.
#[derive(Debug)]
pub struct DepositsPerDay<S>(PhantomData<fn() -> S>);

impl<S> Default for DepositsPerDay<S> {
    fn default() -> Self {
        Self(PhantomData)
    }
}

#[async_trait]
impl<S: ProjectionCheckpoint> Projection for DepositsPerDay<S> {
    type Store = S;

    fn name(&self) -> &str {
        "deposits-per-day"
    }

    fn handles(&self, event: &StoredEvent) -> bool {
        event.event_type == "Deposited"
    }

    async fn apply(&self, event: &StoredEvent, tx: &mut S::Tx) -> Result<(), ProjectionError> {
        let Some(AccountEvent::Deposited { amount }) = decode(event, &Upcasters::new())? else {
            return Ok(());
        };
        // Bucket by when the event was recorded, not by when it is applied:
        // a rebuild next month must put it in the same day.
        let key = format!("deposits:{}", event.recorded_at.format("%Y-%m-%d"));
        let mut day: DailyDeposits = tx.get_json(&key).await?.unwrap_or_default();
        if event.position <= day.applied_up_to {
            return Ok(());
        }
        day.count += 1;
        day.total += amount;
        day.applied_up_to = event.position;
        tx.save_json(&key, &day).await
    }

    async fn reset(&self, tx: &mut S::Tx) -> Result<(), ProjectionError> {
        tx.delete_prefix("deposits:").await.map(|_| ())
    }
}
// ANCHOR_END: daily

// ANCHOR: detail
/// The account detail screen: who, how much, and the last few movements.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AccountDetail {
    pub owner: String,
    pub balance: u64,
    /// Newest first, at most [`HISTORY`] entries.
    pub recent: Vec<Movement>,
    pub version: u64,
}

/// One line of the history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Movement {
    pub version: u64,
    pub amount: i64,
    pub at: String,
}

/// How many movements the detail view keeps.
pub const HISTORY: usize = 3;

/// One document per account: `detail:account-1`.
#[derive(Debug)]
pub struct AccountDetails<S>(PhantomData<fn() -> S>);

impl<S> Default for AccountDetails<S> {
    fn default() -> Self {
        Self(PhantomData)
    }
}

#[async_trait]
impl<S: ProjectionCheckpoint> Projection for AccountDetails<S> {
    type Store = S;

    fn name(&self) -> &str {
        "account-details"
    }

    fn handles(&self, event: &StoredEvent) -> bool {
        event.stream_id.as_str().starts_with("account-")
    }

    async fn apply(&self, event: &StoredEvent, tx: &mut S::Tx) -> Result<(), ProjectionError> {
        let key = format!("detail:{}", event.stream_id);
        let mut detail: AccountDetail = tx.get_json(&key).await?.unwrap_or_default();
        // Stream versions make per-aggregate views idempotent for free.
        if event.stream_version <= detail.version {
            return Ok(());
        }
        let at = event.recorded_at.format("%Y-%m-%d %H:%M").to_string();
        let mut moved = |amount: i64| {
            detail.recent.insert(
                0,
                Movement {
                    version: event.stream_version,
                    amount,
                    at: at.clone(),
                },
            );
            detail.recent.truncate(HISTORY);
        };
        match decode::<AccountEvent>(event, &Upcasters::new())? {
            Some(AccountEvent::Opened { owner }) => detail.owner = owner,
            Some(AccountEvent::Deposited { amount }) => {
                moved(amount as i64);
                detail.balance += amount;
            }
            Some(AccountEvent::Withdrawn { amount }) => {
                moved(-(amount as i64));
                detail.balance -= amount;
            }
            None => {}
        }
        detail.version = event.stream_version;
        tx.save_json(&key, &detail).await
    }

    async fn reset(&self, tx: &mut S::Tx) -> Result<(), ProjectionError> {
        tx.delete_prefix("detail:").await.map(|_| ())
    }
}
// ANCHOR_END: detail

// ANCHOR: tests
#[cfg(test)]
mod tests {
    use super::*;
    use composable_rust::InMemoryProjectionStore;

    fn deposits(amounts: &[u64]) -> Vec<AccountEvent> {
        let mut events = vec![AccountEvent::Opened {
            owner: "Ada".into(),
        }];
        events.extend(
            amounts
                .iter()
                .map(|&amount| AccountEvent::Deposited { amount }),
        );
        events
    }

    #[tokio::test]
    async fn deposits_are_summed_per_day() {
        let mut harness =
            ProjectionTestHarness::new(DepositsPerDay::<InMemoryProjectionStore>::default());
        harness.given_events("account-1", deposits(&[10, 20])).await;
        harness.given_events("account-2", deposits(&[5])).await;
        // The harness records its events at 2025-01-01T00:00:01Z and on.
        let day: DailyDeposits = harness.get_json("deposits:2025-01-01").await.unwrap();
        assert_eq!((day.count, day.total), (3, 35));
        harness.assert_idempotent().await;
        harness.assert_rebuild_matches().await;
    }

    #[tokio::test]
    async fn the_detail_view_keeps_the_last_movements() {
        let mut harness =
            ProjectionTestHarness::new(AccountDetails::<InMemoryProjectionStore>::default());
        harness
            .given_events("account-1", deposits(&[10, 20, 30]))
            .await;
        harness
            .given_events("account-1", [AccountEvent::Withdrawn { amount: 15 }])
            .await;
        let detail: AccountDetail = harness.get_json("detail:account-1").await.unwrap();
        assert_eq!(detail.balance, 45);
        let amounts: Vec<i64> = detail.recent.iter().map(|m| m.amount).collect();
        assert_eq!(amounts, [-15, 30, 20], "newest first, at most three");
        harness.assert_idempotent().await;
        harness.assert_rebuild_matches().await;
    }
}
// ANCHOR_END: tests
