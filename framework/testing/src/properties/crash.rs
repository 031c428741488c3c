//! Crash-anywhere: the real projection manager, crashed at a random commit
//! and resumed by a new one, must end where a clean run ends.
//!
//! One case, for a random history, random batch sizes, random poison
//! events and a random crash point:
//!
//! ```text
//! clean run:  store A ── manager (batch 500) ── catch_up ──────────────────────► read model A, dead letters A
//! crash run:  store B ── manager 1 (batch b1) ── commit #k fails, manager dropped
//!                     └─ manager 2 (batch b2) ── catch_up from the checkpoint ─► read model B, dead letters B
//! property:   A == B, both dead-letter exactly the poison events, both end at the last position
//! ```
//!
//! The events are appended to an [`InMemoryEventStore`]; both read models
//! live in [`InMemoryProjectionStore`]s wrapped in
//! [`FaultyProjectionStore`]s: a poison event is one the store refuses
//! ([`FaultyProjectionStore::refuse_event`], a permanent failure, retried
//! then dead-lettered), and the crash is a transient failure of every
//! commit from the `k`-th on (nothing of that commit is written, as when a
//! process dies before its commit reaches the store).

use std::collections::BTreeSet;
use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;

use composable_rust_core::error::ErrorClass;
use composable_rust_core::projection::{ProjectionConfig, RetryPolicy};
use composable_rust_core::{
    Event, EventStore, ExpectedVersion, InMemoryEventStore, InMemoryProjectionStore, NewEvent,
    Position, Projection, ProjectionManager, StoredEvent, StreamId,
};
use proptest::collection::vec;
use proptest::sample::Index;
use proptest::strategy::Strategy;
use uuid::Uuid;

use super::Properties;
use super::projection::{ReadModel, read_model, runtime};
use crate::diff::diff;
use crate::faults::{FaultyProjectionStore, Operation};

/// The store a crash-anywhere projection runs on.
pub type CrashStore = FaultyProjectionStore<InMemoryProjectionStore>;

/// Where one case crashes, and how it runs.
#[derive(Debug, Clone)]
struct Plan {
    /// Which events are poison (indexes into the history; a repeated one
    /// counts once).
    poison: Vec<Index>,
    /// Commits that succeed before the crash.
    crash_after: u32,
    /// Batch size before the crash.
    batch_before: usize,
    /// Batch size after the restart.
    batch_after: usize,
}

fn plans() -> impl Strategy<Value = Plan> {
    (
        vec(proptest::arbitrary::any::<Index>(), 0..=2),
        0u32..40,
        1usize..=8,
        1usize..=8,
    )
        .prop_map(|(poison, crash_after, batch_before, batch_after)| Plan {
            poison,
            crash_after,
            batch_before,
            batch_after,
        })
}

/// What a run ends with.
#[derive(Debug, PartialEq)]
struct Outcome {
    read_model: ReadModel,
    dead_letters: BTreeSet<Uuid>,
    position: Position,
}

fn config(batch_size: usize) -> ProjectionConfig {
    ProjectionConfig {
        batch_size,
        // A poison event is tried twice, without waiting, then dead-lettered.
        retry: RetryPolicy {
            max_attempts: 2,
            initial_backoff: Duration::ZERO,
            max_backoff: Duration::ZERO,
        },
        ..ProjectionConfig::default()
    }
}

async fn append_all<E: Event>(history: &[(StreamId, E)]) -> Result<InMemoryEventStore, String> {
    let events = InMemoryEventStore::new();
    for (stream, event) in history {
        let new = NewEvent::from_event(event).map_err(|e| e.to_string())?;
        events
            .append(stream, ExpectedVersion::Any, vec![new])
            .await
            .map_err(|e| e.to_string())?;
    }
    Ok(events)
}

async fn outcome<P: Projection<Store = CrashStore>>(
    manager: &ProjectionManager<P>,
    store: &CrashStore,
) -> Result<Outcome, String> {
    let dead_letters = manager
        .dead_letters()
        .await
        .map_err(|e| e.to_string())?
        .into_iter()
        .map(|letter| letter.event.event_id)
        .collect();
    Ok(Outcome {
        read_model: read_model(store.inner()),
        dead_letters,
        position: manager.position(),
    })
}

