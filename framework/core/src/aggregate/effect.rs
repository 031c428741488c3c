//! Appending events as an [`Effect`]: how a reducer run by a
//! [`Store`](crate::Store) persists the events it decided on.

use crate::effect::Effect;
use crate::event::{Event, ExpectedVersion, NewEvent, StreamId};
use crate::event_store::{AppendOutcome, EventStore, EventStoreError};

/// An effect that appends `events` to `stream_id` at `expected` and feeds
/// back `then(result)`.
///
/// ```
/// use std::sync::Arc;
/// use composable_rust_core::aggregate::append_events;
/// use composable_rust_core::{Effect, EventStore, ExpectedVersion, InMemoryEventStore, StreamId};
/// # use serde::{Deserialize, Serialize};
/// # #[derive(Debug, Clone, Serialize, Deserialize)]
/// # enum CounterEvent { Incremented }
/// # impl composable_rust_core::Event for CounterEvent {}
///
/// #[derive(Debug)]
/// enum Action {
///     Saved { version: u64 },
///     SaveFailed(String),
/// }
///
/// let store: Arc<dyn EventStore> = Arc::new(InMemoryEventStore::new());
/// let effect: Effect<Action> = append_events(
///     store,
///     StreamId::new("counter-1").unwrap(),
///     ExpectedVersion::NoStream,
///     vec![CounterEvent::Incremented],
///     |result| match result {
///         Ok(outcome) => Action::Saved { version: outcome.stream_version },
///         Err(error) => Action::SaveFailed(error.to_string()),
///     },
/// );
/// # let _ = effect;
/// ```
pub fn append_events<A, E, S, F>(
    store: S,
    stream_id: StreamId,
    expected: ExpectedVersion,
    events: Vec<E>,
    then: F,
) -> Effect<A>
where
    A: Send + 'static,
    E: Event,
    S: EventStore,
    F: FnOnce(Result<AppendOutcome, EventStoreError>) -> A + Send + 'static,
{
    Effect::future(async move {
        let encoded: Result<Vec<_>, _> = events.iter().map(NewEvent::from_event).collect();
        let result = match encoded {
            Ok(batch) => store.append(&stream_id, expected, batch).await,
            Err(error) => Err(error),
        };
        Some(then(result))
    })
}
