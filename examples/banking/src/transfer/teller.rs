//! The teller carries out the transfer saga's commands on the accounts:
//! it is the saga's [`CommandDispatcher`].
//!
//! Commands arrive **at least once**. The accounts themselves ignore a
//! step for a transfer they already carried out (they keep the transfer
//! ids), and the teller records a refusal or a kept credit in the
//! transfer's stream with the command's id, looking for that id first: a
//! command delivered twice is carried out once, and a refused step stays
//! refused even if the account could now accept it (the saga has moved
//! on by then).
//!
//! A branch can be taken offline ([`Teller::set_offline`]): commands for
//! its accounts then fail to be delivered, as a message queue that is
//! down would, and stay pending in the saga until
//! [`SagaRuntime::retry_pending`](composable_rust::SagaRuntime::retry_pending).
//! That is how the demo and the tests make a credit miss its deadline.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, PoisonError};

use composable_rust::aggregate::RepositoryError;
use composable_rust::prelude::*;
use composable_rust::saga::{CommandId, DispatchError, SagaCommand};
use composable_rust::{AggregateRepository, EventStoreError, ExpectedVersion, NewEvent};

use super::{TransferCommand, TransferEvent, TransferRequest, transfer_stream};
use crate::account::{Account, AccountCommand, account_stream, name_account};
use crate::error::BankError;

/// How many times a step is decided again when a customer's deposit or
/// withdrawal appended to the same account first.
const CONFLICT_ATTEMPTS: usize = 5;

/// Carries out transfer commands on the accounts of an event store.
#[derive(Debug)]
pub struct Teller {
    events: Arc<dyn EventStore>,
    accounts: AggregateRepository<Account, Arc<dyn EventStore>>,
    offline: Mutex<BTreeSet<String>>,
}

impl Teller {
    /// A teller on `events`, deciding with `clock` (the bank's clock, so
    /// deadlines are checked on the same time the saga's timeouts run on).
    pub fn new(events: Arc<dyn EventStore>, clock: Arc<dyn Clock>) -> Self {
        Self {
            accounts: AggregateRepository::new(Arc::clone(&events), clock),
            events,
            offline: Mutex::new(BTreeSet::new()),
        }
    }

    /// Takes the branch of `account` offline (`true`) or back online.
    pub fn set_offline(&self, account: &str, offline: bool) {
        let mut set = self.offline.lock().unwrap_or_else(PoisonError::into_inner);
        if offline {
            set.insert(account.to_owned());
        } else {
            set.remove(account);
        }
    }

    fn check_online(&self, accounts: &[&str]) -> Result<(), DispatchError> {
        let offline = self.offline.lock().unwrap_or_else(PoisonError::into_inner);
        match accounts.iter().find(|account| offline.contains(**account)) {
            // Transient: the command stays pending and goes out later.
            Some(account) => Err(DispatchError::new(format!(
                "the branch of account {account} is offline"
            ))),
            None => Ok(()),
        }
    }

    /// Runs `change` on `account`; a refusal is returned, not an error.
    async fn execute(
        &self,
        account: &str,
        change: impl Fn() -> AccountCommand,
    ) -> Result<Result<(), BankError>, DispatchError> {
        let stream = account_stream(account).map_err(store_failed)?;
        match self
            .accounts
            .execute_with_retry(&stream, CONFLICT_ATTEMPTS, change)
            .await
        {
            Ok(_) => Ok(Ok(())),
            Err(RepositoryError::Rejected(refusal)) => Ok(Err(name_account(refusal, account))),
            Err(RepositoryError::Store(error)) => Err(store_failed(error)),
        }
    }

    /// Appends `event` to the transfer's stream with the command's id,
    /// unless an event with that id is already there.
    async fn record_once(
        &self,
        request: &TransferRequest,
        event: &TransferEvent,
        command: &SagaCommand<TransferCommand>,
    ) -> Result<(), DispatchError> {
        let stream = transfer_stream(&request.transfer_id).map_err(store_failed)?;
        loop {
            let existing = self
                .events
                .load_stream(&stream, 0)
                .await
                .map_err(store_failed)?;
            if already_recorded(&existing, &command.id) {
                return Ok(());
            }
            let version = existing.last().map_or(0, |event| event.stream_version);
            let new = NewEvent::from_event(event)
                .map_err(store_failed)?
                .with_metadata(command.metadata());
            match self
                .events
                .append(&stream, ExpectedVersion::Exact(version), vec![new])
                .await
            {
                Err(EventStoreError::WrongExpectedVersion { .. }) => continue,
                result => return result.map(|_| ()).map_err(store_failed),
            }
        }
    }

