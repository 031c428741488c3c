//! Tests of the Todo aggregate: single reducer calls with ReducerTest, and
//! whole flows, effects included, with TestStore.

use std::sync::Arc;
use std::time::Duration;

use composable_rust::prelude::*;
use composable_rust::testing::{
    assert_delayed_action, assert_effects_count, assert_has_effect, assert_no_effects,
};
use composable_rust::{EffectKind, TestClock};
use todo::reducer::clean_up;
use todo::{
    Todo, TodoAction, TodoEnvironment, TodoError, TodoList, TodoReducer, TodoRow, TodoState,
};

// ANCHOR: test_env
/// A test environment: a clock the test controls and a fresh list.
fn test_env(clock: &TestClock) -> TodoEnvironment {
    TodoEnvironment {
        clock: Arc::new(clock.clone()),
        list: TodoList::default(),
        clear_completed_after: Duration::from_secs(3600),
    }
}
// ANCHOR_END: test_env

fn todo(title: &str, completed: bool, clock: &TestClock) -> Todo {
    Todo {
        title: title.into(),
        completed,
        created_at: clock.now(),
    }
}

// ANCHOR: reducer_test
#[test]
fn creating_a_todo_records_it_and_updates_the_list() {
    let clock = TestClock::new();
    let created_at = clock.now();
    ReducerTest::new(TodoReducer, test_env(&clock))
        .given_state(TodoState::default())
        .when_action(TodoAction::Create {
            id: 1,
            title: "Buy milk".into(),
        })
        .then_state(move |state| {
            assert_eq!(state.todos[&1].title, "Buy milk");
            assert_eq!(state.todos[&1].created_at, created_at);
            assert_eq!(state.last_error, None);
        })
        .then_effects(|effects| {
            assert_effects_count(effects, 1);
            assert_has_effect(effects, EffectKind::Future);
        })
        .run();
}

#[test]
fn a_blank_title_is_refused_without_effects() {
    ReducerTest::new(TodoReducer, test_env(&TestClock::new()))
        .given_state(TodoState::default())
        .when_action(TodoAction::Create {
            id: 1,
            title: "  ".into(),
        })
        .then_state(|state| {
            assert!(state.todos.is_empty());
            assert_eq!(state.last_error, Some(TodoError::EmptyTitle));
        })
        .then_effects(|effects| assert_no_effects(effects))
        .run();
}

#[test]
fn completing_schedules_the_clean_up() {
    let clock = TestClock::new();
    ReducerTest::new(TodoReducer, test_env(&clock))
        .given_state(TodoState::default())
        .when_action(TodoAction::Create {
            id: 7,
            title: "Ship it".into(),
        })
        .when_action(TodoAction::Complete { id: 7 })
        .then_state(|state| assert!(state.todos[&7].completed))
        .then_effects(|effects| {
            assert_delayed_action(
                effects,
                Duration::from_secs(3600),
                &TodoAction::Delete { id: 7 },
            );
        })
        .run();
}
// ANCHOR_END: reducer_test

#[test]
fn unknown_todos_are_reported() {
    for action in [TodoAction::Complete { id: 9 }, TodoAction::Delete { id: 9 }] {
        ReducerTest::new(TodoReducer, test_env(&TestClock::new()))
            .given_state(TodoState::default())
            .when_action(action)
            .then_state(|state| assert_eq!(state.last_error, Some(TodoError::NotFound(9))))
            .then_effects(|effects| assert_no_effects(effects))
            .run();
    }
}

#[test]
fn creating_the_same_id_twice_is_refused() {
    let clock = TestClock::new();
    let created_at = clock.now();
    ReducerTest::new(TodoReducer, test_env(&clock))
        .given_state(TodoState::default())
        .when_action(TodoAction::Create {
            id: 1,
            title: "First".into(),
        })
        .when_action(TodoAction::Create {
            id: 1,
            title: "Second".into(),
        })
        .then_state(move |state| {
            let first = Todo {
                title: "First".into(),
                completed: false,
                created_at,
            };
            assert_eq!(state.todos[&1], first);
            assert_eq!(state.last_error, Some(TodoError::AlreadyExists(1)));
        })
        .run();
}

// ANCHOR: test_store
#[tokio::test]
async fn a_completed_todo_is_cleaned_up_after_an_hour() {
    let clock = TestClock::new();
    let env = test_env(&clock);
    let list = env.list.clone();
    let mut store =
        TestStore::new(TodoState::default(), TodoReducer, env).with_clock(clock.clone());

    store
        .send(
            TodoAction::Create {
                id: 1,
                title: "Buy milk".into(),
            },
            |state| {
                state.todos.insert(1, todo("Buy milk", false, &clock));
            },
        )
        .await;
    store
        .send(TodoAction::Complete { id: 1 }, |state| {
            state.todos.get_mut(&1).unwrap().completed = true;
        })
        .await;

    // An hour passes in no time at all.
    store.advance(Duration::from_secs(3600)).await;
    store
        .receive(TodoAction::Delete { id: 1 }, |state| {
            state.todos.remove(&1);
        })
        .await;

    store.finish().await;
    assert!(list.rows().is_empty());
}
// ANCHOR_END: test_store

// ANCHOR: cancel_test
#[tokio::test]
async fn deleting_a_completed_todo_cancels_its_clean_up() {
    let clock = TestClock::new();
    let env = test_env(&clock);
    let list = env.list.clone();
    let mut store =
        TestStore::new(TodoState::default(), TodoReducer, env).with_clock(clock.clone());

    store
        .send(
            TodoAction::Create {
                id: 1,
                title: "Buy milk".into(),
            },
            |state| {
                state.todos.insert(1, todo("Buy milk", false, &clock));
            },
        )
        .await;
    store
        .send(
            TodoAction::Create {
                id: 2,
                title: "Walk".into(),
            },
            |state| {
                state.todos.insert(2, todo("Walk", false, &clock));
            },
        )
        .await;
    store
        .send(TodoAction::Complete { id: 1 }, |state| {
            state.todos.get_mut(&1).unwrap().completed = true;
        })
        .await;
    store
        .send(TodoAction::Delete { id: 1 }, |state| {
            state.todos.remove(&1);
        })
        .await;

    // The timer was cancelled, so nothing is fed back when the hour is up.
    store.advance(Duration::from_secs(3600)).await;
    store.finish().await;
    assert_eq!(
        list.rows(),
        [(
            2,
            TodoRow {
                title: "Walk".into(),
                done: false
            }
        )]
    );
}
// ANCHOR_END: cancel_test

#[test]
fn clean_up_ids_are_per_todo() {
    assert_ne!(clean_up(1), clean_up(2));
}
