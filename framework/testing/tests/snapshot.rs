//! The snapshot helpers through insta, the way a user's test calls them:
//! the snapshots are checked in under `tests/snapshots/`, and CI runs with
//! `INSTA_UPDATE=no`, so a changed snapshot fails instead of being written.

use std::time::Duration;

use composable_rust_core::projection::ProjectionTxExt;
use composable_rust_core::{
    Aggregate, Effect, Effects, Event, InMemoryProjectionStore, ProjectionStore, Reducer,
};
use composable_rust_testing::insta::assert_json_snapshot;
use composable_rust_testing::snapshot::{aggregate_decision, read_model, reducer_steps};
use serde::{Deserialize, Serialize};

#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
struct Kettle {
    litres: u32,
    boiling: bool,
}

#[derive(Debug, Clone, PartialEq)]
enum KettleAction {
    Fill(u32),
    Boil,
    Boiled,
}

struct KettleReducer;

impl Reducer for KettleReducer {
    type State = Kettle;
    type Action = KettleAction;
    type Environment = ();

    fn reduce(&self, kettle: &mut Kettle, action: KettleAction, _: &()) -> Effects<KettleAction> {
        match action {
            KettleAction::Fill(litres) => {
                kettle.litres += litres;
                Effects::new()
            }
            KettleAction::Boil => {
                kettle.boiling = true;
                vec![
                    Effect::delay(Duration::from_secs(90), KettleAction::Boiled)
                        .cancellable("boil"),
                ]
            }
            KettleAction::Boiled => {
                kettle.boiling = false;
                vec![Effect::cancel("boil")]
            }
        }
    }
}

#[test]
fn reducer_steps_snapshot() {
    let steps = reducer_steps(
        &KettleReducer,
        &(),
        Kettle::default(),
        [
            KettleAction::Fill(2),
            KettleAction::Boil,
            KettleAction::Boiled,
        ],
    );
    assert_json_snapshot!(steps);
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum TabEvent {
    Opened { table: u32 },
    Ordered { item: String, cents: u64 },
}
impl Event for TabEvent {}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Tab {
    table: u32,
    owed_cents: u64,
}

#[derive(Debug, PartialEq, thiserror::Error)]
#[error("the tab is not open: open it for a table first")]
struct NotOpen;

impl Aggregate for Tab {
    const KIND: &'static str = "tab";
    type Event = TabEvent;
    type Command = (String, u64);
    type Error = NotOpen;
    type Environment = ();

    fn decide(&self, (item, cents): (String, u64), _: &()) -> Result<Vec<TabEvent>, NotOpen> {
        if self.table == 0 {
            return Err(NotOpen);
        }
        Ok(vec![TabEvent::Ordered { item, cents }])
    }

    fn apply(&mut self, event: &TabEvent) {
        match event {
            TabEvent::Opened { table } => self.table = *table,
            TabEvent::Ordered { cents, .. } => self.owed_cents += cents,
        }
    }
}

#[test]
fn aggregate_decision_snapshots() {
    assert_json_snapshot!(
        "accepted",
        aggregate_decision::<Tab>([TabEvent::Opened { table: 7 }], ("tea".into(), 250), &())
    );
    assert_json_snapshot!(
        "rejected",
        aggregate_decision::<Tab>([], ("tea".into(), 250), &())
    );
}

#[tokio::test]
async fn read_model_snapshot() {
    let store = InMemoryProjectionStore::new();
    let mut tx = store.begin().await.unwrap();
    tx.save_json("tab:7", &serde_json::json!({ "owed_cents": 250 }))
        .await
        .unwrap();
    tx.save_json("tables-open", &1).await.unwrap();
    store.commit(tx).await.unwrap();
    assert_json_snapshot!(read_model(&store));
}
