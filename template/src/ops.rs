//! Operations: looking into what the service stored.
//!
//! The `composable` command line reads any deployment's stores without
//! knowing its types. The tools here know them, so they can decode and
//! explain: an order's history, the replay debugger (state as of a version
//! or a time, then each event with the state diff it caused), one
//! fulfillment's history as a sequence diagram, and the fulfillment saga's
//! declared map (its steps, stops and timeout) as a flowchart. `main.rs` exposes them as
//! `ops` subcommands; the book's chapter "Time Travel: Temporal Queries and
//! Replay" explains the tools.

use std::io::Write;

use composable_rust::aggregate::{AsOf, StateCondition};
use composable_rust::prelude::*;
use composable_rust::saga::{DeclaredSaga, SagaHistory, SagaId};
use composable_rust::{AggregateRepository, Saga};

use crate::aggregates::order::Order;
use crate::app::Error;
use crate::sagas::fulfillment::FulfillmentSaga;

/// An aggregate's history, one line per event: its version, type and
/// payload as stored.
pub async fn history(
    events: &impl EventStore,
    stream: &StreamId,
) -> Result<Vec<String>, Error> {
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

/// The replay debugger on one order: prints its state as of `from`, then
/// each later event with the state diff it caused, and stops after the
/// first event that makes `until` true (or at the end of the stream).
pub async fn replay<S: EventStore>(
    orders: &AggregateRepository<Order, S>,
    stream: &StreamId,
    from: AsOf,
    until: Option<&StateCondition>,
    out: &mut impl Write,
) -> Result<(), Error> {
    let mut debugger = orders.debugger(stream, from).await?;
    debugger.print_state(out)?;
    debugger.print_until(out, |state, _| until.is_some_and(|c| c.matches(state)))?;
    Ok(())
}

/// One fulfillment's recorded history (what it received, recorded, sent,
/// and how it ended) as a mermaid sequence diagram.
pub async fn saga_history(
    events: &impl EventStore,
    order: &str,
    out: &mut impl Write,
) -> Result<(), Error> {
    let history = SagaHistory::load(events, FulfillmentSaga::KIND, &SagaId::new(order)?).await?;
    write!(out, "{}", history.to_mermaid())?;
    Ok(())
}

/// The fulfillment saga's declared map (`FulfillmentSaga::map`, checked
/// against the code by `tests/fulfillment.rs`) as a mermaid flowchart. It
/// reads no store: the map is code.
pub fn saga_graph(out: &mut impl Write) -> Result<(), Error> {
    write!(out, "{}", FulfillmentSaga::map()?.to_mermaid())?;
    Ok(())
}
