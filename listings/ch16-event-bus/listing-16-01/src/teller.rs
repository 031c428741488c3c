//! The teller carries out the transfer saga's commands on the accounts: it
//! is the saga's `CommandDispatcher`.
//!
//! Commands arrive at least once, so the teller records each outcome with
//! the command's id and looks for that id before doing anything: a command
//! delivered twice is carried out once.

use composable_rust::prelude::*;
use composable_rust::saga::{CommandId, DispatchError, SAGA_ID_HEADER, SagaCommand};
use composable_rust::{AggregateRepository, EventStoreError, ExpectedVersion, NewEvent};

use crate::account::{Account, AccountCommand};
use crate::transfer::{TransferCommand, TransferEvent, transfer_stream};

/// Carries out transfer commands on the accounts in an event store.
#[derive(Debug)]
pub struct Teller<S> {
    events: S,
    accounts: AggregateRepository<Account, S>,
}

impl<S: EventStore + Clone> Teller<S> {
    pub fn new(events: S) -> Self {
        let accounts = AggregateRepository::new(events.clone(), ());
        Self { events, accounts }
    }
}

#[async_trait]
impl<S: EventStore + Clone> CommandDispatcher<TransferCommand> for Teller<S> {
    async fn dispatch(&self, command: &SagaCommand<TransferCommand>) -> Result<(), DispatchError> {
        // Which account, what to ask it, and whether this undoes a step.
        let (account, change, undo) = match command.command {
            TransferCommand::Debit { account, amount } => {
                (account, AccountCommand::Withdraw { amount }, false)
            }
            TransferCommand::Credit { account, amount } => {
                (account, AccountCommand::Deposit { amount }, false)
            }
            TransferCommand::Refund { account, amount } => {
                (account, AccountCommand::Deposit { amount }, true)
            }
            TransferCommand::Reclaim { account, amount } => {
                (account, AccountCommand::Withdraw { amount }, true)
            }
        };
        let account_stream = self.accounts.stream_id(account).map_err(store_failed)?;
        let transfer = transfer_stream(&command.saga_id).map_err(store_failed)?;

        loop {
            let history = self.read(&account_stream).await?;
            let outcomes = self.read(&transfer).await?;

            // 1. Delivered again: the outcome is already recorded.
            let done =
                |event: &StoredEvent| CommandId::of_event(event).as_ref() == Some(&command.id);
            if history.iter().chain(&outcomes).any(done) {
                return Ok(());
            }

            // 2. Undoing a step that never reached this account: nothing to undo.
            let saga_id = command.saga_id.to_string();
            let by_this_transfer =
                |event: &StoredEvent| event.metadata.headers.get(SAGA_ID_HEADER) == Some(&saga_id);
            if undo && !history.iter().any(by_this_transfer) {
                return Ok(());
            }

            // 3. Decide on the account as it is now, and record the outcome
            //    with the command's id: the account's events, or the refusal
            //    in the transfer's stream.
            let loaded = self
                .accounts
                .load(&account_stream)
                .await
                .map_err(store_failed)?;
            let (stream, version, outcome) = match loaded.state.decide(change.clone(), &()) {
                Ok(events) => (&account_stream, loaded.version, encode(&events)?),
                Err(refusal) => {
                    let refused = TransferEvent::Refused {
                        account,
                        reason: refusal.to_string(),
                    };
                    let version = outcomes.last().map_or(0, |event| event.stream_version);
                    (&transfer, version, encode(&[refused])?)
                }
            };
            let outcome = outcome
                .into_iter()
                .map(|event| event.with_metadata(command.metadata()))
                .collect();
            let expected = ExpectedVersion::Exact(version);
            match self.events.append(stream, expected, outcome).await {
                Ok(_) => return Ok(()),
                // Someone else wrote first: look again and decide again.
                Err(EventStoreError::WrongExpectedVersion { .. }) => continue,
                Err(error) => return Err(store_failed(error)),
            }
        }
    }
}

impl<S: EventStore> Teller<S> {
    async fn read(&self, stream: &StreamId) -> Result<Vec<StoredEvent>, DispatchError> {
        self.events
            .load_stream(stream, 0)
            .await
            .map_err(store_failed)
    }
}

fn encode<E: Event>(events: &[E]) -> Result<Vec<NewEvent>, DispatchError> {
    events
        .iter()
        .map(|event| NewEvent::from_event(event).map_err(store_failed))
        .collect()
}

/// The command could not be carried out now; the runtime delivers it again.
fn store_failed(error: EventStoreError) -> DispatchError {
    DispatchError::new("the event store failed").with_source(error)
}
