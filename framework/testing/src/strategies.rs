//! [proptest](https://proptest-rs.github.io/proptest/) strategies for the
//! framework's types (feature `proptest`): valid stream ids, positions and
//! metadata, stored events wrapped around your own event strategy, and
//! whole histories spread over a few streams, the input of the
//! ready-made [`properties`](crate::properties).
//!
//! Every strategy produces only values the framework accepts (a stream id
//! [`StreamId::new`] takes, positions after [`Position::START`]), and
//! shrinks towards small, readable ones.
//!
//! ```
//! use composable_rust_testing::proptest::prelude::*;
//! use composable_rust_testing::strategies;
//!
//! proptest! {
//!     // In a test crate, put `#[test]` on it.
//!     fn stream_ids_are_valid(id in strategies::stream_id()) {
//!         prop_assert!(!id.as_str().is_empty());
//!     }
//! }
//! stream_ids_are_valid();
//! ```

use std::fmt::Debug;

use chrono::{TimeZone, Utc};
use composable_rust_core::event::encode;
use composable_rust_core::{Event, EventMetadata, Position, StoredEvent, StreamId};
use proptest::collection::{SizeRange, btree_map, vec};
use proptest::prelude::*;
use uuid::Uuid;

/// A valid stream id: `<kind>-<number>`, the shape
/// [`StreamId::for_aggregate`] gives (`account-17`).
pub fn stream_id() -> impl Strategy<Value = StreamId> {
    ("[a-z][a-z0-9_]{0,11}", 1u64..100_000).prop_map(|(kind, n)| {
        StreamId::for_aggregate(&kind, n).unwrap_or_else(|error| panic!("{error}"))
    })
}

/// A position of a stored event (never [`Position::START`]).
pub fn position() -> impl Strategy<Value = Position> {
    (1u64..1_000_000, 1u64..1_000_000)
        .prop_map(|(commit, sequence)| Position::new(commit, sequence))
}

/// Event metadata: optional correlation and causation ids, up to three
/// headers.
pub fn metadata() -> impl Strategy<Value = EventMetadata> {
    (
        proptest::option::of(any::<u128>()),
        proptest::option::of(any::<u128>()),
        btree_map("[a-z][a-z-]{0,11}", "[ -~]{0,16}", 0..=3),
    )
        .prop_map(|(correlation, causation, headers)| EventMetadata {
            correlation_id: correlation.map(Uuid::from_u128),
            causation_id: causation.map(Uuid::from_u128),
            headers,
        })
}

/// A [`StoredEvent`] around a domain event from `events`, with any valid
/// stream id, stream version, position and metadata.
pub fn stored_event<E, S>(events: S) -> impl Strategy<Value = StoredEvent>
where
    E: Event + Debug,
    S: Strategy<Value = E>,
{
    (
        events,
        stream_id(),
        1u64..10_000,
        position(),
        metadata(),
        any::<u128>(),
    )
        .prop_map(|(event, stream, version, position, metadata, id)| {
            let encoded = encode(&event).unwrap_or_else(|error| panic!("{error}"));
            StoredEvent::builder(encoded.event_type, encoded.payload)
                .with_id(Uuid::from_u128(id))
                .with_stream(stream, version)
                .with_position(position)
                .with_schema_version(encoded.schema_version)
                .with_metadata(metadata)
                .build()
        })
}

/// A history: `len` domain events from `events`, each in one of `streams`
/// streams named `<kind>-1` ... `<kind>-<streams>`, in the order they
/// happened. Shrinks towards fewer events, in fewer streams.
///
/// # Panics
///
/// When `streams` is 0 or `kind-N` is not a valid stream id.
pub fn history<E, S>(
    kind: &str,
    streams: u64,
    events: S,
    len: impl Into<SizeRange>,
) -> impl Strategy<Value = Vec<(StreamId, E)>>
where
    E: Event + Debug + Clone,
    S: Strategy<Value = E>,
{
    assert!(streams > 0, "a history needs at least one stream");
    let ids: Vec<StreamId> = (1..=streams)
        .map(|n| StreamId::for_aggregate(kind, n).unwrap_or_else(|error| panic!("{error}")))
        .collect();
    vec((0..ids.len(), events), len).prop_map(move |pairs| {
        pairs
            .into_iter()
            .map(|(stream, event)| (ids[stream].clone(), event))
            .collect()
    })
}

/// A history as an event store would have stored it: stream versions
/// counting per stream, one position per event in order, recorded a
/// second apart, ids `00000000-...-0001` onwards (so a failing case reads
/// the same on every run).
///
/// # Panics
///
/// When an event does not encode (it is not a serde enum).
pub fn stored_history<E: Event>(history: &[(StreamId, E)]) -> Vec<StoredEvent> {
    let mut versions = std::collections::HashMap::<&StreamId, u64>::new();
    history
        .iter()
        .zip(1u64..)
        .map(|((stream, event), n)| {
            let encoded = encode(event).unwrap_or_else(|error| panic!("{error}"));
            let version = versions.entry(stream).or_default();
            *version += 1;
            StoredEvent::builder(encoded.event_type, encoded.payload)
                .with_id(Uuid::from_u128(u128::from(n)))
                .with_stream(stream.clone(), *version)
                .with_position(Position::new(n, n))
                .with_schema_version(encoded.schema_version)
                .with_recorded_at(
                    Utc.timestamp_opt(1_735_689_600 + n as i64, 0)
                        .single()
                        .unwrap_or_default(),
                )
                .build()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use proptest::test_runner::TestRunner;
    use serde::{Deserialize, Serialize};

    use super::*;

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    enum Ticked {
        Tick(u8),
    }
    impl Event for Ticked {}

    #[test]
    fn stored_histories_count_versions_per_stream() {
        let a = StreamId::new("a-1").unwrap();
        let b = StreamId::new("b-1").unwrap();
        let stored = stored_history(&[
            (a.clone(), Ticked::Tick(1)),
            (b.clone(), Ticked::Tick(2)),
            (a.clone(), Ticked::Tick(3)),
        ]);
        let versions: Vec<_> = stored
            .iter()
            .map(|e| (e.stream_id.as_str(), e.stream_version, e.position.sequence))
            .collect();
        assert_eq!(versions, [("a-1", 1, 1), ("b-1", 1, 2), ("a-1", 2, 3)]);
        assert_eq!(stored[0].event_type, "Tick");
        assert_eq!(stored[2].payload, serde_json::json!(3));
    }

    #[test]
    fn generated_values_are_valid() {
        let mut runner = TestRunner::default();
        runner
            .run(&stored_event(any::<u8>().prop_map(Ticked::Tick)), |event| {
                prop_assert!(event.position > Position::START);
                prop_assert!(StreamId::new(event.stream_id.as_str()).is_ok());
                prop_assert_eq!(event.event_type.as_str(), "Tick");
                Ok(())
            })
            .unwrap();
        runner
            .run(
                &history("acct", 3, any::<u8>().prop_map(Ticked::Tick), 0..20),
                |history| {
                    prop_assert!(history.len() < 20);
                    for (stream, _) in &history {
                        prop_assert!(
                            ["acct-1", "acct-2", "acct-3"].contains(&stream.as_str()),
                            "{stream}"
                        );
                    }
                    Ok(())
                },
            )
            .unwrap();
    }
}
