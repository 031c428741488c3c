//! The list read model: a small, query-friendly view of the todos, kept in
//! memory and updated by the reducer's effects.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use crate::state::TodoId;

// ANCHOR: list
/// One row of the list view.
#[derive(Debug, Clone, PartialEq)]
pub struct TodoRow {
    pub title: String,
    pub done: bool,
}

/// The list read model. Clones share the same rows.
#[derive(Debug, Clone, Default)]
pub struct TodoList {
    rows: Arc<Mutex<BTreeMap<TodoId, TodoRow>>>,
}

impl TodoList {
    pub fn upsert(&self, id: TodoId, row: TodoRow) {
        self.lock().insert(id, row);
    }

    pub fn remove(&self, id: TodoId) {
        self.lock().remove(&id);
    }

    /// Every row, in id order.
    pub fn rows(&self) -> Vec<(TodoId, TodoRow)> {
        self.lock()
            .iter()
            .map(|(id, row)| (*id, row.clone()))
            .collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<TodoId, TodoRow>> {
        self.rows.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
// ANCHOR_END: list
