//! Transfers between accounts: what a transfer records in its own stream
//! (`transfer-{id}`), how one is requested (idempotently, by its id), and
//! the vocabulary of the saga that carries it out ([`saga`]) and of the
//! teller that executes the saga's commands on the accounts ([`teller`]).
//!
//! ```text
//! Requested ─► Debit(source) ─► Withdrawn ─► Credit(target) ─► Deposited ✔ completed
//!                  │                              │
//!               refused                 refused (closed, missing)
//!                  ▼                              ▼
//!          ✘ nothing to undo             Refund(source) ✘ compensated
//!
//! deadline reached first ─► Reverse: the target's credit happened? keep it : Refund(source)
//! ```

pub mod saga;
pub mod teller;

use chrono::{DateTime, Utc};
use composable_rust::event::decode;
use composable_rust::prelude::*;
use composable_rust::saga::SagaId;
use composable_rust::{EventStoreError, ExpectedVersion, NewEvent, Upcasters};
use serde::{Deserialize, Serialize};

use crate::account::check_amount;
use crate::error::{BankError, ServiceError, check_id};

/// What happens to a transfer outside the saga, in `transfer-{id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Event)]
pub enum TransferEvent {
    /// Someone asked for the transfer. Fat: the saga needs nothing else.
    #[serde(rename = "transfer.requested")]
    Requested(TransferRequest),
    /// An account refused one of the transfer's steps (recorded by the
    /// teller, with the command's id in the metadata).
    #[serde(rename = "transfer.refused")]
    Refused {
        /// The account that refused.
        account: String,
        /// Its `BANK-` code.
        code: String,
        /// Its message.
        reason: String,
    },
    /// The transfer timed out, but the target had been credited before the
    /// deadline: the transfer stands, nothing is refunded.
    #[serde(rename = "transfer.credit_kept")]
    CreditKept,
}

/// The stored type name of [`TransferEvent::CreditKept`].
pub const CREDIT_KEPT: &str = "transfer.credit_kept";

/// A transfer as requested.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransferRequest {
    /// The transfer's id: the key of its idempotency, and its saga's id.
    pub transfer_id: String,
    /// The source account.
    pub from: String,
    /// The target account.
    pub to: String,
    /// Cents, above 0.
    pub amount: i64,
    /// When it was requested, on the bank's clock.
    pub requested_at: DateTime<Utc>,
    /// Steps are refused from this time on, and the saga undoes the
    /// transfer then: `requested_at` plus the bank's transfer timeout.
    pub deadline: DateTime<Utc>,
}

impl TransferRequest {
    fn same_transfer(&self, other: &Self) -> bool {
        (&self.from, &self.to, self.amount) == (&other.from, &other.to, other.amount)
    }
}

/// What [`request`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requested {
    /// A new transfer was recorded.
    New,
    /// The same transfer had been requested before (same id, same
    /// accounts and amount): nothing new was recorded.
    AlreadyRequested,
}

/// The stream of transfer `id`: `transfer-{id}`.
pub fn transfer_stream(id: &str) -> Result<StreamId, EventStoreError> {
    StreamId::for_aggregate("transfer", id)
}

/// Records a transfer request, once per transfer id: the stream must not
/// exist yet (`ExpectedVersion::NoStream`), so two requests with the same
/// id cannot both be recorded, even when they race. A repeated request for
/// the same transfer is [`Requested::AlreadyRequested`]; the same id for a
/// different transfer is refused (`BANK-E0010`).
pub async fn request(
    events: &dyn EventStore,
    transfer: TransferRequest,
) -> Result<Requested, ServiceError> {
    check_id(&transfer.transfer_id)?;
    check_id(&transfer.from)?;
    check_id(&transfer.to)?;
    check_amount(transfer.amount)?;
    if transfer.from == transfer.to {
        return Err(BankError::SameAccount {
            account: transfer.from,
        }
        .into());
    }
    let stream = transfer_stream(&transfer.transfer_id)?;
    let event = NewEvent::from_event(&TransferEvent::Requested(transfer.clone()))?;
    match events
        .append(&stream, ExpectedVersion::NoStream, vec![event])
        .await
    {
        Ok(_) => Ok(Requested::New),
        Err(EventStoreError::WrongExpectedVersion { .. }) => {
            let first = events.load_stream(&stream, 0).await?;
            let existing = first
                .first()
                .map(|event| decode::<TransferEvent>(event, &Upcasters::new()))
                .transpose()?
                .flatten();
            match existing {
                Some(TransferEvent::Requested(existing)) if existing.same_transfer(&transfer) => {
                    Ok(Requested::AlreadyRequested)
                }
                Some(TransferEvent::Requested(existing)) => Err(BankError::TransferIdReused {
                    transfer: transfer.transfer_id,
                    existing: format!(
                        "{} cents from {} to {}",
                        existing.amount, existing.from, existing.to
                    ),
                }
                .into()),
                _ => Err(BankError::TransferIdReused {
                    transfer: transfer.transfer_id,
                    existing: "an unknown transfer".to_owned(),
                }
                .into()),
            }
        }
        Err(error) => Err(error.into()),
    }
}

/// What the saga asks the teller to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum TransferCommand {
    /// Take the money out of the source.
    Debit(TransferRequest),
    /// Put the money into the target.
    Credit(TransferRequest),
    /// Compensate a debit: give the money back to the source.
    Refund(TransferRequest),
    /// The deadline passed with the credit unanswered: keep the credit if
    /// it happened before the deadline, refund the source otherwise.
    Reverse(TransferRequest),
}

/// The saga id of transfer `id`.
pub fn saga_id(id: &str) -> Result<SagaId, ServiceError> {
    Ok(SagaId::new(id)?)
}
