//! Projection properties over random histories, on the in-memory store:
//! idempotency (any prefix applied twice) and rebuild equivalence.

use std::fmt::Debug;

use composable_rust_core::{
    Event, InMemoryProjectionStore, Projection, ProjectionStore, StoredEvent, StreamId,
};
use proptest::strategy::Strategy;

use super::Properties;
use crate::diff::diff;
use crate::strategies::stored_history;

/// The whole read model, values as text, for comparisons and messages.
pub(super) type ReadModel = Vec<(String, String)>;

pub(super) fn read_model(store: &InMemoryProjectionStore) -> ReadModel {
    store
        .scan_prefix("")
        .into_iter()
        .map(|(key, value)| (key, String::from_utf8_lossy(&value).into_owned()))
        .collect()
}

/// Applies each event the projection handles in a unit of work of its own.
async fn apply_each<P: Projection<Store = InMemoryProjectionStore>>(
    projection: &P,
    store: &InMemoryProjectionStore,
    events: &[StoredEvent],
) -> Result<(), String> {
    for event in events.iter().filter(|event| projection.handles(event)) {
        let mut tx = store.begin().await.map_err(|e| e.to_string())?;
        projection.apply(event, &mut tx).await.map_err(|error| {
            format!(
                "the projection failed on {} v{} ({}): {error}",
                event.stream_id, event.stream_version, event.event_type
            )
        })?;
        store.commit(tx).await.map_err(|e| e.to_string())?;
    }
    Ok(())
}

pub(super) fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|error| panic!("cannot start a tokio runtime for the property: {error}"))
}

impl Properties {
    /// For any history from `histories` and every prefix of it: applying
    /// the prefix, the prefix again (a redelivery), then the rest gives the
    /// read model of applying every event once. The property an
    /// at-least-once store (Redis) needs of `apply`.
    ///
    /// `histories` is usually [`strategies::history`](crate::strategies::history).
    ///
    /// # Panics
    ///
    /// With the minimal history and prefix that break it, and the two
    /// read models.
    #[track_caller]
    pub fn projection_idempotent<P, E, S>(&self, projection: impl Fn() -> P, histories: S)
    where
        P: Projection<Store = InMemoryProjectionStore>,
        E: Event + Debug,
        S: Strategy<Value = Vec<(StreamId, E)>>,
    {
        let runtime = runtime();
        self.run("applying any prefix twice changes nothing", &histories, |history| {
            let events = stored_history(&history);
            runtime.block_on(async {
                let projection = projection();
                let once = InMemoryProjectionStore::new();
                apply_each(&projection, &once, &events).await?;
                let once = read_model(&once);
                // Every prefix, not a random one: the history alone is the
                // input, so shrinking it shrinks the whole case.
                for prefix in 1..=events.len() {
                    let twice = InMemoryProjectionStore::new();
                    apply_each(&projection, &twice, &events[..prefix]).await?;
                    apply_each(&projection, &twice, &events[..prefix]).await?;
                    apply_each(&projection, &twice, &events[prefix..]).await?;
                    let twice = read_model(&twice);
                    if once != twice {
                        return Err(format!(
                            "with a history of {} event(s), applying the first {prefix} twice gives another read model {}",
                            events.len(),
                            diff(&once, &twice)
                        ));
                    }
                }
                Ok(())
            })
        });
    }

    /// For any history from `histories`: applying it event by event, then
    /// resetting the read model through the projection's `reset` and
    /// replaying the whole history (what a rebuild does) gives the same
    /// read model, and the reset leaves no key behind. Catches a `reset`
    /// that forgets keys (even when a position guard would hide it, by
    /// skipping the replayed events), and an `apply` that depends on what
    /// an earlier run left behind.
    ///
    /// # Panics
    ///
    /// With the minimal history that breaks it, and the two read models.
    #[track_caller]
    pub fn rebuild_matches<P, E, S>(&self, projection: impl Fn() -> P, histories: S)
    where
        P: Projection<Store = InMemoryProjectionStore>,
        E: Event + Debug,
        S: Strategy<Value = Vec<(StreamId, E)>>,
    {
        let runtime = runtime();
        self.run("a rebuild gives the incremental read model", &histories, |history| {
            let events = stored_history(&history);
            runtime.block_on(async {
                let projection = projection();
                let store = InMemoryProjectionStore::new();
                apply_each(&projection, &store, &events).await?;
                let incremental = read_model(&store);
                let mut tx = store.begin().await.map_err(|e| e.to_string())?;
                projection
                    .reset(&mut tx)
                    .await
                    .map_err(|error| format!("reset failed: {error}"))?;
                store.commit(tx).await.map_err(|e| e.to_string())?;
                let left = store.keys();
                if !left.is_empty() {
                    return Err(format!(
                        "with a history of {} event(s), reset leaves keys behind, so a rebuild would keep their old values: {left:?}",
                        events.len()
                    ));
                }
                apply_each(&projection, &store, &events).await?;
                let rebuilt = read_model(&store);
                if incremental == rebuilt {
                    return Ok(());
                }
                Err(format!(
                    "with a history of {} event(s), a rebuild gives another read model (does reset remove everything apply writes?) {}",
                    events.len(),
                    diff(&incremental, &rebuilt)
                ))
            })
        });
    }
}
