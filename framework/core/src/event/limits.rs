//! What an event store accepts: only events that read back.
//!
//! Every store calls [`check_storable`] on each event of an append before
//! it writes anything, so an append either stores events that every reader
//! can read back, or fails with [`EventStoreError::UnstorablePayload`]
//! (`CR-E0019`) and writes nothing. The limits are the same for every
//! store, so an event the in-memory store accepts in tests is one
//! PostgreSQL accepts in production:
//!
//! - **Depth**: arrays and objects nested at most [`MAX_PAYLOAD_DEPTH`]
//!   (64) levels, in the payload and in the metadata. Readers parse stored
//!   JSON with serde_json, which refuses anything nested deeper than 128
//!   levels; 64 leaves room for the envelopes that carry a payload further
//!   (the event bus wraps it in a message, a dead letter in a record).
//! - **Size**: the payload's compact JSON text at most
//!   [`DEFAULT_MAX_PAYLOAD_BYTES`] (16 MiB) unless the store is configured
//!   otherwise, and the metadata's too. PostgreSQL's `jsonb` cannot hold
//!   more than 256 MiB at all; long before that, one huge event slows every
//!   reader that pages over it. Store large data elsewhere (object storage)
//!   and put a reference in the event.
//! - **No NUL character** (`\u0000`) in any string or object key of the
//!   payload or metadata, nor in the type name: PostgreSQL cannot store it
//!   in `jsonb` or `text`.
//!
//! ```
//! use composable_rust_core::event::{check_storable, DEFAULT_MAX_PAYLOAD_BYTES};
//! use composable_rust_core::{CodedError, EventMetadata, NewEvent};
//!
//! let mut payload = serde_json::json!("leaf");
//! for _ in 0..100 {
//!     payload = serde_json::json!([payload]);
//! }
//! let event = NewEvent::new("deeply.nested", payload);
//! let error = check_storable(&event, DEFAULT_MAX_PAYLOAD_BYTES).unwrap_err();
//! assert_eq!(error.code().as_str(), "CR-E0019");
//! ```

use std::fmt::{self, Write as _};

use serde_json::Value;

use super::{EventMetadata, NewEvent};
use crate::event_store::EventStoreError;

/// The deepest nesting of arrays and objects accepted in an event's
/// payload or metadata: `{"a": [1]}` is 2 levels deep, a number or string
/// alone 0. Safely below serde_json's recursion limit of 128, which every
/// reader parses stored JSON with, leaving room for envelopes around the
/// payload.
pub const MAX_PAYLOAD_DEPTH: usize = 64;

/// The largest payload (and metadata) accepted by default, in bytes of
/// compact JSON text: 16 MiB. A store can be configured with another limit
/// (`PostgresEventStore::with_max_payload_bytes`).
pub const DEFAULT_MAX_PAYLOAD_BYTES: usize = 16 * 1024 * 1024;

/// What a too-deep event must respect instead (see
/// [`EventStoreError::UnstorablePayload`]).
const DEPTH_LIMIT: &str = "its payload and metadata nest arrays and objects at most 64 levels \
                           deep (MAX_PAYLOAD_DEPTH): flatten the nested structure, or store it \
                           as a string";
/// What a too-large event must respect instead.
const SIZE_LIMIT: &str = "its payload and metadata are smaller than the store's size limit \
                          (16 MiB unless configured otherwise): store large data elsewhere, \
                          e.g. in object storage, and put a reference in the event";
/// What an event holding NUL must respect instead.
const NUL_LIMIT: &str = "its type name, payload and metadata hold no NUL character (\\u0000), \
                         which PostgreSQL cannot store in text or jsonb: remove it, or encode \
                         binary data, e.g. as base64";

