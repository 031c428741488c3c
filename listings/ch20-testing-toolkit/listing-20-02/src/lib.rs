//! Listing 20-2: a thermostat reducer and a tab aggregate, tested with
//! snapshots. The snapshots are the files under `src/snapshots/`.

use std::time::Duration;

use composable_rust::prelude::*;
use serde::{Deserialize, Serialize};

/// A thermostat: a target temperature, and whether it is heating.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Thermostat {
    pub target: i32,
    pub heating: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ThermostatAction {
    SetTarget(i32),
    Reading(i32),
    CheckAgain,
}

#[derive(Debug)]
pub struct ThermostatReducer;

impl Reducer for ThermostatReducer {
    type State = Thermostat;
    type Action = ThermostatAction;
    type Environment = ();

    fn reduce(
        &self,
        state: &mut Thermostat,
        action: ThermostatAction,
        _: &(),
    ) -> Effects<ThermostatAction> {
        match action {
            ThermostatAction::SetTarget(target) => {
                state.target = target;
                Effects::new()
            }
            ThermostatAction::Reading(celsius) => {
                state.heating = celsius < state.target;
                let check = Effect::delay(Duration::from_secs(60), ThermostatAction::CheckAgain);
                vec![Effect::cancel("check"), check.cancellable("check")]
            }
            ThermostatAction::CheckAgain => Effects::new(),
        }
    }
}

/// What happened to a bar tab.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum TabEvent {
    Opened { table: u32 },
    Ordered { item: String, cents: u64 },
}

impl Event for TabEvent {}

/// A bar tab.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Tab {
    pub table: u32,
    pub owed_cents: u64,
}

/// Ordering on a tab that was never opened.
#[derive(Debug, PartialEq, thiserror::Error)]
#[error("the tab is not open: open it for a table first")]
pub struct NotOpen;

/// Order an item at a price.
#[derive(Debug)]
pub struct Order {
    pub item: String,
    pub cents: u64,
}

impl Aggregate for Tab {
    const KIND: &'static str = "tab";
    type Event = TabEvent;
    type Command = Order;
    type Error = NotOpen;
    type Environment = ();

    fn decide(&self, order: Order, _: &()) -> Result<Vec<TabEvent>, NotOpen> {
        if self.table == 0 {
            return Err(NotOpen);
        }
        Ok(vec![TabEvent::Ordered {
            item: order.item,
            cents: order.cents,
        }])
    }

    fn apply(&mut self, event: &TabEvent) {
        match event {
            TabEvent::Opened { table } => self.table = *table,
            TabEvent::Ordered { cents, .. } => self.owed_cents += cents,
        }
    }
}

#[cfg(test)]
mod tests {
    use composable_rust::testing::insta::assert_json_snapshot;
    use composable_rust::testing::snapshot::{aggregate_decision, read_model, reducer_steps};
    use composable_rust::{InMemoryProjectionStore, ProjectionError};

    use super::*;

    // ANCHOR: reducer
    #[test]
    fn a_cold_reading_turns_the_heating_on() {
        let steps = reducer_steps(
            &ThermostatReducer,
            &(),
            Thermostat::default(),
            [
                ThermostatAction::SetTarget(21),
                ThermostatAction::Reading(18),
            ],
        );
        assert_json_snapshot!(steps);
    }
    // ANCHOR_END: reducer

    // ANCHOR: aggregate
    #[test]
    fn ordering_on_a_tab() {
        let opened = [TabEvent::Opened { table: 7 }];
        let tea = || Order {
            item: "tea".into(),
            cents: 250,
        };
        assert_json_snapshot!("open_tab", aggregate_decision::<Tab>(opened, tea(), &()));
        assert_json_snapshot!("closed_tab", aggregate_decision::<Tab>([], tea(), &()));
    }
    // ANCHOR_END: aggregate

    /// Money owed per table.
    struct OwedPerTable;

    #[async_trait]
    impl Projection for OwedPerTable {
        type Store = InMemoryProjectionStore;

        fn name(&self) -> &str {
            "owed-per-table"
        }

        async fn apply(
            &self,
            event: &StoredEvent,
            tx: &mut <InMemoryProjectionStore as ProjectionStore>::Tx,
        ) -> Result<(), ProjectionError> {
            let key = format!("owed:{}", event.stream_id);
            let owed: u64 = tx.get_json(&key).await?.unwrap_or_default();
            if let Some(cents) = event.payload.get("cents").and_then(|c| c.as_u64()) {
                tx.save_json(&key, &(owed + cents)).await?;
            }
            Ok(())
        }

        async fn reset(
            &self,
            tx: &mut <InMemoryProjectionStore as ProjectionStore>::Tx,
        ) -> Result<(), ProjectionError> {
            tx.delete_prefix("owed:").await.map(|_| ())
        }
    }

    // ANCHOR: read_model
    #[tokio::test]
    async fn what_each_table_owes() {
        let mut harness = ProjectionTestHarness::new(OwedPerTable);
        let order = |item: &str, cents| TabEvent::Ordered {
            item: item.into(),
            cents,
        };
        harness
            .given_events("tab-7", [order("tea", 250), order("cake", 400)])
            .await;
        harness.given_events("tab-9", [order("water", 0)]).await;
        assert_json_snapshot!(read_model(harness.store()));
    }
    // ANCHOR_END: read_model
}
