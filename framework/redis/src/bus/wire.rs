//! How messages look in a Redis stream, and the parsing of the stream
//! commands' replies (RESP2 arrays; RESP3 maps where Redis uses them).
//!
//! An entry holds the stored event as flat fields, readable with
//! `redis-cli XRANGE` and by consumers in other languages, and cheap to
//! decode (only the payload and metadata are JSON):
//!
//! | field | holds |
//! |---|---|
//! | `event_id` | the event's id (a UUID): what consumers de-duplicate by |
//! | `stream_id`, `stream_version` | its stream and version there |
//! | `position` | its global position, `commit/sequence` |
//! | `event_type`, `schema_version` | its type name and schema version |
//! | `recorded_at` | when the store recorded it, RFC 3339 |
//! | `payload` | its data, JSON |
//! | `metadata` | correlation, causation, headers, JSON (absent when empty) |
//! | `dead_letter` | on dead-letter topics only: the [`DeadLetterInfo`](composable_rust_core::event_bus::DeadLetterInfo) as JSON |
//! | `error` | on dead-letter topics, for entries that could not be decoded: why |

use chrono::SecondsFormat;
use composable_rust_core::event_bus::wire::{EnvelopeDecoder, FieldNames};
use composable_rust_core::event_bus::{BusMessage, EventBusError, MessageId, Topic};
use composable_rust_core::{EventMetadata, StoredEvent, StreamId};
use redis::Value;

pub(crate) const EVENT_ID: &str = "event_id";
const STREAM_ID: &str = "stream_id";
const STREAM_VERSION: &str = "stream_version";
const POSITION: &str = "position";
const EVENT_TYPE: &str = "event_type";
const SCHEMA_VERSION: &str = "schema_version";
const RECORDED_AT: &str = "recorded_at";
const PAYLOAD: &str = "payload";
const METADATA: &str = "metadata";
pub(crate) const DEAD_LETTER: &str = "dead_letter";
pub(crate) const ERROR: &str = "error";

/// An entry's fields, as Redis sent them.
pub(crate) type Fields = Vec<(Vec<u8>, Vec<u8>)>;

/// A stream entry: its id and its fields (`None` when the entry was
/// deleted but is still referenced, e.g. by a pending list).
pub(crate) type Entry = (String, Option<Fields>);

/// One line of `XPENDING key group [IDLE ms] start end count [consumer]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PendingEntry {
    pub id: String,
    pub consumer: String,
    pub idle_ms: u64,
    pub deliveries: u32,
}

/// Appends `event`'s fields to an `XADD`.
pub(crate) fn encode(
    topic: &Topic,
    event: &StoredEvent,
    cmd: &mut redis::Cmd,
) -> Result<(), EventBusError> {
    let json = |what: &str, value: Result<Vec<u8>, serde_json::Error>| {
        value.map_err(|error| EventBusError::Decode {
            topic: topic.to_string(),
            message_id: "(not yet published)".into(),
            reason: format!("the event's {what} cannot be encoded as JSON: {error}"),
        })
    };
    let payload = json("payload", serde_json::to_vec(&event.payload))?;
    cmd.arg(EVENT_ID)
        .arg(event.event_id.to_string())
        .arg(STREAM_ID)
        .arg(event.stream_id.as_str())
        .arg(STREAM_VERSION)
        .arg(event.stream_version)
        .arg(POSITION)
        .arg(event.position.to_string())
        .arg(EVENT_TYPE)
        .arg(&event.event_type)
        .arg(SCHEMA_VERSION)
        .arg(event.schema_version)
        .arg(RECORDED_AT)
        .arg(
            event
                .recorded_at
                .to_rfc3339_opts(SecondsFormat::AutoSi, true),
        )
        .arg(PAYLOAD)
        .arg(payload);
    if event.metadata != EventMetadata::default() {
        cmd.arg(METADATA)
            .arg(json("metadata", serde_json::to_vec(&event.metadata))?);
    }
    Ok(())
}

/// What the envelope's fields are called, for the shared decoder.
const NAMES: FieldNames = FieldNames {
    noun: "field",
    event_id: EVENT_ID,
    stream_version: STREAM_VERSION,
    position: POSITION,
    event_type: EVENT_TYPE,
    schema_version: SCHEMA_VERSION,
    recorded_at: RECORDED_AT,
    dead_letter: DEAD_LETTER,
};

