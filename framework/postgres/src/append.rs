//! Appending: one statement (so one round trip and one transaction) per
//! batch, with the expected-version check done by the database.
//!
//! The statement is [`Statements::append`](crate::sql::Statements::append)
//! (or its one-event form). An append after a
//! [`KnownVersion`] ([`EventStore::append_after`](composable_rust_core::EventStore::append_after))
//! needs no check before writing: the stream is at that version or past
//! it, so [`Statements::append_after`](crate::sql::Statements::append_after)
//! inserts right after it, and the primary key on
//! `(stream_id, stream_version)` refuses the row if another writer got
//! there first. So do appends to a new stream (`ExpectedVersion::NoStream`:
//! no stream is behind version 0) and a command's append right after its
//! replay on the same connection, when it expects the version of the last
//! event read (see `Check::new`). Any other expected version a caller
//! passes is compared with the stream's in the statement: one ahead of the
//! stream would otherwise leave a gap.
//!
//! Extra queries run only on failure paths: a one-event append refused
//! for its expected version, or a lost race (unique violation on
//! `(stream_id, stream_version)`), reads the actual version, or, for an
//! `ExpectedVersion::Any` append, runs the statement again; a duplicate
//! event id looks up which id it was.
//!
//! Nothing is sent before every event passed the core's
//! [`check_storable`](composable_rust_core::event::check_storable), and
//! what PostgreSQL itself refuses in a payload is reported as
//! [`EventStoreError::UnstorablePayload`] too. Any error means nothing was
//! written.

use std::collections::{BTreeSet, HashSet};
use std::time::Duration;

use composable_rust_core::event::check_all_storable;
use composable_rust_core::event_store::KnownVersion;
use composable_rust_core::{
    AppendOutcome, EventMetadata, EventStoreError, ExpectedVersion, NewEvent, Position, StreamId,
};
use sqlx::pool::PoolConnection;
use sqlx::types::Json;
use sqlx::{PgConnection, Postgres};
use uuid::Uuid;

use crate::error::PostgresError;
use crate::rows::{saturating_i64, unsigned};
use crate::sql::{EVENT_ID_KEY, STREAM_VERSION_KEY};
use crate::store::PostgresEventStore;

pub(crate) const OPERATION: &str = "append events";

/// After this many lost races in a row, an `ExpectedVersion::Any` append
/// pauses briefly (a random fraction of [`MAX_ANY_PAUSE`]) before trying
/// again, so that writers crowding one stream spread out.
pub(crate) const ANY_PAUSE_AFTER: u32 = 2;

/// The longest pause between two attempts of an `ExpectedVersion::Any`
/// append.
const MAX_ANY_PAUSE: Duration = Duration::from_millis(5);

/// The batch as one array per column, the shape `unnest` wants.
pub(crate) struct Columns {
    pub(crate) event_ids: Vec<Uuid>,
    pub(crate) event_types: Vec<String>,
    pub(crate) schema_versions: Vec<i32>,
    pub(crate) payloads: Vec<serde_json::Value>,
    pub(crate) metadata: Vec<Json<EventMetadata>>,
}

impl Columns {
    pub(crate) fn new(events: Vec<NewEvent>) -> Result<Self, EventStoreError> {
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
pub(crate) type AppendRow = (i64, i64, Option<i64>, Option<i64>, Option<i64>, Option<i64>);

/// How an append makes sure it writes right after the stream's current
/// version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Check {
    /// The statement reads the stream's version and writes only if it is
    /// the expected one (with `Any`, whatever it is).
    Expected(ExpectedVersion),
    /// The statement writes right after this version, which the stream
    /// cannot be behind (a [`KnownVersion`], or 0); the primary key refuses
    /// the rows if the stream moved on.
    After(u64),
}

impl Check {
    /// How to check an append that expects `expected`, given the version
    /// of the last event a replay on the same connection just read, if
    /// any.
    ///
    /// Version 0 needs no check before writing: a stream is never behind
    /// it, so an append to a new stream (`NoStream`) goes after 0 whoever
    /// asks for it. So does an exact version the replay saw as an event's:
    /// events are never deleted, so the stream is at that version or past
    /// it. Any other version a caller claims is compared with the
    /// stream's (one ahead of the stream would otherwise leave a gap).
    fn new(expected: ExpectedVersion, replayed: Option<u64>) -> Self {
        match expected {
            ExpectedVersion::NoStream => Self::After(0),
            ExpectedVersion::Exact(version) if replayed == Some(version) => Self::After(version),
            expected => Self::Expected(expected),
        }
    }

