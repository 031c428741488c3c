//! What an operator sees and does from outside the service (the
//! `composable` command line): every projection's checkpoint, every dead
//! letter, and [`ProjectionRequest`]s filed for a projection's manager
//! (rebuild, retry a dead letter), which the manager takes with
//! [`take_requests`](ProjectionCheckpoint::take_requests).
//!
//! Requests live in one hash per projection, `{prefix}:requests:<projection>`:
//! field `rebuild` or `retry:<event id>`, value the time it was filed
//! (milliseconds since the epoch), so filing one twice is one field and
//! the manager carries them out oldest first.

use composable_rust_core::projection::{DeadLetter, ProjectionCheckpoint, ProjectionRequest};
use composable_rust_core::{Position, ProjectionError};
use uuid::Uuid;

use crate::error::RedisStoreError;
use crate::store::RedisProjectionStore;
use crate::tx::parse_position;

/// The hash field of a rebuild request.
const REBUILD: &str = "rebuild";
/// The prefix of a retry request's hash field (then the event id).
const RETRY: &str = "retry:";

impl RedisProjectionStore {
    /// Every projection's checkpoint in this store, by name (one `HGETALL`).
    ///
    /// # Errors
    ///
    /// [`RedisStoreError`] if Redis fails or a checkpoint is not
    /// `commit/sequence`.
    pub async fn checkpoints(&self) -> Result<Vec<(String, Position)>, RedisStoreError> {
        let key = self.keyspace().checkpoints();
        let entries: Vec<(String, Vec<u8>)> = self
            .redis()
            .query(redis::cmd("HGETALL").arg(&key), "list checkpoints")
            .await?;
        let mut checkpoints = entries
            .into_iter()
            .map(|(projection, value)| {
                let position = parse_position(&format!("{key} {projection}"), &value)?;
                Ok((projection, position))
            })
            .collect::<Result<Vec<_>, RedisStoreError>>()?;
        checkpoints.sort();
        Ok(checkpoints)
    }

    /// The dead letters of every projection that has a checkpoint (a dead
    /// letter is always recorded with one), by projection, oldest first.
    ///
    /// # Errors
    ///
    /// [`ProjectionError::Backend`] if Redis fails or a letter does not
    /// parse.
    pub async fn all_dead_letters(&self) -> Result<Vec<DeadLetter>, ProjectionError> {
        let mut letters = Vec::new();
        for (projection, _) in self.checkpoints().await? {
            letters.extend(self.dead_letters(&projection).await?);
        }
        Ok(letters)
    }

    /// Files `request` for `projection`'s manager, which carries it out the
    /// next time it looks (at the start of `catch_up`, and while `run`
    /// runs). Filing the same request twice files it once.
    ///
    /// Returns `false`, filing nothing, for a
    /// [`RetryDeadLetter`](ProjectionRequest::RetryDeadLetter) of an event
    /// the projection has no dead letter for.
    ///
    /// # Errors
    ///
    /// [`RedisStoreError`] if Redis fails.
    pub async fn request(
        &self,
        projection: &str,
        request: ProjectionRequest,
    ) -> Result<bool, RedisStoreError> {
        if let ProjectionRequest::RetryDeadLetter(event_id) = request {
            let exists: bool = self
                .redis()
                .query(
                    redis::cmd("HEXISTS")
                        .arg(self.keyspace().dead_letters(projection))
                        .arg(event_id.to_string()),
                    "look up a dead letter",
                )
                .await?;
            if !exists {
                return Ok(false);
            }
        }
        let now = chrono::Utc::now().timestamp_millis();
        let _: bool = self
            .redis()
            .query(
                redis::cmd("HSETNX")
                    .arg(self.keyspace().requests(projection))
                    .arg(field(request))
                    .arg(now),
                "file a request",
            )
            .await?;
        Ok(true)
    }

    /// The requests waiting for `projection`'s manager, oldest first,
    /// without taking them.
    ///
    /// # Errors
    ///
    /// [`RedisStoreError`] if Redis fails or a field is not a request.
    pub async fn pending_requests(
        &self,
        projection: &str,
    ) -> Result<Vec<ProjectionRequest>, RedisStoreError> {
        let key = self.keyspace().requests(projection);
        let entries: Vec<(String, i64)> = self
            .redis()
            .query(redis::cmd("HGETALL").arg(&key), "list requests")
            .await?;
        parse_requests(&key, entries)
    }

    /// Takes the requests in one `MULTI` (`HGETALL`, `DEL`), so two
    /// managers never both take one.
    pub(crate) async fn take_requests_now(
        &self,
        projection: &str,
    ) -> Result<Vec<ProjectionRequest>, RedisStoreError> {
        let key = self.keyspace().requests(projection);
        let (entries, _): (Vec<(String, i64)>, i64) = self
            .redis()
            .query_pipeline(
                redis::pipe()
                    .atomic()
                    .cmd("HGETALL")
                    .arg(&key)
                    .cmd("DEL")
                    .arg(&key),
                "take requests",
            )
            .await?;
        parse_requests(&key, entries)
    }
}

/// The hash field of `request`.
fn field(request: ProjectionRequest) -> String {
    match request {
        ProjectionRequest::Rebuild => REBUILD.to_owned(),
        ProjectionRequest::RetryDeadLetter(event_id) => format!("{RETRY}{event_id}"),
    }
}

/// The requests of hash `key`'s entries, oldest first.
fn parse_requests(
    key: &str,
    mut entries: Vec<(String, i64)>,
) -> Result<Vec<ProjectionRequest>, RedisStoreError> {
    entries.sort_by(|a, b| (a.1, &a.0).cmp(&(b.1, &b.0)));
    entries
        .into_iter()
        .map(|(field, _)| {
            if field == REBUILD {
                return Ok(ProjectionRequest::Rebuild);
            }
            field
                .strip_prefix(RETRY)
                .and_then(|id| Uuid::parse_str(id).ok())
                .map(ProjectionRequest::RetryDeadLetter)
                .ok_or_else(|| {
                    RedisStoreError::corrupt(
                        format!("{key} {field}"),
                        format!(
                            "a request must be `{REBUILD}` or `{RETRY}<event id>`; remove it \
                             with `HDEL {key} {field}`"
                        ),
                    )
                })
        })
        .collect()
}