/// The message of entry `id` with `fields`, read from `topic` (decoded
/// by core's [`EnvelopeDecoder`]; the stream id, payload and metadata
/// are fields too).
pub(crate) fn decode(
    topic: &Topic,
    id: String,
    fields: &[(Vec<u8>, Vec<u8>)],
    deliveries: u32,
) -> Result<BusMessage, EventBusError> {
    let decoder = EnvelopeDecoder::new(topic, MessageId::new(id), &NAMES, |name: &str| {
        fields
            .iter()
            .find(|(field, _)| field == name.as_bytes())
            .map(|(_, value)| value.as_slice())
    });
    let event_id = decoder.event_id()?;
    let stream_id = StreamId::new(decoder.text(STREAM_ID)?).map_err(|error| {
        decoder.undecodable(format!("its `stream_id` field is invalid: {error}"))
    })?;
    let payload =
        serde_json::from_slice(decoder.field(PAYLOAD).unwrap_or(b"null")).map_err(|error| {
            decoder.undecodable(format!("its `payload` field is not JSON: {error}"))
        })?;
    let metadata = decoder.json(METADATA)?.unwrap_or_default();
    decoder.finish(event_id, stream_id, payload, metadata, deliveries)
}

fn text(value: &Value) -> Option<String> {
    match value {
        Value::BulkString(bytes) => String::from_utf8(bytes.clone()).ok(),
        Value::SimpleString(text) => Some(text.clone()),
        Value::VerbatimString { text, .. } => Some(text.clone()),
        Value::Int(n) => Some(n.to_string()),
        Value::Okay => Some("OK".to_owned()),
        _ => None,
    }
}

fn into_text(value: Value) -> Option<String> {
    match value {
        Value::BulkString(bytes) => String::from_utf8(bytes).ok(),
        Value::SimpleString(text) | Value::VerbatimString { text, .. } => Some(text),
        other => text(&other),
    }
}

fn into_bytes(value: Value) -> Option<Vec<u8>> {
    match value {
        Value::BulkString(bytes) => Some(bytes),
        other => into_text(other).map(String::into_bytes),
    }
}

fn number(value: &Value) -> Option<u64> {
    match value {
        Value::Int(n) => u64::try_from(*n).ok(),
        other => text(other)?.parse().ok(),
    }
}

/// The items of an array-like reply (arrays, sets, maps flattened); `[]`
/// for nil.
fn into_items(value: Value) -> Option<Vec<Value>> {
    match value {
        Value::Nil => Some(Vec::new()),
        Value::Array(items) | Value::Set(items) => Some(items),
        Value::Map(pairs) => Some(pairs.into_iter().flat_map(|(k, v)| [k, v]).collect()),
        _ => None,
    }
}

fn items(value: &Value) -> Option<&[Value]> {
    match value {
        Value::Nil => Some(&[]),
        Value::Array(items) | Value::Set(items) => Some(items),
        _ => None,
    }
}

fn malformed(what: &str) -> String {
    format!("unexpected reply to {what}")
}

/// `field value field value ...` (or a RESP3 map) as pairs.
fn into_fields(value: Value, what: &str) -> Result<Fields, String> {
    let items = into_items(value).ok_or_else(|| malformed(what))?;
    let mut fields = Vec::with_capacity(items.len() / 2);
    let mut items = items.into_iter();
    while let Some(field) = items.next() {
        let value = items.next().ok_or_else(|| malformed(what))?;
        fields.push((
            into_bytes(field).ok_or_else(|| malformed(what))?,
            into_bytes(value).ok_or_else(|| malformed(what))?,
        ));
    }
    Ok(fields)
}

/// Entries as `XRANGE` and `XCLAIM` return them: `[[id, [f, v, ...]], ...]`.
pub(crate) fn into_entries(value: Value, what: &str) -> Result<Vec<Entry>, String> {
    let items = into_items(value).ok_or_else(|| malformed(what))?;
    let mut entries = Vec::with_capacity(items.len());
    for entry in items {
        match entry {
            Value::Array(parts) if parts.len() == 2 => {
                let mut parts = parts.into_iter();
                let (Some(id), Some(fields)) = (parts.next(), parts.next()) else {
                    return Err(malformed(what));
                };
                let id = into_text(id).ok_or_else(|| malformed(what))?;
                let fields = match fields {
                    Value::Nil => None,
                    fields => Some(into_fields(fields, what)?),
                };
                entries.push((id, fields));
            }
            // A deleted entry in some replies.
            Value::Nil => {}
            Value::Array(parts) if parts.is_empty() => {}
            other => entries.push((into_text(other).ok_or_else(|| malformed(what))?, None)),
        }
    }
    Ok(entries)
}

