//! Turning domain events into (type name, schema version, payload) and back.
//!
//! A serde enum serializes as `{"Variant": content}` (or `"Variant"` for a
//! unit variant); the variant name becomes the stored type and the content
//! the stored payload. Decoding puts the two back together after upcasting.

use serde_json::Value;

use super::Event;
use super::envelope::StoredEvent;
use super::upcast::{Upcasted, Upcasters};
use crate::event_store::EventStoreError;

/// An event split into what the store keeps.
#[derive(Debug, Clone, PartialEq)]
pub struct EncodedEvent {
    /// The stable type name (the serde variant name).
    pub event_type: String,
    /// The current schema version of that type.
    pub schema_version: u32,
    /// The variant's content (`null` for a unit variant).
    pub payload: Value,
}

/// Splits `event` into type name, schema version and payload.
pub fn encode<E: Event>(event: &E) -> Result<EncodedEvent, EventStoreError> {
    let value = serde_json::to_value(event).map_err(|error| EventStoreError::Encode {
        reason: error.to_string(),
    })?;
    let (event_type, payload) = match value {
        Value::String(variant) => (variant, Value::Null),
        Value::Object(map) if map.len() == 1 => map.into_iter().next().unwrap_or_default(),
        other => {
            return Err(EventStoreError::Encode {
                reason: format!(
                    "events must be a serde enum (externally tagged, the default), \
                     but {} serialized as {}",
                    std::any::type_name::<E>(),
                    kind_of(&other)
                ),
            });
        }
    };
    Ok(EncodedEvent {
        schema_version: E::schema_version(&event_type),
        event_type,
        payload,
    })
}

/// Turns a stored event into today's `E`, upcasting old schema versions on
/// the way. Returns `Ok(None)` when an upcaster discards the event (an event
/// type that was deliberately removed).
///
/// Errors name the stream, version and type: [`EventStoreError::UnknownEventType`]
/// when `E` has no such variant, [`EventStoreError::Decode`] when the payload
/// does not fit it, [`EventStoreError::MissingUpcaster`] when a stored
/// version is older than the current one and no upcaster bridges the gap.
pub fn decode<E: Event>(
    stored: &StoredEvent,
    upcasters: &Upcasters,
) -> Result<Option<E>, EventStoreError> {
    let upcasted = upcasters
        .upcast(
            &stored.event_type,
            stored.schema_version,
            stored.payload.clone(),
        )
        .map_err(|reason| decode_error(stored, reason))?;
    let Upcasted::Event {
        event_type,
        schema_version,
        payload,
    } = upcasted
    else {
        return Ok(None);
    };
    let current = E::schema_version(&event_type);
    if schema_version != current {
        return Err(EventStoreError::MissingUpcaster {
            stream_id: stored.stream_id.to_string(),
            stream_version: stored.stream_version,
            event_type,
            stored_version: schema_version,
            current_version: current,
        });
    }
    let tagged = if payload.is_null() {
        Value::String(event_type.clone())
    } else {
        Value::Object([(event_type.clone(), payload)].into_iter().collect())
    };
    match serde_json::from_value(tagged) {
        Ok(event) => Ok(Some(event)),
        Err(error) if error.to_string().starts_with("unknown variant") => {
            Err(EventStoreError::UnknownEventType {
                stream_id: stored.stream_id.to_string(),
                stream_version: stored.stream_version,
                event_type,
            })
        }
        Err(error) => Err(decode_error(stored, error.to_string())),
    }
}

/// Decodes every event of `stored`, skipping discarded ones; stops at the
/// first error.
pub fn decode_all<E: Event>(
    stored: &[StoredEvent],
    upcasters: &Upcasters,
) -> Result<Vec<E>, EventStoreError> {
    let mut events = Vec::with_capacity(stored.len());
    for event in stored {
        if let Some(event) = decode(event, upcasters)? {
            events.push(event);
        }
    }
    Ok(events)
}

fn decode_error(stored: &StoredEvent, reason: String) -> EventStoreError {
    EventStoreError::Decode {
        stream_id: stored.stream_id.to_string(),
        stream_version: stored.stream_version,
        event_type: stored.event_type.clone(),
        reason,
    }
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object with several fields",
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use serde::{Deserialize, Serialize};
    use serde_json::json;

    use super::*;
    use crate::event::{EventMetadata, Position, StreamId};

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    enum Thing {
        Made { size: u32 },
        Broken,
        Renamed(String),
    }
    impl Event for Thing {}

    fn stored(event_type: &str, payload: Value) -> StoredEvent {
        StoredEvent {
            event_id: uuid::Uuid::new_v4(),
            stream_id: StreamId::new("thing-1").unwrap(),
            stream_version: 3,
            position: Position::new(1, 1),
            event_type: event_type.into(),
            schema_version: 1,
            payload,
            metadata: EventMetadata::default(),
            recorded_at: Utc::now(),
        }
    }

    #[test]
    fn round_trips_struct_unit_and_newtype_variants() {
        for event in [
            Thing::Made { size: 2 },
            Thing::Broken,
            Thing::Renamed("x".into()),
        ] {
            let encoded = encode(&event).unwrap();
            let back: Option<Thing> = decode(
                &stored(&encoded.event_type, encoded.payload),
                &Upcasters::new(),
            )
            .unwrap();
            assert_eq!(back, Some(event));
        }
    }

    #[test]
    fn a_struct_is_not_an_event() {
        #[derive(Serialize, Deserialize)]
        struct NotAnEnum {
            a: u8,
            b: u8,
        }
        impl Event for NotAnEnum {}
        let error = encode(&NotAnEnum { a: 1, b: 2 }).unwrap_err();
        assert!(
            error.to_string().contains("must be a serde enum"),
            "{error}"
        );
    }

    #[test]
    fn unknown_types_and_corrupt_payloads_are_typed_errors() {
        let unknown =
            decode::<Thing>(&stored("Vanished", json!({})), &Upcasters::new()).unwrap_err();
        assert!(
            matches!(&unknown, EventStoreError::UnknownEventType { event_type, stream_version: 3, .. } if event_type == "Vanished"),
            "{unknown:?}"
        );
        let corrupt = decode::<Thing>(&stored("Made", json!({ "size": "big" })), &Upcasters::new())
            .unwrap_err();
        assert!(
            matches!(&corrupt, EventStoreError::Decode { event_type, stream_id, .. } if event_type == "Made" && stream_id == "thing-1"),
            "{corrupt:?}"
        );
    }
}
