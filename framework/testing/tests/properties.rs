//! The ready-made properties against projections and a reducer that keep
//! them, and against deliberately broken ones, whose failures must be
//! shrunk to a minimal case.

use std::marker::PhantomData;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use composable_rust_core::event::decode;
use composable_rust_core::projection::{ProjectionCheckpoint, ProjectionTx, ProjectionTxExt};
use composable_rust_core::{
    Effects, Event, InMemoryProjectionStore, Position, Projection, ProjectionError, Reducer,
    StoredEvent, Upcasters,
};
use composable_rust_testing::properties::{CrashStore, Properties};
use composable_rust_testing::proptest::prelude::*;
use composable_rust_testing::strategies::history;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum CartEvent {
    Added { cents: u32 },
    Cleared,
}
impl Event for CartEvent {}

fn cart_events() -> impl Strategy<Value = CartEvent> {
    prop_oneof![
        4 => (1u32..10_000).prop_map(|cents| CartEvent::Added { cents }),
        1 => Just(CartEvent::Cleared),
    ]
}

fn carts() -> impl Strategy<Value = Vec<(composable_rust_core::StreamId, CartEvent)>> {
    history("cart", 3, cart_events(), 0..24)
}

/// A cart total and the position of the last event applied to it.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Total {
    cents: u64,
    applied_up_to: Position,
}

/// What is deliberately wrong with a [`Totals`] projection.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Bug {
    None,
    /// No position guard: a redelivered event counts twice.
    CountsTwice,
    /// `reset` keeps the totals.
    ForgetfulReset,
}

/// Cart totals, generic over the store (so it runs on a `CrashStore`).
struct Totals<S> {
    bug: Bug,
    /// Events seen by this process (only counted when
    /// `keep_state_in_memory`), which a restart forgets.
    seen: AtomicU64,
    keep_state_in_memory: bool,
    store: PhantomData<fn() -> S>,
}

impl<S> Totals<S> {
    fn new(bug: Bug) -> Self {
        Self {
            bug,
            seen: AtomicU64::new(0),
            keep_state_in_memory: false,
            store: PhantomData,
        }
    }

    fn counting_in_memory() -> Self {
        Self {
            keep_state_in_memory: true,
            ..Self::new(Bug::None)
        }
    }
}

#[async_trait]
impl<S: ProjectionCheckpoint> Projection for Totals<S> {
    type Store = S;

    fn name(&self) -> &str {
        "totals"
    }

    async fn apply(&self, event: &StoredEvent, tx: &mut S::Tx) -> Result<(), ProjectionError> {
        let key = format!("total:{}", event.stream_id);
        let mut total: Total = tx.get_json(&key).await?.unwrap_or_default();
        if self.bug != Bug::CountsTwice && event.position <= total.applied_up_to {
            return Ok(());
        }
        match decode::<CartEvent>(event, &Upcasters::new())? {
            Some(CartEvent::Added { cents }) => total.cents += u64::from(cents),
            Some(CartEvent::Cleared) => total.cents = 0,
            None => {}
        }
        total.applied_up_to = event.position;
        if self.keep_state_in_memory {
            // Wrong on purpose: a count that lives in the process, not in
            // the store, so a restart starts it again from zero.
            let seen = self.seen.fetch_add(1, Ordering::SeqCst) + 1;
            tx.save_json("events-seen", &seen).await?;
        }
        tx.save_json(&key, &total).await
    }

    async fn reset(&self, tx: &mut S::Tx) -> Result<(), ProjectionError> {
        if self.bug == Bug::ForgetfulReset {
            return Ok(());
        }
        tx.delete_prefix("total:").await.map(|_| ())
    }
}

fn properties() -> Properties {
    Properties::new().with_cases(64)
}

