//! The reservation expiry saga: a reservation nobody ships within its
//! time-to-live goes back on the shelf.
//!
//! ```text
//! Reserved ─► watch (timeout "expiry" at expires_at) ─► Committed / Released ─► done
//!                          │
//!                    timeout fires
//!                          ▼
//!              Release { reason: expired } ─► done
//! ```
//!
//! The timeout runs on the runtime's clock (a `TestClock` in tests: an
//! hour passes in a call to `advance`). The deadline comes from the event
//! (`expires_at`), not from when the saga saw it, so a saga that catches
//! up late still expires the reservation on time (at once, if the deadline
//! passed meanwhile). The timeout is recorded with the saga's step, so a
//! restarted process arms it again for what is left of it.
//!
//! Releasing an already shipped reservation is a no-op in the `Product`
//! aggregate, so an expiry that races a commit is harmless.

use std::time::Duration;

use composable_rust::Upcasters;
use composable_rust::chrono::{DateTime, Utc};
use composable_rust::event::decode;
use composable_rust::prelude::*;
use composable_rust::saga::{Reaction, Routed, SagaContext, SagaError, SagaId};
use serde::{Deserialize, Serialize};

use crate::product::ProductEvent;

/// The name of the saga's one timeout.
pub const EXPIRY: &str = "expiry";

/// The saga (no settings: the time-to-live is in each reservation).
#[derive(Debug, Clone, Default)]
pub struct ExpirySaga;

/// The saga instance of reservation `reservation_id` of `sku`.
pub fn expiry_saga_id(sku: &str, reservation_id: &str) -> Result<SagaId, SagaError> {
    SagaId::new(format!("{sku}.{reservation_id}"))
}

/// What the saga reacts to.
#[derive(Debug, Clone, PartialEq)]
pub enum ExpiryInput {
    /// A reservation was made.
    Reserved {
        sku: String,
        reservation_id: String,
        expires_at: DateTime<Utc>,
    },
    /// It was shipped or released before expiring.
    Closed,
}

/// What the saga records about itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
pub enum ExpiryEvent {
    #[serde(rename = "expiry.watching")]
    Watching {
        sku: String,
        reservation_id: String,
        expires_at: DateTime<Utc>,
    },
    #[serde(rename = "expiry.closed_in_time")]
    ClosedInTime,
    #[serde(rename = "expiry.expired")]
    Expired,
}

/// What the saga asks for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExpiryCommand {
    /// Release the reservation: it expired.
    Release { sku: String, reservation_id: String },
}

/// Where the saga stands.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ExpiryState {
    /// `(sku, reservation id)` once watching.
    pub watching: Option<(String, String)>,
    pub done: bool,
}

impl Saga for ExpirySaga {
    const KIND: &'static str = "reservation-expiry";
    type State = ExpiryState;
    type Input = ExpiryInput;
    type Event = ExpiryEvent;
    type Command = ExpiryCommand;

    fn route(&self, event: &StoredEvent) -> Result<Option<Routed<ExpiryInput>>, SagaError> {
        if !event.stream_id.as_str().starts_with("product-") {
            return Ok(None);
        }
        let routed = match decode::<ProductEvent>(event, &Upcasters::new())? {
            Some(ProductEvent::Reserved {
                sku,
                reservation_id,
                expires_at,
                ..
            }) => (
                expiry_saga_id(&sku, &reservation_id)?,
                ExpiryInput::Reserved {
                    sku,
                    reservation_id,
                    expires_at,
                },
            ),
            Some(
                ProductEvent::Committed {
                    sku,
                    reservation_id,
                    ..
                }
                | ProductEvent::Released {
                    sku,
                    reservation_id,
                    ..
                },
            ) => (expiry_saga_id(&sku, &reservation_id)?, ExpiryInput::Closed),
            _ => return Ok(None),
        };
        Ok(Some(Routed::new(routed.0, routed.1)))
    }

    fn react(&self, state: &ExpiryState, input: ExpiryInput, ctx: &SagaContext) -> Reaction<Self> {
        match (state.watching.is_some(), input) {
            (
                false,
                ExpiryInput::Reserved {
                    sku,
                    reservation_id,
                    expires_at,
                },
            ) => {
                // Past deadlines (a saga catching up late) fire at once.
                let left = (expires_at - ctx.now).to_std().unwrap_or(Duration::ZERO);
                Reaction::new()
                    .record(ExpiryEvent::Watching {
                        sku,
                        reservation_id,
                        expires_at,
                    })
                    .start_timeout(EXPIRY, left)
            }
            (true, ExpiryInput::Closed) => Reaction::new()
                .record(ExpiryEvent::ClosedInTime)
                .cancel_timeout(EXPIRY)
                .complete(),
            // A repeated reservation event, or a close the saga never saw
            // open: nothing to do.
            _ => Reaction::new(),
        }
    }

    fn on_timeout(&self, state: &ExpiryState, _name: &str, _ctx: &SagaContext) -> Reaction<Self> {
        let Some((sku, reservation_id)) = state.watching.clone() else {
            return Reaction::new();
        };
        Reaction::new()
            .record(ExpiryEvent::Expired)
            .send(ExpiryCommand::Release {
                sku,
                reservation_id,
            })
            .complete()
    }

    fn apply(state: &mut ExpiryState, event: &ExpiryEvent) {
        match event {
            ExpiryEvent::Watching {
                sku,
                reservation_id,
                ..
            } => state.watching = Some((sku.clone(), reservation_id.clone())),
            ExpiryEvent::ClosedInTime | ExpiryEvent::Expired => state.done = true,
        }
    }
}
