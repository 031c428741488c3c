//! Turning rows into [`StoredEvent`]s and back-end integers into the
//! core's unsigned ones.
//!
//! PostgreSQL has no unsigned integers, so versions, sequences and
//! transaction ids are stored as `bigint` and schema versions as `integer`.
//! The store never writes a negative one; reading one is reported as
//! [`PostgresError::CorruptRow`], never wrapped or truncated.

use chrono::{DateTime, Utc};
use composable_rust_core::{EventMetadata, Position, StoredEvent, StreamId};
use sqlx::types::Json;
use uuid::Uuid;

use crate::error::PostgresError;

/// The columns of `event_columns!()` in `sql.rs`, in order.
pub(crate) type EventRow = (
    Uuid,
    i64,
    i64,
    i64,
    String,
    i32,
    serde_json::Value,
    Json<EventMetadata>,
    DateTime<Utc>,
);

/// A `read_all` row: `held_back`, then `stream_id` and the columns of
/// [`EventRow`], all NULL when the page is empty (the row then only
/// carries `held_back`).
pub(crate) type GlobalEventRow = (
    bool,
    Option<String>,
    Option<Uuid>,
    Option<i64>,
    Option<i64>,
    Option<i64>,
    Option<String>,
    Option<i32>,
    Option<serde_json::Value>,
    Option<Json<EventMetadata>>,
    Option<DateTime<Utc>>,
);

/// A stored event of `stream_id` from its row.
pub(crate) fn stored_event(
    stream_id: StreamId,
    row: EventRow,
    operation: &'static str,
) -> Result<StoredEvent, PostgresError> {
    let (
        event_id,
        stream_version,
        commit,
        sequence,
        event_type,
        schema_version,
        payload,
        metadata,
        recorded_at,
    ) = row;
    Ok(StoredEvent {
        event_id,
        stream_id,
        stream_version: unsigned(stream_version, "stream_version", operation)?,
        position: Position::new(
            unsigned(commit, "transaction_id", operation)?,
            unsigned(sequence, "sequence", operation)?,
        ),
        event_type,
        schema_version: u32::try_from(schema_version).map_err(|_| {
            PostgresError::corrupt(operation, format!("schema_version is {schema_version}"))
        })?,
        payload,
        metadata: metadata.0,
        recorded_at,
    })
}

/// The stored event of a `read_all` row; `None` for the row of an empty
/// page.
pub(crate) fn global_stored_event(
    row: GlobalEventRow,
    operation: &'static str,
) -> Result<Option<StoredEvent>, PostgresError> {
    let (_, stream_id, event_id, version, commit, sequence, kind, schema, payload, metadata, at) =
        row;
    let Some(event_id) = event_id else {
        return Ok(None);
    };
    let (
        Some(stream_id),
        Some(version),
        Some(commit),
        Some(sequence),
        Some(kind),
        Some(schema),
        Some(payload),
        Some(metadata),
        Some(at),
    ) = (
        stream_id, version, commit, sequence, kind, schema, payload, metadata, at,
    )
    else {
        return Err(PostgresError::corrupt(
            operation,
            "a NOT NULL column is NULL",
        ));
    };
    let stream_id = StreamId::new(stream_id)
        .map_err(|error| PostgresError::corrupt(operation, error.to_string()))?;
    let row = (
        event_id, version, commit, sequence, kind, schema, payload, metadata, at,
    );
    stored_event(stream_id, row, operation).map(Some)
}

/// `value` as a `u64`, or a corrupt-row error naming `column`.
pub(crate) fn unsigned(
    value: i64,
    column: &'static str,
    operation: &'static str,
) -> Result<u64, PostgresError> {
    u64::try_from(value)
        .map_err(|_| PostgresError::corrupt(operation, format!("{column} is {value}")))
}

/// `value` as a `bigint` parameter. Values above `i64::MAX` (which no row
/// can hold) become `i64::MAX`, which compares the same way against every
/// stored value.
pub(crate) fn saturating_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negative_values_are_corrupt_rows() {
        assert_eq!(unsigned(7, "sequence", "read").unwrap(), 7);
        let error = unsigned(-1, "sequence", "read").unwrap_err();
        assert!(error.to_string().starts_with("[CR-E0106]"), "{error}");
        assert!(error.to_string().contains("sequence is -1"), "{error}");
    }

    #[test]
    fn huge_parameters_saturate() {
        assert_eq!(saturating_i64(5), 5);
        assert_eq!(saturating_i64(u64::MAX), i64::MAX);
    }
}
