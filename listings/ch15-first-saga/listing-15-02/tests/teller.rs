//! The transfer saga for real: the saga runtime and the teller (its
//! `CommandDispatcher`) on an event store in memory.

use std::time::Duration;

use bank::account::{Account, AccountCommand};
use bank::teller::Teller;
use bank::transfer::{TransferCommand, TransferSaga, request_transfer};
use composable_rust::prelude::*;
use composable_rust::saga::{CommandId, SagaCommand, SagaOutcome};
use composable_rust::{AggregateRepository, InMemoryEventStore, Position, SagaRuntime};

fn saga() -> TransferSaga {
    TransferSaga {
        deadline: Duration::from_secs(30),
    }
}

/// An event store with accounts 1 (Ada, 100) and 2 (Grace, 0) opened.
async fn bank() -> InMemoryEventStore {
    let events = InMemoryEventStore::new();
    let accounts = AggregateRepository::<Account, _>::new(events.clone(), ());
    for (id, owner) in [(1, "Ada"), (2, "Grace")] {
        let stream = accounts.stream_id(id).unwrap();
        let open = AccountCommand::Open {
            owner: owner.into(),
        };
        accounts.execute(&stream, open).await.unwrap();
    }
    let ada = accounts.stream_id(1).unwrap();
    let deposit = AccountCommand::Deposit { amount: 100 };
    accounts.execute(&ada, deposit).await.unwrap();
    events
}

/// The balance of `account`, replayed from its events.
async fn balance(events: &InMemoryEventStore, account: u64) -> u64 {
    let accounts = AggregateRepository::<Account, _>::new(events.clone(), ());
    let stream = accounts.stream_id(account).unwrap();
    accounts.load(&stream).await.unwrap().state.balance
}

/// Runs a transfer to its end: the runtime reads the store's events until
/// there are no more.
async fn transfer(events: &InMemoryEventStore, from: u64, to: u64, amount: u64) -> SagaOutcome {
    let runtime = SagaRuntime::new(saga(), events.clone(), Teller::new(events.clone()));
    let id = request_transfer(events, from, to, amount).await.unwrap();
    runtime.catch_up(events, Position::START).await.unwrap();
    let outcome = runtime.instance(&id).await.unwrap().outcome();
    runtime.shutdown().await;
    outcome.expect("the transfer has ended")
}

#[tokio::test]
async fn the_teller_moves_the_money() {
    let events = bank().await;
    assert_eq!(transfer(&events, 1, 2, 30).await, SagaOutcome::Completed);
    assert_eq!(balance(&events, 1).await, 70);
    assert_eq!(balance(&events, 2).await, 30);
}

#[tokio::test]
async fn a_transfer_to_an_account_that_does_not_exist_is_refunded() {
    let events = bank().await;
    assert_eq!(transfer(&events, 1, 9, 30).await, SagaOutcome::Compensated);
    assert_eq!(balance(&events, 1).await, 100);
}

#[tokio::test]
async fn a_command_delivered_twice_is_carried_out_once() {
    let events = bank().await;
    let teller = Teller::new(events.clone());
    let id = request_transfer(&events, 1, 2, 30).await.unwrap();
    let debit = SagaCommand {
        id: CommandId::new("test#1"),
        saga_id: id,
        command: TransferCommand::Debit {
            account: 1,
            amount: 30,
        },
    };
    teller.dispatch(&debit).await.unwrap();
    teller.dispatch(&debit).await.unwrap();
    assert_eq!(balance(&events, 1).await, 70);
}
