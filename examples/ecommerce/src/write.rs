//! Executing a command on an aggregate with the metadata of its cause,
//! retried when another writer got there first.
//!
//! Every event of a checkout carries the correlation id of the HTTP
//! request that placed the order (and a saga command's id, so a
//! redelivered command is recognised), so the shop executes commands
//! with [`AggregateRepository::execute_with_metadata`]; a conflict (another
//! writer appended to the stream first, or a hot aggregate was stale)
//! decides again on the fresh state.

use std::sync::Arc;

use composable_rust::aggregate::{Executed, RepositoryError};
use composable_rust::prelude::*;
use composable_rust::{AggregateRepository, EventMetadata};

/// How often a command is decided again after another writer appended to
/// the same stream first.
const CONFLICT_ATTEMPTS: usize = 20;

/// The event store behind every repository of the shop.
pub type Events = Arc<dyn EventStore>;

/// Executes `command` on the aggregate of `stream`, appending its events
/// with `metadata`; on a conflict, decides again on the fresh state, up to
/// [`CONFLICT_ATTEMPTS`] times.
///
/// # Errors
///
/// The aggregate's refusal, or the store's error; nothing was written.
pub async fn execute<A>(
    repository: &AggregateRepository<A, Events>,
    stream: &StreamId,
    command: impl Fn() -> A::Command,
    metadata: &EventMetadata,
) -> Result<Executed<A>, RepositoryError<A::Error>>
where
    A: Aggregate<Environment = ()>,
{
    let mut attempt = 1;
    loop {
        match repository
            .execute_with_metadata(stream, command(), metadata)
            .await
        {
            Err(error) if error.is_conflict() && attempt < CONFLICT_ATTEMPTS => attempt += 1,
            result => return result,
        }
    }
}
