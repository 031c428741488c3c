//! Ready-made properties (feature `proptest`): give a reducer or a
//! projection and a strategy for its input, and [`Properties`] runs
//! hundreds of random cases, shrinks the first failure to a minimal case
//! and panics with it.
//!
//! | property | holds when |
//! |---|---|
//! | [`reducer_invariant`](Properties::reducer_invariant) | an invariant of the state holds after every action of any random action sequence |
//! | [`projection_idempotent`](Properties::projection_idempotent) | applying any prefix of any history twice (a redelivery after a crash) gives the read model of applying it once |
//! | [`rebuild_matches`](Properties::rebuild_matches) | resetting the read model and replaying the whole history gives the read model built incrementally |
//! | [`crash_anywhere`](Properties::crash_anywhere) | the real [`ProjectionManager`](composable_rust_core::ProjectionManager), with random batch sizes and random poison events, crashed at a random commit and resumed by a new manager, gives the read model and dead letters of a clean run |
//!
//! The properties are synchronous and run their async parts on a runtime
//! of their own: call them from a plain `#[test]`, not a `#[tokio::test]`.
//! The number of cases is proptest's (256, or `PROPTEST_CASES`), unless
//! [`with_cases`](Properties::with_cases) says otherwise; failures are not
//! persisted to files, so a test never writes into the source tree.

mod crash;

pub use crash::CrashStore;
mod projection;

use std::fmt::Debug;

use composable_rust_core::Reducer;
use proptest::collection::{SizeRange, vec};
use proptest::strategy::Strategy;
use proptest::test_runner::{Config, TestCaseError, TestError, TestRunner};

/// Runs the ready-made properties; see the [module](self) documentation.
///
/// ```
/// use composable_rust_core::{Effects, Reducer};
/// use composable_rust_testing::properties::Properties;
/// use composable_rust_testing::proptest::prelude::*;
///
/// /// A stock level that must never go negative.
/// struct Stock;
/// impl Reducer for Stock {
///     type State = i64;
///     type Action = i64;
///     type Environment = ();
///     fn reduce(&self, level: &mut i64, change: i64, _: &()) -> Effects<i64> {
///         if *level + change >= 0 {
///             *level += change;
///         }
///         Effects::new()
///     }
/// }
///
/// Properties::new().with_cases(64).reducer_invariant(&Stock, &(), || 0, -5i64..=5, |level| {
///     if *level >= 0 { Ok(()) } else { Err(format!("negative stock {level}")) }
/// });
/// ```
#[derive(Debug, Clone)]
pub struct Properties {
    config: Config,
    max_actions: SizeRange,
}

impl Default for Properties {
    fn default() -> Self {
        Self::new()
    }
}

impl Properties {
    /// proptest's default number of cases (or `PROPTEST_CASES`); action
    /// sequences of up to 32 actions.
    pub fn new() -> Self {
        Self {
            config: Config {
                failure_persistence: None,
                ..Config::default()
            },
            max_actions: (0..=32).into(),
        }
    }

    /// Runs `cases` random cases per property.
    #[must_use]
    pub fn with_cases(mut self, cases: u32) -> Self {
        self.config.cases = cases;
        self
    }

    /// How many actions a random sequence of
    /// [`reducer_invariant`](Self::reducer_invariant) has.
    #[must_use]
    pub fn with_actions(mut self, actions: impl Into<SizeRange>) -> Self {
        self.max_actions = actions.into();
        self
    }

    /// Runs random sequences of actions from `actions` through `reducer`
    /// from `initial()`, checking `invariant` after every action (effects
    /// are inspected, not run).
    ///
    /// # Panics
    ///
    /// With the minimal action sequence that breaks the invariant and the
    /// invariant's message.
    #[track_caller]
    pub fn reducer_invariant<R, S>(
        &self,
        reducer: &R,
        env: &R::Environment,
        initial: impl Fn() -> R::State,
        actions: S,
        invariant: impl Fn(&R::State) -> Result<(), String>,
    ) where
        R: Reducer,
        R::Action: Debug + Clone,
        S: Strategy<Value = R::Action>,
    {
        let sequences = vec(actions, self.max_actions.clone());
        self.run("the reducer invariant", &sequences, |sequence| {
            let mut state = initial();
            for (step, action) in sequence.into_iter().enumerate() {
                let label = format!("{action:?}");
                let _effects = reducer.reduce(&mut state, action, env);
                invariant(&state)
                    .map_err(|reason| format!("after action #{step} ({label}): {reason}"))?;
            }
            Ok(())
        });
    }

    /// Runs `check` on `cases` values of `strategy`; panics with the shrunk
    /// minimal failing value.
    #[track_caller]
    fn run<S>(&self, property: &str, strategy: &S, check: impl Fn(S::Value) -> Result<(), String>)
    where
        S: Strategy,
        S::Value: Debug,
    {
        let mut runner = TestRunner::new(self.config.clone());
        let result = runner.run(strategy, |value| check(value).map_err(TestCaseError::fail));
        match result {
            Ok(()) => {}
            Err(TestError::Fail(reason, minimal)) => panic!(
                "property failed: {property}\n{reason}\nminimal failing input (shrunk):\n{minimal:#?}"
            ),
            Err(TestError::Abort(reason)) => {
                panic!("property {property} could not run: {reason}")
            }
        }
    }
}
