//! The account aggregate inside a Store (listing 14-1), tested with
//! `TestStore` on the in-memory event store.

use std::collections::BTreeMap;
use std::sync::Arc;

use composable_rust::prelude::*;
use composable_rust::{
    AggregateRepository, EventStoreError, ExpectedVersion, InMemoryEventStore, NewEvent,
};
use listing_14_01::account::{AccountCommand, AccountError, AccountEvent};
use listing_14_01::failure::Failure;
use listing_14_01::resident::{
    ResidentAccount, ResidentAction, ResidentEnvironment, ResidentState,
};
use listing_14_01::teller::{TellerAction, TellerEnvironment, TellerReducer, TellerState};

// ANCHOR: teller_test
#[tokio::test]
async fn the_teller_runs_commands_through_the_repository() {
    let events: Arc<dyn EventStore> = Arc::new(InMemoryEventStore::new());
    let env = TellerEnvironment {
        accounts: Arc::new(AggregateRepository::new(events, ())),
    };
    let mut store = TestStore::new(TellerState::default(), TellerReducer, env);

    let open = AccountCommand::Open {
        owner: "Ada".into(),
    };
    store
        .send(
            TellerAction::Execute {
                id: 1,
                command: open,
            },
            |state| {
                state.in_flight = 1;
            },
        )
        .await;
    store
        .receive(
            TellerAction::Executed {
                id: 1,
                balance: 0,
                version: 1,
            },
            |state| {
                state.in_flight = 0;
                state.balances = BTreeMap::from([(1, 0)]);
            },
        )
        .await;

    // The account's rules refuse an overdraft: nothing is written.
    let overdraft = AccountCommand::Withdraw { amount: 5 };
    store
        .send(
            TellerAction::Execute {
                id: 1,
                command: overdraft,
            },
            |state| {
                state.in_flight = 1;
            },
        )
        .await;
    let refused = Failure::Refused(AccountError::InsufficientFunds {
        balance: 0,
        requested: 5,
    });
    store
        .receive(
            TellerAction::Failed {
                id: 1,
                failure: refused.clone(),
            },
            |state| {
                state.in_flight = 0;
                state.last_failure = Some((1, refused));
            },
        )
        .await;

    store.finish().await;
}
// ANCHOR_END: teller_test

// ANCHOR: resident_test
#[tokio::test]
async fn a_resident_account_applies_only_what_the_event_store_accepted() {
    let events: Arc<dyn EventStore> = Arc::new(InMemoryEventStore::new());
    let stream = StreamId::for_aggregate("account", 1).unwrap();
    let env = ResidentEnvironment {
        events: Arc::clone(&events),
        stream: stream.clone(),
    };
    let mut store = TestStore::new(ResidentState::default(), ResidentAccount, env);

    let open = AccountCommand::Open {
        owner: "Ada".into(),
    };
    // Decided, but not applied yet: the state waits for the event store.
    store.send(ResidentAction::Command(open), |_| {}).await;
    let opened = AccountEvent::Opened {
        owner: "Ada".into(),
    };
    store
        .receive(
            ResidentAction::Appended {
                events: vec![opened],
                version: 1,
            },
            |state| {
                state.account.owner = Some("Ada".into());
                state.version = 1;
            },
        )
        .await;

    // Someone else appends to the same stream behind the store's back...
    let deposit = NewEvent::from_event(&AccountEvent::Deposited { amount: 5 }).unwrap();
    events
        .append(&stream, ExpectedVersion::Exact(1), vec![deposit])
        .await
        .unwrap();

    // ...so the store's copy is stale, and its next append is refused.
    let deposit = AccountCommand::Deposit { amount: 10 };
    store.send(ResidentAction::Command(deposit), |_| {}).await;
    let conflict = Failure::from_error(&EventStoreError::WrongExpectedVersion {
        stream_id: stream.to_string(),
        expected: ExpectedVersion::Exact(1),
        actual: 2,
    });
    store
        .receive(ResidentAction::Failed(conflict.clone()), |state| {
            state.last_failure = Some(conflict);
        })
        .await;
    store.finish().await;
}
// ANCHOR_END: resident_test
