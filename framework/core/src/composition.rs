//! Building big reducers from small ones.
//!
//! - [`combine`] runs two reducers over the same state and action; their
//!   effects run concurrently.
//! - [`scope`] embeds a child feature's reducer in a parent: it picks the
//!   child's state out of the parent's, turns parent actions into child
//!   actions (ignoring the rest), and wraps the child's effects so their
//!   actions come back as parent actions.
//! - [`embed`] is [`scope`] for a parent action that wraps the child's in
//!   one variant: the two action mappings come from `From` and `TryFrom`
//!   (which `#[derive(Action)]` writes for a `#[child]` variant), so only
//!   the state and environment paths are left to write.

use crate::effect::Effects;
use crate::reducer::Reducer;

/// Two reducers run one after the other on the same state. See [`combine`].
#[derive(Debug, Clone)]
pub struct Combine<A, B> {
    first: A,
    second: B,
}

/// Runs `first`, then `second`, on the same state; returns the effects of both.
///
/// The action is cloned for `first`, so actions of combined reducers must be
/// `Clone`.
pub fn combine<A, B>(first: A, second: B) -> Combine<A, B>
where
    A: Reducer,
    B: Reducer<State = A::State, Action = A::Action, Environment = A::Environment>,
    A::Action: Clone,
{
    Combine { first, second }
}

impl<A, B> Reducer for Combine<A, B>
where
    A: Reducer,
    B: Reducer<State = A::State, Action = A::Action, Environment = A::Environment>,
    A::Action: Clone,
{
    type State = A::State;
    type Action = A::Action;
    type Environment = A::Environment;

    fn reduce(
        &self,
        state: &mut Self::State,
        action: Self::Action,
        env: &Self::Environment,
    ) -> Effects<Self::Action> {
        let mut effects = self.first.reduce(state, action.clone(), env);
        effects.extend(self.second.reduce(state, action, env));
        effects
    }
}

impl<Child: Reducer, ParentState, ParentAction, ParentEnv> std::fmt::Debug
    for Scope<Child, ParentState, ParentAction, ParentEnv>
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scope")
            .field("child", &std::any::type_name::<Child>())
            .finish_non_exhaustive()
    }
}

/// A child reducer embedded in a parent feature. See [`scope`].
pub struct Scope<Child: Reducer, ParentState, ParentAction, ParentEnv> {
    child: Child,
    state: fn(&mut ParentState) -> &mut Child::State,
    to_child: fn(ParentAction) -> Option<Child::Action>,
    from_child: fn(Child::Action) -> ParentAction,
    env: fn(&ParentEnv) -> &Child::Environment,
}

/// Embeds `child` in a parent feature.
///
/// - `state` borrows the child's state inside the parent's;
/// - `to_child` returns the child action a parent action carries, or `None`
///   for parent actions the child does not handle (they are ignored);
/// - `from_child` wraps the actions the child's effects feed back;
/// - `env` borrows the child's environment inside the parent's.
///
/// ```
/// use composable_rust_core::{combine, scope, Effects, Reducer};
///
/// struct Counter;
/// impl Reducer for Counter {
///     type State = i64;
///     type Action = i64;
///     type Environment = ();
///     fn reduce(&self, state: &mut i64, by: i64, _: &()) -> Effects<i64> {
///         *state += by;
///         Effects::new()
///     }
/// }
///
/// #[derive(Default)]
/// struct App { left: i64, right: i64 }
/// #[derive(Clone)]
/// enum AppAction { Left(i64), Right(i64) }
///
/// let app = combine(
///     scope(Counter, |s: &mut App| &mut s.left,
///           |a| match a { AppAction::Left(n) => Some(n), _ => None },
///           AppAction::Left, |env: &()| env),
///     scope(Counter, |s: &mut App| &mut s.right,
///           |a| match a { AppAction::Right(n) => Some(n), _ => None },
///           AppAction::Right, |env: &()| env),
/// );
///
/// let mut state = App::default();
/// app.reduce(&mut state, AppAction::Left(2), &());
/// app.reduce(&mut state, AppAction::Right(5), &());
/// assert_eq!((state.left, state.right), (2, 5));
/// ```
pub fn scope<Child, ParentState, ParentAction, ParentEnv>(
    child: Child,
    state: fn(&mut ParentState) -> &mut Child::State,
    to_child: fn(ParentAction) -> Option<Child::Action>,
    from_child: fn(Child::Action) -> ParentAction,
    env: fn(&ParentEnv) -> &Child::Environment,
) -> Scope<Child, ParentState, ParentAction, ParentEnv>
where
    Child: Reducer,
{
    Scope {
        child,
        state,
        to_child,
        from_child,
        env,
    }
}

