//! [`Bank`]: the write side wired together. Customers' commands go to the
//! `Account` aggregate through an [`AggregateRepository`]; transfers are
//! recorded by [`transfer::request`](crate::transfer::request) and carried
//! out by the [`TransferSaga`] in a [`SagaRuntime`], whose commands the
//! [`Teller`] executes.
//!
//! The bank is written against `Arc<dyn EventStore>`: PostgreSQL in the
//! service and its tests, the in-memory store in the property test, with
//! the same code.
//!
//! Events reach the saga from the event store's global stream
//! ([`process`](Bank::process)): no event bus is needed inside one
//! process, and a restarted process starts from the beginning again
//! (the runtime recognises the events it already handled).

use std::sync::Arc;
use std::time::Duration;

use composable_rust::aggregate::RepositoryError;
use composable_rust::event::decode;
use composable_rust::prelude::*;
use composable_rust::saga::{SagaError, SagaInstance, SagaOutcome};
use composable_rust::{AggregateRepository, Position, SagaRuntime, Upcasters};
use tokio::sync::Mutex;

use crate::account::{Account, AccountCommand, account_stream, name_account};
use crate::error::ServiceError;
use crate::transfer::saga::{Stage, TransferSaga};
use crate::transfer::teller::Teller;
use crate::transfer::{
    self, CREDIT_KEPT, Requested, TransferEvent, TransferRequest, saga_id, transfer_stream,
};

/// How many events [`Bank::process`] reads at a time.
const PAGE: usize = 256;

/// How many times a customer's command is decided again when the teller
/// appended to the same account first.
const CONFLICT_ATTEMPTS: usize = 5;

/// Where a transfer stands, for a customer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransferStatus {
    /// Not requested (or not processed yet).
    Unknown,
    /// Under way.
    Pending,
    /// The money moved.
    Completed,
    /// Refused or undone; the reason.
    Failed(String),
    /// The deadline passed, but the credit had made it in time: the money
    /// moved.
    CompletedBeforeDeadline,
}

/// The bank's write side.
#[derive(Debug)]
pub struct Bank {
    events: Arc<dyn EventStore>,
    clock: Arc<dyn Clock>,
    accounts: AggregateRepository<Account, Arc<dyn EventStore>>,
    transfers: SagaRuntime<TransferSaga>,
    teller: Arc<Teller>,
    transfer_timeout: Duration,
    /// How far events were delivered to the saga (in memory only).
    delivered: Mutex<Position>,
}

impl Bank {
    /// Starts the bank on `events`, with `clock` for event times, transfer
    /// deadlines and the saga's timeouts, and `transfer_timeout` as the
    /// time a transfer has to complete. Resumes the transfers a previous
    /// process left running.
    pub async fn start(
        events: Arc<dyn EventStore>,
        clock: Arc<dyn Clock>,
        transfer_timeout: Duration,
    ) -> Result<Self, ServiceError> {
        let teller = Arc::new(Teller::new(Arc::clone(&events), Arc::clone(&clock)));
        let transfers =
            SagaRuntime::builder(TransferSaga, Arc::clone(&events), Arc::clone(&teller))
                .with_clock(Arc::clone(&clock))
                .build();
        transfers.resume().await?;
        Ok(Self {
            accounts: AggregateRepository::new(Arc::clone(&events), Arc::clone(&clock))
                .with_clock(Arc::clone(&clock)),
            events,
            clock,
            transfers,
            teller,
            transfer_timeout,
            delivered: Mutex::new(Position::START),
        })
    }

    async fn execute(
        &self,
        account: &str,
        command: AccountCommand,
    ) -> Result<Option<Position>, ServiceError> {
        let stream = account_stream(account)?;
        match self
            .accounts
            .execute_with_retry(&stream, CONFLICT_ATTEMPTS, || command.clone())
            .await
        {
            Ok(done) => Ok(done.position),
            Err(RepositoryError::Rejected(refusal)) => Err(name_account(refusal, account).into()),
            Err(RepositoryError::Store(error)) => Err(error.into()),
        }
    }

    /// Opens `account` for `owner`; the balance may go down to
    /// `-overdraft_limit` cents. Returns the event's position.
    pub async fn open(
        &self,
        account: &str,
        owner: &str,
        overdraft_limit: i64,
    ) -> Result<Option<Position>, ServiceError> {
        crate::error::check_id(account)?;
        let open = AccountCommand::Open {
            account_id: account.to_owned(),
            owner: owner.to_owned(),
            overdraft_limit,
        };
        self.execute(account, open).await
    }

    /// Deposits `amount` cents.
    pub async fn deposit(
        &self,
        account: &str,
        amount: i64,
    ) -> Result<Option<Position>, ServiceError> {
        self.execute(account, AccountCommand::Deposit { amount })
            .await
    }

    /// Withdraws `amount` cents.
    pub async fn withdraw(
        &self,
        account: &str,
        amount: i64,
    ) -> Result<Option<Position>, ServiceError> {
        self.execute(account, AccountCommand::Withdraw { amount })
            .await
    }

    /// Closes `account`.
    pub async fn close(&self, account: &str) -> Result<Option<Position>, ServiceError> {
        self.execute(account, AccountCommand::Close).await
    }

