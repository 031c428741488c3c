//! Optimistic concurrency with retries: a stock that two service instances
//! write to. A conflict is retried by deciding again on fresh state.

use composable_rust::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
pub enum StockEvent {
    Restocked { quantity: u32 },
    Reserved { quantity: u32 },
}

#[derive(Debug, Clone, Copy)]
pub enum StockCommand {
    Restock(u32),
    Reserve(u32),
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("only {available} left")]
pub struct OutOfStock {
    pub available: u32,
}

#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stock {
    pub available: u32,
}

impl Aggregate for Stock {
    const KIND: &'static str = "stock";
    type Event = StockEvent;
    type Command = StockCommand;
    type Error = OutOfStock;
    type Environment = ();

    fn decide(&self, command: StockCommand, _: &()) -> Result<Vec<StockEvent>, OutOfStock> {
        match command {
            StockCommand::Restock(quantity) => Ok(vec![StockEvent::Restocked { quantity }]),
            StockCommand::Reserve(quantity) if quantity > self.available => Err(OutOfStock {
                available: self.available,
            }),
            StockCommand::Reserve(quantity) => Ok(vec![StockEvent::Reserved { quantity }]),
        }
    }

    fn apply(&mut self, event: &StockEvent) {
        match event {
            StockEvent::Restocked { quantity } => self.available += quantity,
            StockEvent::Reserved { quantity } => self.available -= quantity,
        }
    }
}

// ANCHOR: retry
/// Reserves `quantity`, retrying up to 3 times in all when another writer
/// appended first. Each attempt reloads and decides again.
pub async fn reserve<S: EventStore>(
    stock: &composable_rust::AggregateRepository<Stock, S>,
    sku: &str,
    quantity: u32,
) -> Result<u32, composable_rust::aggregate::RepositoryError<OutOfStock>> {
    let stream = stock.stream_id(sku)?;
    let executed = stock
        .execute_with_retry(&stream, 3, || StockCommand::Reserve(quantity))
        .await?;
    Ok(executed.state.available)
}
// ANCHOR_END: retry

// ANCHOR: test
#[cfg(test)]
mod tests {
    use composable_rust::aggregate::RepositoryError;
    use composable_rust::{AggregateRepository, InMemoryEventStore};

    use super::*;

    /// Two service instances on one event store. `ours` keeps what it last
    /// saw in memory (hot aggregates), so a write by `theirs` in between
    /// makes `ours` decide on stale state, as a slow request would.
    fn two_instances() -> [AggregateRepository<Stock, InMemoryEventStore>; 2] {
        let events = InMemoryEventStore::new();
        let ours = AggregateRepository::new(events.clone(), ()).with_hot_aggregates(16);
        [ours, AggregateRepository::new(events, ())]
    }

    #[tokio::test]
    async fn a_conflict_is_an_error_without_retries_and_a_success_with_them() {
        let [ours, theirs] = two_instances();
        let mug = ours.stream_id("mug").unwrap();
        ours.execute(&mug, StockCommand::Restock(10)).await.unwrap();
        theirs
            .execute(&mug, StockCommand::Reserve(4))
            .await
            .unwrap();

        let error = ours
            .execute(&mug, StockCommand::Reserve(3))
            .await
            .unwrap_err();
        assert!(error.is_conflict(), "{error}");

        theirs
            .execute(&mug, StockCommand::Reserve(1))
            .await
            .unwrap();
        assert_eq!(reserve(&ours, "mug", 3).await.unwrap(), 2, "10 - 4 - 1 - 3");
    }

    #[tokio::test]
    async fn a_retry_decides_again_and_can_be_refused() {
        let [ours, theirs] = two_instances();
        let mug = ours.stream_id("mug").unwrap();
        ours.execute(&mug, StockCommand::Restock(5)).await.unwrap();
        theirs
            .execute(&mug, StockCommand::Reserve(4))
            .await
            .unwrap();
        // Decided on stale state (5 available) this would pass; the retry
        // sees 1 left and refuses instead of overselling.
        let error = reserve(&ours, "mug", 3).await.unwrap_err();
        assert!(matches!(
            error,
            RepositoryError::Rejected(OutOfStock { available: 1 })
        ));
    }
}
// ANCHOR_END: test
