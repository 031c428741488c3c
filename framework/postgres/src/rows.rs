//! Turning rows into [`StoredEvent`]s and back-end integers into the
//! core's unsigned ones.
//!
//! PostgreSQL has no unsigned integers, so versions, sequences and
//! transaction ids are stored as `bigint` and schema versions as `integer`.
//! The store never writes a negative one; reading one is reported as
//! corrupt, never wrapped or truncated.
//!
//! Rows are decoded one at a time, from columns that always decode (the
//! JSON columns arrive as text): a row that does not make an event (its
//! JSON does not parse, its metadata is not an object of the expected
//! shape, its stream id is invalid...) is reported as
//! [`EventStoreError::CorruptEvent`] with its position and raw content,
//! and never fails the rows around it.

use chrono::{DateTime, Utc};
use composable_rust_core::{EventMetadata, EventStoreError, Position, StoredEvent, StreamId};
use uuid::Uuid;

use crate::error::PostgresError;

/// The columns of `event_columns!()` in `sql.rs`, in order.
pub(crate) type EventRow = (
    String,
    Uuid,
    i64,
    i64,
    i64,
    String,
    i32,
    String,
    String,
    DateTime<Utc>,
);

/// A `read_all` row: the position of the last committed event when it is
/// held back (NULL otherwise), then the columns of [`EventRow`], all NULL
/// when the page is empty (the row then only carries that position).
pub(crate) type GlobalEventRow = (
    Option<i64>,
    Option<i64>,
    Option<String>,
    Option<Uuid>,
    Option<i64>,
    Option<i64>,
    Option<i64>,
    Option<String>,
    Option<i32>,
    Option<String>,
    Option<String>,
    Option<DateTime<Utc>>,
);

/// A row as stored, before it is checked and parsed. Its text is owned
/// (`String`, from a statement's row) or borrowed (`&str`, straight from
/// the bytes of a [`COPY` page](crate::copy_read), which saves copying the
/// payload and metadata before parsing them).
#[derive(Debug)]
pub(crate) struct RawEvent<S = String> {
    pub(crate) stream_id: S,
    pub(crate) event_id: Uuid,
    pub(crate) stream_version: i64,
    /// The transaction id, as `bigint`.
    pub(crate) commit: i64,
    pub(crate) sequence: i64,
    pub(crate) event_type: S,
    pub(crate) schema_version: i32,
    /// The JSON text PostgreSQL prints for the `jsonb`.
    pub(crate) payload: S,
    /// The JSON text PostgreSQL prints for the `jsonb`.
    pub(crate) metadata: S,
    pub(crate) recorded_at: DateTime<Utc>,
}

impl From<EventRow> for RawEvent {
    fn from(row: EventRow) -> Self {
        let (
            stream_id,
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
        Self {
            stream_id,
            event_id,
            stream_version,
            commit,
            sequence,
            event_type,
            schema_version,
            payload,
            metadata,
            recorded_at,
        }
    }
}

impl RawEvent {
    /// The raw row of a `read_all` page; `None` for the row of an empty
    /// page.
    pub(crate) fn from_global(
        row: GlobalEventRow,
        operation: &'static str,
    ) -> Result<Option<Self>, PostgresError> {
        let (
            _,
            _,
            stream_id,
            event_id,
            version,
            commit,
            sequence,
            kind,
            schema,
            payload,
            metadata,
            at,
        ) = row;
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
            // The columns are NOT NULL: the table itself was altered.
            return Err(PostgresError::corrupt(
                operation,
                "a NOT NULL column of the events table is NULL",
            ));
        };
        Ok(Some(
            (
                stream_id, event_id, version, commit, sequence, kind, schema, payload, metadata, at,
            )
                .into(),
        ))
    }
}

impl<S: AsRef<str> + Into<String>> RawEvent<S> {
    /// The event's position, as far as it can be told: a negative
    /// sequence (which the store never writes) counts as 0, so reading on
    /// after this position moves past the row.
    pub(crate) fn position(&self) -> Position {
        Position::new(
            u64::try_from(self.commit).unwrap_or(0),
            u64::try_from(self.sequence).unwrap_or(0),
        )
    }

