//! Batching appends and commands: many events in one append, an import in
//! chunks, and many commands at once with a bound on how many run together.

use std::sync::Arc;

use composable_rust::{
    AggregateRepository, EventStore, EventStoreError, ExpectedVersion, NewEvent, StreamId,
};
use tokio::task::JoinSet;

use crate::ledger::{Ledger, LedgerCommand, LedgerEvent};

/// The error of the helpers below: a store failure, a refused command, or a
/// task that panicked.
pub type Error = Box<dyn std::error::Error + Send + Sync>;

// ANCHOR: import
/// Writes `events` to `stream` (a new stream) in appends of `chunk` events
/// each: one round trip and one transaction per chunk instead of per event.
/// Each append expects the version the previous one left, so a concurrent
/// writer stops the import with a conflict instead of interleaving with it.
/// Returns the stream's version at the end.
pub async fn import<S: EventStore>(
    store: &S,
    stream: &StreamId,
    events: &[LedgerEvent],
    chunk: usize,
) -> Result<u64, EventStoreError> {
    let mut version = 0;
    for slice in events.chunks(chunk.max(1)) {
        let batch = slice
            .iter()
            .map(NewEvent::from_event)
            .collect::<Result<Vec<_>, _>>()?;
        let expected = match version {
            0 => ExpectedVersion::NoStream,
            v => ExpectedVersion::Exact(v),
        };
        version = store.append(stream, expected, batch).await?.stream_version;
    }
    Ok(version)
}
// ANCHOR_END: import

// ANCHOR: concurrent
/// Executes one `Post` per `(ledger, amount)`, at most `concurrency` at a
/// time. Commands on different ledgers overlap their round trips; two on
/// the same ledger may conflict, and `execute_with_retry` reloads and
/// decides again. Returns how many commands were executed.
pub async fn post_all<S: EventStore>(
    ledgers: Arc<AggregateRepository<Ledger, S>>,
    postings: Vec<(String, i64)>,
    concurrency: usize,
) -> Result<usize, Error> {
    let mut running = JoinSet::new();
    let mut executed = 0;
    for (ledger, amount) in postings {
        // A bound, so that a burst of 100,000 postings does not become
        // 100,000 tasks all waiting for one of the pool's connections.
        while running.len() >= concurrency.max(1) {
            if let Some(finished) = running.join_next().await {
                finished??;
                executed += 1;
            }
        }
        let ledgers = Arc::clone(&ledgers);
        running.spawn(async move {
            let id = ledgers.stream_id(&ledger)?;
            ledgers
                .execute_with_retry(&id, 10, || LedgerCommand::Post(amount))
                .await?;
            Ok::<_, Error>(())
        });
    }
    while let Some(finished) = running.join_next().await {
        finished??;
        executed += 1;
    }
    Ok(executed)
}
// ANCHOR_END: concurrent

#[cfg(test)]
mod tests {
    use composable_rust::{EventStore, InMemoryEventStore, Position};

    use super::*;

    fn postings(n: i64) -> Vec<LedgerEvent> {
        (1..=n)
            .map(|amount| LedgerEvent::Posted { amount })
            .collect()
    }

    // ANCHOR: test_batch
    #[tokio::test]
    async fn one_command_many_events_is_one_append() -> Result<(), Error> {
        let store = InMemoryEventStore::new();
        let ledgers = AggregateRepository::<Ledger, _>::new(store.clone(), ());
        let id = ledgers.stream_id("acme")?;

        let done = ledgers
            .execute(&id, LedgerCommand::PostMany(vec![10, 20, 30]))
            .await?;
        assert_eq!(done.version, 3);
        // One append: the three events are consecutive in the global order.
        let all = store.read_all(Position::START, 10).await?;
        assert_eq!(all.len(), 3);

        // All or nothing: a batch that would overdraw writes none of its events.
        let refused = ledgers
            .execute(&id, LedgerCommand::PostMany(vec![5, -100]))
            .await;
        assert!(refused.is_err());
        assert_eq!(store.stream_version(&id).await?, 3);
        Ok(())
    }
    // ANCHOR_END: test_batch

    #[tokio::test]
    async fn an_import_writes_every_event_in_order() -> Result<(), Error> {
        let store = InMemoryEventStore::new();
        let stream = StreamId::for_aggregate("ledger", "imported")?;
        let events = postings(1_000);

        let version = import(&store, &stream, &events, 250).await?;
        assert_eq!(version, 1_000);
        let ledgers = AggregateRepository::<Ledger, _>::new(store.clone(), ());
        let loaded = ledgers.load(&stream).await?;
        assert_eq!(loaded.state.postings, 1_000);
        assert_eq!(loaded.state.balance, 1_000 * 1_001 / 2);
        Ok(())
    }

    #[tokio::test]
    async fn an_import_into_a_stream_someone_else_wrote_stops_and_writes_nothing()
    -> Result<(), Error> {
        let store = InMemoryEventStore::new();
        let stream = StreamId::for_aggregate("ledger", "taken")?;
        let first = vec![NewEvent::from_event(&LedgerEvent::Posted { amount: 1 })?];
        store
            .append(&stream, ExpectedVersion::NoStream, first)
            .await?;

        let conflict = import(&store, &stream, &postings(10), 5).await;
        assert!(matches!(
            conflict,
            Err(EventStoreError::WrongExpectedVersion { .. })
        ));
        assert_eq!(store.stream_version(&stream).await?, 1);
        Ok(())
    }

    // ANCHOR: test_concurrent
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_commands_lose_no_posting() -> Result<(), Error> {
        let store = InMemoryEventStore::new();
        let ledgers = Arc::new(AggregateRepository::<Ledger, _>::new(store, ()));
        // 200 postings over 5 ledgers, 8 at a time: plenty of conflicts.
        let work: Vec<(String, i64)> = (0..200)
            .map(|i| (format!("l{}", i % 5), i64::from(i % 7) + 1))
            .collect();
        let expected: i64 = work.iter().map(|(_, amount)| amount).sum();

        let executed = post_all(Arc::clone(&ledgers), work, 8).await?;
        assert_eq!(executed, 200);
        let mut total = 0;
        for ledger in 0..5 {
            let id = ledgers.stream_id(format!("l{ledger}"))?;
            let loaded = ledgers.load(&id).await?;
            assert_eq!(loaded.state.postings, 40);
            total += loaded.state.balance;
        }
        assert_eq!(total, expected);
        Ok(())
    }
    // ANCHOR_END: test_concurrent
}
