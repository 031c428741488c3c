//! Events: what happened, as data that outlives the code that wrote it.
//!
//! Your events are a serde **enum**; each variant is one event type, and
//! its (optionally `#[serde(rename)]`d) variant name is the event's stable
//! **type name**, stored beside the payload. The payload is the variant's
//! content. Each type also has a **schema version** (1 unless
//! [`Event::schema_version`] says otherwise); when a variant's shape changes,
//! bump its version and register an [`upcast::Upcaster`] that turns
//! old payloads into the new shape.
//!
//! ```
//! use composable_rust_core::event::{decode, encode, Event, Upcasters};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
//! enum TodoEvent {
//!     #[serde(rename = "todo.created")]
//!     Created { title: String },
//!     #[serde(rename = "todo.completed")]
//!     Completed,
//! }
//!
//! impl Event for TodoEvent {}
//!
//! let encoded = encode(&TodoEvent::Created { title: "Buy milk".into() }).unwrap();
//! assert_eq!(encoded.event_type, "todo.created");
//! assert_eq!(encoded.schema_version, 1);
//! assert_eq!(encoded.payload, serde_json::json!({ "title": "Buy milk" }));
//! ```

mod codec;
mod envelope;
mod limits;
pub mod upcast;

pub use codec::{EncodedEvent, decode, decode_all, decode_replayed, encode};
pub use envelope::{
    EventMetadata, ExpectedVersion, NewEvent, Position, Snapshot, StoredEvent, StoredEventBuilder,
    StreamId,
};
pub use limits::{
    DEFAULT_MAX_PAYLOAD_BYTES, MAX_PAYLOAD_DEPTH, check_all_storable, check_storable,
};
pub use upcast::{Upcasted, Upcaster, Upcasters};

use serde::Serialize;
use serde::de::DeserializeOwned;

/// A domain event type: a serde enum whose variants are the event types.
///
/// Derive it with `#[derive(Event)]` (the facade's `macros` feature), which
/// takes the type names from serde and each variant's version from its
/// `#[event(version = N)]`; or implement it by hand, with an empty `impl`
/// and an override of [`schema_version`](Event::schema_version) when a
/// variant's payload shape changes.
///
/// # Examples
///
/// By hand, for an enum whose `Deposited` payload changed shape once
/// (`#[derive(Event)]` with `#[event(version = 2)]` writes the same):
///
/// ```
/// use composable_rust_core::Event;
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Debug, Clone, Serialize, Deserialize)]
/// enum AccountEvent {
///     Opened { owner: String },
///     Deposited { amount_cents: i64 },
/// }
///
/// impl Event for AccountEvent {
///     fn schema_version(event_type: &str) -> u32 {
///         match event_type {
///             "Deposited" => 2,
///             _ => 1,
///         }
///     }
///
///     fn event_types() -> &'static [&'static str] {
///         &["Opened", "Deposited"]
///     }
/// }
///
/// assert_eq!(AccountEvent::schema_version("Deposited"), 2);
/// assert_eq!(AccountEvent::schema_version("Opened"), 1);
/// ```
pub trait Event: Serialize + DeserializeOwned + Send + Sync + 'static {
    /// The current schema version of `event_type` (a variant's type name).
    /// Payloads stored with an older version are upcast on load.
    fn schema_version(event_type: &str) -> u32 {
        let _ = event_type;
        1
    }

    /// Every event type name this enum can produce, in declaration order.
    ///
    /// `#[derive(Event)]` fills it in; a hand-written `impl` may leave it
    /// empty, which tools that walk all event types (the event-shape lock)
    /// treat as "unknown" and ask for explicitly.
    fn event_types() -> &'static [&'static str] {
        &[]
    }
}
