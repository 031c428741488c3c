//! One-line assertions about the effects a reducer returned and the state
//! it left behind. Each panics with a message that shows what was found.

use std::fmt::Debug;
use std::time::Duration;

use composable_rust_core::{Effect, EffectKind};

use crate::diff::diff;

/// Asserts the reducer asked for no work (an empty list, or only
/// [`Effect::None`]s).
#[track_caller]
pub fn assert_no_effects<A: Debug>(effects: &[Effect<A>]) {
    let real: Vec<_> = effects
        .iter()
        .filter(|e| !matches!(e, Effect::None))
        .collect();
    assert!(
        real.is_empty(),
        "expected no effects, but the reducer returned {real:#?}"
    );
}

/// Asserts the reducer returned exactly `expected` effects (top level;
/// a group counts as one).
#[track_caller]
pub fn assert_effects_count<A: Debug>(effects: &[Effect<A>], expected: usize) {
    assert_eq!(
        effects.len(),
        expected,
        "expected {expected} effect(s), but the reducer returned {}: {effects:#?}",
        effects.len()
    );
}

/// Asserts that an effect of `kind` is among `effects`, at the top level or
/// nested inside a group or cancellable wrapper.
#[track_caller]
pub fn assert_has_effect<A: Debug>(effects: &[Effect<A>], kind: EffectKind) {
    assert!(
        effects.iter().any(|e| contains_kind(e, kind)),
        "expected an effect of kind {kind:?}, but the reducer returned {effects:#?}"
    );
}

/// Asserts that `effects` schedule `action` after exactly `after`
/// (an [`Effect::Delay`], possibly nested in a group or cancellable wrapper).
#[track_caller]
pub fn assert_delayed_action<A: Debug + PartialEq>(
    effects: &[Effect<A>],
    after: Duration,
    action: &A,
) {
    assert!(
        effects.iter().any(|e| contains_delay(e, after, action)),
        "expected a delay of {after:?} feeding back {action:?}, but the reducer returned {effects:#?}"
    );
}

/// Asserts the state changed.
#[track_caller]
pub fn assert_state_changed<S: Debug + PartialEq>(before: &S, after: &S) {
    assert!(
        before != after,
        "expected the state to change, but it is still {after:#?}"
    );
}

/// Asserts the state did not change, showing a diff if it did.
#[track_caller]
pub fn assert_state_unchanged<S: Debug + PartialEq>(before: &S, after: &S) {
    assert!(
        before == after,
        "expected the state to stay the same, but it changed {}",
        diff(before, after)
    );
}

fn children<A>(effect: &Effect<A>) -> &[Effect<A>] {
    match effect {
        Effect::Parallel(effects) | Effect::Sequential(effects) => effects,
        Effect::Cancellable { effect, .. } => std::slice::from_ref(effect),
        _ => &[],
    }
}

fn contains_kind<A>(effect: &Effect<A>, kind: EffectKind) -> bool {
    effect.kind() == kind || children(effect).iter().any(|e| contains_kind(e, kind))
}

fn contains_delay<A: PartialEq>(effect: &Effect<A>, after: Duration, action: &A) -> bool {
    match effect {
        Effect::Delay {
            duration,
            action: a,
        } => *duration == after && a == action,
        other => children(other)
            .iter()
            .any(|e| contains_delay(e, after, action)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<Effect<u8>> {
        vec![Effect::sequential([Effect::delay(Duration::from_secs(3), 7u8)]).cancellable("x")]
    }

    #[test]
    fn finds_nested_kinds_and_delays() {
        let effects = sample();
        assert_has_effect(&effects, EffectKind::Delay);
        assert_has_effect(&effects, EffectKind::Sequential);
        assert_delayed_action(&effects, Duration::from_secs(3), &7);
        assert_effects_count(&effects, 1);
        assert_no_effects::<u8>(&[Effect::None]);
        assert_state_changed(&1, &2);
        assert_state_unchanged(&1, &1);
    }

    #[test]
    #[should_panic(expected = "expected no effects")]
    fn no_effects_fails_when_there_are_some() {
        assert_no_effects(&sample());
    }

    #[test]
    #[should_panic(expected = "expected 2 effect(s), but the reducer returned 1")]
    fn count_fails_on_a_wrong_count() {
        assert_effects_count(&sample(), 2);
    }

    #[test]
    #[should_panic(expected = "expected an effect of kind Future")]
    fn has_effect_fails_when_absent() {
        assert_has_effect(&sample(), EffectKind::Future);
    }

    #[test]
    #[should_panic(expected = "expected a delay of 4s feeding back 7")]
    fn delayed_action_checks_the_duration() {
        assert_delayed_action(&sample(), Duration::from_secs(4), &7);
    }

    #[test]
    #[should_panic(expected = "expected the state to change")]
    fn state_changed_fails_on_equal_states() {
        assert_state_changed(&1, &1);
    }

    #[test]
    #[should_panic(expected = "expected the state to stay the same")]
    fn state_unchanged_fails_on_a_change() {
        assert_state_unchanged(&1, &2);
    }
}
