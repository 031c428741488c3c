//! The dependencies of the Todo aggregate.

use std::sync::Arc;
use std::time::Duration;

use composable_rust::SystemClock;
use composable_rust::prelude::*;

use crate::list::TodoList;

// ANCHOR: environment
/// What the reducer may use besides its state and the action.
#[derive(Debug, Clone)]
pub struct TodoEnvironment {
    /// Where "now" comes from; a `TestClock` in tests.
    pub clock: Arc<dyn Clock>,
    /// The list read model, updated by effects.
    pub list: TodoList,
    /// How long a completed todo stays before it is deleted.
    pub clear_completed_after: Duration,
}

impl TodoEnvironment {
    /// The production environment: the system clock and a fresh list.
    pub fn live(clear_completed_after: Duration) -> Self {
        Self {
            clock: Arc::new(SystemClock),
            list: TodoList::default(),
            clear_completed_after,
        }
    }
}
// ANCHOR_END: environment
