//! What the service answers to a deposit: the code under test when the
//! event store fails.

use bank::account::{Account, AccountCommand};
use composable_rust::aggregate::RepositoryError;
use composable_rust::prelude::*;
use composable_rust::{AggregateRepository, StreamId};

// ANCHOR: reply
/// The answer a client gets.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    Done {
        balance: u64,
    },
    Refused {
        reason: String,
    },
    /// Retrying can help (a timeout, a lost connection, a conflict).
    TryAgain,
    /// Retrying will not help; an operator must look.
    Failed {
        code: String,
    },
}

pub async fn deposit<S: EventStore>(
    accounts: &AggregateRepository<Account, S>,
    account: &StreamId,
    amount: u64,
) -> Reply {
    match accounts
        .execute(account, AccountCommand::Deposit { amount })
        .await
    {
        Ok(done) => Reply::Done {
            balance: done.state.balance,
        },
        Err(RepositoryError::Rejected(reason)) => Reply::Refused {
            reason: reason.to_string(),
        },
        Err(error) if error.is_transient() || error.is_conflict() => Reply::TryAgain,
        Err(error) => Reply::Failed {
            code: error.code().to_string(),
        },
    }
}
// ANCHOR_END: reply

#[cfg(test)]
mod tests {
    use composable_rust::testing::faults::{EventStoreOperation, FaultyEventStore};
    use composable_rust::{ErrorClass, InMemoryEventStore};

    use super::*;

    // ANCHOR: aggregate_test
    /// Given events, when a command: the events it decides, or the refusal.
    #[test]
    fn a_withdrawal_beyond_the_balance_is_refused() {
        use bank::account::{AccountError, AccountEvent};
        use composable_rust::prelude::AggregateTest;

        let opened = AccountEvent::Opened {
            owner: "Ada".into(),
        };
        AggregateTest::<Account>::new(())
            .given([opened.clone(), AccountEvent::Deposited { amount: 50 }])
            .when(AccountCommand::Withdraw { amount: 80 })
            .then_rejected(AccountError::InsufficientFunds {
                balance: 50,
                requested: 80,
            });
        let after = AggregateTest::<Account>::new(())
            .given([opened])
            .when(AccountCommand::Deposit { amount: 20 })
            .then_events([AccountEvent::Deposited { amount: 20 }]);
        assert_eq!(after.balance, 20);
    }
    // ANCHOR_END: aggregate_test

    // ANCHOR: faults_test
    #[tokio::test]
    async fn a_failing_store_gets_an_honest_reply_and_writes_nothing() {
        let store = FaultyEventStore::new(InMemoryEventStore::new());
        let accounts = AggregateRepository::<Account, _>::new(store.clone(), ());
        let ada = accounts.stream_id(1).unwrap();
        let open = AccountCommand::Open {
            owner: "Ada".into(),
        };
        accounts.execute(&ada, open).await.unwrap();

        store.fail_next(EventStoreOperation::Append, ErrorClass::Transient, 1);
        assert_eq!(deposit(&accounts, &ada, 50).await, Reply::TryAgain);
        store.fail_next(EventStoreOperation::Append, ErrorClass::Permanent, 1);
        let failed = deposit(&accounts, &ada, 50).await;
        assert_eq!(
            failed,
            Reply::Failed {
                code: "CR-E0099".into()
            }
        );
        // An error means nothing was written: still one event, balance 0.
        assert_eq!(accounts.load(&ada).await.unwrap().version, 1);

        assert_eq!(
            deposit(&accounts, &ada, 50).await,
            Reply::Done { balance: 50 }
        );
        assert_eq!(store.injected(EventStoreOperation::Append), 2);
    }
    // ANCHOR_END: faults_test
}
