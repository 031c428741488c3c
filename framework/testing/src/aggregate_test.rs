//! [`AggregateTest`]: given these events happened, when this command
//! arrives, then these events happen (or the command is refused).
//!
//! This tests an aggregate's `decide` and `apply` as the pure functions they
//! are, with no event store involved.

use std::fmt::Debug;

use composable_rust_core::Aggregate;

use crate::diff::diff;

/// A given/when/then test of an [`Aggregate`].
///
/// ```
/// # use composable_rust_core::{Aggregate, Event};
/// # use serde::{Deserialize, Serialize};
/// use composable_rust_testing::AggregateTest;
///
/// #[derive(Debug, Default, Serialize, Deserialize)]
/// struct Light { on: bool }
///
/// #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
/// enum LightEvent { SwitchedOn, SwitchedOff }
/// impl Event for LightEvent {}
///
/// #[derive(Debug, PartialEq, thiserror::Error)]
/// #[error("the light is already on")]
/// struct AlreadyOn;
///
/// impl Aggregate for Light {
///     const KIND: &'static str = "light";
///     type Event = LightEvent;
///     type Command = ();
///     type Error = AlreadyOn;
///     type Environment = ();
///     fn decide(&self, _: (), _: &()) -> Result<Vec<LightEvent>, AlreadyOn> {
///         if self.on { Err(AlreadyOn) } else { Ok(vec![LightEvent::SwitchedOn]) }
///     }
///     fn apply(&mut self, event: &LightEvent) {
///         self.on = matches!(event, LightEvent::SwitchedOn);
///     }
/// }
///
/// AggregateTest::<Light>::new(())
///     .given([LightEvent::SwitchedOn, LightEvent::SwitchedOff])
///     .when(())
///     .then_events([LightEvent::SwitchedOn]);
///
/// AggregateTest::<Light>::new(())
///     .given([LightEvent::SwitchedOn])
///     .when(())
///     .then_rejected(AlreadyOn);
/// ```
#[derive(Debug)]
pub struct AggregateTest<A: Aggregate> {
    env: A::Environment,
    state: A,
}

impl<A: Aggregate> AggregateTest<A> {
    /// A test whose `decide` runs with `env`, starting from a new aggregate.
    pub fn new(env: A::Environment) -> Self {
        Self {
            env,
            state: A::default(),
        }
    }

    /// Events that already happened; they are applied in order.
    #[must_use]
    pub fn given(mut self, events: impl IntoIterator<Item = A::Event>) -> Self {
        for event in events {
            self.state.apply(&event);
        }
        self
    }

    /// Runs `command` through `decide`.
    pub fn when(self, command: A::Command) -> AggregateOutcome<A> {
        let result = self.state.decide(command, &self.env);
        AggregateOutcome {
            state: self.state,
            result,
        }
    }
}

/// What `decide` returned, ready to be asserted.
#[derive(Debug)]
pub struct AggregateOutcome<A: Aggregate> {
    state: A,
    result: Result<Vec<A::Event>, A::Error>,
}

impl<A: Aggregate> AggregateOutcome<A>
where
    A::Event: PartialEq + Debug,
{
    /// Asserts the command produced exactly `expected`, in order, and
    /// returns the state after applying them.
    #[track_caller]
    pub fn then_events(self, expected: impl IntoIterator<Item = A::Event>) -> A {
        let expected: Vec<_> = expected.into_iter().collect();
        match self.result {
            Ok(events) => {
                assert!(
                    events == expected,
                    "the command produced other events than expected {}",
                    diff(&expected, &events)
                );
                let mut state = self.state;
                for event in &events {
                    state.apply(event);
                }
                state
            }
            Err(error) => {
                panic!("expected events {expected:?}, but the command was refused: {error}")
            }
        }
    }

    /// Asserts the command was refused with `expected`.
    #[track_caller]
    pub fn then_rejected(self, expected: A::Error)
    where
        A::Error: PartialEq + Debug,
    {
        match self.result {
            Err(error) => assert!(
                error == expected,
                "the command was refused, but not as expected {}",
                diff(&expected, &error)
            ),
            Ok(events) => panic!(
                "expected the command to be refused with {expected:?}, but it produced {events:?}"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use composable_rust_core::Event;
    use serde::{Deserialize, Serialize};

    use super::*;

    #[derive(Debug, Default, Serialize, Deserialize)]
    struct Tally {
        total: u32,
    }

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    enum Added {
        Added(u32),
    }
    impl Event for Added {}

    #[derive(Debug, PartialEq, thiserror::Error)]
    #[error("too much")]
    struct TooMuch;

    impl Aggregate for Tally {
        const KIND: &'static str = "tally";
        type Event = Added;
        type Command = u32;
        type Error = TooMuch;
        type Environment = u32;
        fn decide(&self, n: u32, limit: &u32) -> Result<Vec<Added>, TooMuch> {
            if self.total + n > *limit {
                Err(TooMuch)
            } else {
                Ok(vec![Added::Added(n)])
            }
        }
        fn apply(&mut self, Added::Added(n): &Added) {
            self.total += n;
        }
    }

    #[test]
    fn then_events_returns_the_state_after_the_new_events() {
        let state = AggregateTest::<Tally>::new(10)
            .given([Added::Added(3)])
            .when(4)
            .then_events([Added::Added(4)]);
        assert_eq!(state.total, 7);
    }

    #[test]
    #[should_panic(expected = "the command produced other events than expected")]
    fn then_events_fails_on_other_events() {
        AggregateTest::<Tally>::new(10)
            .when(4)
            .then_events([Added::Added(5)]);
    }

    #[test]
    #[should_panic(expected = "but the command was refused: too much")]
    fn then_events_fails_on_a_refusal() {
        AggregateTest::<Tally>::new(1)
            .when(4)
            .then_events([Added::Added(4)]);
    }

    #[test]
    #[should_panic(expected = "expected the command to be refused with TooMuch")]
    fn then_rejected_fails_when_accepted() {
        AggregateTest::<Tally>::new(10)
            .when(4)
            .then_rejected(TooMuch);
    }
}
