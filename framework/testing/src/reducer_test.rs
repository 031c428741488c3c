//! [`ReducerTest`]: given a state, when an action arrives, then the state
//! and the effects look like this. No runtime needed: effects are inspected,
//! not run.

use composable_rust_core::{Effect, Reducer};

type StateCheck<S> = Box<dyn FnOnce(&S)>;
type EffectsCheck<A> = Box<dyn FnOnce(&[Effect<A>])>;

/// A fluent test of one or more reducer calls.
///
/// ```
/// use composable_rust_core::{Effect, Effects, Reducer};
/// use composable_rust_testing::{assert_no_effects, ReducerTest};
///
/// struct Add;
/// impl Reducer for Add {
///     type State = i32;
///     type Action = i32;
///     type Environment = ();
///     fn reduce(&self, sum: &mut i32, n: i32, _: &()) -> Effects<i32> {
///         *sum += n;
///         Effects::new()
///     }
/// }
///
/// ReducerTest::new(Add, ())
///     .given_state(40)
///     .when_action(2)
///     .then_state(|sum| assert_eq!(*sum, 42))
///     .then_effects(|effects| assert_no_effects(effects))
///     .run();
/// ```
#[must_use = "a ReducerTest does nothing until .run() is called"]
pub struct ReducerTest<R: Reducer> {
    reducer: R,
    env: R::Environment,
    state: Option<R::State>,
    actions: Vec<R::Action>,
    state_checks: Vec<StateCheck<R::State>>,
    effects_checks: Vec<EffectsCheck<R::Action>>,
}

impl<R: Reducer> ReducerTest<R> {
    /// A test of `reducer` with environment `env`.
    pub fn new(reducer: R, env: R::Environment) -> Self {
        Self {
            reducer,
            env,
            state: None,
            actions: Vec::new(),
            state_checks: Vec::new(),
            effects_checks: Vec::new(),
        }
    }

    /// The state before the actions run.
    pub fn given_state(mut self, state: R::State) -> Self {
        self.state = Some(state);
        self
    }

    /// An action to run; call again to run several in order.
    pub fn when_action(mut self, action: R::Action) -> Self {
        self.actions.push(action);
        self
    }

    /// A check of the state after every action has run.
    pub fn then_state(mut self, check: impl FnOnce(&R::State) + 'static) -> Self {
        self.state_checks.push(Box::new(check));
        self
    }

    /// A check of the effects every action returned, in order.
    pub fn then_effects(mut self, check: impl FnOnce(&[Effect<R::Action>]) + 'static) -> Self {
        self.effects_checks.push(Box::new(check));
        self
    }

    /// Runs the actions and the checks; panics if a check fails.
    #[track_caller]
    pub fn run(self) {
        let Some(mut state) = self.state else {
            panic!("ReducerTest needs a starting state: call .given_state(...) before .run()");
        };
        assert!(
            !self.actions.is_empty(),
            "ReducerTest has no action to run: call .when_action(...) before .run()"
        );
        let mut effects = Vec::new();
        for action in self.actions {
            effects.extend(self.reducer.reduce(&mut state, action, &self.env));
        }
        for check in self.state_checks {
            check(&state);
        }
        for check in self.effects_checks {
            check(&effects);
        }
    }
}

impl<R: Reducer> std::fmt::Debug for ReducerTest<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReducerTest").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use composable_rust_core::Effects;

    use super::*;
    use crate::assertions::{assert_delayed_action, assert_effects_count};

    struct Doubler;
    impl Reducer for Doubler {
        type State = Vec<u32>;
        type Action = u32;
        type Environment = Duration;
        fn reduce(&self, seen: &mut Vec<u32>, n: u32, wait: &Duration) -> Effects<u32> {
            seen.push(n);
            vec![Effect::delay(*wait, n * 2)]
        }
    }

    #[test]
    fn runs_actions_in_order_and_collects_all_effects() {
        ReducerTest::new(Doubler, Duration::from_secs(1))
            .given_state(vec![])
            .when_action(1)
            .when_action(5)
            .then_state(|seen| assert_eq!(seen, &[1, 5]))
            .then_effects(|effects| {
                assert_effects_count(effects, 2);
                assert_delayed_action(effects, Duration::from_secs(1), &10);
            })
            .run();
    }

    #[test]
    #[should_panic(expected = "call .given_state(...)")]
    fn refuses_to_run_without_a_state() {
        ReducerTest::new(Doubler, Duration::ZERO)
            .when_action(1)
            .run();
    }

    #[test]
    #[should_panic(expected = "call .when_action(...)")]
    fn refuses_to_run_without_an_action() {
        ReducerTest::new(Doubler, Duration::ZERO)
            .given_state(vec![])
            .run();
    }

    #[test]
    #[should_panic(expected = "left: [1]")]
    fn a_failing_state_check_fails_the_test() {
        ReducerTest::new(Doubler, Duration::ZERO)
            .given_state(vec![])
            .when_action(1)
            .then_state(|seen| assert_eq!(seen, &[2]))
            .run();
    }
}