/// The reply of `XREADGROUP ... STREAMS k1 k2 ...`: per stream key, its
/// entries (nil when nothing arrived).
pub(crate) fn into_streams(value: Value) -> Result<Vec<(String, Vec<Entry>)>, String> {
    const WHAT: &str = "XREADGROUP";
    let mut streams = Vec::new();
    match value {
        Value::Nil => {}
        Value::Map(pairs) => {
            for (key, entries) in pairs {
                let key = into_text(key).ok_or_else(|| malformed(WHAT))?;
                streams.push((key, into_entries(entries, WHAT)?));
            }
        }
        other => {
            for stream in into_items(other).ok_or_else(|| malformed(WHAT))? {
                let mut parts = into_items(stream)
                    .ok_or_else(|| malformed(WHAT))?
                    .into_iter();
                let (Some(key), Some(entries), None) = (parts.next(), parts.next(), parts.next())
                else {
                    return Err(malformed(WHAT));
                };
                let key = into_text(key).ok_or_else(|| malformed(WHAT))?;
                streams.push((key, into_entries(entries, WHAT)?));
            }
        }
    }
    Ok(streams)
}

/// The reply of the extended `XPENDING`.
pub(crate) fn parse_pending(value: &Value) -> Result<Vec<PendingEntry>, String> {
    const WHAT: &str = "XPENDING";
    let mut pending = Vec::new();
    for line in items(value).ok_or_else(|| malformed(WHAT))? {
        match items(line) {
            Some([id, consumer, idle, deliveries]) => pending.push(PendingEntry {
                id: text(id).ok_or_else(|| malformed(WHAT))?,
                consumer: text(consumer).ok_or_else(|| malformed(WHAT))?,
                idle_ms: number(idle).ok_or_else(|| malformed(WHAT))?,
                deliveries: number(deliveries)
                    .and_then(|n| u32::try_from(n).ok())
                    .ok_or_else(|| malformed(WHAT))?,
            }),
            _ => return Err(malformed(WHAT)),
        }
    }
    Ok(pending)
}

/// The `lag` of `group` in the reply of `XINFO GROUPS key`: `Some(None)`
/// when Redis does not know it, `None` when the group is not listed.
pub(crate) fn parse_group_lag(value: &Value, group: &str) -> Result<Option<Option<u64>>, String> {
    const WHAT: &str = "XINFO GROUPS";
    for info in items(value).ok_or_else(|| malformed(WHAT))? {
        let pairs: Vec<(&Value, &Value)> = match info {
            Value::Map(pairs) => pairs.iter().map(|(k, v)| (k, v)).collect(),
            other => items(other)
                .ok_or_else(|| malformed(WHAT))?
                .chunks(2)
                .filter_map(|pair| Some((pair.first()?, pair.get(1)?)))
                .collect(),
        };
        let field = |name: &str| {
            pairs
                .iter()
                .find(|(k, _)| text(k).as_deref() == Some(name))
                .map(|(_, v)| *v)
        };
        if field("name").and_then(text).as_deref() == Some(group) {
            return Ok(Some(field("lag").and_then(number)));
        }
    }
    Ok(None)
}

