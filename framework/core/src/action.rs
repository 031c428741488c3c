//! Actions: what can happen to a feature.
//!
//! An action enum usually mixes two kinds of variants: **commands**, which
//! come from outside (a user, an API call) and ask the feature to do
//! something, and **events**, which report what happened (often fed back by
//! an effect). [`Action`] lets code that handles any action tell them apart,
//! e.g. to log commands or to check in a test that effects only feed back
//! events. `#[derive(Action)]` (facade feature `macros`) implements it from
//! `#[command]` and `#[event]` markers on the variants.
//!
//! ```
//! use composable_rust_core::Action;
//!
//! enum DoorAction {
//!     Open,
//!     Opened,
//! }
//!
//! impl Action for DoorAction {
//!     fn is_command(&self) -> bool {
//!         matches!(self, Self::Open)
//!     }
//!     fn is_event(&self) -> bool {
//!         matches!(self, Self::Opened)
//!     }
//! }
//!
//! assert!(DoorAction::Open.is_command());
//! assert!(DoorAction::Opened.is_event());
//! ```

/// An action that knows whether it is a command or an event.
///
/// A variant may be neither (an internal tick, a child feature's action),
/// never both.
///
/// # Examples
///
/// Code that handles any action can tell commands from events, e.g. to log
/// only the commands (`#[derive(Action)]` writes this `impl` from
/// `#[command]` and `#[event]` markers):
///
/// ```
/// use composable_rust_core::Action;
///
/// enum OrderAction {
///     Place,
///     Placed,
///     Tick,
/// }
///
/// impl Action for OrderAction {
///     fn is_command(&self) -> bool {
///         matches!(self, Self::Place)
///     }
///     fn is_event(&self) -> bool {
///         matches!(self, Self::Placed)
///     }
/// }
///
/// fn commands<A: Action>(actions: &[A]) -> usize {
///     actions.iter().filter(|action| action.is_command()).count()
/// }
///
/// let actions = [OrderAction::Place, OrderAction::Placed, OrderAction::Tick];
/// assert_eq!(commands(&actions), 1);
/// assert!(!OrderAction::Tick.is_command() && !OrderAction::Tick.is_event());
/// ```
pub trait Action {
    /// Whether this action asks the feature to do something (it comes from
    /// outside and may be refused).
    fn is_command(&self) -> bool;

    /// Whether this action reports something that happened (it is often
    /// fed back by an effect, and cannot be refused).
    fn is_event(&self) -> bool;
}