impl Properties {
    /// For any history from `histories` (appended to an in-memory event
    /// store), random batch sizes, up to two random poison events and a
    /// crash at a random commit: a [`ProjectionManager`] that crashes and
    /// a new one that resumes from its checkpoint end with the read model,
    /// the dead letters and the position of a clean run. See the source
    /// module's diagram.
    ///
    /// The projection runs on a [`CrashStore`]; a projection generic over
    /// its store (`impl<S: ProjectionCheckpoint> Projection for
    /// Balances<S>`) fits as it is.
    ///
    /// # Panics
    ///
    /// With the minimal history and plan that break it, and the two
    /// outcomes.
    #[track_caller]
    pub fn crash_anywhere<P, E, S>(&self, projection: impl Fn() -> P, histories: S)
    where
        P: Projection<Store = CrashStore>,
        E: Event + Debug,
        S: Strategy<Value = Vec<(StreamId, E)>>,
    {
        let runtime = runtime();
        let cases = (histories, plans());
        self.run("a crash anywhere, then a resume, gives the clean run's read model", &cases, |(history, plan)| {
            runtime.block_on(async {
                let source = append_all(&history).await?;
                let stored: Vec<StoredEvent> = source
                    .read_all(Position::START, usize::MAX)
                    .await
                    .map_err(|e| e.to_string())?;
                let mut poison: Vec<&StoredEvent> = if stored.is_empty() {
                    Vec::new()
                } else {
                    plan.poison.iter().map(|index| index.get(&stored)).collect()
                };
                poison.sort_by_key(|event| event.position);
                poison.dedup_by_key(|event| event.position);
                // The store refuses any unit of work that moves the
                // checkpoint past a poison event, handled or not, so every
                // one of them ends in the dead letters.
                let expected_dead: BTreeSet<Uuid> =
                    poison.iter().map(|event| event.event_id).collect();
                let refuse_poison = |store: &CrashStore| {
                    for event in &poison {
                        store.refuse_event(event);
                    }
                };

                // The clean run.
                let clean_store = CrashStore::default();
                refuse_poison(&clean_store);
                let clean = ProjectionManager::builder(projection(), Arc::new(clean_store.clone()), source.clone())
                    .with_config(config(500))
                    .build();
                clean.catch_up().await.map_err(|e| format!("the clean run failed: {e}"))?;
                let clean = outcome(&clean, &clean_store).await?;

                // The run that crashes at commit number `crash_after`.
                let store = CrashStore::default();
                refuse_poison(&store);
                store.fail_next_after(Operation::Commit, plan.crash_after, ErrorClass::Transient, u32::MAX);
                let first = ProjectionManager::builder(projection(), Arc::new(store.clone()), source.clone())
                    .with_config(config(plan.batch_before))
                    .build();
                let crashed = first.catch_up().await.is_err();
                drop(first);

                // The restart: a healthy store, a new manager.
                store.heal();
                refuse_poison(&store);
                let second = ProjectionManager::builder(projection(), Arc::new(store.clone()), source.clone())
                    .with_config(config(plan.batch_after))
                    .build();
                second.catch_up().await.map_err(|e| format!("the resumed run failed: {e}"))?;
                let resumed = outcome(&second, &store).await?;

                let last = stored.last().map_or(Position::START, |event| event.position);
                let mut problems = Vec::new();
                if clean.dead_letters != expected_dead {
                    problems.push("the clean run did not dead-letter exactly the poison events".to_owned());
                }
                if resumed != clean {
                    problems.push(format!("the resumed run ends elsewhere than the clean run {}", diff(&clean, &resumed)));
                }
                if resumed.position != last {
                    problems.push(format!("the resumed run stopped at {}, before the last event at {last}", resumed.position));
                }
                if problems.is_empty() {
                    return Ok(());
                }
                Err(format!(
                    "with a history of {} event(s), {} poison, {} at commit {} (batch {} then {}): {}",
                    stored.len(),
                    expected_dead.len(),
                    if crashed { "crashed" } else { "no crash" },
                    plan.crash_after,
                    plan.batch_before,
                    plan.batch_after,
                    problems.join("; ")
                ))
            })
        });
    }
}
