//! The bulk path of `read_all`: a page of thousands of events read with
//! one binary `COPY (SELECT ...) TO STDOUT`, each row decoded here as it
//! arrives.
//!
//! Why not the ordinary statement: a catch-up or a
//! [blue/green rebuild](crate::BlueGreen) reads millions of events in
//! pages of thousands, and then the per-row work dominates. Through a
//! statement, the server casts `transaction_id` and the JSON columns to
//! text for sqlx (which has no binary `xid8`), and every row goes through
//! sqlx's generic row decoding before the store decodes it again. `COPY`
//! sends each column in its own binary form (a `jsonb` is a version byte and
//! its text, an `xid8` eight bytes), so the server skips the casts and the
//! store decodes each row straight from the received bytes, while the
//! server is still producing the next ones. Measured with
//! `cargo bench -p composable-rust-postgres --bench blue_green` (the
//! performance appendix has the figures).
//!
//! `COPY` takes no bind parameters: the only values spliced into the
//! statement are the page's position and limit, formatted from integers
//! (the table name is the store's validated, quoted schema).
//!
//! Each row becomes a [`RawEvent`] and is checked by the same code as a
//! row of the statement path, so a bad row is reported the same way
//! ([`EventStoreError::CorruptEvent`] with its position and content).

use chrono::{DateTime, Utc};
use composable_rust_core::{EventStoreError, Position, StoredEvent};
use futures_util::StreamExt;
use sqlx::pool::PoolConnection;
use sqlx::{PgConnection, Postgres};
use uuid::Uuid;

use crate::error::PostgresError;
use crate::read::READ_ALL as OPERATION;
use crate::rows::{RawEvent, saturating_i64};
use crate::store::PostgresEventStore;

/// Pages of at least this many events are read with `COPY`; smaller ones
/// (a follower at the head, reading what was just appended) with the
/// prepared statement, which saves parsing and planning the `COPY` each
/// time.
pub(crate) const COPY_PAGE_MIN: usize = 1_000;

/// The most events a page makes room for before they arrive.
const RESERVE_AT_MOST: usize = 65_536;

/// The start of every binary `COPY` stream (PostgreSQL's documentation,
/// "Binary Format").
const SIGNATURE: &[u8] = b"PGCOPY\n\xff\r\n\0";

/// The columns read, in the order [`decode_row`] expects them: native
/// types, no casts.
const COLUMNS: usize = 10;

/// Seconds from the Unix epoch to PostgreSQL's (2000-01-01 UTC), the origin
/// of a binary `timestamptz`.
const POSTGRES_EPOCH: i64 = 946_684_800;

/// What a `COPY` page found besides the events.
pub(crate) struct CopyPage {
    /// How many rows the server sent (decoded or not).
    pub(crate) rows: usize,
    /// The row that ended the page because it does not decode.
    pub(crate) corrupt: Option<EventStoreError>,
}

/// Appends up to `limit` events after `after` to `events` (in global order,
/// below the horizon, as the statement path), stopping before the first
/// row that does not decode.
pub(crate) async fn read_page(
    store: &PostgresEventStore,
    after: Position,
    limit: usize,
    events: &mut Vec<StoredEvent>,
) -> Result<CopyPage, PostgresError> {
    let statement = store.sql().read_all_copy(
        saturating_i64(after.commit),
        saturating_i64(after.sequence),
        limit,
    );
    let mut connection = ClosedUnlessFinished(Some(
        store
            .pool()
            .acquire()
            .await
            .map_err(|error| store.error(error, OPERATION))?,
    ));
    let mut chunks = connection
        .get()
        .copy_out_raw(&statement)
        .await
        .map_err(|error| store.error(error, OPERATION))?;
    // A limit can be far above what the store holds ("everything").
    events.reserve(limit.min(RESERVE_AT_MOST));
    let mut decoder = Decoder::default();
    let mut page = CopyPage {
        rows: 0,
        corrupt: None,
    };
    // Read to the end even after a bad row (the rows after it are only
    // counted), so the connection can go back to the pool (see
    // `ClosedUnlessFinished`).
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk.map_err(|error| store.error(error, OPERATION))?;
        decoder.push(&chunk, |raw| {
            page.rows += 1;
            if page.corrupt.is_none() {
                match raw.decode() {
                    Ok(event) => events.push(event),
                    Err(corrupt) => page.corrupt = Some(corrupt),
                }
            }
        })?;
    }
    drop(chunks);
    decoder.finish()?;
    connection.finished();
    Ok(page)
}

