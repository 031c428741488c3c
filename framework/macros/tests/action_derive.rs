//! `#[derive(Action)]` in use: the command/event markers, and a parent
//! that embeds two child features through the generated conversions and
//! runs in a `Store`, with no hand-written mapping.

use composable_rust::prelude::*;
use composable_rust::{combine, embed};

/// A child feature: a counter that announces when it passes 10.
mod counter {
    use composable_rust::prelude::*;

    #[derive(Debug, Clone, PartialEq, Action)]
    pub(crate) enum CounterAction {
        #[command]
        Add(u32),
        #[event]
        PassedTen,
    }

    #[derive(Debug)]
    pub(crate) struct Counter;

    impl Reducer for Counter {
        type State = u32;
        type Action = CounterAction;
        type Environment = ();

        fn reduce(&self, state: &mut u32, action: CounterAction, _: &()) -> Effects<CounterAction> {
            match action {
                CounterAction::Add(n) => {
                    let before = *state;
                    *state += n;
                    if before <= 10 && *state > 10 {
                        return vec![Effect::send(CounterAction::PassedTen)];
                    }
                    Effects::new()
                }
                CounterAction::PassedTen => Effects::new(),
            }
        }
    }
}

/// Another child feature: a log of lines.
mod log {
    use composable_rust::prelude::*;

    #[derive(Debug, Clone, PartialEq, Action)]
    pub(crate) enum LogAction {
        #[command]
        Write(String),
    }

    #[derive(Debug)]
    pub(crate) struct Log;

    impl Reducer for Log {
        type State = Vec<String>;
        type Action = LogAction;
        type Environment = ();

        fn reduce(&self, state: &mut Vec<String>, action: LogAction, _: &()) -> Effects<LogAction> {
            let LogAction::Write(line) = action;
            state.push(line);
            Effects::new()
        }
    }
}

use counter::{Counter, CounterAction};
use log::{Log, LogAction};

#[derive(Debug, Clone, PartialEq, Action)]
enum AppAction {
    #[child]
    Counter(CounterAction),
    #[child]
    Log(LogAction),
    #[command]
    Reset,
    Tick,
}

#[derive(Debug, Default, Clone, PartialEq)]
struct AppState {
    count: u32,
    lines: Vec<String>,
}

/// The app's own rule: a passed threshold is written to the log.
#[derive(Debug)]
struct Rules;

impl Reducer for Rules {
    type State = AppState;
    type Action = AppAction;
    type Environment = ();

    fn reduce(&self, state: &mut AppState, action: AppAction, _: &()) -> Effects<AppAction> {
        match action {
            AppAction::Counter(CounterAction::PassedTen) => {
                vec![Effect::send(LogAction::Write("passed ten".into()).into())]
            }
            AppAction::Reset => {
                state.count = 0;
                Effects::new()
            }
            _ => Effects::new(),
        }
    }
}

fn app() -> impl Reducer<State = AppState, Action = AppAction, Environment = ()> {
    combine(
        combine(
            embed(Counter, |s: &mut AppState| &mut s.count, |env: &()| env),
            embed(Log, |s: &mut AppState| &mut s.lines, |env: &()| env),
        ),
        Rules,
    )
}

#[test]
fn markers_say_what_each_variant_is() {
    assert!(CounterAction::Add(1).is_command());
    assert!(!CounterAction::Add(1).is_event());
    assert!(CounterAction::PassedTen.is_event());
    assert!(AppAction::Reset.is_command());
    // Unmarked variants, children included, are neither.
    for action in [AppAction::Tick, AppAction::Counter(CounterAction::Add(1))] {
        assert!(!action.is_command() && !action.is_event(), "{action:?}");
    }
}

#[test]
fn conversions_wrap_and_unwrap_the_child_variant() {
    assert_eq!(
        AppAction::from(CounterAction::Add(2)),
        AppAction::Counter(CounterAction::Add(2))
    );
    assert_eq!(
        CounterAction::try_from(AppAction::Counter(CounterAction::PassedTen)),
        Ok(CounterAction::PassedTen)
    );
    // Another variant is given back untouched.
    assert_eq!(
        CounterAction::try_from(AppAction::Log(LogAction::Write("x".into()))),
        Err(AppAction::Log(LogAction::Write("x".into())))
    );
    assert_eq!(LogAction::try_from(AppAction::Reset), Err(AppAction::Reset));
}

#[test]
fn embedded_children_only_see_their_own_actions() {
    let app = app();
    let mut state = AppState::default();
    let effects = app.reduce(
        &mut state,
        AppAction::Log(LogAction::Write("a".into())),
        &(),
    );
    assert!(effects.is_empty());
    assert_eq!(
        (state.count, state.lines.as_slice()),
        (0, ["a".to_owned()].as_slice())
    );
    app.reduce(&mut state, AppAction::Counter(CounterAction::Add(3)), &());
    assert_eq!((state.count, state.lines.len()), (3, 1));
}

#[tokio::test]
async fn a_child_announcement_travels_back_through_the_parent() {
    let store = Store::new(AppState::default(), app(), ());
    store
        .send(AppAction::Counter(CounterAction::Add(11)))
        .await
        .unwrap();
    let state = store.state(Clone::clone);
    assert_eq!(state.count, 11);
    // PassedTen came back wrapped by the counter's embed, the rule turned it
    // into a log line, and the log's embed delivered it.
    assert_eq!(state.lines, ["passed ten"]);
}
