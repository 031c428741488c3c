//! What both trace tests use: the bus-fed read model of their command's
//! event, and helpers to look at the spans the receiver got.

use async_trait::async_trait;
use composable_rust_core::projection::{ProjectionStore, ProjectionTxExt};
use composable_rust_core::{InMemoryProjectionStore, Projection, ProjectionError, StoredEvent};

use super::receiver::Received;

/// A read model of the deposits, fed by the bus.
pub(crate) struct Deposits;

#[async_trait]
impl Projection for Deposits {
    type Store = InMemoryProjectionStore;

    fn name(&self) -> &str {
        "deposits"
    }

    async fn apply(
        &self,
        event: &StoredEvent,
        tx: &mut <Self::Store as ProjectionStore>::Tx,
    ) -> Result<(), ProjectionError> {
        tx.save_json(&format!("deposit:{}", event.stream_id), &event.payload)
            .await
    }

    async fn reset(
        &self,
        _: &mut <Self::Store as ProjectionStore>::Tx,
    ) -> Result<(), ProjectionError> {
        Ok(())
    }
}

/// The one span called `name`.
///
/// # Panics
///
/// When there is none or more than one.
pub(crate) fn one<'a>(spans: &'a [Received], name: &str) -> &'a Received {
    let found: Vec<_> = spans.iter().filter(|span| span.name == name).collect();
    assert_eq!(found.len(), 1, "one `{name}` span expected, got {found:#?}");
    found[0]
}

/// `bytes` in lower-case hex, as trace and span ids are written.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
