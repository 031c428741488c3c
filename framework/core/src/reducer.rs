//! The [`Reducer`] trait: the pure heart of every feature.

use crate::effect::Effects;

/// Decides how an action changes the state, and which work should follow.
///
/// A reducer is **pure**: it mutates the state it is given and returns
/// [`Effects`] that *describe* work, but it performs no I/O itself and reads
/// time, randomness or any outside resource only through its environment.
/// That makes every reducer testable without a runtime, a database or a clock.
///
/// # Examples
///
/// ```
/// use composable_rust_core::{Effects, Reducer};
///
/// #[derive(Debug, Default)]
/// struct Counter { count: i64 }
///
/// #[derive(Debug, Clone)]
/// enum CounterAction { Increment, Decrement }
///
/// struct CounterReducer;
///
/// impl Reducer for CounterReducer {
///     type State = Counter;
///     type Action = CounterAction;
///     type Environment = ();
///
///     fn reduce(&self, state: &mut Counter, action: CounterAction, _env: &()) -> Effects<CounterAction> {
///         match action {
///             CounterAction::Increment => state.count += 1,
///             CounterAction::Decrement => state.count -= 1,
///         }
///         Effects::new()
///     }
/// }
///
/// let mut state = Counter::default();
/// CounterReducer.reduce(&mut state, CounterAction::Increment, &());
/// assert_eq!(state.count, 1);
/// ```
pub trait Reducer {
    /// The data this reducer owns and mutates.
    type State;
    /// Everything that can happen to the state.
    type Action;
    /// The dependencies the reducer and its effects may use.
    type Environment;

    /// Applies `action` to `state` and returns the effects to run next.
    ///
    /// The effects in the returned list run concurrently; an empty list means
    /// "nothing more to do".
    fn reduce(
        &self,
        state: &mut Self::State,
        action: Self::Action,
        env: &Self::Environment,
    ) -> Effects<Self::Action>;
}

impl<R: Reducer + ?Sized> Reducer for Box<R> {
    type State = R::State;
    type Action = R::Action;
    type Environment = R::Environment;

    fn reduce(
        &self,
        state: &mut Self::State,
        action: Self::Action,
        env: &Self::Environment,
    ) -> Effects<Self::Action> {
        (**self).reduce(state, action, env)
    }
}

impl<R: Reducer + ?Sized> Reducer for std::sync::Arc<R> {
    type State = R::State;
    type Action = R::Action;
    type Environment = R::Environment;

    fn reduce(
        &self,
        state: &mut Self::State,
        action: Self::Action,
        env: &Self::Environment,
    ) -> Effects<Self::Action> {
        (**self).reduce(state, action, env)
    }
}
