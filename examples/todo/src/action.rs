//! What can happen to a todo list.

use crate::state::TodoId;

// ANCHOR: action
/// Everything that can happen to a todo list.
#[derive(Debug, Clone, PartialEq)]
pub enum TodoAction {
    Create {
        id: TodoId,
        title: String,
    },
    Complete {
        id: TodoId,
    },
    /// Sent by a user, or fed back by the clean-up timer.
    Delete {
        id: TodoId,
    },
}
// ANCHOR_END: action