/// Embeds `child` in a parent whose action converts to and from the
/// child's: [`scope`] with `to_child` = `Child::Action::try_from(action).ok()`
/// and `from_child` = `ParentAction::from`.
///
/// `#[derive(Action)]` writes both conversions for a newtype variant marked
/// `#[child]`; by hand, implement `From<ChildAction> for ParentAction` and
/// `TryFrom<ParentAction> for ChildAction` (whose `Err` gives the action
/// back). A parent action the child does not handle is ignored, as with
/// [`scope`].
///
/// ```
/// use composable_rust_core::{embed, Effects, Reducer};
///
/// struct Counter;
/// impl Reducer for Counter {
///     type State = i64;
///     type Action = i64;
///     type Environment = ();
///     fn reduce(&self, state: &mut i64, by: i64, _: &()) -> Effects<i64> {
///         *state += by;
///         Effects::new()
///     }
/// }
///
/// #[derive(Default)]
/// struct App { count: i64 }
/// enum AppAction { Count(i64), Quit }
///
/// impl From<i64> for AppAction {
///     fn from(by: i64) -> Self { Self::Count(by) }
/// }
/// impl TryFrom<AppAction> for i64 {
///     type Error = AppAction;
///     fn try_from(action: AppAction) -> Result<i64, AppAction> {
///         match action {
///             AppAction::Count(by) => Ok(by),
///             other => Err(other),
///         }
///     }
/// }
///
/// let app = embed(Counter, |s: &mut App| &mut s.count, |env: &()| env);
/// let mut state = App::default();
/// app.reduce(&mut state, AppAction::Count(3), &());
/// app.reduce(&mut state, AppAction::Quit, &());
/// assert_eq!(state.count, 3);
/// ```
pub fn embed<Child, ParentState, ParentAction, ParentEnv>(
    child: Child,
    state: fn(&mut ParentState) -> &mut Child::State,
    env: fn(&ParentEnv) -> &Child::Environment,
) -> Scope<Child, ParentState, ParentAction, ParentEnv>
where
    Child: Reducer,
    Child::Action: TryFrom<ParentAction>,
    ParentAction: From<Child::Action>,
{
    scope(
        child,
        state,
        |action| Child::Action::try_from(action).ok(),
        ParentAction::from,
        env,
    )
}

impl<Child, ParentState, ParentAction, ParentEnv> Reducer
    for Scope<Child, ParentState, ParentAction, ParentEnv>
where
    Child: Reducer,
    Child::Action: Send + 'static,
    ParentAction: Send + 'static,
{
    type State = ParentState;
    type Action = ParentAction;
    type Environment = ParentEnv;

    fn reduce(
        &self,
        state: &mut ParentState,
        action: ParentAction,
        env: &ParentEnv,
    ) -> Effects<ParentAction> {
        let Some(child_action) = (self.to_child)(action) else {
            return Effects::new();
        };
        let child_state = (self.state)(state);
        let from_child = self.from_child;
        self.child
            .reduce(child_state, child_action, (self.env)(env))
            .into_iter()
            .map(|effect| effect.map(from_child))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::effect::Effect;

    struct Recorder(&'static str);
    impl Reducer for Recorder {
        type State = Vec<String>;
        type Action = u8;
        type Environment = ();
        fn reduce(&self, state: &mut Vec<String>, action: u8, _: &()) -> Effects<u8> {
            state.push(format!("{}:{action}", self.0));
            vec![Effect::delay(Duration::from_secs(1), action + 1)]
        }
    }

    #[test]
    fn combine_runs_both_in_order_and_keeps_all_effects() {
        let both = combine(Recorder("a"), Recorder("b"));
        let mut state = Vec::new();
        let effects = both.reduce(&mut state, 7, &());
        assert_eq!(state, ["a:7", "b:7"]);
        assert_eq!(effects.len(), 2);
    }

    #[derive(Debug, PartialEq)]
    enum Parent {
        Child(u8),
        Other,
    }

    impl From<u8> for Parent {
        fn from(n: u8) -> Self {
            Self::Child(n)
        }
    }

    impl TryFrom<Parent> for u8 {
        type Error = Parent;
        fn try_from(action: Parent) -> Result<u8, Parent> {
            match action {
                Parent::Child(n) => Ok(n),
                other => Err(other),
            }
        }
    }

    #[test]
    fn embed_routes_through_the_conversions_like_scope() {
        let embedded = embed(
            Recorder("e"),
            |s: &mut (u32, Vec<String>)| &mut s.1,
            |e: &()| e,
        );
        let mut state = (0, Vec::new());
        assert!(embedded.reduce(&mut state, Parent::Other, &()).is_empty());
        assert!(state.1.is_empty(), "a foreign action changes nothing");
        let effects = embedded.reduce(&mut state, Parent::Child(4), &());
        assert_eq!(state.1, ["e:4"]);
        assert!(matches!(
            &effects[0],
            Effect::Delay {
                action: Parent::Child(5),
                ..
            }
        ));
    }

    #[test]
    fn scope_ignores_foreign_actions_and_maps_child_effects() {
        let scoped = scope(
            Recorder("c"),
            |s: &mut (u32, Vec<String>)| &mut s.1,
            |a| match a {
                Parent::Child(n) => Some(n),
                Parent::Other => None,
            },
            Parent::Child,
            |e: &()| e,
        );
        let mut state = (0, Vec::new());
        assert!(scoped.reduce(&mut state, Parent::Other, &()).is_empty());
        let effects = scoped.reduce(&mut state, Parent::Child(1), &());
        assert_eq!(state.1, ["c:1"]);
        assert!(matches!(
            &effects[0],
            Effect::Delay {
                action: Parent::Child(2),
                ..
            }
        ));
    }
}
