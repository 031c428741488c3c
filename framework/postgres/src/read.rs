//! Reading: one stream by version, the stream's current version, and the
//! whole store in global order ([`Statements::read_all`](crate::sql::Statements::read_all)
//! explains why that order never skips an event).

use std::time::Duration;

use composable_rust_core::event_store::{
    JsonRef, ReplayVisitor, Replayed, ReplayedEvent, ReplayedSnapshot,
};
use composable_rust_core::{EventStoreError, Position, StoredEvent, StreamId};
use sqlx::postgres::PgRow;
use sqlx::{Executor, FromRow, Postgres, Row};
use tokio::time::Instant;

use crate::copy_read::{self, COPY_PAGE_MIN};
use crate::error::PostgresError;
use crate::rows::{EventRow, GlobalEventRow, RawEvent, position, saturating_i64, unsigned};
use crate::store::PostgresEventStore;

/// The events of `stream_id` from `from_version` on, in version order.
///
/// A row that does not decode fails the load with
/// [`EventStoreError::CorruptEvent`]: an aggregate cannot skip one of its
/// events.
pub(crate) async fn load_stream(
    store: &PostgresEventStore,
    stream_id: &StreamId,
    from_version: u64,
) -> Result<Vec<StoredEvent>, EventStoreError> {
    const OPERATION: &str = "load a stream";
    // Each row is decoded as it arrives, overlapping with the rest of the
    // read.
    let events = sqlx::query(&store.sql().load_stream)
        .bind(stream_id.as_str())
        .bind(saturating_i64(from_version))
        .try_map(|row: PgRow| Ok(RawEvent::from(EventRow::from_row(&row)?).decode()))
        .fetch_all(store.pool())
        .await
        .map_err(|error| store.error(error, OPERATION))?;
    events.into_iter().collect()
}

/// [`EventStore::replay`](composable_rust_core::EventStore::replay): the
/// snapshot and the events after it in one statement
/// ([`Statements::replay`](crate::sql::Statements::replay)), each row
/// handed to `visit` borrowed (the payload as JSON text, straight from the
/// row buffer) as it arrives, so decoding overlaps with reading: the
/// snapshot first, then the events in version order.
///
/// Only a snapshot of the wanted schema version is read (one of another
/// version is left out, not handed over), and only the columns rebuilding
/// needs, so a row whose metadata is corrupt still replays;
/// [`load_stream`] reports it.
pub(crate) async fn replay(
    store: &PostgresEventStore,
    stream_id: &StreamId,
    snapshot_schema: Option<u32>,
    visit: &mut ReplayVisitor<'_>,
) -> Result<(), EventStoreError> {
    replay_with(store, store.pool(), stream_id, snapshot_schema, visit).await
}

/// [`replay`] through `executor` (a pool, or the connection the append
/// that follows will run on).
pub(crate) async fn replay_with<'e>(
    store: &PostgresEventStore,
    executor: impl Executor<'e, Database = Postgres>,
    stream_id: &StreamId,
    snapshot_schema: Option<u32>,
    visit: &mut ReplayVisitor<'_>,
) -> Result<(), EventStoreError> {
    // A schema version PostgreSQL cannot store matches no snapshot.
    let snapshot_schema = snapshot_schema.map(|version| i32::try_from(version).unwrap_or(-1));
    let mut replayer = Replayer {
        visit,
        // Without a snapshot wanted, the events start at version 1.
        next: snapshot_schema.is_none().then_some(1),
        held: Vec::new(),
        failure: None,
    };
    let read = sqlx::query(&store.sql().replay)
        .bind(stream_id.as_str())
        .bind(snapshot_schema)
        .try_map(|row: PgRow| {
            replayer.arrived(row).map_err(|failure| {
                replayer.failure = Some(failure);
                // Stops the read; the failure above is what is returned.
                sqlx::Error::Protocol("the replay's visitor failed".to_owned())
            })
        })
        .fetch_all(executor)
        .await;
    if let Some(failure) = replayer.failure.take() {
        return Err(failure);
    }
    read.map_err(|error| -> EventStoreError { store.error(error, REPLAY).into() })?;
    replayer.finish()
}

/// The operation name of [`replay`]'s errors.
const REPLAY: &str = "replay a stream";

/// Hands a replay's rows to the visitor as they arrive, as long as they
/// come in order; holds back the others and hands them over, sorted, at
/// the end.
struct Replayer<'a, 'v> {
    visit: &'a mut ReplayVisitor<'v>,
    /// The version the next event must have to be handed over now; `None`
    /// while that is not known yet (a snapshot may still come) or once a
    /// row came out of order.
    next: Option<u64>,
    /// Rows held back, to hand over sorted at the end.
    held: Vec<PgRow>,
    /// The visitor's error, which stopped the read.
    failure: Option<EventStoreError>,
}

