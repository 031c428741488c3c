//! Snapshots: one row per stream, replaced on every save (an upsert).

use chrono::{DateTime, Utc};
use composable_rust_core::{EventStoreError, Snapshot, StreamId};

use crate::error::PostgresError;
use crate::rows::unsigned;
use crate::store::PostgresEventStore;

/// Stores `snapshot`, replacing its stream's previous one.
pub(crate) async fn save(
    store: &PostgresEventStore,
    snapshot: &Snapshot,
) -> Result<(), EventStoreError> {
    const OPERATION: &str = "save a snapshot";
    let too_large = |what: &str, value: u64| EventStoreError::Encode {
        reason: format!(
            "the snapshot of `{}` has {what} {value}, larger than PostgreSQL can store",
            snapshot.stream_id
        ),
    };
    let stream_version = i64::try_from(snapshot.stream_version)
        .map_err(|_| too_large("stream version", snapshot.stream_version))?;
    let schema_version = i32::try_from(snapshot.schema_version)
        .map_err(|_| too_large("schema version", u64::from(snapshot.schema_version)))?;
    sqlx::query(&store.sql().save_snapshot)
        .bind(snapshot.stream_id.as_str())
        .bind(stream_version)
        .bind(schema_version)
        .bind(&snapshot.state)
        .bind(snapshot.taken_at)
        .execute(store.pool())
        .await
        .map_err(|error| store.error(error, OPERATION))?;
    Ok(())
}

/// The snapshot of `stream_id`, if one was saved.
pub(crate) async fn load(
    store: &PostgresEventStore,
    stream_id: &StreamId,
) -> Result<Option<Snapshot>, PostgresError> {
    const OPERATION: &str = "load a snapshot";
    let row = sqlx::query_as::<_, (i64, i32, serde_json::Value, DateTime<Utc>)>(
        &store.sql().load_snapshot,
    )
    .bind(stream_id.as_str())
    .fetch_optional(store.pool())
    .await
    .map_err(|error| store.error(error, OPERATION))?;
    let Some((stream_version, schema_version, state, taken_at)) = row else {
        return Ok(None);
    };
    Ok(Some(Snapshot {
        stream_id: stream_id.clone(),
        stream_version: unsigned(stream_version, "stream_version", OPERATION)?,
        schema_version: u32::try_from(schema_version).map_err(|_| {
            PostgresError::corrupt(OPERATION, format!("schema_version is {schema_version}"))
        })?,
        state,
        taken_at,
    }))
}
