//! The account service (listing 14-1) on the in-memory stores, with faults
//! injected into the event store.

use std::sync::Arc;
use std::time::Duration;

use composable_rust::error::ErrorClass;
use composable_rust::testing::faults::{EventStoreOperation, FaultyEventStore};
use composable_rust::{
    EventStoreError, ExpectedVersion, InMemoryEventStore, InMemoryProjectionStore,
    ProjectionManager,
};
use listing_14_01::failure::Failure;
use listing_14_01::service::{AccountService, Request, Response, failure_response};
use listing_14_01::summaries::AccountSummaries;
use serde_json::json;

// ANCHOR: setup
type Summaries = ProjectionManager<AccountSummaries<InMemoryProjectionStore>>;

/// A service on in-memory stores, its projection manager (not started),
/// and a handle on the event store to inject faults with.
fn bank() -> (
    AccountService<InMemoryProjectionStore>,
    Summaries,
    FaultyEventStore<InMemoryEventStore>,
) {
    let events = FaultyEventStore::new(InMemoryEventStore::new());
    let summaries = ProjectionManager::new(
        AccountSummaries::new(),
        Arc::new(InMemoryProjectionStore::new()),
        events.clone(),
    );
    let service = AccountService::new(Arc::new(events.clone()), summaries.clone());
    (service, summaries, events)
}

fn open(id: u32) -> Request {
    Request::Open {
        id,
        owner: "Ada".into(),
    }
}
// ANCHOR_END: setup

// ANCHOR: happy_path
#[tokio::test]
async fn a_command_answers_with_the_read_model_including_its_own_write() {
    let (service, summaries, _) = bank();
    let running = summaries.start();

    let opened = service.handle(open(1)).await;
    assert_eq!(opened.status, 201);
    let deposited = service
        .handle(Request::Deposit { id: 1, amount: 100 })
        .await;
    assert_eq!(
        deposited,
        Response {
            status: 200,
            body: json!({ "owner": "Ada", "balance": 100, "transactions": 1 }),
        }
    );

    summaries.shutdown();
    running.await.unwrap().unwrap();
}
// ANCHOR_END: happy_path

// ANCHOR: errors
#[tokio::test]
async fn refusals_are_client_errors() {
    let (service, summaries, _) = bank();
    let running = summaries.start();
    service.handle(open(1)).await;

    let overdraft = service.handle(Request::Withdraw { id: 1, amount: 5 }).await;
    assert_eq!(overdraft.status, 422);
    let unknown = service.handle(Request::Deposit { id: 2, amount: 5 }).await;
    assert_eq!(unknown.status, 404);

    summaries.shutdown();
    running.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_database_outage_is_503_and_the_retry_succeeds() {
    let (service, summaries, events) = bank();
    let running = summaries.start();
    service.handle(open(1)).await;

    events.fail_next(EventStoreOperation::Append, ErrorClass::Transient, 1);
    let deposit = Request::Deposit { id: 1, amount: 10 };
    let failed = service.handle(deposit.clone()).await;
    assert_eq!(failed.status, 503);
    assert_eq!(failed.body["error"]["retry"], true);
    assert_eq!(failed.body["error"]["class"], "transient");

    // Nothing was written, so sending the same request again is safe.
    let retried = service.handle(deposit).await;
    assert_eq!(retried.status, 200);
    assert_eq!(retried.body["balance"], 10);

    summaries.shutdown();
    running.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_broken_setup_is_500() {
    let (service, _, events) = bank();
    events.fail_next(
        EventStoreOperation::LoadStream,
        ErrorClass::Configuration,
        1,
    );
    let response = service.handle(open(1)).await;
    assert_eq!(response.status, 500);
    assert_eq!(response.body["error"]["retry"], false);
}

#[test]
fn a_conflict_that_outlasts_the_retries_is_409() {
    let conflict = EventStoreError::WrongExpectedVersion {
        stream_id: "account-1".into(),
        expected: ExpectedVersion::Exact(3),
        actual: 4,
    };
    let response = failure_response(&Failure::from_error(&conflict));
    assert_eq!(response.status, 409);
    assert_eq!(response.body["error"]["code"], "CR-E0003");
    assert_eq!(response.body["error"]["retry"], true);
}
// ANCHOR_END: errors

// ANCHOR: lagging
#[tokio::test]
async fn a_command_the_read_model_does_not_show_yet_is_accepted() {
    let (service, summaries, _) = bank();
    // The projection manager is not running: the read model stays behind.
    let service = service.with_read_timeout(Duration::from_millis(20));

    let accepted = service.handle(open(1)).await;
    assert_eq!(accepted.status, 202);
    assert_eq!(service.handle(Request::Get { id: 1 }).await.status, 404);

    // The write was stored all along; once the projection catches up, the
    // query sees it.
    summaries.catch_up().await.unwrap();
    let found = service.handle(Request::Get { id: 1 }).await;
    assert_eq!(found.status, 200);
    assert_eq!(found.body["owner"], "Ada");
}
// ANCHOR_END: lagging
