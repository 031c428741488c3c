//! Executing a command on an aggregate with the metadata of its cause.
//!
//! `AggregateRepository::execute` appends events with empty metadata; the
//! shop wants every event of a checkout to carry the correlation id of the
//! HTTP request that placed the order (and a saga command's id, so a
//! redelivered command is recognised). So this helper loads with the
//! repository, decides, and appends itself with the metadata given,
//! retrying on a concurrency conflict.

use std::sync::Arc;

use composable_rust::aggregate::RepositoryError;
use composable_rust::prelude::*;
use composable_rust::{
    AggregateRepository, EventMetadata, EventStoreError, ExpectedVersion, NewEvent, Position,
};

/// How often a command is decided again after another writer appended to
/// the same stream first.
const CONFLICT_ATTEMPTS: usize = 20;

/// What a command did.
#[derive(Debug)]
pub struct Written<A: Aggregate> {
    /// The aggregate afterwards.
    pub state: A,
    /// The events appended (none if the command changed nothing).
    pub events: Vec<A::Event>,
    /// The global position of the last event appended.
    pub position: Option<Position>,
}

/// The event store behind every repository of the shop.
pub type Events = Arc<dyn EventStore>;

/// Executes `command` on the aggregate of `stream`, appending its events
/// with `metadata`.
///
/// # Errors
///
/// The aggregate's refusal, or the store's error; nothing was written.
pub async fn execute<A>(
    repository: &AggregateRepository<A, Events>,
    stream: &StreamId,
    command: impl Fn() -> A::Command,
    metadata: &EventMetadata,
) -> Result<Written<A>, RepositoryError<A::Error>>
where
    A: Aggregate<Environment = ()> + Clone,
{
    let mut attempt = 1;
    loop {
        let loaded = repository.load(stream).await?;
        let mut state = loaded.state;
        let events = state
            .decide(command(), &())
            .map_err(RepositoryError::Rejected)?;
        if events.is_empty() {
            return Ok(Written {
                state,
                events,
                position: None,
            });
        }
        let new_events = events
            .iter()
            .map(|event| NewEvent::from_event(event).map(|e| e.with_metadata(metadata.clone())))
            .collect::<Result<Vec<_>, _>>()?;
        let expected = match loaded.version {
            0 => ExpectedVersion::NoStream,
            version => ExpectedVersion::Exact(version),
        };
        match repository
            .store()
            .append(stream, expected, new_events)
            .await
        {
            Ok(outcome) => {
                events.iter().for_each(|event| state.apply(event));
                return Ok(Written {
                    state,
                    events,
                    position: Some(outcome.last_position),
                });
            }
            Err(EventStoreError::WrongExpectedVersion { .. }) if attempt < CONFLICT_ATTEMPTS => {
                attempt += 1;
            }
            Err(error) => return Err(error.into()),
        }
    }
}
