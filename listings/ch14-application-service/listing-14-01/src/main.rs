//! Listing 14-1: a few requests to the account service, on the in-memory
//! stores, with the responses they get.

use std::sync::Arc;

use composable_rust::prelude::*;
use composable_rust::{InMemoryEventStore, InMemoryProjectionStore, ProjectionManager};
use listing_14_01::service::{AccountService, Request};
use listing_14_01::summaries::AccountSummaries;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // ANCHOR: main
    // The write side and the read side, and the manager between them.
    let events: Arc<dyn EventStore> = Arc::new(InMemoryEventStore::new());
    let read_model = Arc::new(InMemoryProjectionStore::new());
    let summaries =
        ProjectionManager::new(AccountSummaries::new(), read_model, Arc::clone(&events));
    let running = summaries.start();

    let service = AccountService::new(events, summaries.clone());
    for request in [
        Request::Open {
            id: 1,
            owner: "Ada".into(),
        },
        Request::Deposit { id: 1, amount: 100 },
        Request::Withdraw { id: 1, amount: 30 },
        Request::Withdraw { id: 1, amount: 500 },
        Request::Deposit { id: 2, amount: 10 },
        Request::Get { id: 1 },
    ] {
        println!("{request}");
        println!("  -> {}", service.handle(request).await);
    }

    summaries.shutdown();
    running.await??;
    // ANCHOR_END: main
    Ok(())
}