/// The connection of a `COPY ... TO STDOUT`, closed instead of returned to
/// the pool unless the `COPY` was read to its end: a read dropped half-way
/// (its task aborted, or a malformed row) leaves the rest of the `COPY` on
/// the wire, and sqlx does not discard it, so the connection's next user
/// would read it as the answer to its own statement.
struct ClosedUnlessFinished(Option<PoolConnection<Postgres>>);

impl ClosedUnlessFinished {
    fn get(&mut self) -> &mut PgConnection {
        self.0.as_mut().expect("not finished yet")
    }

    /// The `COPY` was read to its end: the connection can be reused.
    fn finished(mut self) {
        self.0.take();
    }
}

impl Drop for ClosedUnlessFinished {
    fn drop(&mut self) {
        if let Some(connection) = &mut self.0 {
            connection.close_on_drop();
        }
    }
}

/// Splits a binary `COPY` stream into rows, however its chunks cut it.
#[derive(Default)]
struct Decoder {
    /// The header has been read.
    started: bool,
    /// The end-of-data marker has been read.
    ended: bool,
    /// Bytes of a row (or of the header) cut by the end of a chunk.
    pending: Vec<u8>,
}

impl Decoder {
    /// Decodes every whole row of `chunk` (after what was pending) and
    /// hands it to `row`; keeps the rest for the next chunk.
    fn push(
        &mut self,
        chunk: &[u8],
        mut row: impl FnMut(RawEvent<&str>),
    ) -> Result<(), PostgresError> {
        // The usual case, a chunk that starts on a row boundary, is decoded
        // in place; only a cut row is copied.
        let mut joined = Vec::new();
        let input: &[u8] = if self.pending.is_empty() {
            chunk
        } else {
            joined.append(&mut self.pending);
            joined.extend_from_slice(chunk);
            &joined
        };
        let mut at = 0;
        loop {
            let rest = &input[at..];
            let used = if self.started {
                if self.ended {
                    if rest.is_empty() {
                        0
                    } else {
                        return Err(malformed("data after the end-of-data marker"));
                    }
                } else {
                    match decode_row(rest)? {
                        Decoded::Row(raw, used) => {
                            row(raw);
                            used
                        }
                        Decoded::End => {
                            self.ended = true;
                            2
                        }
                        Decoded::Incomplete => 0,
                    }
                }
            } else {
                match header_len(rest)? {
                    Some(used) => {
                        self.started = true;
                        used
                    }
                    None => 0,
                }
            };
            if used == 0 {
                self.pending.extend_from_slice(rest);
                return Ok(());
            }
            at += used;
        }
    }

    /// Checks that the stream ended where a row ends, with its marker.
    fn finish(&self) -> Result<(), PostgresError> {
        if self.ended && self.pending.is_empty() {
            Ok(())
        } else {
            Err(malformed("the stream ended inside a row"))
        }
    }
}

/// The length of the header at the start of `input`, `None` if it is not
/// all there yet.
fn header_len(input: &[u8]) -> Result<Option<usize>, PostgresError> {
    let fixed = SIGNATURE.len() + 8;
    if input.len() < fixed {
        return Ok(None);
    }
    if &input[..SIGNATURE.len()] != SIGNATURE {
        return Err(malformed(
            "the stream does not start with the binary COPY signature",
        ));
    }
    let extension = read_i32(&input[SIGNATURE.len() + 4..]);
    let extension = usize::try_from(extension)
        .map_err(|_| malformed("the header's extension length is negative"))?;
    Ok((input.len() >= fixed + extension).then_some(fixed + extension))
}

/// What the start of the input holds.
enum Decoded<'a> {
    /// A row, and how many bytes it took.
    Row(RawEvent<&'a str>, usize),
    /// The end-of-data marker (2 bytes).
    End,
    /// Part of a row: the rest is in the next chunk.
    Incomplete,
}