    /// Whether the outcome of `command` is already in the transfer's stream.
    async fn outcome_recorded(
        &self,
        request: &TransferRequest,
        command: &SagaCommand<TransferCommand>,
    ) -> Result<bool, DispatchError> {
        let stream = transfer_stream(&request.transfer_id).map_err(store_failed)?;
        let existing = self
            .events
            .load_stream(&stream, 0)
            .await
            .map_err(store_failed)?;
        Ok(already_recorded(&existing, &command.id))
    }

    /// A debit or a credit: carried out, or its refusal recorded.
    async fn step(
        &self,
        account: &str,
        change: AccountCommand,
        request: &TransferRequest,
        command: &SagaCommand<TransferCommand>,
    ) -> Result<(), DispatchError> {
        if self.outcome_recorded(request, command).await? {
            return Ok(());
        }
        if let Err(refusal) = self.execute(account, || change.clone()).await? {
            let refused = TransferEvent::Refused {
                account: account.to_owned(),
                code: refusal.code().as_str().to_owned(),
                reason: refusal.to_string(),
            };
            self.record_once(request, &refused, command).await?;
        }
        Ok(())
    }

    async fn refund(&self, request: &TransferRequest) -> Result<(), DispatchError> {
        let refund = || AccountCommand::RefundTransfer {
            transfer_id: request.transfer_id.clone(),
            amount: request.amount,
        };
        // A refund is never refused for a debit that happened (the account
        // ignores it otherwise); a refusal here is a bug, not bad luck.
        self.execute(&request.from, refund)
            .await?
            .map_err(|refusal| {
                DispatchError::permanent("the refund was refused").with_source(refusal)
            })
    }
}

fn already_recorded(events: &[StoredEvent], id: &CommandId) -> bool {
    events
        .iter()
        .any(|stored| CommandId::of_event(stored).as_ref() == Some(id))
}

/// The store could not be reached or refused the write: transient, the
/// command stays pending and is delivered again.
fn store_failed(error: EventStoreError) -> DispatchError {
    DispatchError::new("the event store failed").with_source(error)
}

#[async_trait]
impl CommandDispatcher<TransferCommand> for Teller {
    async fn dispatch(&self, command: &SagaCommand<TransferCommand>) -> Result<(), DispatchError> {
        match &command.command {
            TransferCommand::Debit(request) => {
                self.check_online(&[&request.from])?;
                let debit = AccountCommand::DebitTransfer {
                    transfer_id: request.transfer_id.clone(),
                    to: request.to.clone(),
                    amount: request.amount,
                    deadline: request.deadline,
                };
                self.step(&request.from, debit, request, command).await
            }
            TransferCommand::Credit(request) => {
                self.check_online(&[&request.to])?;
                let credit = AccountCommand::CreditTransfer {
                    transfer_id: request.transfer_id.clone(),
                    from: request.from.clone(),
                    amount: request.amount,
                    deadline: request.deadline,
                };
                self.step(&request.to, credit, request, command).await
            }
            TransferCommand::Refund(request) => {
                self.check_online(&[&request.from])?;
                self.refund(request).await
            }
            TransferCommand::Reverse(request) => {
                self.check_online(&[&request.to, &request.from])?;
                // Sent at the deadline: from then on the accounts refuse the
                // transfer's steps, so what the target holds now is final.
                let target = account_stream(&request.to).map_err(store_failed)?;
                let target = self.accounts.load(&target).await.map_err(store_failed)?;
                if target.state.credited.contains(&request.transfer_id) {
                    self.record_once(request, &TransferEvent::CreditKept, command)
                        .await
                } else {
                    self.refund(request).await
                }
            }
        }
    }
}