/// Checks that `event` can be stored and read back by every store: at
/// most [`MAX_PAYLOAD_DEPTH`] levels deep, at most `max_payload_bytes` of
/// JSON text in its payload and in its metadata, and without NUL
/// characters. Stores call it on every event before they write anything.
///
/// # Errors
///
/// [`EventStoreError::UnstorablePayload`] (`CR-E0019`, permanent) naming
/// the event type, what is wrong (with a JSON pointer to the offending
/// value) and the limit.
pub fn check_storable(event: &NewEvent, max_payload_bytes: usize) -> Result<(), EventStoreError> {
    let refuse = |reason: String, limit: &'static str| EventStoreError::UnstorablePayload {
        event_type: printable(&event.event_type),
        reason,
        limit,
    };
    if event.event_type.contains('\0') {
        return Err(refuse(
            "its type name holds a NUL character".to_owned(),
            NUL_LIMIT,
        ));
    }
    check_value(&event.payload, "payload", max_payload_bytes)
        .map_err(|(reason, limit)| refuse(reason, limit))?;
    check_metadata(&event.metadata, max_payload_bytes)
        .map_err(|(reason, limit)| refuse(reason, limit))
}

/// Checks every event of a batch with [`check_storable`].
///
/// # Errors
///
/// The first event's [`EventStoreError::UnstorablePayload`].
pub fn check_all_storable(
    events: &[NewEvent],
    max_payload_bytes: usize,
) -> Result<(), EventStoreError> {
    events
        .iter()
        .try_for_each(|event| check_storable(event, max_payload_bytes))
}

/// A refusal: the reason and the limit.
type Refusal = (String, &'static str);

fn check_metadata(metadata: &EventMetadata, max_bytes: usize) -> Result<(), Refusal> {
    // Ids are UUIDs; only the headers are free text.
    for (key, value) in &metadata.headers {
        if key.contains('\0') || value.contains('\0') {
            return Err((
                format!(
                    "its metadata header `{}` holds a NUL character",
                    printable(key)
                ),
                NUL_LIMIT,
            ));
        }
    }
    // Small and two levels deep: count its exact JSON form.
    let mut counter = Counter::default();
    if serde_json::to_writer(&mut counter, metadata).is_err() {
        // Strings and UUIDs always serialize; never reached.
        return Ok(());
    }
    if counter.bytes > max_bytes {
        return Err((
            format!(
                "its metadata is {} bytes of JSON, more than the limit of {max_bytes} bytes",
                counter.bytes
            ),
            SIZE_LIMIT,
        ));
    }
    Ok(())
}

fn check_value(value: &Value, what: &str, max_bytes: usize) -> Result<(), Refusal> {
    let mut counter = Counter::default();
    walk(value, 0, &mut counter).map_err(|problem| {
        let pointer = problem.pointer();
        match problem.kind {
            ProblemKind::TooDeep => (
                format!(
                    "its {what} nests arrays and objects more than {MAX_PAYLOAD_DEPTH} levels \
                     deep (at `{pointer}`)"
                ),
                DEPTH_LIMIT,
            ),
            ProblemKind::Nul => (
                format!("its {what} holds a NUL character at `{pointer}`"),
                NUL_LIMIT,
            ),
        }
    })?;
    if counter.bytes > max_bytes {
        return Err((
            format!(
                "its {what} is {} bytes of JSON, more than the limit of {max_bytes} bytes",
                counter.bytes
            ),
            SIZE_LIMIT,
        ));
    }
    Ok(())
}

/// How much of a JSON pointer an error message shows.
const MAX_POINTER_CHARS: usize = 300;

#[derive(Debug, Clone, Copy)]
enum ProblemKind {
    TooDeep,
    Nul,
}

/// What is wrong, and where: the path is collected innermost first, on
/// the way out of the recursion.
#[derive(Debug)]
struct Problem {
    kind: ProblemKind,
    path: Vec<String>,
}

impl Problem {
    /// The path as a JSON pointer (RFC 6901), e.g. `/items/0/name`.
    fn pointer(&self) -> String {
        let mut pointer = String::new();
        for segment in self.path.iter().rev() {
            pointer.push('/');
            pointer.push_str(&printable(&segment.replace('~', "~0").replace('/', "~1")));
        }
        if pointer.is_empty() {
            pointer.push('/');
        }
        if pointer.chars().nth(MAX_POINTER_CHARS).is_some() {
            pointer = pointer.chars().take(MAX_POINTER_CHARS).collect();
            pointer.push_str("...");
        }
        pointer
    }
}

/// Walks `value` at `depth` (the number of containers around it), adding
/// its compact JSON size to `counter`; stops at the first problem, so a
/// value nested thousands of levels deep is never recursed into beyond
/// the limit.
fn walk(value: &Value, depth: usize, counter: &mut Counter) -> Result<(), Problem> {
    let inside = |segment: String| {
        move |mut problem: Problem| {
            problem.path.push(segment);
            problem
        }
    };
    match value {
        Value::Null => counter.add(4),
        Value::Bool(true) => counter.add(4),
        Value::Bool(false) => counter.add(5),
        Value::Number(number) => {
            // The counter never fails, and Number's Display is its JSON form.
            let _ = write!(counter, "{number}");
        }
        Value::String(text) => {
            if text.contains('\0') {
                return Err(Problem {
                    kind: ProblemKind::Nul,
                    path: Vec::new(),
                });
            }
            counter.string(text);
        }
        Value::Array(items) => {
            if depth >= MAX_PAYLOAD_DEPTH {
                return Err(Problem {
                    kind: ProblemKind::TooDeep,
                    path: Vec::new(),
                });
            }
            counter.add(2 + items.len().saturating_sub(1));
            for (index, item) in items.iter().enumerate() {
                walk(item, depth + 1, counter).map_err(inside(index.to_string()))?;
            }
        }
        Value::Object(fields) => {
            if depth >= MAX_PAYLOAD_DEPTH {
                return Err(Problem {
                    kind: ProblemKind::TooDeep,
                    path: Vec::new(),
                });
            }
            counter.add(2 + fields.len().saturating_sub(1));
            for (key, item) in fields {
                if key.contains('\0') {
                    return Err(Problem {
                        kind: ProblemKind::Nul,
                        path: vec![key.clone()],
                    });
                }
                counter.string(key);
                counter.add(1);
                walk(item, depth + 1, counter).map_err(inside(key.clone()))?;
            }
        }
    }
    Ok(())
}

/// Counts the bytes of compact JSON text without writing it.
#[derive(Debug, Default)]
struct Counter {
    bytes: usize,
}

impl Counter {
    fn add(&mut self, bytes: usize) {
        self.bytes = self.bytes.saturating_add(bytes);
    }

    /// A JSON string with its quotes and escapes, as serde_json writes it.
    fn string(&mut self, text: &str) {
        let escaped: usize = text
            .bytes()
            .map(|byte| match byte {
                b'"' | b'\\' | b'\n' | b'\r' | b'\t' | 0x08 | 0x0c => 2,
                0..0x20 => 6,
                _ => 1,
            })
            .sum();
        self.add(escaped + 2);
    }
}

impl std::io::Write for Counter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.add(bytes.len());
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl fmt::Write for Counter {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        self.add(text.len());
        Ok(())
    }
}

