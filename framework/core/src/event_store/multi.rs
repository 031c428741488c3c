//! Appending to several streams in one commit:
//! [`EventStore::append_to_streams`](super::EventStore::append_to_streams)
//! and the checks every backend runs before writing anything.
//!
//! A command that changes two aggregates (an order placed and the cart it
//! emptied, money moved between two accounts of one owner) writes both
//! streams or neither, each under its own expected version. Backends check
//! the request with [`check_stream_appends`] first, so a malformed one
//! fails the same way everywhere, before a connection is taken.

use std::collections::HashSet;

use super::EventStoreError;
use crate::event::{ExpectedVersion, NewEvent, StreamId, check_all_storable};

/// The most streams one
/// [`append_to_streams`](super::EventStore::append_to_streams) may write.
/// A commit over several streams is for the few aggregates one decision
/// changes; a backend may hold a lock per stream for the commit
/// (PostgreSQL does, in a lock table of a few thousand entries shared by
/// the whole server), so an unbounded number would fail there with an
/// error retrying cannot fix. Write more streams in several commits.
pub const MAX_STREAM_APPENDS: usize = 100;

/// One stream's share of an
/// [`append_to_streams`](super::EventStore::append_to_streams): its
/// events, written only if the stream is at `expected` (and every other
/// share of the append is written too).
#[derive(Debug, Clone, PartialEq)]
pub struct StreamAppend {
    /// The stream appended to.
    pub stream_id: StreamId,
    /// The version the stream must be at, as for
    /// [`append`](super::EventStore::append).
    pub expected: ExpectedVersion,
    /// The events, in order; at least one.
    pub events: Vec<NewEvent>,
}

impl StreamAppend {
    /// `events` for `stream_id`, if it is at `expected`.
    pub fn new(stream_id: StreamId, expected: ExpectedVersion, events: Vec<NewEvent>) -> Self {
        Self {
            stream_id,
            expected,
            events,
        }
    }
}

/// Checks a multi-stream append before anything is written: one to
/// [`MAX_STREAM_APPENDS`] streams, no stream twice, events for every
/// stream, no event id twice,
/// and every event storable in `max_payload_bytes` (see
/// [`check_all_storable`]). Returns how many events the append carries.
///
/// Backends call it first in
/// [`append_to_streams`](super::EventStore::append_to_streams).
///
/// # Errors
///
/// [`EventStoreError::InvalidStreamAppends`] for no stream, more than
/// [`MAX_STREAM_APPENDS`], or a stream named twice, [`EventStoreError::EmptyAppend`] for a stream without
/// events, [`EventStoreError::DuplicateEventId`] for an id used twice in
/// the append, and what [`check_all_storable`] reports.
pub fn check_stream_appends(
    appends: &[StreamAppend],
    max_payload_bytes: usize,
) -> Result<usize, EventStoreError> {
    if appends.is_empty() {
        return Err(EventStoreError::InvalidStreamAppends {
            reason: "names no stream".to_owned(),
        });
    }
    if appends.len() > MAX_STREAM_APPENDS {
        return Err(EventStoreError::InvalidStreamAppends {
            reason: format!(
                "names {} streams, more than one commit may write ({MAX_STREAM_APPENDS}, \
                 MAX_STREAM_APPENDS)",
                appends.len()
            ),
        });
    }
    let mut streams = HashSet::with_capacity(appends.len());
    let mut event_ids = HashSet::new();
    let mut count = 0;
    for append in appends {
        if !streams.insert(&append.stream_id) {
            return Err(EventStoreError::InvalidStreamAppends {
                reason: format!("names stream `{}` twice", append.stream_id),
            });
        }
        if append.events.is_empty() {
            return Err(EventStoreError::EmptyAppend {
                stream_id: append.stream_id.to_string(),
            });
        }
        for event in &append.events {
            if !event_ids.insert(event.event_id) {
                return Err(EventStoreError::DuplicateEventId {
                    event_id: event.event_id,
                });
            }
        }
        check_all_storable(&append.events, max_payload_bytes)?;
        count += append.events.len();
    }
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::CodedError;
    use serde_json::json;

    fn share(stream: &str, events: usize) -> StreamAppend {
        StreamAppend::new(
            StreamId::new(stream).unwrap(),
            ExpectedVersion::Any,
            (0..events)
                .map(|n| NewEvent::new("e", json!({ "n": n })))
                .collect(),
        )
    }

    #[test]
    fn a_well_formed_append_counts_its_events() {
        let appends = [share("a", 2), share("b", 1)];
        assert_eq!(check_stream_appends(&appends, 1 << 20).unwrap(), 3);
    }

    #[test]
    fn malformed_appends_are_refused_with_their_reason() {
        let none = check_stream_appends(&[], 1 << 20).unwrap_err();
        assert_eq!(none.code().as_str(), "CR-E0024");
        assert!(none.to_string().contains("names no stream"), "{none}");

        let many: Vec<_> = (0..=MAX_STREAM_APPENDS)
            .map(|n| share(&format!("s{n}"), 1))
            .collect();
        let error = check_stream_appends(&many, 1 << 20).unwrap_err();
        assert!(
            error.to_string().contains("names 101 streams, more than"),
            "{error}"
        );
        assert!(check_stream_appends(&many[1..], 1 << 20).is_ok());

        let twice = check_stream_appends(&[share("a", 1), share("a", 1)], 1 << 20).unwrap_err();
        assert!(
            twice.to_string().contains("names stream `a` twice"),
            "{twice}"
        );

        let empty = check_stream_appends(&[share("a", 1), share("b", 0)], 1 << 20).unwrap_err();
        assert!(
            matches!(&empty, EventStoreError::EmptyAppend { stream_id } if stream_id == "b"),
            "{empty}"
        );

        let mut reused = [share("a", 1), share("b", 1)];
        reused[1].events[0].event_id = reused[0].events[0].event_id;
        let error = check_stream_appends(&reused, 1 << 20).unwrap_err();
        assert!(
            matches!(error, EventStoreError::DuplicateEventId { .. }),
            "{error}"
        );
    }
}
