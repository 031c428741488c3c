//! Appending: one statement (so one round trip and one transaction) per
//! batch, with the expected-version check done by the database.
//!
//! The statement is [`Statements::append`](crate::sql::Statements::append).
//! Extra queries run only on failure paths: a lost race (unique violation
//! on `(stream_id, stream_version)`) reads the actual version, and a
//! duplicate event id looks up which id it was.

use std::collections::HashSet;

use composable_rust_core::{
    AppendOutcome, EventMetadata, EventStoreError, ExpectedVersion, NewEvent, Position, StreamId,
};
use sqlx::types::Json;
use uuid::Uuid;

use crate::error::PostgresError;
use crate::rows::{saturating_i64, unsigned};
use crate::sql::{EVENT_ID_KEY, STREAM_VERSION_KEY};
use crate::store::PostgresEventStore;

const OPERATION: &str = "append events";

/// How often an `ExpectedVersion::Any` append is retried after losing a
/// race for the next version to a concurrent writer.
const ANY_VERSION_ATTEMPTS: usize = 10;

/// The batch as one array per column, the shape `unnest` wants.
struct Columns {
    event_ids: Vec<Uuid>,
    event_types: Vec<String>,
    schema_versions: Vec<i32>,
    payloads: Vec<serde_json::Value>,
    metadata: Vec<Json<EventMetadata>>,
}

impl Columns {
    fn new(events: Vec<NewEvent>) -> Result<Self, EventStoreError> {
        let mut columns = Self {
            event_ids: Vec::with_capacity(events.len()),
            event_types: Vec::with_capacity(events.len()),
            schema_versions: Vec::with_capacity(events.len()),
            payloads: Vec::with_capacity(events.len()),
            metadata: Vec::with_capacity(events.len()),
        };
        for event in events {
            let schema_version =
                i32::try_from(event.schema_version).map_err(|_| EventStoreError::Encode {
                    reason: format!(
                        "event type `{}` has schema version {}, above the largest PostgreSQL \
                         can store ({})",
                        event.event_type,
                        event.schema_version,
                        i32::MAX
                    ),
                })?;
            columns.event_ids.push(event.event_id);
            columns.event_types.push(event.event_type);
            columns.schema_versions.push(schema_version);
            columns.payloads.push(event.payload);
            columns.metadata.push(Json(event.metadata));
        }
        Ok(columns)
    }
}

/// `(head version, rows written, last version, first sequence, last
/// sequence, transaction id)` as the append statement returns them.
type AppendRow = (i64, i64, Option<i64>, Option<i64>, Option<i64>, Option<i64>);

/// Appends `events` to `stream_id` if it is at `expected`.
pub(crate) async fn append(
    store: &PostgresEventStore,
    stream_id: &StreamId,
    expected: ExpectedVersion,
    events: Vec<NewEvent>,
) -> Result<AppendOutcome, EventStoreError> {
    if events.is_empty() {
        return Err(EventStoreError::EmptyAppend {
            stream_id: stream_id.to_string(),
        });
    }
    let columns = Columns::new(events)?;
    let expected_version: Option<i64> = match expected {
        ExpectedVersion::Any => None,
        ExpectedVersion::NoStream => Some(0),
        ExpectedVersion::Exact(version) => Some(saturating_i64(version)),
    };

    let mut attempt = 1;
    loop {
        let result = sqlx::query_as::<_, AppendRow>(&store.sql().append)
            .bind(stream_id.as_str())
            .bind(expected_version)
            .bind(&columns.event_ids)
            .bind(&columns.event_types)
            .bind(&columns.schema_versions)
            .bind(&columns.payloads)
            .bind(&columns.metadata)
            .fetch_one(store.pool())
            .await;
        let error = match result {
            Ok(row) => return written(store, stream_id, expected, row),
            Err(error) => error,
        };
        match violated_constraint(&error) {
            Some(STREAM_VERSION_KEY) => {
                // Another writer committed the version we computed.
                if expected == ExpectedVersion::Any && attempt < ANY_VERSION_ATTEMPTS {
                    attempt += 1;
                    continue;
                }
                let actual = crate::read::stream_version(store, stream_id).await?;
                return Err(EventStoreError::WrongExpectedVersion {
                    stream_id: stream_id.to_string(),
                    expected,
                    actual,
                });
            }
            Some(EVENT_ID_KEY) => return Err(duplicate_id(store, &columns.event_ids, error).await),
            _ => return Err(store.error(error, OPERATION).into()),
        }
    }
}

/// The outcome of a statement that ran: written rows, or a version
/// conflict when none were written.
fn written(
    store: &PostgresEventStore,
    stream_id: &StreamId,
    expected: ExpectedVersion,
    row: AppendRow,
) -> Result<AppendOutcome, EventStoreError> {
    let (head, count, last_version, first_sequence, last_sequence, commit) = row;
    if count == 0 {
        return Err(EventStoreError::WrongExpectedVersion {
            stream_id: stream_id.to_string(),
            expected,
            actual: unsigned(head, "stream_version", OPERATION)?,
        });
    }
    let (Some(last_version), Some(first_sequence), Some(last_sequence), Some(commit)) =
        (last_version, first_sequence, last_sequence, commit)
    else {
        return Err(PostgresError::corrupt(OPERATION, "rows were written but not returned").into());
    };
    let commit = unsigned(commit, "transaction_id", OPERATION)?;
    store.notifier().bump();
    Ok(AppendOutcome {
        stream_version: unsigned(last_version, "stream_version", OPERATION)?,
        first_position: Position::new(commit, unsigned(first_sequence, "sequence", OPERATION)?),
        last_position: Position::new(commit, unsigned(last_sequence, "sequence", OPERATION)?),
    })
}

/// The unique constraint `error` violated, if it is a unique violation.
fn violated_constraint(error: &sqlx::Error) -> Option<&str> {
    let database = error.as_database_error()?;
    if database.is_unique_violation() {
        database.constraint()
    } else {
        None
    }
}

/// Finds which id of the batch was a duplicate: one used twice in the
/// batch, or one already stored (the violation is only raised once the
/// other row has committed, so the lookup sees it).
async fn duplicate_id(
    store: &PostgresEventStore,
    event_ids: &[Uuid],
    violation: sqlx::Error,
) -> EventStoreError {
    let mut seen = HashSet::with_capacity(event_ids.len());
    if let Some(&event_id) = event_ids.iter().find(|id| !seen.insert(**id)) {
        return EventStoreError::DuplicateEventId { event_id };
    }
    let stored = sqlx::query_scalar::<_, Uuid>(&store.sql().existing_event_ids)
        .bind(event_ids)
        .fetch_all(store.pool())
        .await;
    match stored {
        Ok(ids) => match ids.first() {
            Some(&event_id) => EventStoreError::DuplicateEventId { event_id },
            None => store.error(violation, OPERATION).into(),
        },
        Err(error) => store.error(error, OPERATION).into(),
    }
}
