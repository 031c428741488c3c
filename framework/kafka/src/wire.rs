//! How a stored event looks as a Kafka record, so consumers in other
//! languages can read the topics without this crate.
//!
//! - **key**: the event's stream id, so every event of a stream goes to
//!   the same partition and keeps its order;
//! - **value**: the event's payload, JSON;
//! - **headers** (UTF-8 text):
//!
//! | header | holds |
//! |---|---|
//! | `event-id` | the event's id (a UUID): what consumers de-duplicate by |
//! | `event-type`, `schema-version` | its type name and schema version |
//! | `stream-version` | its version in its stream |
//! | `position` | its global position in the event store, `commit/sequence` |
//! | `recorded-at` | when the store recorded it, RFC 3339 |
//! | `correlation-id`, `causation-id` | from its metadata, when set |
//! | `metadata` | its whole metadata as JSON, when it has other headers |
//! | `dead-letter` | on dead-letter topics only: the [`DeadLetterInfo`] as JSON |
//! | `error` | on dead-letter topics, for records that could not be decoded: why |

use chrono::SecondsFormat;
use composable_rust_core::event_bus::wire::{EnvelopeDecoder, FieldNames};
use composable_rust_core::event_bus::{
    BusMessage, DeadLetterInfo, EventBusError, MessageId, Topic,
};
use composable_rust_core::{EventMetadata, StoredEvent, StreamId};
use rdkafka::message::{Header, Headers, OwnedHeaders};

/// The header holding the event id.
pub const EVENT_ID: &str = "event-id";
/// The header holding the event type.
pub const EVENT_TYPE: &str = "event-type";
/// The header holding the schema version.
pub const SCHEMA_VERSION: &str = "schema-version";
/// The header holding the version in the stream.
pub const STREAM_VERSION: &str = "stream-version";
/// The header holding the global position.
pub const POSITION: &str = "position";
/// The header holding the recording time.
pub const RECORDED_AT: &str = "recorded-at";
/// The header holding the correlation id.
pub const CORRELATION_ID: &str = "correlation-id";
/// The header holding the causation id.
pub const CAUSATION_ID: &str = "causation-id";
/// The header holding the whole metadata, when it has headers of its own.
pub const METADATA: &str = "metadata";
/// On dead-letter topics: where the record came from.
pub const DEAD_LETTER: &str = "dead-letter";
/// On dead-letter topics: why an undecodable record could not be decoded.
pub const ERROR: &str = "error";

/// The message id of the record at `offset` of `partition`:
/// `<partition>-<offset>`.
pub fn message_id(partition: i32, offset: i64) -> MessageId {
    MessageId::new(format!("{partition}-{offset}"))
}

/// The partition and offset of a message id written by [`message_id`].
pub fn parse_message_id(id: &MessageId) -> Option<(i32, i64)> {
    let (partition, offset) = id.as_str().split_once('-')?;
    Some((partition.parse().ok()?, offset.parse().ok()?))
}

/// A record ready to produce: key, value and headers.
pub(crate) struct Record {
    pub key: String,
    pub value: Vec<u8>,
    pub headers: OwnedHeaders,
}

fn header(headers: OwnedHeaders, key: &str, value: &str) -> OwnedHeaders {
    headers.insert(Header {
        key,
        value: Some(value.as_bytes()),
    })
}

/// `event` as a record of `topic`.
pub(crate) fn encode(topic: &Topic, event: &StoredEvent) -> Result<Record, EventBusError> {
    let json = |what: &str, value: Result<Vec<u8>, serde_json::Error>| {
        value.map_err(|error| EventBusError::Decode {
            topic: topic.to_string(),
            message_id: "(not yet published)".into(),
            reason: format!("the event's {what} cannot be encoded as JSON: {error}"),
        })
    };
    let value = json("payload", serde_json::to_vec(&event.payload))?;
    let mut headers = OwnedHeaders::new_with_capacity(9);
    headers = header(headers, EVENT_ID, &event.event_id.to_string());
    headers = header(headers, EVENT_TYPE, &event.event_type);
    headers = header(headers, SCHEMA_VERSION, &event.schema_version.to_string());
    headers = header(headers, STREAM_VERSION, &event.stream_version.to_string());
    headers = header(headers, POSITION, &event.position.to_string());
    headers = header(
        headers,
        RECORDED_AT,
        &event
            .recorded_at
            .to_rfc3339_opts(SecondsFormat::AutoSi, true),
    );
    if let Some(id) = event.metadata.correlation_id {
        headers = header(headers, CORRELATION_ID, &id.to_string());
    }
    if let Some(id) = event.metadata.causation_id {
        headers = header(headers, CAUSATION_ID, &id.to_string());
    }
    if !event.metadata.headers.is_empty() {
        let metadata = json("metadata", serde_json::to_vec(&event.metadata))?;
        headers = header(headers, METADATA, &String::from_utf8_lossy(&metadata));
    }
    Ok(Record {
        key: event.stream_id.as_str().to_owned(),
        value,
        headers,
    })
}

/// `headers` plus where a dead-lettered record came from (and why it
/// could not be decoded, if so); earlier dead-letter headers are dropped.
pub(crate) fn dead_letter_headers(
    original: Option<&OwnedHeaders>,
    info: &DeadLetterInfo,
    error: Option<&str>,
) -> OwnedHeaders {
    let mut headers = OwnedHeaders::new();
    if let Some(original) = original {
        for item in original.iter() {
            if item.key != DEAD_LETTER && item.key != ERROR {
                headers = headers.insert(Header {
                    key: item.key,
                    value: item.value,
                });
            }
        }
    }
    let info = serde_json::to_string(info).unwrap_or_default();
    headers = header(headers, DEAD_LETTER, &info);
    if let Some(error) = error {
        headers = header(headers, ERROR, error);
    }
    headers
}