impl Replayer<'_, '_> {
    fn arrived(&mut self, row: PgRow) -> Result<(), EventStoreError> {
        let item = decode_replayed(&row)?;
        let in_order = match (&item, self.next) {
            // A snapshot before any event: events follow on from it.
            (Replayed::Snapshot(snapshot), None) if self.held.is_empty() => {
                self.next = Some(snapshot.stream_version + 1);
                true
            }
            // An event with version 1 first: no snapshot can come (the
            // statement returns events after a snapshot only).
            (Replayed::Event(event), None) if self.held.is_empty() && event.stream_version == 1 => {
                self.next = Some(2);
                true
            }
            (Replayed::Event(event), Some(next)) if event.stream_version == next => {
                self.next = Some(next + 1);
                true
            }
            _ => false,
        };
        if in_order {
            (self.visit)(item)
        } else {
            // From here on every row waits for the end.
            self.next = None;
            self.held.push(row);
            Ok(())
        }
    }

    /// Hands over the rows held back: the snapshot first, then the events
    /// by version.
    fn finish(self) -> Result<(), EventStoreError> {
        let mut held = Vec::with_capacity(self.held.len());
        for row in &self.held {
            held.push(decode_replayed(row)?);
        }
        held.sort_by_key(|item| match item {
            Replayed::Snapshot(_) => (0, 0),
            Replayed::Event(event) => (1, event.stream_version),
        });
        held.into_iter().try_for_each(|item| (self.visit)(item))
    }
}

/// A row of the replay statement, borrowed.
fn decode_replayed(row: &PgRow) -> Result<Replayed<'_>, EventStoreError> {
    // The statement's column types are fixed: a failure here is a changed
    // table.
    let failed = |error: sqlx::Error| -> EventStoreError {
        PostgresError::corrupt(REPLAY, error.to_string()).into()
    };
    let stream_version: i64 = row.try_get(0).map_err(failed)?;
    let stream_version = unsigned(stream_version, "stream_version", REPLAY)?;
    let event_type: Option<&str> = row.try_get(1).map_err(failed)?;
    let schema_version: i32 = row.try_get(2).map_err(failed)?;
    let schema_version = u32::try_from(schema_version).map_err(|_| {
        PostgresError::corrupt(REPLAY, format!("schema_version is {schema_version}"))
    })?;
    let payload: &str = row.try_get(3).map_err(failed)?;
    Ok(match event_type {
        Some(event_type) => Replayed::Event(ReplayedEvent {
            stream_version,
            event_type,
            schema_version,
            payload: JsonRef::Text(payload),
        }),
        None => Replayed::Snapshot(ReplayedSnapshot {
            stream_version,
            schema_version,
            state: Some(JsonRef::Text(payload)),
        }),
    })
}

/// The version of the last event of `stream_id`, 0 if it has none.
pub(crate) async fn stream_version(
    store: &PostgresEventStore,
    stream_id: &StreamId,
) -> Result<u64, PostgresError> {
    stream_version_with(store, store.pool(), stream_id).await
}

/// [`stream_version`] through `executor` (a pool, or the connection an
/// append runs on).
pub(crate) async fn stream_version_with<'e>(
    store: &PostgresEventStore,
    executor: impl Executor<'e, Database = Postgres>,
    stream_id: &StreamId,
) -> Result<u64, PostgresError> {
    const OPERATION: &str = "read a stream's version";
    let version = sqlx::query_scalar::<_, i64>(&store.sql().stream_version)
        .bind(stream_id.as_str())
        .fetch_one(executor)
        .await
        .map_err(|error| store.error(error, OPERATION))?;
    unsigned(version, "stream_version", OPERATION)
}

/// How long `read_all` waits, at most, for the transactions that hold
/// back committed events (see [`Statements::read_all`](crate::sql::Statements::read_all))
/// before it returns the final part it has. Ordinary appends finish within
/// milliseconds, so a read right after an append sees it; the margin is
/// for loaded servers and the short DDL or batch transactions of other
/// clients, which hold the (server-wide) horizon too.
pub(crate) const HELD_BACK_WAIT: Duration = Duration::from_secs(1);

/// The longest pause between two re-reads while held back.
const MAX_PAUSE: Duration = Duration::from_millis(50);

/// When a read gives up waiting, subscribers are woken this much later to
/// read again, because the transaction holding the horizon back may end
/// without a NOTIFY.
pub(crate) const HELD_BACK_RECHECK: Duration = Duration::from_millis(50);