/// The row (or the end-of-data marker) at the start of `input`.
fn decode_row(input: &[u8]) -> Result<Decoded<'_>, PostgresError> {
    if input.len() < 2 {
        return Ok(Decoded::Incomplete);
    }
    let count = i16::from_be_bytes([input[0], input[1]]);
    if count == -1 {
        return Ok(Decoded::End);
    }
    if usize::try_from(count).ok() != Some(COLUMNS) {
        return Err(malformed(format!(
            "a row has {count} columns, not {COLUMNS}"
        )));
    }
    let mut fields: [&[u8]; COLUMNS] = [&[]; COLUMNS];
    let mut at = 2;
    for field in &mut fields {
        let Some(length) = input.get(at..at + 4) else {
            return Ok(Decoded::Incomplete);
        };
        // Every column is NOT NULL: a NULL (-1) is a changed table.
        let length = usize::try_from(read_i32(length)).map_err(|_| {
            PostgresError::corrupt(OPERATION, "a NOT NULL column of the events table is NULL")
        })?;
        at += 4;
        let Some(bytes) = input.get(at..at + length) else {
            return Ok(Decoded::Incomplete);
        };
        *field = bytes;
        at += length;
    }
    let [
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
    ] = fields;
    let raw = RawEvent {
        stream_id: text(stream_id, "stream_id")?,
        event_id: Uuid::from_slice(event_id).map_err(|_| wrong_size("event_id"))?,
        stream_version: int8(stream_version, "stream_version")?,
        commit: xid8(commit)?,
        sequence: int8(sequence, "sequence")?,
        event_type: text(event_type, "event_type")?,
        schema_version: int4(schema_version, "schema_version")?,
        payload: jsonb(payload, "payload")?,
        metadata: jsonb(metadata, "metadata")?,
        recorded_at: timestamptz(recorded_at)?,
    };
    Ok(Decoded::Row(raw, at))
}

fn read_i32(bytes: &[u8]) -> i32 {
    i32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])
}

fn int8(bytes: &[u8], column: &str) -> Result<i64, PostgresError> {
    let bytes: [u8; 8] = bytes.try_into().map_err(|_| wrong_size(column))?;
    Ok(i64::from_be_bytes(bytes))
}

fn int4(bytes: &[u8], column: &str) -> Result<i32, PostgresError> {
    let bytes: [u8; 4] = bytes.try_into().map_err(|_| wrong_size(column))?;
    Ok(i32::from_be_bytes(bytes))
}

/// An `xid8` (unsigned, 64 bits) as the `bigint` the statement path reads:
/// one above `i64::MAX` (no server reaches it) is corrupt, as there.
fn xid8(bytes: &[u8]) -> Result<i64, PostgresError> {
    let bytes: [u8; 8] = bytes.try_into().map_err(|_| wrong_size("transaction_id"))?;
    let value = u64::from_be_bytes(bytes);
    i64::try_from(value).map_err(|_| {
        PostgresError::corrupt(OPERATION, format!("transaction_id is {value}, above 2^63"))
    })
}

fn text<'a>(bytes: &'a [u8], column: &str) -> Result<&'a str, PostgresError> {
    std::str::from_utf8(bytes)
        .map_err(|_| PostgresError::corrupt(OPERATION, format!("{column} is not UTF-8")))
}

/// A binary `jsonb`: version 1, then the JSON text PostgreSQL prints for
/// it (exactly what `jsonb::text` gives the statement path).
fn jsonb<'a>(bytes: &'a [u8], column: &str) -> Result<&'a str, PostgresError> {
    match bytes.split_first() {
        Some((1, json)) => text(json, column),
        _ => Err(PostgresError::corrupt(
            OPERATION,
            format!("{column} is not a version 1 binary jsonb"),
        )),
    }
}

/// A binary `timestamptz`: microseconds since 2000-01-01 UTC.
fn timestamptz(bytes: &[u8]) -> Result<DateTime<Utc>, PostgresError> {
    let micros = int8(bytes, "recorded_at")?;
    DateTime::from_timestamp_micros(micros.saturating_add(POSTGRES_EPOCH * 1_000_000)).ok_or_else(
        || {
            PostgresError::corrupt(
                OPERATION,
                format!("recorded_at ({micros} µs) is out of range"),
            )
        },
    )
}

fn wrong_size(column: &str) -> PostgresError {
    PostgresError::corrupt(OPERATION, format!("{column} has the wrong binary size"))
}

