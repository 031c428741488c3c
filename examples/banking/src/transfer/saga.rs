//! The transfer saga: debit the source, then credit the target; when the
//! credit is refused, refund the source; when the deadline comes first,
//! reverse. It carries everything it needs in its own state, built from
//! fat events: it never reads a read model.
//!
//! Idempotency comes in three layers: the runtime ignores an event it
//! already handled (same event id); `react` ignores an input that does
//! not fit the stage (a late or repeated answer); and the accounts ignore
//! a step for a transfer id they already carried out.

use std::time::Duration;

use composable_rust::Upcasters;
use composable_rust::event::decode;
use composable_rust::prelude::*;
use composable_rust::saga::{Reaction, Routed, SagaContext, SagaError, SagaId};
use serde::{Deserialize, Serialize};

use super::{TransferCommand, TransferEvent, TransferRequest};
use crate::account::{AccountEvent, Movement};

/// The name of the transfer's one timeout.
pub const DEADLINE: &str = "deadline";

/// Moves money from one account to another, or puts it back.
#[derive(Debug, Clone, Copy, Default)]
pub struct TransferSaga;

/// What the saga reacts to, decoded from transfer and account events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransferInput {
    /// The transfer was requested.
    Requested(TransferRequest),
    /// The source paid: a `Withdrawn` with this transfer's id.
    Debited,
    /// The target received: a `Deposited` with this transfer's id.
    Credited,
    /// An account refused a step.
    Refused {
        /// Why.
        reason: String,
    },
}

/// What the saga records about itself, in `saga-transfer-{id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Event)]
pub enum TransferSagaEvent {
    /// Started: the debit was sent.
    #[serde(rename = "transfer_saga.started")]
    Started(TransferRequest),
    /// The source was debited: the credit was sent.
    #[serde(rename = "transfer_saga.debited")]
    Debited,
    /// The target was credited: done.
    #[serde(rename = "transfer_saga.credited")]
    Credited,
    /// A step was refused.
    #[serde(rename = "transfer_saga.refused")]
    Refused {
        /// Why.
        reason: String,
    },
    /// The deadline passed first.
    #[serde(rename = "transfer_saga.timed_out")]
    TimedOut,
}

/// Where a transfer stands.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Stage {
    /// Not requested.
    #[default]
    New,
    /// Waiting for the source's debit.
    Debiting,
    /// Waiting for the target's credit.
    Crediting,
    /// Completed.
    Completed,
    /// Refused, nothing to undo or undone.
    Failed,
    /// Timed out and reversed.
    TimedOut,
}

/// Everything the saga knows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TransferState {
    /// Where it stands.
    pub stage: Stage,
    /// The request, once started.
    pub request: Option<TransferRequest>,
    /// Why it failed, if it did.
    pub failure: Option<String>,
}

impl Saga for TransferSaga {
    const KIND: &'static str = "transfer";
    type State = TransferState;
    type Input = TransferInput;
    type Event = TransferSagaEvent;
    type Command = TransferCommand;

    /// The transfer's own stream, and the account events that name the
    /// transfer in their [`Movement`]: fat events route themselves.
    fn route(&self, event: &StoredEvent) -> Result<Option<Routed<TransferInput>>, SagaError> {
        let upcasters = Upcasters::new();
        let stream = event.stream_id.as_str();
        if let Some(id) = stream.strip_prefix("transfer-") {
            let input = match decode::<TransferEvent>(event, &upcasters)? {
                Some(TransferEvent::Requested(request)) => TransferInput::Requested(request),
                Some(TransferEvent::Refused { reason, .. }) => TransferInput::Refused { reason },
                Some(TransferEvent::CreditKept) | None => return Ok(None),
            };
            return Ok(Some(Routed::new(SagaId::new(id)?, input)));
        }
        if !stream.starts_with("account-") {
            return Ok(None);
        }
        let (transfer_id, input) = match decode::<AccountEvent>(event, &upcasters)? {
            Some(AccountEvent::Withdrawn {
                movement: Movement::TransferOut { transfer_id, .. },
                ..
            }) => (transfer_id, TransferInput::Debited),
            Some(AccountEvent::Deposited {
                movement: Movement::TransferIn { transfer_id, .. },
                ..
            }) => (transfer_id, TransferInput::Credited),
            _ => return Ok(None),
        };
        Ok(Some(Routed::new(SagaId::new(transfer_id)?, input)))
    }

    fn react(
        &self,
        state: &TransferState,
        input: TransferInput,
        ctx: &SagaContext,
    ) -> Reaction<Self> {
        match (state.stage, input, &state.request) {
            (Stage::New, TransferInput::Requested(request), _) => {
                // The deadline was fixed when the transfer was requested:
                // a saga that starts late has only what is left of it.
                let left = (request.deadline - ctx.now)
                    .to_std()
                    .unwrap_or(Duration::ZERO);
                Reaction::new()
                    .record(TransferSagaEvent::Started(request.clone()))
                    .send(TransferCommand::Debit(request))
                    .start_timeout(DEADLINE, left)
            }
            (Stage::Debiting, TransferInput::Debited, Some(request)) => Reaction::new()
                .record(TransferSagaEvent::Debited)
                .send(TransferCommand::Credit(request.clone())),
            (Stage::Crediting, TransferInput::Credited, _) => Reaction::new()
                .record(TransferSagaEvent::Credited)
                .cancel_timeout(DEADLINE)
                .complete(),
            // The debit was refused: no money moved, nothing to undo.
            (Stage::Debiting, TransferInput::Refused { reason }, _) => Reaction::new()
                .record(TransferSagaEvent::Refused { reason })
                .cancel_timeout(DEADLINE)
                .compensated(),
            // The credit was refused (target closed or missing): the money
            // left the source and must go back.
            (Stage::Crediting, TransferInput::Refused { reason }, Some(request)) => Reaction::new()
                .record(TransferSagaEvent::Refused { reason })
                .send(TransferCommand::Refund(request.clone()))
                .cancel_timeout(DEADLINE)
                .compensated(),
            // Late, repeated or out of place: nothing to do.
            _ => Reaction::new(),
        }
    }

    /// The deadline passed while a step was unanswered. Whatever is in
    /// flight is refused from now on (the accounts check the deadline), so
    /// the accounts' state is final for this transfer: the teller's
    /// `Reverse` keeps a credit that made it, and refunds the source
    /// otherwise (if it was debited at all).
    fn on_timeout(&self, state: &TransferState, _name: &str, _: &SagaContext) -> Reaction<Self> {
        let mut reaction = Reaction::new().record(TransferSagaEvent::TimedOut);
        if let Some(request) = &state.request {
            reaction = reaction.send(TransferCommand::Reverse(request.clone()));
        }
        reaction.compensated()
    }

    fn apply(state: &mut TransferState, event: &TransferSagaEvent) {
        match event {
            TransferSagaEvent::Started(request) => {
                state.request = Some(request.clone());
                state.stage = Stage::Debiting;
            }
            TransferSagaEvent::Debited => state.stage = Stage::Crediting,
            TransferSagaEvent::Credited => state.stage = Stage::Completed,
            TransferSagaEvent::Refused { reason } => {
                state.failure = Some(reason.clone());
                state.stage = Stage::Failed;
            }
            TransferSagaEvent::TimedOut => {
                state.failure = Some("the deadline passed".to_owned());
                state.stage = Stage::TimedOut;
            }
        }
    }
}