    /// The stored event, or [`EventStoreError::CorruptEvent`] saying what
    /// does not decode.
    pub(crate) fn decode(self) -> Result<StoredEvent, EventStoreError> {
        match self.check() {
            Ok(parts) => Ok(self.into_event(parts)),
            Err(reason) => Err(self.corrupt(reason)),
        }
    }

    /// Everything that can be wrong with the row, checked without
    /// consuming it (so the error can show the row).
    fn check(&self) -> Result<Parts, String> {
        let stream_id = StreamId::new(self.stream_id.as_ref())
            .map_err(|error| format!("its stream id is invalid: {error}"))?;
        let stream_version = u64::try_from(self.stream_version)
            .ok()
            .filter(|version| *version > 0)
            .ok_or_else(|| format!("its stream_version is {}", self.stream_version))?;
        if self.commit < 0 || self.sequence < 0 {
            return Err(format!(
                "its position ({}, {}) is negative",
                self.commit, self.sequence
            ));
        }
        let schema_version = u32::try_from(self.schema_version)
            .map_err(|_| format!("its schema_version is {}", self.schema_version))?;
        let payload = serde_json::from_str::<serde_json::Value>(self.payload.as_ref())
            .map_err(|error| format!("its payload is not JSON that can be read back: {error}"))?;
        // Most events carry no metadata: skip the parser for them.
        let metadata = if self.metadata.as_ref() == "{}" {
            Ok(EventMetadata::default())
        } else {
            serde_json::from_str::<EventMetadata>(self.metadata.as_ref())
        };
        let metadata = metadata.map_err(|error| {
            format!(
                "its metadata is not an object of correlation_id and causation_id (UUIDs) and \
                 headers (strings): {error}"
            )
        })?;
        Ok(Parts {
            stream_id,
            stream_version,
            schema_version,
            payload,
            metadata,
        })
    }

    fn into_event(self, parts: Parts) -> StoredEvent {
        StoredEvent {
            position: self.position(),
            event_id: self.event_id,
            stream_id: parts.stream_id,
            stream_version: parts.stream_version,
            event_type: self.event_type.into(),
            schema_version: parts.schema_version,
            payload: parts.payload,
            metadata: parts.metadata,
            recorded_at: self.recorded_at,
        }
    }

    /// The row as a [`EventStoreError::CorruptEvent`].
    fn corrupt(self, reason: String) -> EventStoreError {
        EventStoreError::CorruptEvent {
            position: self.position(),
            event_id: Some(self.event_id),
            raw: self.raw(),
            stream_id: self.stream_id.into(),
            reason,
        }
    }

    /// The row's content as stored, as a JSON object's text: the JSON
    /// columns are spliced in as PostgreSQL printed them (valid JSON even
    /// when serde_json cannot read them back, e.g. too deep), the rest
    /// escaped.
    fn raw(&self) -> String {
        let text = |value: &str| serde_json::Value::from(value).to_string();
        format!(
            "{{\"event_id\": \"{}\", \"stream_id\": {}, \"stream_version\": {}, \
             \"transaction_id\": {}, \"sequence\": {}, \"event_type\": {}, \
             \"schema_version\": {}, \"payload\": {}, \"metadata\": {}, \"recorded_at\": \"{}\"}}",
            self.event_id,
            text(self.stream_id.as_ref()),
            self.stream_version,
            self.commit,
            self.sequence,
            text(self.event_type.as_ref()),
            self.schema_version,
            self.payload.as_ref(),
            self.metadata.as_ref(),
            self.recorded_at.to_rfc3339(),
        )
    }
}

/// The parts of a row that had to be checked or parsed.
struct Parts {
    stream_id: StreamId,
    stream_version: u64,
    schema_version: u32,
    payload: serde_json::Value,
    metadata: EventMetadata,
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

/// The position `(commit, sequence)` read from two `bigint` columns
/// (`transaction_id::text::int8` and `sequence`); a negative value, which
/// the store never writes, is a corrupt row.
pub(crate) fn position(
    commit: i64,
    sequence: i64,
    operation: &'static str,
) -> Result<Position, PostgresError> {
    Ok(Position::new(
        unsigned(commit, "transaction_id", operation)?,
        unsigned(sequence, "sequence", operation)?,
    ))
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
