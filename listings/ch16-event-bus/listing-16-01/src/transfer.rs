//! Money transfers between two accounts: the events of a transfer, and the
//! vocabulary and state of the saga that carries it out (in `saga.rs`).

mod saga;

pub use saga::{DEADLINE, TransferSaga};

use composable_rust::prelude::*;
use composable_rust::saga::{SagaId, SagaSteps};
use composable_rust::uuid::Uuid;
use composable_rust::{EventStoreError, ExpectedVersion, NewEvent};
use serde::{Deserialize, Serialize};

/// What happens to a transfer outside the saga, in the stream
/// `transfer-<id>`: someone asks for it, and the teller records a step
/// that an account refused.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
pub enum TransferEvent {
    Requested { from: u64, to: u64, amount: u64 },
    Refused { account: u64, reason: String },
}

/// The stream of the transfer `id`: `transfer-<id>`.
pub fn transfer_stream(id: &SagaId) -> Result<StreamId, EventStoreError> {
    StreamId::for_aggregate("transfer", id)
}

/// Asks for a transfer of `amount` from account `from` to account `to`:
/// records `Requested` in a new transfer stream. Returns the transfer's id,
/// which is also its saga's id.
pub async fn request_transfer(
    events: &impl EventStore,
    from: u64,
    to: u64,
    amount: u64,
) -> Result<SagaId, EventStoreError> {
    let id = SagaId::from(Uuid::new_v4());
    let requested = NewEvent::from_event(&TransferEvent::Requested { from, to, amount })?;
    let stream = transfer_stream(&id)?;
    events
        .append(&stream, ExpectedVersion::NoStream, vec![requested])
        .await?;
    Ok(id)
}

/// What the saga reacts to, decoded from the events of transfers and
/// accounts.
#[derive(Debug, Clone, PartialEq)]
pub enum TransferInput {
    Requested {
        from: u64,
        to: u64,
        amount: u64,
    },
    /// An account event this transfer caused: money left an account.
    Withdrawn,
    /// An account event this transfer caused: money reached an account.
    Deposited,
    /// The teller recorded that an account refused this transfer's command.
    Refused {
        reason: String,
    },
}

/// What the saga records about itself, in its own stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
pub enum TransferSagaEvent {
    Started { from: u64, to: u64, amount: u64 },
    Debited,
    Credited,
    Refused { reason: String },
    TimedOut,
}

/// What the saga asks the teller to do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum TransferCommand {
    /// Take the money out of the source account.
    Debit { account: u64, amount: u64 },
    /// Put the money into the target account.
    Credit { account: u64, amount: u64 },
    /// Undo a debit: give the money back to the source account.
    Refund { account: u64, amount: u64 },
    /// Undo a credit: take the money back from the target account.
    Reclaim { account: u64, amount: u64 },
}

/// Where a transfer stands.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub enum Stage {
    #[default]
    New,
    Debiting,
    Crediting,
    Ended,
}

/// Everything the saga knows, built from its own events.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TransferState {
    pub stage: Stage,
    pub from: u64,
    pub to: u64,
    pub amount: u64,
    /// The steps taken, each with the command that undoes it.
    pub steps: SagaSteps<TransferCommand>,
    /// Why the transfer was undone, if it was.
    pub undone_because: Option<String>,
}
