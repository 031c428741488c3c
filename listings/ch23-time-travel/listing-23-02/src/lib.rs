//! Listing 23-2: the bank's transfer saga, drawn. Its steps and
//! compensations are declared as a `SagaMap` (the saga lives in the bank's
//! crate, so the map is a function here rather than a `DeclaredSaga`
//! impl); `tests/diagrams.rs` verifies it against the saga and keeps
//! `diagrams/` up to date; `main.rs` runs one transfer and prints its
//! history.

use std::sync::Arc;
use std::time::Duration;

use bank::account::{Account, AccountCommand};
use bank::teller::Teller;
use bank::transfer::{TransferEvent, TransferSaga, transfer_stream};
use composable_rust::chrono::{TimeZone, Utc};
use composable_rust::prelude::*;
use composable_rust::saga::{SagaError, SagaHistory, SagaId, SagaMap, SagaMapStep};
use composable_rust::{
    AggregateRepository, ExpectedVersion, InMemoryEventStore, NewEvent, Position, SagaRuntime,
    TestClock,
};

/// Anything that can go wrong here.
pub type Error = Box<dyn std::error::Error>;

// ANCHOR: map
/// The transfer saga's steps: debit the source, then credit the target.
/// A refusal undoes the steps before it; the one deadline gives up on
/// whichever step is in flight, and undoes it too.
pub fn transfer_map() -> Result<SagaMap, SagaError> {
    SagaMap::builder(TransferSaga::KIND, "Requested")
        .with_step(
            SagaMapStep::new("debit", "Debit")
                .with_success("Withdrawn")
                .with_failure("Refused")
                .with_timeout("deadline")
                .with_compensation("Refund"),
        )
        .with_step(
            SagaMapStep::new("credit", "Credit")
                .with_success("Deposited")
                .with_failure("Refused")
                .with_timeout("deadline")
                .with_compensation("Reclaim"),
        )
        .build()
}
// ANCHOR_END: map

// ANCHOR: history
/// Ada (account 1, balance 100) sends 30 to account 2, which was never
/// opened: the debit succeeds, the credit is refused, the debit is
/// refunded. Returns the transfer saga's recorded history.
pub async fn refused_transfer() -> Result<SagaHistory, Error> {
    let events = InMemoryEventStore::new();
    let accounts = AggregateRepository::<Account, _>::new(events.clone(), ());
    let ada = accounts.stream_id(1)?;
    let open = AccountCommand::Open {
        owner: "Ada".into(),
    };
    accounts.execute(&ada, open).await?;
    let deposit = AccountCommand::Deposit { amount: 100 };
    accounts.execute(&ada, deposit).await?;

    let saga = TransferSaga {
        deadline: Duration::from_secs(30),
    };
    // A test clock, so the deadline in the history is the same every run.
    let clock = TestClock::starting_at(Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).unwrap());
    let runtime = SagaRuntime::builder(saga, events.clone(), Teller::new(events.clone()))
        .with_clock(Arc::new(clock))
        .build();
    let id = SagaId::new("t-1")?;
    let requested = TransferEvent::Requested {
        from: 1,
        to: 2,
        amount: 30,
    };
    let stream = transfer_stream(&id)?;
    let request = vec![NewEvent::from_event(&requested)?];
    events
        .append(&stream, ExpectedVersion::NoStream, request)
        .await?;
    runtime.catch_up(&events, Position::START).await?;
    runtime.shutdown().await;

    Ok(SagaHistory::load(&events, TransferSaga::KIND, &id).await?)
}
// ANCHOR_END: history
