//! Listing 5-1: an account's events as they were first written (`v1`), as
//! they are today, and the upcasters that bridge the two.

use composable_rust::Upcasters;
use composable_rust::event::Upcasted;
use composable_rust::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::json;

// ANCHOR: history
/// The events as the first release wrote them. Kept only so tests can write
/// a realistic old history; production code no longer uses them.
pub mod v1 {
    use serde::{Deserialize, Serialize};

    #[derive(Debug, Clone, Serialize, Deserialize, composable_rust::Event)]
    pub enum AccountEvent {
        Opened { owner: String },
        Deposited { cents: i64 },
        StatementRequested,
    }
}
// ANCHOR_END: history

// ANCHOR: today
/// The events today.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
pub enum AccountEvent {
    /// Added a field: old events lack it, so it has a default.
    Opened {
        owner: String,
        #[serde(default = "default_currency")]
        currency: String,
    },
    /// Renamed from `Deposited`, and its field from `cents`: version 2.
    #[event(version = 2)]
    MoneyDeposited { amount_cents: i64 },
    // `StatementRequested` was removed: statements are not account state.
}

fn default_currency() -> String {
    "EUR".to_owned()
}
// ANCHOR_END: today

// ANCHOR: upcasters
/// Turns every shape ever stored into today's shape.
pub fn upcasters() -> Upcasters {
    Upcasters::new()
        // v1 `Deposited { cents }` is v2 `MoneyDeposited { amount_cents }`.
        .register("Deposited", 1, |payload| {
            let cents = payload["cents"]
                .as_i64()
                .ok_or("`cents` must be a number")?;
            Ok(Upcasted::Event {
                event_type: "MoneyDeposited".into(),
                schema_version: 2,
                payload: json!({ "amount_cents": cents }),
            })
        })
        // Removed on purpose: skipped when loading.
        .discard("StatementRequested", 1)
}
// ANCHOR_END: upcasters

/// The account, rebuilt from today's events.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct Account {
    pub owner: String,
    pub currency: String,
    pub balance_cents: i64,
}

/// The only command this listing needs.
#[derive(Debug)]
pub struct Deposit(pub i64);

/// This listing's account never refuses a deposit.
#[derive(Debug, thiserror::Error)]
#[error("never happens")]
pub struct Never;

impl Aggregate for Account {
    const KIND: &'static str = "account";
    type Event = AccountEvent;
    type Command = Deposit;
    type Error = Never;
    type Environment = ();

    fn decide(&self, Deposit(cents): Deposit, _: &()) -> Result<Vec<AccountEvent>, Never> {
        Ok(vec![AccountEvent::MoneyDeposited {
            amount_cents: cents,
        }])
    }

    fn apply(&mut self, event: &AccountEvent) {
        match event {
            AccountEvent::Opened { owner, currency } => {
                self.owner.clone_from(owner);
                self.currency.clone_from(currency);
            }
            AccountEvent::MoneyDeposited { amount_cents } => self.balance_cents += amount_cents,
        }
    }
}

// ANCHOR: test
#[cfg(test)]
mod tests {
    use composable_rust::{CodedError, EventStoreError, NewEvent};

    use super::*;
    use composable_rust::{AggregateRepository, ExpectedVersion, InMemoryEventStore};

    /// Writes events the way the first release did.
    async fn old_history(store: &InMemoryEventStore) -> StreamId {
        let id = StreamId::for_aggregate("account", 1).unwrap();
        let old = [
            v1::AccountEvent::Opened {
                owner: "Ada".into(),
            },
            v1::AccountEvent::Deposited { cents: 1_000 },
            v1::AccountEvent::StatementRequested,
            v1::AccountEvent::Deposited { cents: 250 },
        ];
        let batch = old
            .iter()
            .map(|e| NewEvent::from_event(e).unwrap())
            .collect();
        store
            .append(&id, ExpectedVersion::NoStream, batch)
            .await
            .unwrap();
        id
    }

    #[tokio::test]
    async fn old_events_load_as_todays_events() {
        let store = InMemoryEventStore::new();
        let id = old_history(&store).await;
        let repo = AggregateRepository::<Account, _>::new(store, ()).with_upcasters(upcasters());

        let loaded = repo.load(&id).await.unwrap();
        assert_eq!(
            loaded.state,
            Account {
                owner: "Ada".into(),
                currency: "EUR".into(),
                balance_cents: 1_250
            }
        );
        assert_eq!(
            loaded.version, 4,
            "the discarded event still counts as a version"
        );
        assert_eq!(loaded.events_replayed, 3);

        // New events are written in today's shape, after the old ones.
        let executed = repo.execute(&id, Deposit(5)).await.unwrap();
        assert_eq!((executed.version, executed.state.balance_cents), (5, 1_255));
    }

    #[test]
    fn names_and_versions_come_from_the_enum() {
        assert_eq!(AccountEvent::event_types(), ["Opened", "MoneyDeposited"]);
        assert_eq!(AccountEvent::schema_version("MoneyDeposited"), 2);
        assert_eq!(AccountEvent::schema_version("Opened"), 1);
    }

    #[tokio::test]
    async fn without_upcasters_the_error_says_what_to_register() {
        let store = InMemoryEventStore::new();
        let id = old_history(&store).await;
        let repo = AggregateRepository::<Account, _>::new(store, ());

        let error = repo.load(&id).await.unwrap_err();
        assert!(
            matches!(&error, EventStoreError::UnknownEventType { event_type, .. } if event_type == "Deposited")
        );
        assert_eq!(error.code().as_str(), "CR-E0006");
    }
}
// ANCHOR_END: test

// ANCHOR: shape_lock
#[cfg(test)]
mod shapes {
    use composable_rust::testing::shape_lock::EventShapeLock;

    use super::*;

    /// One sample per event type today; the recordings of every shape ever
    /// stored are in tests/event-shapes/AccountEvent/.
    #[test]
    fn event_shapes_are_locked() {
        EventShapeLock::<AccountEvent>::new(env!("CARGO_MANIFEST_DIR"))
            .with_upcasters(upcasters())
            .with_samples([
                AccountEvent::Opened {
                    owner: "Ada".into(),
                    currency: "EUR".into(),
                },
                AccountEvent::MoneyDeposited {
                    amount_cents: 1_000,
                },
            ])
            .check();
    }
}
// ANCHOR_END: shape_lock