#[test]
fn a_guarded_projection_is_idempotent_and_rebuilds() {
    properties().projection_idempotent(
        || Totals::<InMemoryProjectionStore>::new(Bug::None),
        carts(),
    );
    properties().rebuild_matches(
        || Totals::<InMemoryProjectionStore>::new(Bug::None),
        carts(),
    );
}

/// The acceptance test of shrinking: whatever random history fails first,
/// the report shows the smallest one, a single event applied twice.
#[test]
#[should_panic(
    expected = "with a history of 1 event(s), applying the first 1 twice gives another read model"
)]
fn a_projection_that_counts_twice_fails_with_a_one_event_history() {
    properties().projection_idempotent(
        || Totals::<InMemoryProjectionStore>::new(Bug::CountsTwice),
        history(
            "cart",
            3,
            (1u32..10_000).prop_map(|cents| CartEvent::Added { cents }),
            1..24,
        ),
    );
}

#[test]
#[should_panic(expected = "with a history of 1 event(s), reset leaves keys behind")]
fn a_forgetful_reset_fails_with_a_one_event_history() {
    properties().rebuild_matches(
        || Totals::<InMemoryProjectionStore>::new(Bug::ForgetfulReset),
        history(
            "cart",
            3,
            (1u32..10_000).prop_map(|cents| CartEvent::Added { cents }),
            1..24,
        ),
    );
}

#[test]
fn a_projection_survives_a_crash_anywhere() {
    properties().crash_anywhere(|| Totals::<CrashStore>::new(Bug::None), carts());
}

#[test]
#[should_panic(expected = "the resumed run ends elsewhere than the clean run")]
fn state_kept_in_the_process_is_lost_in_a_crash() {
    properties().crash_anywhere(Totals::<CrashStore>::counting_in_memory, carts());
}

/// A stock level that must never go negative; `Broken` forgets to check.
struct Stock {
    checks: bool,
}

impl Reducer for Stock {
    type State = i64;
    type Action = i64;
    type Environment = ();

    fn reduce(&self, level: &mut i64, change: i64, _: &()) -> Effects<i64> {
        if !self.checks || *level + change >= 0 {
            *level += change;
        }
        Effects::new()
    }
}

fn never_negative(level: &i64) -> Result<(), String> {
    if *level >= 0 {
        Ok(())
    } else {
        Err(format!("the stock is negative: {level}"))
    }
}

#[test]
fn a_checked_reducer_keeps_its_invariant() {
    properties().reducer_invariant(
        &Stock { checks: true },
        &(),
        || 0,
        -5i64..=5,
        never_negative,
    );
}

/// The minimal failing sequence of an unchecked stock is one action that
/// takes one unit: `[-1]`.
#[test]
#[should_panic(expected = "after action #0 (-1): the stock is negative: -1")]
fn an_unchecked_reducer_fails_with_the_smallest_sequence() {
    properties().reducer_invariant(
        &Stock { checks: false },
        &(),
        || 0,
        -5i64..=5,
        never_negative,
    );
}

/// [`Totals`] of the first cart only: events of the other carts are not
/// handled, but their checkpoint still moves past them (and a poison one
/// among them is still dead-lettered).
struct FirstCartOnly<S>(Totals<S>);

#[async_trait]
impl<S: ProjectionCheckpoint> Projection for FirstCartOnly<S> {
    type Store = S;

    fn name(&self) -> &str {
        "first-cart"
    }

    fn handles(&self, event: &StoredEvent) -> bool {
        event.stream_id.as_str() == "cart-1"
    }

    async fn apply(&self, event: &StoredEvent, tx: &mut S::Tx) -> Result<(), ProjectionError> {
        self.0.apply(event, tx).await
    }

    async fn reset(&self, tx: &mut S::Tx) -> Result<(), ProjectionError> {
        self.0.reset(tx).await
    }
}

#[test]
fn a_filtering_projection_survives_a_crash_anywhere() {
    properties().crash_anywhere(
        || FirstCartOnly(Totals::<CrashStore>::new(Bug::None)),
        carts(),
    );
}
