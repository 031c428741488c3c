//! Checkpoints and dead letters in Redis, written through the same unit of
//! work as the read model.
//!
//! - Checkpoints: one hash per store, `{prefix}:checkpoints`, field =
//!   projection name, value = `commit/sequence` (readable in `redis-cli`:
//!   `HGETALL "{prefix}:checkpoints"`).
//! - Dead letters: one hash per projection,
//!   `{prefix}:dead-letters:<projection>`, field = event id, value = the
//!   [`DeadLetter`] as JSON (the complete event, the error, the attempts).
//!   Recording the same event again replaces its letter.

use async_trait::async_trait;
use composable_rust_core::projection::{DeadLetter, ProjectionCheckpoint, ProjectionRequest};
use composable_rust_core::{Position, ProjectionError};
use uuid::Uuid;

use crate::commit::Op;
use crate::error::{RedisStoreError, serialization};
use crate::store::RedisProjectionStore;
use crate::tx::{RedisTx, parse_position};

#[async_trait]
impl ProjectionCheckpoint for RedisProjectionStore {
    /// One `HGET`.
    async fn load_position(&self, projection: &str) -> Result<Option<Position>, ProjectionError> {
        let key = self.keyspace().checkpoints();
        let value: Option<Vec<u8>> = self
            .redis()
            .query(
                redis::cmd("HGET").arg(&key).arg(projection),
                "load a checkpoint",
            )
            .await?;
        match value {
            None => Ok(None),
            Some(bytes) => Ok(Some(parse_position(
                &format!("{key} {projection}"),
                &bytes,
            )?)),
        }
    }

    /// Buffered; committed with the read model.
    async fn save_position(
        &self,
        tx: &mut RedisTx,
        projection: &str,
        position: Position,
    ) -> Result<(), ProjectionError> {
        tx.push(Op::Checkpoint {
            projection: projection.to_owned(),
            position,
        });
        Ok(())
    }

    /// Buffered; committed with the checkpoint that moves past the event.
    async fn record_dead_letter(
        &self,
        tx: &mut RedisTx,
        letter: &DeadLetter,
    ) -> Result<(), ProjectionError> {
        let json = serde_json::to_vec(letter).map_err(|error| {
            serialization(
                format!(
                    "{} {}",
                    self.keyspace().dead_letters(&letter.projection),
                    letter.event.event_id
                ),
                &error,
            )
        })?;
        tx.push(Op::DeadLetter {
            projection: letter.projection.clone(),
            event_id: letter.event.event_id,
            json,
        });
        Ok(())
    }

    /// Reads the letter now (one `HGET`); the removal is buffered, and
    /// commits only if every write of the unit of work is applied.
    ///
    /// Refuses (a [`ProjectionError::Apply`], the letter stays) when this
    /// unit of work's [`apply_once`](RedisTx::apply_once) skipped the
    /// letter's event as already applied: retrying it would apply nothing
    /// and drop the event silently (see `apply_once` for when a marker
    /// cannot know that a dead-lettered event is not applied).
    async fn remove_dead_letter(
        &self,
        tx: &mut RedisTx,
        projection: &str,
        event_id: Uuid,
    ) -> Result<bool, ProjectionError> {
        let key = self.keyspace().dead_letters(projection);
        let json: Option<Vec<u8>> = tx
            .store()
            .redis()
            .query(
                redis::cmd("HGET").arg(&key).arg(event_id.to_string()),
                "look up a dead letter",
            )
            .await?;
        if let Some(json) = &json {
            let letter = parse_letter(&key, &event_id.to_string(), json)?;
            if let Some((marker, last)) = tx.skipped(letter.event.position) {
                return Err(ProjectionError::apply(format!(
                    "the dead letter of event {event_id} (position {position}) of projection \
                     `{projection}` was kept: apply_once skipped the event as already applied, \
                     because its marker `{marker}` is at {last}, past it (later events were \
                     applied while it was a dead letter, and its failure happened before the \
                     marker could record it as not applied), so removing the letter would drop \
                     the event without applying it. Rebuild the projection, or discard the \
                     dead letter if the event's writes are in fact in the read model",
                    position = letter.event.position,
                )));
            }
        }
        tx.push(Op::RemoveDeadLetter {
            projection: projection.to_owned(),
            event_id,
        });
        Ok(json.is_some())
    }

    /// One `HGETALL`; sorted oldest first (by the time they failed, then
    /// by position).
    async fn dead_letters(&self, projection: &str) -> Result<Vec<DeadLetter>, ProjectionError> {
        let key = self.keyspace().dead_letters(projection);
        let entries: Vec<(String, Vec<u8>)> = self
            .redis()
            .query(redis::cmd("HGETALL").arg(&key), "list dead letters")
            .await?;
        let mut letters = Vec::with_capacity(entries.len());
        for (event_id, json) in entries {
            letters.push(parse_letter(&key, &event_id, &json)?);
        }
        letters.sort_by_key(|letter| (letter.failed_at, letter.event.position));
        Ok(letters)
    }

    /// One `MULTI` (`HGETALL`, `DEL`) on `{prefix}:requests:<projection>`,
    /// so two managers never both take a request.
    async fn take_requests(
        &self,
        projection: &str,
    ) -> Result<Vec<ProjectionRequest>, ProjectionError> {
        Ok(self.take_requests_now(projection).await?)
    }
}

/// Parses the dead letter stored in field `event_id` of the hash `key`.
fn parse_letter(key: &str, event_id: &str, json: &[u8]) -> Result<DeadLetter, RedisStoreError> {
    serde_json::from_slice(json).map_err(|error| {
        RedisStoreError::corrupt(
            format!("{key} {event_id}"),
            format!(
                "a dead letter must be the JSON of a DeadLetter ({error}); remove it with \
                 `HDEL {key} {event_id}`"
            ),
        )
    })
}