/// `redis_version` from the text of `INFO server`, as (major, minor).
pub(crate) fn parse_version(info: &str) -> Option<(u32, u32)> {
    let version = info
        .lines()
        .find_map(|line| line.trim().strip_prefix("redis_version:"))?;
    let mut parts = version.split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;
    use composable_rust_core::Position;

    fn bulk(text: &str) -> Value {
        Value::BulkString(text.as_bytes().to_vec())
    }

    fn event() -> StoredEvent {
        StoredEvent {
            event_id: uuid::Uuid::new_v4(),
            stream_id: StreamId::new("order-7").unwrap(),
            stream_version: 3,
            position: Position::new(12, 345),
            event_type: "OrderPlaced".into(),
            schema_version: 2,
            payload: serde_json::json!({ "total": 42, "lines": [1, 2] }),
            metadata: EventMetadata::default(),
            recorded_at: Utc::now(),
        }
    }

    /// The fields `encode` writes, as Redis would send them back.
    fn round_trip(event: &StoredEvent) -> BusMessage {
        let topic = Topic::new("orders").unwrap();
        let mut cmd = redis::cmd("XADD");
        encode(&topic, event, &mut cmd).unwrap();
        let args: Vec<Vec<u8>> = cmd
            .args_iter()
            .skip(1) // XADD
            .map(|arg| match arg {
                redis::Arg::Simple(bytes) => bytes.to_vec(),
                _ => Vec::new(),
            })
            .collect();
        let fields: Fields = args
            .chunks(2)
            .map(|pair| (pair[0].clone(), pair[1].clone()))
            .collect();
        decode(&topic, "1-0".into(), &fields, 1).unwrap()
    }

    #[test]
    fn events_round_trip_through_the_fields() {
        let plain = event();
        assert_eq!(round_trip(&plain).event, plain);
        let mut rich = event();
        rich.metadata.correlation_id = Some(uuid::Uuid::new_v4());
        rich.metadata.headers.insert("user".into(), "ada".into());
        assert_eq!(round_trip(&rich).event, rich);
    }

    #[test]
    fn foreign_entries_are_refused_with_the_field_at_fault() {
        let topic = Topic::new("orders").unwrap();
        let fields: Fields = vec![(b"hello".to_vec(), b"world".to_vec())];
        let error = decode(&topic, "1-0".into(), &fields, 1).unwrap_err();
        let text = error.to_string();
        assert!(text.starts_with("[CR-E0016]"), "{text}");
        assert!(text.contains("no `event_id` field"), "{text}");
    }

    #[test]
    fn stream_replies_parse_in_both_protocols() {
        let entry = Value::Array(vec![
            bulk("1-0"),
            Value::Array(vec![
                bulk("event_id"),
                bulk("x"),
                bulk("payload"),
                bulk("{}"),
            ]),
        ]);
        let resp2 = Value::Array(vec![Value::Array(vec![
            bulk("{p}:bus:orders"),
            Value::Array(vec![entry.clone()]),
        ])]);
        let resp3 = Value::Map(vec![(bulk("{p}:bus:orders"), Value::Array(vec![entry]))]);
        for reply in [resp2, resp3] {
            let streams = into_streams(reply).unwrap();
            assert_eq!(streams.len(), 1);
            assert_eq!(streams[0].0, "{p}:bus:orders");
            let (id, fields) = &streams[0].1[0];
            assert_eq!(id, "1-0");
            assert_eq!(
                fields.as_ref().unwrap()[1],
                (b"payload".to_vec(), b"{}".to_vec())
            );
        }
        assert!(into_streams(Value::Nil).unwrap().is_empty());
        let deleted = Value::Array(vec![Value::Array(vec![bulk("2-0"), Value::Nil])]);
        assert_eq!(
            into_entries(deleted, "XCLAIM").unwrap(),
            [("2-0".into(), None)]
        );
    }

    #[test]
    fn pending_lines_and_group_lag_parse() {
        let reply = Value::Array(vec![Value::Array(vec![
            bulk("1-0"),
            bulk("c1"),
            Value::Int(1500),
            Value::Int(3),
        ])]);
        assert_eq!(
            parse_pending(&reply).unwrap(),
            [PendingEntry {
                id: "1-0".into(),
                consumer: "c1".into(),
                idle_ms: 1500,
                deliveries: 3
            }]
        );
        let groups = Value::Array(vec![Value::Array(vec![
            bulk("name"),
            bulk("billing"),
            bulk("lag"),
            Value::Int(7),
        ])]);
        assert_eq!(parse_group_lag(&groups, "billing").unwrap(), Some(Some(7)));
        assert_eq!(parse_group_lag(&groups, "other").unwrap(), None);
    }

    #[test]
    fn versions_parse_from_info() {
        let info = "# Server\r\nredis_version:7.0.15\r\nredis_mode:standalone\r\n";
        assert_eq!(parse_version(info), Some((7, 0)));
        assert_eq!(parse_version("redis_version:6.2.1"), Some((6, 2)));
        assert_eq!(parse_version("nothing"), None);
    }
}