/// `text` with control characters escaped and cut to 100 characters, for
/// an error message.
fn printable(text: &str) -> String {
    let mut shown: String = text
        .chars()
        .take(100)
        .flat_map(char::escape_debug)
        .collect();
    if text.chars().nth(100).is_some() {
        shown.push_str("...");
    }
    shown
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::CodedError;
    use serde_json::json;

    fn event(payload: Value) -> NewEvent {
        NewEvent::new("Happened", payload)
    }

    fn nested(depth: usize) -> Value {
        let mut value = json!(1);
        for level in 0..depth {
            value = if level % 2 == 0 {
                json!([value])
            } else {
                json!({ "a": value })
            };
        }
        value
    }

    fn refusal(event: &NewEvent, max: usize) -> (String, &'static str) {
        match check_storable(event, max) {
            Err(EventStoreError::UnstorablePayload { reason, limit, .. }) => (reason, limit),
            other => panic!("expected UnstorablePayload, got {other:?}"),
        }
    }

    #[test]
    fn the_limits_are_what_the_messages_say() {
        assert!(DEPTH_LIMIT.contains(&format!("at most {MAX_PAYLOAD_DEPTH} levels")));
        assert_eq!(DEFAULT_MAX_PAYLOAD_BYTES, 16 << 20);
        assert!(SIZE_LIMIT.contains("16 MiB"));
    }

    #[test]
    fn payloads_up_to_the_depth_limit_are_accepted_and_read_back() {
        let deepest = nested(MAX_PAYLOAD_DEPTH);
        check_storable(&event(deepest.clone()), DEFAULT_MAX_PAYLOAD_BYTES).unwrap();
        // What is accepted reads back, with room to spare for envelopes.
        let text = serde_json::to_string(&json!({ "outer": { "payload": deepest } })).unwrap();
        serde_json::from_str::<Value>(&text).unwrap();
    }

    #[test]
    fn deeper_payloads_are_refused_with_where() {
        for depth in [MAX_PAYLOAD_DEPTH + 1, 200, 1_000] {
            let event = event(nested(depth));
            let error = check_storable(&event, DEFAULT_MAX_PAYLOAD_BYTES).unwrap_err();
            assert_eq!(error.code().as_str(), "CR-E0019");
            assert_eq!(error.class(), crate::ErrorClass::Permanent);
            let text = error.to_string();
            assert!(text.contains("`Happened`"), "{text}");
            assert!(text.contains("more than 64 levels deep"), "{text}");
            assert!(
                text.contains("at `/a/0/a/0/") || text.contains("at `/0/a/0/a/"),
                "{text}"
            );
            assert!(text.contains("nothing was written"), "{text}");
        }
    }

    #[test]
    fn nul_characters_are_refused_in_strings_keys_headers_and_types() {
        let (reason, limit) = refusal(&event(json!({ "name": "a\u{0}b" })), usize::MAX);
        assert_eq!(reason, "its payload holds a NUL character at `/name`");
        assert_eq!(limit, NUL_LIMIT);

        let (reason, _) = refusal(&event(json!({ "list": [{ "k\u{0}": 1 }] })), usize::MAX);
        assert_eq!(
            reason,
            "its payload holds a NUL character at `/list/0/k\\0`"
        );

        let mut with_header = event(json!({}));
        with_header
            .metadata
            .headers
            .insert("tenant".into(), "x\u{0}".into());
        let (reason, _) = refusal(&with_header, usize::MAX);
        assert!(reason.contains("metadata header `tenant`"), "{reason}");

        let mut bad_type = event(json!({}));
        bad_type.event_type = "Hap\u{0}pened".into();
        let error = check_storable(&bad_type, usize::MAX).unwrap_err();
        assert!(error.to_string().contains("`Hap\\0pened`"), "{error}");
    }

    #[test]
    fn sizes_are_the_compact_json_length() {
        let payloads = [
            json!({ "text": "quote \" backslash \\ newline \n bell \u{7} é", "n": [1, -2.5, 1e300, null, true, false] }),
            json!([]),
            json!({}),
            json!("plain"),
            nested(MAX_PAYLOAD_DEPTH),
        ];
        for payload in payloads {
            let exact = serde_json::to_string(&payload).unwrap().len();
            check_storable(&event(payload.clone()), exact).unwrap();
            let (reason, limit) = refusal(&event(payload), exact - 1);
            assert_eq!(
                reason,
                format!(
                    "its payload is {exact} bytes of JSON, more than the limit of {} bytes",
                    exact - 1
                )
            );
            assert_eq!(limit, SIZE_LIMIT);
        }
    }

    #[test]
    fn large_metadata_is_refused_too() {
        let mut event = event(json!({}));
        event
            .metadata
            .headers
            .insert("big".into(), "x".repeat(2_000));
        check_storable(&event, 4_000).unwrap();
        let (reason, _) = refusal(&event, 1_000);
        assert!(reason.starts_with("its metadata is 2"), "{reason}");
    }

    #[test]
    fn a_batch_is_refused_by_its_first_bad_event() {
        let batch = [event(json!(1)), event(nested(100)), event(json!("\u{0}"))];
        let error = check_all_storable(&batch, DEFAULT_MAX_PAYLOAD_BYTES).unwrap_err();
        assert!(error.to_string().contains("levels deep"), "{error}");
        check_all_storable(&batch[..1], DEFAULT_MAX_PAYLOAD_BYTES).unwrap();
    }
}
