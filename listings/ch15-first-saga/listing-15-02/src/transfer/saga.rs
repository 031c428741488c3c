//! The transfer saga: debit the source, then credit the target. A refused
//! step undoes the steps completed before it; a transfer that does not
//! finish in time undoes every step that may have happened, most recent
//! first.

use std::time::Duration;

use composable_rust::Upcasters;
use composable_rust::event::decode;
use composable_rust::prelude::*;
use composable_rust::saga::{Reaction, Routed, SAGA_ID_HEADER, SagaContext, SagaError, SagaId};

use super::{
    Stage, TransferCommand, TransferEvent, TransferInput, TransferSagaEvent, TransferState,
};
use crate::account::AccountEvent;

/// The name of the transfer's one timeout.
pub const DEADLINE: &str = "deadline";

/// Moves money between two accounts, or gives up and puts it back.
#[derive(Debug)]
pub struct TransferSaga {
    /// How long a transfer may take before it is undone.
    pub deadline: Duration,
}

impl Saga for TransferSaga {
    const KIND: &'static str = "transfer";
    type State = TransferState;
    type Input = TransferInput;
    type Event = TransferSagaEvent;
    type Command = TransferCommand;

    fn route(&self, event: &StoredEvent) -> Result<Option<Routed<TransferInput>>, SagaError> {
        let upcasters = Upcasters::new();
        let stream = event.stream_id.as_str();
        // The transfer's own stream: its id is the saga's id.
        if let Some(id) = stream.strip_prefix("transfer-") {
            let input = match decode::<TransferEvent>(event, &upcasters)? {
                Some(TransferEvent::Requested { from, to, amount }) => {
                    TransferInput::Requested { from, to, amount }
                }
                Some(TransferEvent::Refused { reason, .. }) => TransferInput::Refused { reason },
                None => return Ok(None),
            };
            return Ok(Some(Routed::new(SagaId::new(id)?, input)));
        }
        // An account event the teller recorded for a transfer names it.
        let Some(id) = event.metadata.headers.get(SAGA_ID_HEADER) else {
            return Ok(None);
        };
        let input = match decode::<AccountEvent>(event, &upcasters)? {
            Some(AccountEvent::Withdrawn { .. }) => TransferInput::Withdrawn,
            Some(AccountEvent::Deposited { .. }) => TransferInput::Deposited,
            _ => return Ok(None),
        };
        Ok(Some(Routed::new(SagaId::new(id.as_str())?, input)))
    }

    fn react(
        &self,
        state: &TransferState,
        input: TransferInput,
        _: &SagaContext,
    ) -> Reaction<Self> {
        use TransferInput::*;
        match (state.stage, input) {
            (Stage::New, Requested { from, to, amount }) => Reaction::new()
                .record(TransferSagaEvent::Started { from, to, amount })
                .send(TransferCommand::Debit {
                    account: from,
                    amount,
                })
                .start_timeout(DEADLINE, self.deadline),
            (Stage::Debiting, Withdrawn) => Reaction::new()
                .record(TransferSagaEvent::Debited)
                .send(TransferCommand::Credit {
                    account: state.to,
                    amount: state.amount,
                }),
            (Stage::Crediting, Deposited) => Reaction::new()
                .record(TransferSagaEvent::Credited)
                .cancel_timeout(DEADLINE)
                .complete(),
            // A refused step did nothing; undo the steps completed before it.
            (Stage::Debiting | Stage::Crediting, Refused { reason }) => Reaction::new()
                .record(TransferSagaEvent::Refused { reason })
                .send_all(state.steps.compensations())
                .cancel_timeout(DEADLINE)
                .compensated(),
            // Late, repeated or out of place: nothing to do.
            _ => Reaction::new(),
        }
    }

    fn on_timeout(&self, state: &TransferState, _name: &str, _: &SagaContext) -> Reaction<Self> {
        // The step in flight may or may not have happened: undo it too.
        Reaction::new()
            .record(TransferSagaEvent::TimedOut)
            .send_all(state.steps.compensations_with_in_flight())
            .compensated()
    }

    fn apply(state: &mut TransferState, event: &TransferSagaEvent) {
        match event {
            TransferSagaEvent::Started { from, to, amount } => {
                (state.from, state.to, state.amount) = (*from, *to, *amount);
                let refund = TransferCommand::Refund {
                    account: *from,
                    amount: *amount,
                };
                state.steps.start("debit", Some(refund));
                state.stage = Stage::Debiting;
            }
            TransferSagaEvent::Debited => {
                state.steps.complete("debit");
                let reclaim = TransferCommand::Reclaim {
                    account: state.to,
                    amount: state.amount,
                };
                state.steps.start("credit", Some(reclaim));
                state.stage = Stage::Crediting;
            }
            TransferSagaEvent::Credited => {
                state.steps.complete("credit");
                state.stage = Stage::Ended;
            }
            TransferSagaEvent::Refused { reason } => {
                for step in ["debit", "credit"] {
                    if state.steps.in_flight().contains(&step) {
                        state.steps.fail(step);
                    }
                }
                state.undone_because = Some(reason.clone());
                state.stage = Stage::Ended;
            }
            TransferSagaEvent::TimedOut => {
                state.undone_because = Some("it did not finish in time".into());
                state.stage = Stage::Ended;
            }
        }
    }
}
