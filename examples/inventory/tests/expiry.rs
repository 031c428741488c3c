//! Reservations expire on the service's clock: a `TestClock`, so an
//! expiry of 15 minutes takes no time at all. No sleeps: `process` waits
//! for the due timeouts (`SagaRuntime::idle`).

mod common;

use std::time::Duration;

use common::{TTL, event_types, harness, reservation, start};
use composable_rust::Upcasters;
use composable_rust::event::decode;
use composable_rust::saga::{SagaId, SagaOutcome};
use inventory::ProductEvent;
use inventory::expiry::expiry_saga_id;

#[tokio::test]
async fn an_uncommitted_reservation_is_released_when_its_ttl_runs_out() {
    let h = harness().await;
    let inv = &h.inventory;
    inv.register("CUP", "Cup", 0, 10).await.unwrap();
    inv.receive("CUP", "east", 10).await.unwrap();
    inv.reserve(&reservation("r1", "CUP", "east", 4))
        .await
        .unwrap();
    inv.process().await.unwrap();
    assert_eq!(inv.expiry().armed_timeouts(), 1);

    // A second before the deadline: still reserved.
    h.clock.advance(TTL - Duration::from_secs(1));
    inv.process().await.unwrap();
    assert_eq!(
        inv.product("CUP").await.unwrap().warehouse("east").reserved,
        4
    );

    // At the deadline: released, because it expired.
    h.clock.advance(Duration::from_secs(1));
    inv.process().await.unwrap();
    let east = inv.product("CUP").await.unwrap().warehouse("east");
    assert_eq!((east.reserved, east.available()), (0, 10));
    let stream = composable_rust::StreamId::new("product-CUP").unwrap();
    let last = inv
        .store()
        .load_stream(&stream, 0)
        .await
        .unwrap()
        .pop()
        .unwrap();
    let released = decode::<ProductEvent>(&last, &Upcasters::new()).unwrap();
    assert!(matches!(
        released,
        Some(ProductEvent::Released {
            reason: inventory::ReleaseReason::Expired,
            quantity: 4,
            ..
        })
    ));
    let saga = inv
        .expiry()
        .instance(&expiry_saga_id("CUP", "r1").unwrap())
        .await
        .unwrap();
    assert_eq!(saga.outcome(), Some(SagaOutcome::Completed));
    assert_eq!(inv.expiry().armed_timeouts(), 0);
    // The read model follows.
    let level = inv
        .read_models()
        .stock_level("CUP", "east")
        .await
        .unwrap()
        .unwrap();
    assert_eq!((level.reserved, level.available), (0, 10));
}

#[tokio::test]
async fn a_reservation_committed_in_time_does_not_expire() {
    let h = harness().await;
    let inv = &h.inventory;
    inv.register("MUG", "Mug", 0, 10).await.unwrap();
    inv.receive("MUG", "east", 10).await.unwrap();
    inv.reserve(&reservation("r1", "MUG", "east", 4))
        .await
        .unwrap();
    inv.process().await.unwrap();
    inv.commit("MUG", "r1").await.unwrap();
    inv.process().await.unwrap();
    assert_eq!(
        inv.expiry().armed_timeouts(),
        0,
        "the timeout was cancelled"
    );

    h.clock.advance(TTL * 2);
    inv.process().await.unwrap();
    assert!(inv.journal().drain().is_empty(), "no release was sent");
    assert_eq!(
        event_types(inv, "MUG").await.last().map(String::as_str),
        Some("inventory.reservation_committed")
    );
    let east = inv.product("MUG").await.unwrap().warehouse("east");
    assert_eq!((east.on_hand, east.reserved), (6, 0));
}

#[tokio::test]
async fn a_restarted_process_still_expires_the_reservation() {
    let h = harness().await;
    h.inventory.register("BOWL", "Bowl", 0, 10).await.unwrap();
    h.inventory.receive("BOWL", "east", 10).await.unwrap();
    h.inventory
        .reserve(&reservation("r1", "BOWL", "east", 3))
        .await
        .unwrap();
    h.inventory.process().await.unwrap();
    // The process stops before the deadline: its timers go with it.
    h.inventory.shutdown().await;
    h.clock.advance(TTL / 2);

    // A new process on the same data arms the recorded timeout again, for
    // what is left of it.
    let restarted = start(&h.schema, &h.clock, &h.supplier, &h.bus).await;
    assert_eq!(restarted.expiry().armed_timeouts(), 1);
    restarted.process().await.unwrap();
    assert_eq!(
        restarted
            .product("BOWL")
            .await
            .unwrap()
            .warehouse("east")
            .reserved,
        3
    );
    h.clock.advance(TTL / 2);
    restarted.process().await.unwrap();
    assert_eq!(
        restarted
            .product("BOWL")
            .await
            .unwrap()
            .warehouse("east")
            .reserved,
        0
    );
    let saga = restarted
        .expiry()
        .instance(&SagaId::new("BOWL.r1").unwrap())
        .await
        .unwrap();
    assert_eq!(saga.outcome(), Some(SagaOutcome::Completed));
    restarted.shutdown().await;
}
