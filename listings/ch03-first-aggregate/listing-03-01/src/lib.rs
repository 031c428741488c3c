//! Listing 3-1: the Todo aggregate reduced to its essence: state, actions
//! and a pure reducer, with no environment and no effects yet.

use std::collections::BTreeMap;

use composable_rust::prelude::*;

// ANCHOR: state
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TodoState {
    pub todos: BTreeMap<u64, Todo>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Todo {
    pub title: String,
    pub completed: bool,
}
// ANCHOR_END: state

// ANCHOR: action
#[derive(Debug, Clone, PartialEq)]
pub enum TodoAction {
    Create { id: u64, title: String },
    Complete { id: u64 },
    Delete { id: u64 },
}
// ANCHOR_END: action

// ANCHOR: reducer
pub struct TodoReducer;

impl Reducer for TodoReducer {
    type State = TodoState;
    type Action = TodoAction;
    type Environment = ();

    fn reduce(&self, state: &mut TodoState, action: TodoAction, _env: &()) -> Effects<TodoAction> {
        match action {
            TodoAction::Create { id, title } => {
                state.todos.insert(
                    id,
                    Todo {
                        title,
                        completed: false,
                    },
                );
            }
            TodoAction::Complete { id } => {
                if let Some(todo) = state.todos.get_mut(&id) {
                    todo.completed = true;
                }
            }
            TodoAction::Delete { id } => {
                state.todos.remove(&id);
            }
        }
        Effects::new()
    }
}
// ANCHOR_END: reducer

// ANCHOR: test
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_todo_is_created_then_completed() {
        let mut state = TodoState::default();
        let create = TodoAction::Create {
            id: 1,
            title: "Buy milk".into(),
        };

        let effects = TodoReducer.reduce(&mut state, create, &());
        assert!(effects.is_empty());
        assert!(!state.todos[&1].completed);

        TodoReducer.reduce(&mut state, TodoAction::Complete { id: 1 }, &());
        assert!(state.todos[&1].completed);
    }
}
// ANCHOR_END: test
