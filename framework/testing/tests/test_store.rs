//! The TestStore passes when everything is asserted and fails, with a
//! useful message, when anything is not.

use std::sync::Arc;
use std::time::Duration;

use composable_rust_core::TestClock;
use composable_rust_core::{Clock, Effect, Effects, Reducer};
use composable_rust_testing::TestStore;

#[derive(Debug, Clone, PartialEq, Default)]
struct Kettle {
    temperature: u32,
    boiling: bool,
    boiled_at: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
enum Action {
    /// Heats up; boils after 3 minutes.
    SwitchOn,
    SwitchOff,
    Boiled,
    /// Feeds back `Boiled` immediately, without a delay.
    Whistle,
    /// Starts a future that never ends.
    Hum,
}

struct Env {
    clock: Arc<dyn Clock>,
}

struct KettleReducer;

impl Reducer for KettleReducer {
    type State = Kettle;
    type Action = Action;
    type Environment = Env;

    fn reduce(&self, kettle: &mut Kettle, action: Action, env: &Env) -> Effects<Action> {
        match action {
            Action::SwitchOn => {
                kettle.temperature = 20;
                vec![Effect::delay(Duration::from_secs(180), Action::Boiled).cancellable("boil")]
            }
            Action::SwitchOff => {
                kettle.temperature = 0;
                vec![Effect::cancel("boil")]
            }
            Action::Boiled => {
                kettle.temperature = 100;
                kettle.boiling = true;
                kettle.boiled_at = Some(env.clock.now().format("%H:%M").to_string());
                Effects::new()
            }
            Action::Whistle => vec![Effect::send(Action::Boiled)],
            Action::Hum => vec![Effect::fire_and_forget(std::future::pending())],
        }
    }
}

fn store() -> TestStore<KettleReducer> {
    let clock = TestClock::new();
    let env = Env {
        clock: Arc::new(clock.clone()),
    };
    TestStore::new(Kettle::default(), KettleReducer, env)
        .with_clock(clock)
        .with_timeout(Duration::from_millis(100))
}

#[tokio::test]
async fn a_fully_asserted_flow_passes_without_real_waiting() {
    let mut store = store();
    store.send(Action::SwitchOn, |k| k.temperature = 20).await;
    store.advance(Duration::from_secs(180)).await;
    store
        .receive(Action::Boiled, |k| {
            k.temperature = 100;
            k.boiling = true;
            k.boiled_at = Some("00:03".into());
        })
        .await;
    store.finish().await;
}

#[tokio::test]
async fn a_cancelled_delay_sends_nothing_and_finishes_cleanly() {
    let mut store = store();
    store.send(Action::SwitchOn, |k| k.temperature = 20).await;
    store.send(Action::SwitchOff, |k| k.temperature = 0).await;
    store.advance(Duration::from_secs(600)).await;
    assert_eq!(store.clock().pending_sleepers(), 0);
    store.finish().await;
}

#[tokio::test]
#[should_panic(expected = "the state after send(SwitchOn) is not the expected state")]
async fn a_wrong_expected_state_fails_with_a_diff() {
    let mut store = store();
    store.send(Action::SwitchOn, |k| k.temperature = 21).await;
}

#[tokio::test]
#[should_panic(expected = "received an action other than the one expected")]
async fn an_unexpected_received_action_fails() {
    let mut store = store();
    store.send(Action::Whistle, |_| {}).await;
    store.receive(Action::SwitchOff, |_| {}).await;
}

#[tokio::test]
#[should_panic(expected = "expected to receive Boiled, but no action arrived")]
async fn waiting_for_an_action_that_never_comes_fails() {
    let mut store = store();
    store.send(Action::SwitchOn, |k| k.temperature = 20).await;
    // The clock was never advanced, so the kettle never boils.
    store.receive(Action::Boiled, |_| {}).await;
}

#[tokio::test]
#[should_panic(expected = "1 fed-back action(s) never asserted")]
async fn finishing_with_an_unasserted_action_fails() {
    let mut store = store();
    store.send(Action::Whistle, |_| {}).await;
    store.finish().await;
}

#[tokio::test]
#[should_panic(expected = "waiting on the test clock")]
async fn finishing_while_a_delay_is_pending_fails_and_says_why() {
    let mut store = store();
    store.send(Action::SwitchOn, |k| k.temperature = 20).await;
    store.finish().await;
}

#[tokio::test]
#[should_panic(expected = "the test ended while effects were still running")]
async fn finishing_while_a_future_runs_fails() {
    let mut store = store();
    store.send(Action::Hum, |_| {}).await;
    store.finish().await;
}

#[tokio::test]
#[should_panic(expected = "dropped while 1 effect(s) were still running")]
async fn dropping_the_store_with_running_effects_fails() {
    let mut store = store();
    store.send(Action::SwitchOn, |k| k.temperature = 20).await;
}

#[tokio::test]
#[should_panic(expected = "while 1 fed-back action(s) were still unasserted")]
async fn sending_before_asserting_received_actions_fails() {
    let mut store = store();
    store.send(Action::Whistle, |_| {}).await;
    tokio::task::yield_now().await;
    store.send(Action::SwitchOff, |k| k.temperature = 0).await;
}
