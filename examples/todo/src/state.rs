//! The state of a todo list.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};

// ANCHOR: state
/// Todos are identified by a number the caller chooses.
pub type TodoId = u64;

/// One todo.
#[derive(Debug, Clone, PartialEq)]
pub struct Todo {
    pub title: String,
    pub completed: bool,
    pub created_at: DateTime<Utc>,
}

/// Everything the aggregate knows.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TodoState {
    pub todos: BTreeMap<TodoId, Todo>,
    /// Why the last action was refused, if it was.
    pub last_error: Option<TodoError>,
}
// ANCHOR_END: state

// ANCHOR: error
/// Why an action was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TodoError {
    EmptyTitle,
    AlreadyExists(TodoId),
    NotFound(TodoId),
}

impl fmt::Display for TodoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::EmptyTitle => write!(f, "a todo needs a title"),
            Self::AlreadyExists(id) => write!(f, "todo {id} already exists"),
            Self::NotFound(id) => write!(f, "there is no todo {id}"),
        }
    }
}
// ANCHOR_END: error