fn malformed(reason: impl Into<String>) -> PostgresError {
    PostgresError::corrupt(
        OPERATION,
        format!("the COPY stream is malformed: {}", reason.into()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(out: &mut Vec<u8>, bytes: &[u8]) {
        out.extend_from_slice(&i32::try_from(bytes.len()).unwrap().to_be_bytes());
        out.extend_from_slice(bytes);
    }

    fn row(out: &mut Vec<u8>, stream: &str, payload: &str, micros: i64) {
        out.extend_from_slice(&10_i16.to_be_bytes());
        field(out, stream.as_bytes());
        field(out, Uuid::nil().as_bytes());
        field(out, &1_i64.to_be_bytes());
        field(out, &7_u64.to_be_bytes());
        field(out, &3_i64.to_be_bytes());
        field(out, b"Opened");
        field(out, &1_i32.to_be_bytes());
        field(out, &[&[1_u8][..], payload.as_bytes()].concat());
        field(out, b"\x01{}");
        field(out, &micros.to_be_bytes());
    }

    fn stream(rows: &[(&str, &str)]) -> Vec<u8> {
        let mut out = SIGNATURE.to_vec();
        out.extend_from_slice(&0_i32.to_be_bytes());
        out.extend_from_slice(&0_i32.to_be_bytes());
        for (stream, payload) in rows {
            row(&mut out, stream, payload, 0);
        }
        out.extend_from_slice(&(-1_i16).to_be_bytes());
        out
    }

    fn decode_in_chunks(bytes: &[u8], size: usize) -> Vec<StoredEvent> {
        let mut decoder = Decoder::default();
        let mut events = Vec::new();
        for chunk in bytes.chunks(size) {
            decoder
                .push(chunk, |raw| events.push(raw.decode().unwrap()))
                .unwrap();
        }
        decoder.finish().unwrap();
        events
    }

    #[test]
    fn rows_decode_however_the_chunks_cut_them() {
        let bytes = stream(&[("a-1", r#"{"n": 1}"#), ("b-2", r#"{"n": [2, 3]}"#)]);
        for size in [1, 2, 3, 7, 19, 64, bytes.len()] {
            let events = decode_in_chunks(&bytes, size);
            assert_eq!(events.len(), 2, "chunks of {size}");
            assert_eq!(events[0].stream_id.as_str(), "a-1");
            assert_eq!(events[1].payload, serde_json::json!({ "n": [2, 3] }));
            assert_eq!(events[1].position, Position::new(7, 3));
            assert_eq!(events[0].event_type, "Opened");
            assert_eq!(events[0].recorded_at.timestamp(), POSTGRES_EPOCH);
        }
    }

    #[test]
    fn a_stream_cut_short_or_malformed_is_an_error_not_fewer_events() {
        let bytes = stream(&[("a-1", "{}")]);
        let mut decoder = Decoder::default();
        decoder.push(&bytes[..bytes.len() - 5], |_| {}).unwrap();
        assert!(decoder.finish().is_err(), "cut inside the last row");

        let mut wrong = bytes.clone();
        wrong[0] = b'X';
        let error = Decoder::default().push(&wrong, |_| {}).unwrap_err();
        assert!(error.to_string().contains("signature"), "{error}");

        let mut null = SIGNATURE.to_vec();
        null.extend_from_slice(&[0; 8]);
        null.extend_from_slice(&10_i16.to_be_bytes());
        null.extend_from_slice(&(-1_i32).to_be_bytes());
        let error = Decoder::default().push(&null, |_| {}).unwrap_err();
        assert!(error.to_string().contains("is NULL"), "{error}");
    }

    #[test]
    fn a_row_that_does_not_make_an_event_is_corrupt_with_its_content() {
        let bytes = stream(&[("a-1", "[1, 2")]);
        let mut decoder = Decoder::default();
        let mut outcome = None;
        decoder
            .push(&bytes, |raw| outcome = Some(raw.decode()))
            .unwrap();
        let error = outcome.unwrap().unwrap_err();
        let EventStoreError::CorruptEvent { reason, raw, .. } = error else {
            panic!("not a corrupt event: {error}");
        };
        assert!(reason.contains("payload"), "{reason}");
        assert!(raw.contains("[1, 2"), "{raw}");
    }
}
