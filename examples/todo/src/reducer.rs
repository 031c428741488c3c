//! The reducer: how each action changes a todo list and what follows.

use composable_rust::EffectId;
use composable_rust::prelude::*;

use crate::action::TodoAction;
use crate::environment::TodoEnvironment;
use crate::list::{TodoList, TodoRow};
use crate::state::{Todo, TodoError, TodoId, TodoState};

/// The Todo feature's reducer.
#[derive(Debug)]
pub struct TodoReducer;

// ANCHOR: reducer
impl Reducer for TodoReducer {
    type State = TodoState;
    type Action = TodoAction;
    type Environment = TodoEnvironment;

    fn reduce(
        &self,
        state: &mut TodoState,
        action: TodoAction,
        env: &TodoEnvironment,
    ) -> Effects<TodoAction> {
        state.last_error = None;
        match action {
            TodoAction::Create { id, title } => {
                if title.trim().is_empty() {
                    return refuse(state, TodoError::EmptyTitle);
                }
                if state.todos.contains_key(&id) {
                    return refuse(state, TodoError::AlreadyExists(id));
                }
                let row = TodoRow {
                    title: title.clone(),
                    done: false,
                };
                let created_at = env.clock.now();
                state.todos.insert(
                    id,
                    Todo {
                        title,
                        completed: false,
                        created_at,
                    },
                );
                vec![show_in_list(&env.list, id, row)]
            }
            TodoAction::Complete { id } => {
                let Some(todo) = state.todos.get_mut(&id) else {
                    return refuse(state, TodoError::NotFound(id));
                };
                todo.completed = true;
                let row = TodoRow {
                    title: todo.title.clone(),
                    done: true,
                };
                vec![
                    show_in_list(&env.list, id, row),
                    Effect::delay(env.clear_completed_after, TodoAction::Delete { id })
                        .cancellable(clean_up(id)),
                ]
            }
            TodoAction::Delete { id } => {
                if state.todos.remove(&id).is_none() {
                    return refuse(state, TodoError::NotFound(id));
                }
                let list = env.list.clone();
                vec![
                    Effect::cancel(clean_up(id)),
                    Effect::fire_and_forget(async move { list.remove(id) }),
                ]
            }
        }
    }
}
// ANCHOR_END: reducer

// ANCHOR: helpers
/// Records why an action was refused; a refused action has no effects.
fn refuse(state: &mut TodoState, error: TodoError) -> Effects<TodoAction> {
    state.last_error = Some(error);
    Effects::new()
}

/// An effect that puts a row into the list read model.
fn show_in_list(list: &TodoList, id: TodoId, row: TodoRow) -> Effect<TodoAction> {
    let list = list.clone();
    Effect::fire_and_forget(async move { list.upsert(id, row) })
}

/// The id of the timer that deletes todo `id` once it is completed.
pub fn clean_up(id: TodoId) -> EffectId {
    EffectId::new(format!("clean-up-{id}"))
}
// ANCHOR_END: helpers
