//! The rules as given / when / then, and the whole path (command, event
//! store, projection) in memory.

use std::sync::Arc;

use composable_rust::prelude::*;
use composable_rust::{
    AggregateRepository, InMemoryEventStore, InMemoryProjectionStore, ProjectionManager,
};
use overdraft::account::{Account, AccountCommand, AccountError, AccountEvent};
use overdraft::balances::Balances;

fn opened(overdraft_limit: u64) -> AccountEvent {
    AccountEvent::Opened {
        owner: "Ada".into(),
        overdraft_limit,
    }
}

// ANCHOR: tests
#[test]
fn a_withdrawal_may_use_the_overdraft() {
    let account = AggregateTest::<Account>::new(())
        .given([opened(100), AccountEvent::Deposited { amount: 50 }])
        .when(AccountCommand::Withdraw { amount: 150 })
        .then_events([AccountEvent::Withdrawn { amount: 150 }]);
    assert_eq!(account.balance, -100);
}

#[test]
fn a_withdrawal_beyond_the_overdraft_is_refused() {
    AggregateTest::<Account>::new(())
        .given([opened(100), AccountEvent::Deposited { amount: 50 }])
        .when(AccountCommand::Withdraw { amount: 151 })
        .then_rejected(AccountError::OverdraftLimitExceeded {
            balance: 50,
            requested: 151,
            limit: 100,
        });
}

#[test]
fn nothing_happens_to_an_account_that_was_never_opened() {
    AggregateTest::<Account>::new(())
        .when(AccountCommand::Deposit { amount: 10 })
        .then_rejected(AccountError::NotOpen);
}

#[tokio::test]
async fn commands_become_events_and_the_projection_follows() {
    let events = InMemoryEventStore::new();
    let accounts = AggregateRepository::<Account, _>::new(events.clone(), ());
    let stream = accounts.stream_id("ada").unwrap();
    let commands = [
        AccountCommand::Open {
            owner: "Ada".into(),
            overdraft_limit: 100,
        },
        AccountCommand::Deposit { amount: 50 },
        AccountCommand::Withdraw { amount: 120 },
    ];
    for command in commands {
        accounts.execute(&stream, command).await.unwrap();
    }
    let refused = accounts
        .execute(&stream, AccountCommand::Withdraw { amount: 31 })
        .await;
    assert!(refused.is_err(), "-70 - 31 is below -100");

    let store = Arc::new(InMemoryProjectionStore::new());
    let manager = ProjectionManager::new(Balances::default(), Arc::clone(&store), events);
    assert_eq!(manager.catch_up().await.unwrap(), 3);
    let balance: Option<i64> = store.get_json("balance:account-ada").await.unwrap();
    assert_eq!(balance, Some(-70));
}
// ANCHOR_END: tests