/// What the envelope's headers are called, for the shared decoder.
const NAMES: FieldNames = FieldNames {
    noun: "header",
    event_id: EVENT_ID,
    stream_version: STREAM_VERSION,
    position: POSITION,
    event_type: EVENT_TYPE,
    schema_version: SCHEMA_VERSION,
    recorded_at: RECORDED_AT,
    dead_letter: DEAD_LETTER,
};

/// The message of the record at `partition`/`offset` of `topic`: the
/// stream id is the record's key, the payload its value, the rest
/// headers (decoded by core's [`EnvelopeDecoder`]).
pub(crate) fn decode(
    topic: &Topic,
    partition: i32,
    offset: i64,
    key: Option<&[u8]>,
    value: Option<&[u8]>,
    headers: Option<&OwnedHeaders>,
    deliveries: u32,
) -> Result<BusMessage, EventBusError> {
    let decoder = EnvelopeDecoder::new(
        topic,
        message_id(partition, offset),
        &NAMES,
        |name: &str| {
            headers?
                .iter()
                .find(|item| item.key == name)
                .and_then(|item| item.value)
        },
    );
    let event_id = decoder.event_id()?;
    let key = key.ok_or_else(|| decoder.undecodable("it has no key (the stream id)"))?;
    let stream_id = std::str::from_utf8(key)
        .ok()
        .and_then(|key| StreamId::new(key).ok())
        .ok_or_else(|| decoder.undecodable("its key is not a valid stream id"))?;
    let payload = serde_json::from_slice(value.unwrap_or(b"null"))
        .map_err(|error| decoder.undecodable(format!("its value is not JSON: {error}")))?;
    let metadata = match decoder.json(METADATA)? {
        Some(metadata) => metadata,
        None => EventMetadata {
            correlation_id: decoder.uuid(CORRELATION_ID)?,
            causation_id: decoder.uuid(CAUSATION_ID)?,
            ..EventMetadata::default()
        },
    };
    decoder.finish(event_id, stream_id, payload, metadata, deliveries)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;
    use composable_rust_core::Position;
    use serde_json::json;
    use std::collections::BTreeMap;

    fn event(metadata: EventMetadata) -> StoredEvent {
        StoredEvent::builder("OrderPlaced", json!({ "total": 42 }))
            .with_stream(StreamId::new("order-7").unwrap(), 3)
            .with_position(Position::new(10, 12))
            .with_recorded_at(Utc::now())
            .with_metadata(metadata)
            .build()
    }

    fn round_trip(event: &StoredEvent) -> BusMessage {
        let topic = Topic::new("orders").unwrap();
        let record = encode(&topic, event).unwrap();
        decode(
            &topic,
            2,
            17,
            Some(record.key.as_bytes()),
            Some(&record.value),
            Some(&record.headers),
            1,
        )
        .unwrap()
    }

    #[test]
    fn events_round_trip_with_their_metadata() {
        let plain = event(EventMetadata::default());
        let message = round_trip(&plain);
        assert_eq!(message.event, plain);
        assert_eq!(message.id.as_str(), "2-17");
        assert_eq!(parse_message_id(&message.id), Some((2, 17)));

        let ids = EventMetadata {
            correlation_id: Some(uuid::Uuid::new_v4()),
            causation_id: Some(uuid::Uuid::new_v4()),
            headers: BTreeMap::new(),
        };
        assert_eq!(round_trip(&event(ids.clone())).event.metadata, ids);
        let full = EventMetadata {
            headers: BTreeMap::from([("tenant".to_owned(), "acme".to_owned())]),
            ..ids
        };
        assert_eq!(round_trip(&event(full.clone())).event.metadata, full);
    }

    #[test]
    fn headers_name_the_event_for_other_consumers() {
        let topic = Topic::new("orders").unwrap();
        let stored = event(EventMetadata {
            correlation_id: Some(uuid::Uuid::nil()),
            ..EventMetadata::default()
        });
        let record = encode(&topic, &stored).unwrap();
        assert_eq!(record.key, "order-7");
        let get = |name: &str| {
            record
                .headers
                .iter()
                .find(|h| h.key == name)
                .map(|h| String::from_utf8(h.value.unwrap().to_vec()).unwrap())
        };
        assert_eq!(get(EVENT_TYPE).as_deref(), Some("OrderPlaced"));
        assert_eq!(get(SCHEMA_VERSION).as_deref(), Some("1"));
        assert_eq!(get(POSITION).as_deref(), Some("10/12"));
        assert_eq!(
            get(CORRELATION_ID).as_deref(),
            Some("00000000-0000-0000-0000-000000000000")
        );
        assert_eq!(get(CAUSATION_ID), None);
        assert_eq!(record.value, br#"{"total":42}"#);
    }

    #[test]
    fn foreign_records_do_not_decode() {
        let topic = Topic::new("orders").unwrap();
        let error = decode(&topic, 0, 5, Some(b"k"), Some(b"{}"), None, 1).unwrap_err();
        assert!(error.to_string().contains("event-id"), "{error}");
        assert!(error.to_string().contains("0-5"), "{error}");
    }
}