/// Up to `limit` events after `after`, in global order.
///
/// When committed events are held back by an older transaction still in
/// flight and the page is not full, it re-reads with growing pauses for up
/// to [`HELD_BACK_WAIT`], keeping what it already read (that part is
/// final), until it has read the events that were committed when it
/// began; then it returns what it has, and when it gave up waiting,
/// schedules a wake-up for subscribers. It does not wait for events
/// committed while it reads: under a steady stream of writes some
/// transaction is always in flight, and waiting for the horizon to be
/// clear would hold every page until the wait ran out.
///
/// A row that does not decode ends the page: the events before it are
/// returned, and when it is the first one, the read fails with
/// [`EventStoreError::CorruptEvent`] (its position and raw content), so
/// the reader can set it aside and read on after it.
pub(crate) async fn read_all(
    store: &PostgresEventStore,
    after: Position,
    limit: usize,
) -> Result<Vec<StoredEvent>, EventStoreError> {
    store.check_transaction_ids_once().await?;
    let mut events = Vec::new();
    let mut after = after;
    let deadline = Instant::now() + HELD_BACK_WAIT;
    let mut pause = Duration::from_millis(1);
    // The last event committed when the read began, if it was held back.
    let mut target = None;
    loop {
        let page = read_page(store, after, limit - events.len(), &mut events).await?;
        if let Some(corrupt) = page.corrupt {
            return if events.is_empty() {
                Err(corrupt)
            } else {
                Ok(events)
            };
        }
        let Some(held) = page.held_back else {
            return Ok(events);
        };
        let target = *target.get_or_insert(held);
        if events.len() >= limit || events.last().is_some_and(|last| last.position >= target) {
            return Ok(events);
        }
        if let Some(last) = events.last() {
            after = last.position;
        }
        if Instant::now() + pause > deadline {
            store.notifier().bump_later(HELD_BACK_RECHECK);
            return Ok(events);
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(MAX_PAUSE);
    }
}

/// The operation named in the errors of `read_all`'s pages, by either path.
pub(crate) const READ_ALL: &str = "read all events";

/// What [`read_page`] found besides the events.
#[derive(Debug, Default)]
struct Page {
    /// Committed events exist that the read could not return yet: the
    /// position of the last of them.
    held_back: Option<Position>,
    /// The row that ended the page because it does not decode.
    corrupt: Option<EventStoreError>,
}

/// Appends up to `limit` events after `after` to `events`, stopping before
/// the first row that does not decode.
async fn read_page(
    store: &PostgresEventStore,
    after: Position,
    limit: usize,
    events: &mut Vec<StoredEvent>,
) -> Result<Page, PostgresError> {
    if limit == 0 {
        return Ok(Page::default());
    }
    if limit >= COPY_PAGE_MIN {
        return read_page_by_copy(store, after, limit, events).await;
    }
    let rows = sqlx::query_as::<_, GlobalEventRow>(&store.sql().read_all)
        .bind(saturating_i64(after.commit))
        .bind(saturating_i64(after.sequence))
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(store.pool())
        .await
        .map_err(|error| store.error(error, READ_ALL))?;
    let held_back = match rows.first() {
        Some(&(Some(commit), Some(sequence), ..)) => Some(position(commit, sequence, READ_ALL)?),
        _ => None,
    };
    let mut page = Page {
        held_back,
        corrupt: None,
    };
    events.reserve(rows.len());
    for row in rows {
        let Some(raw) = RawEvent::from_global(row, READ_ALL)? else {
            continue;
        };
        match raw.decode() {
            Ok(event) => events.push(event),
            Err(corrupt) => {
                page.corrupt = Some(corrupt);
                break;
            }
        }
    }
    Ok(page)
}

/// [`read_page`] for a large page, through [`copy_read`]. A page that
/// comes back short asks whether committed events exist after what it
/// returned: if so, they are held back (or committed since), and
/// [`read_all`] reads again.
async fn read_page_by_copy(
    store: &PostgresEventStore,
    after: Position,
    limit: usize,
    events: &mut Vec<StoredEvent>,
) -> Result<Page, PostgresError> {
    let before = events.len();
    let page = copy_read::read_page(store, after, limit, events).await?;
    let held_back = if page.corrupt.is_none() && page.rows < limit {
        let last = events[before..]
            .last()
            .map_or(after, |event| event.position);
        sqlx::query_as::<_, (i64, i64)>(&store.sql().last_after)
            .bind(saturating_i64(last.commit))
            .bind(saturating_i64(last.sequence))
            .fetch_optional(store.pool())
            .await
            .map_err(|error| store.error(error, READ_ALL))?
            .map(|(commit, sequence)| position(commit, sequence, READ_ALL))
            .transpose()?
    } else {
        None
    };
    Ok(Page {
        held_back,
        corrupt: page.corrupt,
    })
}

/// How many committed events lie after `after`: the events a follower at
/// `after` has still to read. It counts in place (an index range scan),
/// and includes events that are committed but still held back behind an
/// older transaction in flight: the follower will read them, so they are
/// part of its lag.
pub(crate) async fn count_after(
    store: &PostgresEventStore,
    after: Position,
) -> Result<u64, PostgresError> {
    const OPERATION: &str = "count events";
    let count = sqlx::query_scalar::<_, i64>(&store.sql().count_after)
        .bind(saturating_i64(after.commit))
        .bind(saturating_i64(after.sequence))
        .fetch_one(store.pool())
        .await
        .map_err(|error| store.error(error, OPERATION))?;
    unsigned(count, "count", OPERATION)
}
