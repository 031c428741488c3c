//! When to snapshot: a snapshot every N events, and a check of what a load
//! replayed.

use composable_rust::aggregate::Loaded;
use composable_rust::{AggregateRepository, EventStore, SnapshotPolicy};

use crate::ledger::Ledger;

// ANCHOR: policy
/// Ledgers take thousands of postings over their life: snapshot every 100,
/// so a load replays the latest snapshot plus at most 99 events.
pub fn ledgers<S: EventStore>(store: S) -> AggregateRepository<Ledger, S> {
    AggregateRepository::new(store, ()).with_snapshots(SnapshotPolicy::every(100))
}
// ANCHOR_END: policy

// ANCHOR: check
/// Whether a load replayed more events than `budget`: log it (or count it
/// in a metric) and you know which aggregates need snapshots, or a smaller
/// interval, from production data instead of guesses.
pub fn replayed_too_much<A>(loaded: &Loaded<A>, budget: usize) -> bool {
    loaded.events_replayed > budget
}
// ANCHOR_END: check

#[cfg(test)]
mod tests {
    use composable_rust::InMemoryEventStore;

    use super::*;
    use crate::ledger::LedgerCommand;

    // ANCHOR: test
    #[tokio::test]
    async fn a_load_starts_from_the_latest_snapshot() -> Result<(), Box<dyn std::error::Error>> {
        let with_snapshots = ledgers(InMemoryEventStore::new());
        let without = AggregateRepository::<Ledger, _>::new(InMemoryEventStore::new(), ());
        let id = with_snapshots.stream_id("acme")?;
        for _ in 0..250 {
            with_snapshots.execute(&id, LedgerCommand::Post(2)).await?;
            without.execute(&id, LedgerCommand::Post(2)).await?;
        }

        let loaded = with_snapshots.load(&id).await?;
        assert_eq!(loaded.snapshot_version, Some(200));
        assert_eq!(loaded.events_replayed, 50);
        assert!(!replayed_too_much(&loaded, 99));

        // The snapshot is only a shortcut: a full replay gives the same state.
        let replayed = without.load(&id).await?;
        assert_eq!(replayed.events_replayed, 250);
        assert!(replayed_too_much(&replayed, 99));
        assert_eq!(replayed.state, loaded.state);
        assert_eq!(loaded.state.balance, 500);

        // Any repository reads the snapshots that exist, with or without
        // a policy of its own: the policy only decides when to save one.
        let reader = AggregateRepository::<Ledger, _>::new(with_snapshots.store().clone(), ());
        assert_eq!(reader.load(&id).await?.events_replayed, 50);
        Ok(())
    }
    // ANCHOR_END: test
}