    /// Requests transfer `transfer_id` of `amount` cents from `from` to
    /// `to`, once: the same request again is [`Requested::AlreadyRequested`].
    /// The transfer runs when [`process`](Self::process) delivers the
    /// request to the saga.
    pub async fn transfer(
        &self,
        transfer_id: &str,
        from: &str,
        to: &str,
        amount: i64,
    ) -> Result<Requested, ServiceError> {
        let now = self.clock.now();
        // A timeout too long to add is as good as none.
        let deadline = chrono::Duration::from_std(self.transfer_timeout)
            .ok()
            .and_then(|timeout| now.checked_add_signed(timeout))
            .unwrap_or(chrono::DateTime::<chrono::Utc>::MAX_UTC);
        let request = TransferRequest {
            transfer_id: transfer_id.to_owned(),
            from: from.to_owned(),
            to: to.to_owned(),
            amount,
            requested_at: now,
            deadline,
        };
        transfer::request(self.events.as_ref(), request).await
    }

    /// Delivers every event stored since the last call to the saga, until
    /// there are no more (each step's outcome is delivered in turn), and
    /// returns the position of the last event. A command that cannot be
    /// delivered now (an offline branch) stays pending in its saga: the
    /// other events are still delivered.
    pub async fn process(&self) -> Result<Position, ServiceError> {
        let mut delivered = self.delivered.lock().await;
        loop {
            let page = self.events.read_all(*delivered, PAGE).await?;
            if page.is_empty() {
                return Ok(*delivered);
            }
            for event in &page {
                self.handle(event).await?;
                *delivered = event.position;
            }
        }
    }

    /// Delivers only the next event, if there is one; `false` if there was
    /// none. Lets a test choose the order in which things happen.
    pub async fn process_next(&self) -> Result<bool, ServiceError> {
        let mut delivered = self.delivered.lock().await;
        let Some(event) = self.events.read_all(*delivered, 1).await?.pop() else {
            return Ok(false);
        };
        self.handle(&event).await?;
        *delivered = event.position;
        Ok(true)
    }

    async fn handle(&self, event: &StoredEvent) -> Result<(), ServiceError> {
        match self.transfers.handle(event).await {
            // Recorded; the command stays pending (retry_pending).
            Ok(_) | Err(SagaError::Dispatch { .. }) => Ok(()),
            Err(error) => Err(error.into()),
        }
    }

    /// Forgets how far events were delivered: the next
    /// [`process`](Self::process) delivers every event again, as a newly
    /// started process would. Safe: the saga runtime recognises what it
    /// already handled, and nothing moves twice.
    pub async fn rewind(&self) {
        *self.delivered.lock().await = Position::START;
    }

    /// Delivers again the commands whose delivery failed (after a branch
    /// came back online); returns how many went out.
    pub async fn retry_pending(&self) -> Result<usize, ServiceError> {
        Ok(self.transfers.retry_pending().await?)
    }

    /// Waits until every timeout that is due has been handled (after the
    /// clock moved on).
    pub async fn settle_timeouts(&self) {
        self.transfers.idle().await;
    }

    /// The account as its events say, now (the write side's view).
    pub async fn account(&self, account: &str) -> Result<Account, ServiceError> {
        Ok(self.accounts.load(&account_stream(account)?).await?.state)
    }

    /// The transfer's saga.
    pub async fn transfer_saga(
        &self,
        transfer_id: &str,
    ) -> Result<SagaInstance<TransferSaga>, ServiceError> {
        Ok(self.transfers.instance(&saga_id(transfer_id)?).await?)
    }

    /// Where transfer `transfer_id` stands.
    pub async fn transfer_status(&self, transfer_id: &str) -> Result<TransferStatus, ServiceError> {
        let saga = self.transfer_saga(transfer_id).await?;
        let state = saga.state();
        Ok(match (state.stage, saga.outcome()) {
            (Stage::New, _) => TransferStatus::Unknown,
            (Stage::Completed, _) | (_, Some(SagaOutcome::Completed)) => TransferStatus::Completed,
            (Stage::TimedOut, _) if self.credit_kept(transfer_id).await? => {
                TransferStatus::CompletedBeforeDeadline
            }
            (_, Some(SagaOutcome::Compensated)) => {
                TransferStatus::Failed(state.failure.clone().unwrap_or_default())
            }
            _ => TransferStatus::Pending,
        })
    }

    async fn credit_kept(&self, transfer_id: &str) -> Result<bool, ServiceError> {
        let stream = transfer_stream(transfer_id)?;
        let events = self.events.load_stream(&stream, 0).await?;
        Ok(events.iter().any(|event| event.event_type == CREDIT_KEPT))
    }

    /// The refusals the teller recorded for transfer `transfer_id`, in
    /// order (each message starts with its `BANK-` code).
    pub async fn transfer_refusals(&self, transfer_id: &str) -> Result<Vec<String>, ServiceError> {
        let stream = transfer_stream(transfer_id)?;
        let mut refusals = Vec::new();
        for event in self.events.load_stream(&stream, 0).await? {
            if let Some(TransferEvent::Refused { reason, .. }) =
                decode::<TransferEvent>(&event, &Upcasters::new())?
            {
                refusals.push(reason);
            }
        }
        Ok(refusals)
    }

    /// The teller (to take a branch offline).
    pub fn teller(&self) -> &Teller {
        &self.teller
    }

    /// The event store.
    pub fn events(&self) -> &Arc<dyn EventStore> {
        &self.events
    }

    /// The bank's clock.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// Stops the saga runtime (its timeouts are recorded; the next start
    /// arms them again).
    pub async fn shutdown(&self) {
        self.transfers.shutdown().await;
    }
}
