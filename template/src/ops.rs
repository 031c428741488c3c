//! Operations: looking into what the service stored.
//!
//! This module is where the service's operational tools live. The
//! `composable` command line reads any deployment's stores without knowing
//! its types; code here knows them, so it can decode and explain. The
//! replay debugger is wired here when you add it (see the book's chapter
//! "Time Travel: Temporal Queries and Replay").

use composable_rust::prelude::*;

/// An aggregate's history, one line per event: its version, type and
/// payload as stored.
pub async fn history(
    events: &impl EventStore,
    stream: &StreamId,
) -> Result<Vec<String>, crate::app::Error> {
    Ok(events
        .load_stream(stream, 0)
        .await?
        .iter()
        .map(|event| {
            format!(
                "v{} {} {}",
                event.stream_version, event.event_type, event.payload
            )
        })
        .collect())
}
