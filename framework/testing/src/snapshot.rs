//! Snapshot tests with [insta](https://insta.rs) (feature `snapshot`):
//! turn what a reducer, an aggregate or a projection did into a stable,
//! readable value, and let insta compare it with the snapshot checked in
//! beside the test.
//!
//! | helper | snapshots |
//! |---|---|
//! | [`reducer_steps`] | a reducer run action by action: the state after each action and the effects it returned |
//! | [`aggregate_decision`] | the events a command produced (type, schema version, payload as stored) or why it was refused |
//! | [`read_model`] | every key of an in-memory read model, JSON values shown as JSON |
//!
//! The helpers only build values; the assertion is insta's own macro, used
//! in the test (it must expand there: insta names the snapshot after the
//! test function and stores it in `snapshots/` next to the test file):
//!
//! ```
//! use composable_rust_core::{Effect, Effects, Reducer};
//! use composable_rust_testing::insta::assert_json_snapshot;
//! use composable_rust_testing::snapshot::reducer_steps;
//!
//! struct Counter;
//! impl Reducer for Counter {
//!     type State = i64;
//!     type Action = i64;
//!     type Environment = ();
//!     fn reduce(&self, total: &mut i64, n: i64, _: &()) -> Effects<i64> {
//!         *total += n;
//!         Effects::new()
//!     }
//! }
//!
//! let steps = reducer_steps(&Counter, &(), 0, [2, 3]);
//! assert_json_snapshot!(steps, @r#"
//! {
//!   "initial_state": 0,
//!   "steps": [
//!     {
//!       "action": "2",
//!       "state": 2,
//!       "effects": []
//!     },
//!     {
//!       "action": "3",
//!       "state": 5,
//!       "effects": []
//!     }
//!   ]
//! }
//! "#);
//! ```
//!
//! Values are built through [`serde_json::Value`], whose maps are sorted,
//! so a `HashMap` in a state snapshots the same way on every run.
//!
//! When a snapshot differs, the test fails with a diff and insta leaves a
//! `.snap.new` file beside the old one; `cargo insta review` (the
//! `cargo-insta` tool) shows each change and accepts or rejects it, and
//! `INSTA_UPDATE=always cargo test` accepts them all without the tool.
//! CI sets `INSTA_UPDATE=no` (and insta never writes when `CI` is set), so
//! a missing or changed snapshot fails there and is never silently
//! written.

use std::fmt::Debug;
use std::time::Duration;

use composable_rust_core::event::encode;
use composable_rust_core::{Aggregate, Effect, InMemoryProjectionStore, Reducer};
use serde::Serialize;
use serde_json::Value;

/// A reducer run, action by action, ready to snapshot (from
/// [`reducer_steps`]).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReducerSteps {
    /// The state before the first action.
    pub initial_state: Value,
    /// One entry per action, in order.
    pub steps: Vec<ReducerStep>,
}

/// One action of a [`ReducerSteps`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReducerStep {
    /// The action, as `{:?}` prints it.
    pub action: String,
    /// The state after the action.
    pub state: Value,
    /// The effects the reducer returned for it.
    pub effects: Vec<EffectShape>,
}

/// What an [`Effect`] is, without running it: its kind, the delay and
/// action of a [`Effect::Delay`], the ids of cancellations, the shape of
/// groups. A future's result is unknown until it runs, so it shows as
/// `"future"` (run it with a `TestStore` to assert what it sends back).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EffectShape {
    /// [`Effect::None`].
    None,
    /// [`Effect::Future`].
    Future,
    /// [`Effect::Delay`]: after how long (as `Duration`'s `{:?}`, e.g.
    /// `"30s"`), which action (`{:?}`).
    Delay {
        /// The wait.
        after: String,
        /// The action fed back.
        action: String,
    },
    /// [`Effect::Parallel`].
    Parallel(Vec<EffectShape>),
    /// [`Effect::Sequential`].
    Sequential(Vec<EffectShape>),
    /// [`Effect::Cancellable`].
    Cancellable {
        /// The id that cancels it.
        id: String,
        /// The effect.
        effect: Box<EffectShape>,
    },
    /// [`Effect::Cancel`], with the id.
    Cancel(String),
}

impl EffectShape {
    /// The shape of `effect`.
    pub fn of<A: Debug>(effect: &Effect<A>) -> Self {
        match effect {
            Effect::None => Self::None,
            Effect::Future(_) => Self::Future,
            Effect::Delay { duration, action } => Self::Delay {
                after: format_duration(*duration),
                action: format!("{action:?}"),
            },
            Effect::Parallel(effects) => Self::Parallel(effects.iter().map(Self::of).collect()),
            Effect::Sequential(effects) => Self::Sequential(effects.iter().map(Self::of).collect()),
            Effect::Cancellable { id, effect } => Self::Cancellable {
                id: id.to_string(),
                effect: Box::new(Self::of(effect)),
            },
            Effect::Cancel(id) => Self::Cancel(id.to_string()),
        }
    }
}

fn format_duration(duration: Duration) -> String {
    format!("{duration:?}")
}

