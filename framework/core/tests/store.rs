//! Behaviour of the Store runtime: effects, follow-up actions, delays,
//! cancellation, subscriptions and shutdown.

use std::sync::Arc;
use std::time::Duration;

use composable_rust_core::{Effect, Effects, Reducer, Store, StoreError, TestClock};

/// A log of what happened, so tests can assert order.
#[derive(Debug, Default)]
struct Log {
    entries: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
enum Action {
    Record(String),
    /// Feeds back Record(n), Record(n-1), ... down to 1, one per effect.
    Countdown(u32),
    RecordLater {
        after_secs: u64,
        text: String,
        id: Option<&'static str>,
    },
    Cancel(&'static str),
    /// Cancel `id`, then schedule a replacement under the same id.
    Restart {
        id: &'static str,
        after_secs: u64,
        text: String,
    },
    InOrder(Vec<String>),
    AllAtOnce(Vec<String>),
    Nothing,
    /// Runs an effect that never finishes unless cancelled.
    Hang,
}

struct LogReducer;

impl Reducer for LogReducer {
    type State = Log;
    type Action = Action;
    type Environment = ();

    fn reduce(&self, log: &mut Log, action: Action, _: &()) -> Effects<Action> {
        match action {
            Action::Record(text) => {
                log.entries.push(text);
                Effects::new()
            }
            Action::Countdown(0) => Effects::new(),
            Action::Countdown(n) => vec![
                Effect::future(async move {
                    tokio::task::yield_now().await;
                    Some(Action::Record(n.to_string()))
                }),
                Effect::send(Action::Countdown(n - 1)),
            ],
            Action::RecordLater {
                after_secs,
                text,
                id,
            } => {
                let effect = Effect::delay(Duration::from_secs(after_secs), Action::Record(text));
                vec![match id {
                    Some(id) => effect.cancellable(id),
                    None => effect,
                }]
            }
            Action::Cancel(id) => vec![Effect::cancel(id)],
            Action::Restart {
                id,
                after_secs,
                text,
            } => vec![
                Effect::cancel(id),
                Effect::delay(Duration::from_secs(after_secs), Action::Record(text))
                    .cancellable(id),
            ],
            Action::InOrder(texts) => vec![Effect::sequential(texts.into_iter().map(|t| {
                Effect::future(async move {
                    tokio::task::yield_now().await;
                    Some(Action::Record(t))
                })
            }))],
            Action::AllAtOnce(texts) => {
                vec![Effect::parallel(
                    texts.into_iter().map(|t| Effect::send(Action::Record(t))),
                )]
            }
            Action::Nothing => Effects::new(),
            Action::Hang => vec![Effect::fire_and_forget(std::future::pending())],
        }
    }
}

fn store() -> (Store<LogReducer>, TestClock) {
    let clock = TestClock::new();
    let store = Store::builder(Log::default(), LogReducer, ())
        .with_clock(Arc::new(clock.clone()))
        .build();
    (store, clock)
}

fn entries(store: &Store<LogReducer>) -> Vec<String> {
    store.state(|log| log.entries.clone())
}

#[tokio::test]
async fn awaiting_send_waits_for_effects_and_their_follow_ups() {
    let (store, _) = store();
    store.send(Action::Countdown(3)).await.unwrap();
    let mut got = entries(&store);
    got.sort();
    assert_eq!(got, ["1", "2", "3"]);
    assert_eq!(store.in_flight(), 0);
}

#[tokio::test]
async fn a_reducer_without_effects_is_fine() {
    let (store, _) = store();
    let handle = store.send(Action::Nothing);
    assert_eq!(handle.in_flight(), 0);
    handle.await.unwrap();
    store.send(Action::Record("x".into())).await.unwrap();
    assert_eq!(entries(&store), ["x"]);
}

#[tokio::test]
async fn state_is_updated_before_send_returns() {
    let (store, _) = store();
    drop(store.send(Action::Record("now".into())));
    assert_eq!(entries(&store), ["now"]);
}

#[tokio::test]
async fn delays_wait_for_the_clock() {
    let (store, clock) = store();
    let handle = store.send(Action::RecordLater {
        after_secs: 60,
        text: "late".into(),
        id: None,
    });
    tokio::task::yield_now().await;
    assert!(entries(&store).is_empty());
    clock.advance(Duration::from_secs(59));
    tokio::task::yield_now().await;
    assert!(entries(&store).is_empty(), "fired a second early");
    clock.advance(Duration::from_secs(1));
    handle.await.unwrap();
    assert_eq!(entries(&store), ["late"]);
}

#[tokio::test]
async fn a_cancelled_effect_sends_nothing_back() {
    let (store, clock) = store();
    let pending = store.send(Action::RecordLater {
        after_secs: 5,
        text: "never".into(),
        id: Some("t"),
    });
    store.send(Action::Cancel("t")).await.unwrap();
    clock.advance(Duration::from_secs(10));
    pending.await.unwrap();
    assert!(entries(&store).is_empty());
    assert_eq!(clock.pending_sleepers(), 0);
}

#[tokio::test]
async fn cancel_then_restart_in_one_reduce_keeps_only_the_new_effect() {
    let (store, clock) = store();
    let first = store.send(Action::Restart {
        id: "debounce",
        after_secs: 5,
        text: "first".into(),
    });
    let second = store.send(Action::Restart {
        id: "debounce",
        after_secs: 5,
        text: "second".into(),
    });
    clock.advance(Duration::from_secs(5));
    first.await.unwrap();
    second.await.unwrap();
    assert_eq!(entries(&store), ["second"]);
}

#[tokio::test]
async fn cancelling_an_unknown_id_is_harmless() {
    let (store, _) = store();
    store.send(Action::Cancel("nobody")).await.unwrap();
}

#[tokio::test]
async fn sequential_effects_run_in_order() {
    let (store, _) = store();
    let texts: Vec<String> = (0..20).map(|i| i.to_string()).collect();
    store.send(Action::InOrder(texts.clone())).await.unwrap();
    assert_eq!(entries(&store), texts);
}

#[tokio::test]
async fn parallel_effects_all_run() {
    let (store, _) = store();
    store
        .send(Action::AllAtOnce(vec!["a".into(), "b".into(), "c".into()]))
        .await
        .unwrap();
    let mut got = entries(&store);
    got.sort();
    assert_eq!(got, ["a", "b", "c"]);
}

#[tokio::test]
async fn subscribers_see_every_reduced_action_and_state_version() {
    let (store, _) = store();
    let mut actions = store.subscribe_actions();
    let mut versions = store.subscribe_state();
    store.send(Action::Countdown(1)).await.unwrap();
    let mut seen = Vec::new();
    while let Ok(action) = actions.try_recv() {
        seen.push(action);
    }
    assert_eq!(seen.len(), 3, "{seen:?}");
    assert_eq!(seen[0], Action::Countdown(1));
    assert!(seen.contains(&Action::Record("1".into())));
    assert!(seen.contains(&Action::Countdown(0)));
    assert!(versions.has_changed().unwrap());
    assert_eq!(*versions.borrow_and_update(), 3);
}

#[tokio::test]
async fn shutdown_drains_running_effects_then_rejects_actions() {
    let (store, clock) = store();
    let pending = store.send(Action::RecordLater {
        after_secs: 1,
        text: "drained".into(),
        id: None,
    });
    let advance = {
        let clock = clock.clone();
        tokio::spawn(async move {
            tokio::task::yield_now().await;
            clock.advance(Duration::from_secs(1));
        })
    };
    store.shutdown(Duration::from_secs(5)).await.unwrap();
    advance.await.unwrap();
    pending.await.unwrap();
    assert_eq!(entries(&store), ["drained"]);

    let rejected = store.send(Action::Record("too late".into()));
    assert!(rejected.was_rejected());
    assert_eq!(rejected.await, Err(StoreError::ShutDown));
    assert_eq!(
        entries(&store),
        ["drained"],
        "a rejected action must not run"
    );
}

#[tokio::test]
async fn shutdown_cancels_what_outlives_the_deadline() {
    let (store, clock) = store();
    store.send(Action::Hang);
    let late = store.send(Action::RecordLater {
        after_secs: 60,
        text: "never".into(),
        id: None,
    });
    let result = store.shutdown(Duration::from_millis(20)).await;
    assert_eq!(
        result,
        Err(StoreError::ShutdownTimedOut {
            in_flight: 2,
            deadline: Duration::from_millis(20)
        })
    );
    assert_eq!(store.in_flight(), 0);
    clock.advance(Duration::from_secs(60));
    late.await.unwrap();
    assert!(
        entries(&store).is_empty(),
        "a cancelled effect must send nothing back"
    );
}
