//! One-line assertions about the effects a reducer returned, the state it
//! left behind, and the events its effects appended once run. Each panics
//! with a message that shows what was found.

use std::fmt::Debug;
use std::time::Duration;

use composable_rust_core::projection::EventSource;
use composable_rust_core::{Effect, EffectKind, Position, StoredEvent};

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

/// Asserts that the effect at `index` (top level) is of `kind`: the
/// one-line form of `assert!(matches!(effects[0], Effect::Future(_)))`,
/// with a message that shows every effect when it fails.
#[track_caller]
pub fn assert_effect_type<A: Debug>(effects: &[Effect<A>], index: usize, kind: EffectKind) {
    match effects.get(index) {
        Some(effect) => assert!(
            effect.kind() == kind,
            "expected effect #{index} to be of kind {kind:?}, but it is {:?}; the reducer returned {effects:#?}",
            effect.kind()
        ),
        None => panic!(
            "expected effect #{index} to be of kind {kind:?}, but the reducer returned only {} effect(s): {effects:#?}",
            effects.len()
        ),
    }
}

/// Asserts that an event of type `event_type` (its stored type name, e.g.
/// `"OrderPlaced"`) was appended to `source`, an event store (or any
/// [`EventSource`]), and returns the first such event for further checks
/// of its payload or stream.
///
/// A reducer publishes events through an effect that appends them
/// ([`append_events`](composable_rust_core::aggregate::append_events));
/// an effect is an opaque future until it runs, so this looks where the
/// events land once a [`TestStore`](crate::TestStore) (or a `Store`) has
/// run the effects: the event store in the environment. The event store is
/// what the bus's publisher relays, so "appended" is "published".
///
/// # Panics
///
/// When no such event was appended (the message lists the types that
/// were), or when reading `source` fails.
#[track_caller]
pub fn assert_event_published<'a>(
    source: &'a dyn EventSource,
    event_type: &'a str,
) -> impl Future<Output = StoredEvent> + 'a {
    // `#[track_caller]` does not reach into an `async fn`'s body: capture
    // the caller here so the panic names the test's line.
    let caller = std::panic::Location::caller();
    async move {
        let events = read_everything(source).await;
        match events.iter().find(|event| event.event_type == event_type) {
            Some(event) => event.clone(),
            None => {
                let found: Vec<_> = events
                    .iter()
                    .map(|event| format!("{} (stream {})", event.event_type, event.stream_id))
                    .collect();
                panic!(
                    "expected an event of type `{event_type}` to be published, but {} ({caller}); \
                     did the effect that appends it run? (TestStore::send runs effects; \
                     ReducerTest only inspects them)",
                    if found.is_empty() {
                        "none was appended at all".to_owned()
                    } else {
                        format!("only these were: {}", found.join(", "))
                    }
                )
            }
        }
    }
}

/// Every event of `source`, in position order.
async fn read_everything(source: &dyn EventSource) -> Vec<StoredEvent> {
    const PAGE: usize = 1_000;
    let mut events = Vec::new();
    let mut after = Position::START;
    loop {
        let page = source
            .read_after(after, PAGE)
            .await
            .unwrap_or_else(|error| panic!("reading the published events failed: {error}"));
        let Some(last) = page.last() else {
            return events;
        };
        after = last.position;
        let full = page.len() == PAGE;
        events.extend(page);
        if !full {
            return events;
        }
    }
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
    fn effect_type_checks_one_top_level_effect() {
        let effects: Vec<Effect<u8>> = vec![Effect::send(1), Effect::cancel("x")];
        assert_effect_type(&effects, 0, EffectKind::Future);
        assert_effect_type(&effects, 1, EffectKind::Cancel);
    }

    #[test]
    #[should_panic(expected = "expected effect #0 to be of kind Delay, but it is Cancellable")]
    fn effect_type_fails_on_another_kind() {
        assert_effect_type(&sample(), 0, EffectKind::Delay);
    }

    #[test]
    #[should_panic(expected = "but the reducer returned only 1 effect(s)")]
    fn effect_type_fails_past_the_end() {
        assert_effect_type(&sample(), 3, EffectKind::Delay);
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