/// Runs `actions` through `reducer` from `state`, recording the state after
/// each one and the effects it returned (inspected, not run).
///
/// # Panics
///
/// When the state does not serialize to JSON (a map with non-string keys,
/// say): the message names the step.
pub fn reducer_steps<R>(
    reducer: &R,
    env: &R::Environment,
    mut state: R::State,
    actions: impl IntoIterator<Item = R::Action>,
) -> ReducerSteps
where
    R: Reducer,
    R::State: Serialize,
    R::Action: Debug,
{
    let initial_state = to_value(&state, "the initial state");
    let steps = actions
        .into_iter()
        .enumerate()
        .map(|(index, action)| {
            let label = format!("{action:?}");
            let effects = reducer.reduce(&mut state, action, env);
            ReducerStep {
                state: to_value(&state, &format!("the state after step {index} ({label})")),
                action: label,
                effects: effects.iter().map(EffectShape::of).collect(),
            }
        })
        .collect();
    ReducerSteps {
        initial_state,
        steps,
    }
}

/// What a command did to an aggregate, ready to snapshot (from
/// [`aggregate_decision`]).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AggregateDecision {
    /// The command was accepted.
    Accepted {
        /// The events it produced, as they will be stored.
        events: Vec<EventShape>,
        /// The aggregate's state after applying them.
        state: Value,
    },
    /// The command was refused, with the error's message.
    Rejected(String),
}

/// An event as the store keeps it: type name, schema version, payload.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EventShape {
    /// The stable type name.
    #[serde(rename = "type")]
    pub event_type: String,
    /// Its schema version.
    pub schema_version: u32,
    /// The payload.
    pub payload: Value,
}

/// Applies `given`, runs `command` through `decide`, and records the events
/// it produced in their stored form (so a snapshot also catches a changed
/// type name or payload shape) and the state after them, or the refusal.
///
/// # Panics
///
/// When an event does not encode, or the state does not serialize.
pub fn aggregate_decision<A: Aggregate>(
    given: impl IntoIterator<Item = A::Event>,
    command: A::Command,
    env: &A::Environment,
) -> AggregateDecision {
    let mut state = A::default();
    for event in given {
        state.apply(&event);
    }
    match state.decide(command, env) {
        Ok(events) => {
            let shapes = events
                .iter()
                .map(|event| {
                    let encoded = encode(event).unwrap_or_else(|error| panic!("{error}"));
                    EventShape {
                        event_type: encoded.event_type,
                        schema_version: encoded.schema_version,
                        payload: encoded.payload,
                    }
                })
                .collect();
            for event in &events {
                state.apply(event);
            }
            AggregateDecision::Accepted {
                events: shapes,
                state: to_value(&state, "the aggregate's state"),
            }
        }
        Err(error) => AggregateDecision::Rejected(error.to_string()),
    }
}

/// Every key of `store` and its value, sorted by key: JSON values as JSON,
/// anything else as (lossy UTF-8) text. Snapshot it to lock a projection's
/// whole read model at once.
pub fn read_model(store: &InMemoryProjectionStore) -> Value {
    read_model_under(store, "")
}

/// [`read_model`], limited to the keys that start with `prefix`.
pub fn read_model_under(store: &InMemoryProjectionStore, prefix: &str) -> Value {
    let entries = store
        .scan_prefix(prefix)
        .into_iter()
        .map(|(key, bytes)| {
            let value = serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
            (key, value)
        })
        .collect();
    Value::Object(entries)
}

fn to_value<T: Serialize>(value: &T, what: &str) -> Value {
    serde_json::to_value(value).unwrap_or_else(|error| {
        panic!("{what} cannot be snapshot as JSON: {error} (maps need string keys)")
    })
}

#[cfg(test)]
mod tests {
    use composable_rust_core::ProjectionStore;

    use super::*;

    #[test]
    fn effect_shapes_keep_delays_ids_and_groups() {
        let effect: Effect<&str> = Effect::parallel([
            Effect::send("now"),
            Effect::delay(Duration::from_millis(1500), "later").cancellable("timer"),
            Effect::cancel("old"),
        ]);
        let shape = serde_json::to_value(EffectShape::of(&effect)).unwrap();
        assert_eq!(
            shape,
            serde_json::json!({ "parallel": [
                "future",
                { "cancellable": { "id": "timer", "effect": { "delay": { "after": "1.5s", "action": "\"later\"" } } } },
                { "cancel": "old" },
            ] })
        );
    }

    #[tokio::test]
    async fn read_models_show_json_as_json_and_the_rest_as_text() {
        let store = InMemoryProjectionStore::new();
        store.save("a", br#"{"n":1}"#).await.unwrap();
        store.save("b", b"plain").await.unwrap();
        store.save("other", b"1").await.unwrap();
        assert_eq!(
            read_model(&store),
            serde_json::json!({ "a": { "n": 1 }, "b": "plain", "other": 1 })
        );
        assert_eq!(
            read_model_under(&store, "a"),
            serde_json::json!({ "a": { "n": 1 } })
        );
    }
}
