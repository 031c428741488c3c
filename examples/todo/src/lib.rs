//! The Todo aggregate: the feature built in "Your First Aggregate".
//!
//! - [`state`]: what a todo list is;
//! - [`action`]: what can happen to it;
//! - [`reducer`]: how actions change the state and which effects follow;
//! - [`environment`]: the dependencies (clock, read model, settings);
//! - [`list`]: the in-memory list read model that effects keep up to date.

pub mod action;
pub mod environment;
pub mod list;
pub mod reducer;
pub mod state;

pub use action::TodoAction;
pub use environment::TodoEnvironment;
pub use list::{TodoList, TodoRow};
pub use reducer::TodoReducer;
pub use state::{Todo, TodoError, TodoId, TodoState};