    /// The version the caller expects, as a conflict reports it.
    fn expected(self) -> ExpectedVersion {
        match self {
            Self::Expected(expected) => expected,
            Self::After(0) => ExpectedVersion::NoStream,
            Self::After(version) => ExpectedVersion::Exact(version),
        }
    }

    /// The `$2` of the statements: the expected version (NULL for `Any`,
    /// 0 for a new stream) or the known one.
    fn bound_version(self) -> Option<i64> {
        match self {
            Self::Expected(ExpectedVersion::Any) => None,
            Self::Expected(ExpectedVersion::NoStream) => Some(0),
            Self::Expected(ExpectedVersion::Exact(version)) => Some(saturating_i64(version)),
            Self::After(version) => Some(saturating_i64(version)),
        }
    }
}

/// Appends `events` to `stream_id` if it is at `expected`, on a connection
/// of the store's pool.
pub(crate) async fn append(
    store: &PostgresEventStore,
    stream_id: &StreamId,
    expected: ExpectedVersion,
    events: Vec<NewEvent>,
) -> Result<AppendOutcome, EventStoreError> {
    let mut connection = connection(store).await?;
    append_on(store, &mut connection, stream_id, expected, events).await
}

/// A connection of the store's pool for an append, once the store's
/// transaction ids were checked (see
/// [`check_transaction_ids_once`](PostgresEventStore::check_transaction_ids_once)).
pub(crate) async fn connection(
    store: &PostgresEventStore,
) -> Result<PoolConnection<Postgres>, EventStoreError> {
    store.check_transaction_ids_once().await?;
    Ok(store
        .pool()
        .acquire()
        .await
        .map_err(|error| store.error(error, OPERATION))?)
}

/// Appends `events` to `stream_id` right after `version`, a version the
/// store reported for it, on a connection of the store's pool (see
/// [`Statements::append_after`](crate::sql::Statements::append_after)).
pub(crate) async fn append_after(
    store: &PostgresEventStore,
    stream_id: &StreamId,
    version: KnownVersion,
    events: Vec<NewEvent>,
) -> Result<AppendOutcome, EventStoreError> {
    let mut connection = connection(store).await?;
    append_checked(
        store,
        &mut connection,
        stream_id,
        Check::After(version.get()),
        events,
    )
    .await
}

/// [`append`] on `connection` (every statement of the append, failure
/// paths included, runs on it). The caller has run
/// [`check_transaction_ids_once`](PostgresEventStore::check_transaction_ids_once).
pub(crate) async fn append_on(
    store: &PostgresEventStore,
    connection: &mut PgConnection,
    stream_id: &StreamId,
    expected: ExpectedVersion,
    events: Vec<NewEvent>,
) -> Result<AppendOutcome, EventStoreError> {
    append_checked(
        store,
        connection,
        stream_id,
        Check::new(expected, None),
        events,
    )
    .await
}

/// [`append_on`] after a replay of the stream on the same connection,
/// whose last event had version `replayed` (`None`: no event, or only a
/// snapshot): an append expecting exactly that version goes right after
/// it, without reading the stream's version first (see [`Check::new`]).
pub(crate) async fn append_after_replay(
    store: &PostgresEventStore,
    connection: &mut PgConnection,
    stream_id: &StreamId,
    expected: ExpectedVersion,
    replayed: Option<u64>,
    events: Vec<NewEvent>,
) -> Result<AppendOutcome, EventStoreError> {
    append_checked(
        store,
        connection,
        stream_id,
        Check::new(expected, replayed),
        events,
    )
    .await
}

/// [`append_on`], the version checked as `check` says.
async fn append_checked(
    store: &PostgresEventStore,
    connection: &mut PgConnection,
    stream_id: &StreamId,
    check: Check,
    events: Vec<NewEvent>,
) -> Result<AppendOutcome, EventStoreError> {
    if events.is_empty() {
        return Err(EventStoreError::EmptyAppend {
            stream_id: stream_id.to_string(),
        });
    }
    check_all_storable(&events, store.max_payload_bytes())?;
    let columns = Columns::new(events)?;
    let expected = check.expected();

    let mut lost_races = 0u32;
    loop {
        let result = execute(store, &mut *connection, stream_id, check, &columns).await;
        let error = match result {
            Ok((-1, 0, ..)) => {
                let actual =
                    crate::read::stream_version_with(store, &mut *connection, stream_id).await?;
                return Err(EventStoreError::WrongExpectedVersion {
                    stream_id: stream_id.to_string(),
                    expected,
                    actual,
                });
            }
            Ok(row) => return written(store, stream_id, expected, row),
            Err(error) => error,
        };
        match violated_constraint(&error) {
            Some(STREAM_VERSION_KEY) => {
                // Another writer committed the version we computed. With
                // `Any`, any version will do: try again, as often as it
                // takes. Each lost race means another append committed, so
                // the writers as a whole always progress, and a fresh
                // statement sees the new head.
                if expected == ExpectedVersion::Any {
                    lost_races += 1;
                    if lost_races >= ANY_PAUSE_AFTER {
                        tokio::time::sleep(any_pause()).await;
                    }
                    continue;
                }
                let actual =
                    crate::read::stream_version_with(store, &mut *connection, stream_id).await?;
                return Err(EventStoreError::WrongExpectedVersion {
                    stream_id: stream_id.to_string(),
                    expected,
                    actual,
                });
            }
            Some(EVENT_ID_KEY) => {
                return Err(duplicate_id(store, connection, &columns.event_ids, error).await);
            }
            _ => {
                if let Some(refused) = refused_payload(&error, &columns.event_types) {
                    return Err(refused);
                }
                return Err(store.error(error, OPERATION).into());
            }
        }
    }
}

/// Runs the append statement for `columns` on `connection` once. One
/// event (the usual command) binds plain values and returns the row it
/// wrote, if any; a batch binds one array per column, unnests them and
/// reports on the rows it wrote in one row. Either way the result is an
/// [`AppendRow`]; `(-1, 0, ...)` means that nothing was written and the
/// stream's version was not read.
async fn execute(
    store: &PostgresEventStore,
    connection: &mut PgConnection,
    stream_id: &StreamId,
    check: Check,
    columns: &Columns,
) -> Result<AppendRow, sqlx::Error> {
    let sql = store.sql();
    let expected_version = check.bound_version();
    if columns.event_ids.len() == 1 {
        let statement = match check {
            Check::Expected(ExpectedVersion::Any) => &sql.append_one_any,
            Check::Expected(_) => &sql.append_one,
            Check::After(_) => &sql.append_one_after,
        };
        sqlx::query_as::<_, (i64, i64, i64)>(statement)
            .bind(stream_id.as_str())
            .bind(expected_version)
            .bind(columns.event_ids[0])
            .bind(&columns.event_types[0])
            .bind(columns.schema_versions[0])
            .bind(&columns.payloads[0])
            .bind(&columns.metadata[0])
            .fetch_optional(connection)
            .await
            .map(|row| match row {
                Some((version, sequence, commit)) => (
                    version - 1,
                    1,
                    Some(version),
                    Some(sequence),
                    Some(sequence),
                    Some(commit),
                ),
                // Nothing written: the stream is not at the expected
                // version. The caller reads `head`.
                None => (-1, 0, None, None, None, None),
            })
    } else {
        let statement = match check {
            Check::Expected(_) => &sql.append,
            Check::After(_) => &sql.append_after,
        };
        sqlx::query_as::<_, AppendRow>(statement)
            .bind(stream_id.as_str())
            .bind(expected_version)
            .bind(&columns.event_ids)
            .bind(&columns.event_types)
            .bind(&columns.schema_versions)
            .bind(&columns.payloads)
            .bind(&columns.metadata)
            .fetch_one(connection)
            .await
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
    let outcome = outcome_of(stream_id, expected, row)?;
    store.notifier().bump();
    Ok(outcome)
}

/// [`written`] without waking the store's followers (the caller does,
/// once its transaction committed).
pub(crate) fn outcome_of(
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
    Ok(AppendOutcome {
        stream_version: unsigned(last_version, "stream_version", OPERATION)?,
        first_position: Position::new(commit, unsigned(first_sequence, "sequence", OPERATION)?),
        last_position: Position::new(commit, unsigned(last_sequence, "sequence", OPERATION)?),
    })
}

/// The unique constraint `error` violated, if it is a unique violation.
pub(crate) fn violated_constraint(error: &sqlx::Error) -> Option<&str> {
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
pub(crate) async fn duplicate_id(
    store: &PostgresEventStore,
    connection: &mut PgConnection,
    event_ids: &[Uuid],
    violation: sqlx::Error,
) -> EventStoreError {
    let mut seen = HashSet::with_capacity(event_ids.len());
    if let Some(&event_id) = event_ids.iter().find(|id| !seen.insert(**id)) {
        return EventStoreError::DuplicateEventId { event_id };
    }
    let stored = sqlx::query_scalar::<_, Uuid>(&store.sql().existing_event_ids)
        .bind(event_ids)
        .fetch_all(connection)
        .await;
    match stored {
        Ok(ids) => match ids.first() {
            Some(&event_id) => EventStoreError::DuplicateEventId { event_id },
            None => store.error(violation, OPERATION).into(),
        },
        Err(error) => store.error(error, OPERATION).into(),
    }
}

/// A random pause of at most [`MAX_ANY_PAUSE`] (from the clock's
/// nanoseconds: enough to spread writers apart, without a dependency).
pub(crate) fn any_pause() -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.subsec_nanos());
    let max = u32::try_from(MAX_ANY_PAUSE.as_micros()).unwrap_or(u32::MAX);
    Duration::from_micros(u64::from(nanos % max.max(1)))
}

/// What an event refused by PostgreSQL itself must respect instead.
const JSONB_LIMIT: &str = "its type name, payload and metadata hold only what PostgreSQL stores \
                           in text and jsonb: no NUL character (\\u0000), numbers within \
                           jsonb's numeric range, at most 256 MiB";

/// The [`EventStoreError::UnstorablePayload`] for an append that
/// PostgreSQL refused because of the data it carried (SQLSTATE class 22,
/// data exception, e.g. 22P05 for `\u0000` in a jsonb string; or 54000,
/// a value too large), naming the batch's event types.
pub(crate) fn refused_payload(
    error: &sqlx::Error,
    event_types: &[String],
) -> Option<EventStoreError> {
    let database = error.as_database_error()?;
    let sqlstate = database.code()?;
    refused_payload_for(&sqlstate, database.message(), event_types)
}

/// [`refused_payload`] from the SQLSTATE and message.
fn refused_payload_for(
    sqlstate: &str,
    message: &str,
    event_types: &[String],
) -> Option<EventStoreError> {
    if !(sqlstate.starts_with("22") || sqlstate == "54000") {
        return None;
    }
    let types: BTreeSet<&str> = event_types.iter().map(String::as_str).collect();
    let event_type = types.into_iter().collect::<Vec<_>>().join("`, `");
    let events = match event_types.len() {
        1 => "the event".to_owned(),
        n => format!("one of the {n} events of the batch"),
    };
    Some(EventStoreError::UnstorablePayload {
        event_type,
        reason: format!("PostgreSQL refused {events}: {message} (SQLSTATE {sqlstate})"),
        limit: JSONB_LIMIT,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use composable_rust_core::CodedError;

    #[test]
    fn data_exceptions_are_unstorable_payloads() {
        let types = vec!["order.placed".to_owned()];
        let error = refused_payload_for("22P05", "unsupported Unicode escape sequence", &types)
            .expect("a data exception");
        assert_eq!(error.code().as_str(), "CR-E0019");
        let text = error.to_string();
        assert!(
            text.starts_with(
                "[CR-E0019] event of type `order.placed` cannot be stored: PostgreSQL refused the \
                 event: unsupported Unicode escape sequence (SQLSTATE 22P05); nothing was written"
            ),
            "{text}"
        );
        assert!(text.contains("no NUL character (\\u0000)"), "{text}");

        let batch = vec!["b".to_owned(), "a".to_owned(), "b".to_owned()];
        let error = refused_payload_for(
            "54000",
            "total size of jsonb array elements exceeds the maximum",
            &batch,
        )
        .expect("a program limit");
        let text = error.to_string();
        assert!(text.contains("of type `a`, `b` cannot"), "{text}");
        assert!(text.contains("one of the 3 events of the batch"), "{text}");
    }

    #[test]
    fn other_failures_are_not_payload_problems() {
        let types = vec!["x".to_owned()];
        for sqlstate in ["23505", "40001", "42P01", "08006", "54001"] {
            assert!(
                refused_payload_for(sqlstate, "m", &types).is_none(),
                "{sqlstate}"
            );
        }
    }

    #[test]
    fn only_versions_the_stream_cannot_be_behind_skip_the_check() {
        use ExpectedVersion::{Any, Exact, NoStream};
        assert_eq!(Check::new(NoStream, None), Check::After(0));
        assert_eq!(Check::new(NoStream, Some(3)), Check::After(0));
        assert_eq!(Check::new(Exact(3), Some(3)), Check::After(3));
        // A version no replay saw (a caller's, or past the last event
        // read) is checked against the stream's.
        assert_eq!(Check::new(Exact(3), None), Check::Expected(Exact(3)));
        assert_eq!(Check::new(Exact(4), Some(3)), Check::Expected(Exact(4)));
        assert_eq!(Check::new(Any, Some(3)), Check::Expected(Any));
        assert_eq!(Check::After(0).expected(), NoStream);
        assert_eq!(Check::After(3).expected(), Exact(3));
    }

    #[test]
    fn pauses_stay_below_the_maximum() {
        for _ in 0..100 {
            assert!(any_pause() < MAX_ANY_PAUSE);
        }
    }
}
