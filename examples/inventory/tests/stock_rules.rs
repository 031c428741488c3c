//! The stock rules, on PostgreSQL: what is refused (with which code), and
//! that a refusal writes nothing; what is idempotent.

mod common;

use common::{code, event_types, harness, reservation};

#[tokio::test]
async fn never_reserves_more_than_is_available_and_a_refusal_writes_nothing() {
    let h = harness().await;
    let inv = &h.inventory;
    inv.register("BOLT", "Bolt", 0, 10).await.unwrap();
    inv.receive("BOLT", "east", 10).await.unwrap();
    let stock = inv
        .reserve(&reservation("r1", "BOLT", "east", 7))
        .await
        .unwrap();
    assert_eq!(
        (stock.on_hand, stock.reserved, stock.available()),
        (10, 7, 3)
    );
    let before = event_types(inv, "BOLT").await;

    let error = inv
        .reserve(&reservation("r2", "BOLT", "east", 4))
        .await
        .unwrap_err();
    assert_eq!(code(&error), "INV-E0003");
    assert!(
        error
            .to_string()
            .contains("only 3 of BOLT available in east, 4 requested")
    );
    // Stock in another warehouse does not count.
    let error = inv
        .reserve(&reservation("r3", "BOLT", "west", 1))
        .await
        .unwrap_err();
    assert_eq!(code(&error), "INV-E0003");
    assert_eq!(event_types(inv, "BOLT").await, before, "nothing written");

    // Exactly what is available is fine.
    let stock = inv
        .reserve(&reservation("r4", "BOLT", "east", 3))
        .await
        .unwrap();
    assert_eq!(stock.available(), 0);
}

#[tokio::test]
async fn an_unknown_sku_is_refused_and_no_stream_is_created() {
    let h = harness().await;
    let error = h
        .inventory
        .reserve(&reservation("r1", "NOPE", "east", 1))
        .await
        .unwrap_err();
    assert_eq!(code(&error), "INV-E0001");
    assert!(error.to_string().contains("product NOPE is not registered"));
    let error = h.inventory.receive("NOPE", "east", 5).await.unwrap_err();
    assert_eq!(code(&error), "INV-E0001");
    assert!(event_types(&h.inventory, "NOPE").await.is_empty());
}

#[tokio::test]
async fn registration_and_input_are_checked() {
    let h = harness().await;
    let inv = &h.inventory;
    inv.register("NUT", "Nut", 2, 10).await.unwrap();
    let again = inv.register("NUT", "Nut", 2, 10).await.unwrap_err();
    assert_eq!(code(&again), "INV-E0002");
    let zero_reorder = inv.register("WASHER", "Washer", 2, 0).await.unwrap_err();
    assert_eq!(code(&zero_reorder), "INV-E0006");
    let bad_sku = inv.register("NUT 2", "Nut", 2, 10).await.unwrap_err();
    assert_eq!(code(&bad_sku), "INV-E0007");
    let zero = inv.receive("NUT", "east", 0).await.unwrap_err();
    assert_eq!(code(&zero), "INV-E0006");
    let bad_warehouse = inv.receive("NUT", "east/1", 5).await.unwrap_err();
    assert_eq!(code(&bad_warehouse), "INV-E0007");
    assert_eq!(
        event_types(inv, "NUT").await,
        ["inventory.product_registered"]
    );
}

#[tokio::test]
async fn release_and_commit_follow_the_reservation_lifecycle() {
    let h = harness().await;
    let inv = &h.inventory;
    inv.register("PIN", "Pin", 0, 10).await.unwrap();
    inv.receive("PIN", "east", 20).await.unwrap();

    // Reserving the same reservation again (a retried request) is a no-op;
    // the same id with other details is a conflict.
    inv.reserve(&reservation("r1", "PIN", "east", 5))
        .await
        .unwrap();
    let stock = inv
        .reserve(&reservation("r1", "PIN", "east", 5))
        .await
        .unwrap();
    assert_eq!(stock.reserved, 5, "reserved once");
    let conflict = inv
        .reserve(&reservation("r1", "PIN", "east", 6))
        .await
        .unwrap_err();
    assert_eq!(code(&conflict), "INV-E0008");

    // Released: the stock is available again; releasing twice changes
    // nothing; shipping it is refused.
    inv.release("PIN", "r1").await.unwrap();
    inv.release("PIN", "r1").await.unwrap();
    let closed = inv.commit("PIN", "r1").await.unwrap_err();
    assert_eq!(code(&closed), "INV-E0005");
    assert!(closed.to_string().contains("was released"));

    // Committed: on hand drops, a retried commit is a no-op.
    inv.reserve(&reservation("r2", "PIN", "east", 8))
        .await
        .unwrap();
    inv.commit("PIN", "r2").await.unwrap();
    inv.commit("PIN", "r2").await.unwrap();
    let product = inv.product("PIN").await.unwrap();
    let east = product.warehouse("east");
    assert_eq!((east.on_hand, east.reserved), (12, 0));

    let unknown = inv.commit("PIN", "r9").await.unwrap_err();
    assert_eq!(code(&unknown), "INV-E0004");
    assert_eq!(
        event_types(inv, "PIN").await,
        [
            "inventory.product_registered",
            "inventory.stock_received",
            "inventory.stock_reserved",
            "inventory.reservation_released",
            "inventory.stock_reserved",
            "inventory.reservation_committed",
        ]
    );
}

#[tokio::test]
async fn goods_against_a_purchase_order_that_is_not_open_are_refused() {
    let h = harness().await;
    let inv = &h.inventory;
    inv.register("CLIP", "Clip", 0, 10).await.unwrap();
    let delivery = inventory::Delivery {
        purchase_order: "PO-CLIP-east-7".into(),
        sku: "CLIP".into(),
        warehouse: "east".into(),
        quantity: 10,
    };
    let error = inv.receive_delivery(&delivery).await.unwrap_err();
    assert_eq!(code(&error), "INV-E0009");
    assert_eq!(
        event_types(inv, "CLIP").await,
        ["inventory.product_registered"]
    );
}

#[tokio::test]
async fn concurrent_reservations_never_oversell() {
    let h = harness().await;
    let inv = &h.inventory;
    inv.register("CAP", "Cap", 0, 10).await.unwrap();
    inv.receive("CAP", "east", 20).await.unwrap();

    // Eight customers at once, 3 each, for 20 caps: at most 6 can win.
    // Each append expects the version its decision was made on, so a
    // decision on stale stock is refused and made again on fresh stock.
    let reserve = |n: u32| async move {
        inv.reserve(&reservation(&format!("r{n}"), "CAP", "east", 3))
            .await
    };
    let (a, b, c, d, e, f, g, i) = tokio::join!(
        reserve(1),
        reserve(2),
        reserve(3),
        reserve(4),
        reserve(5),
        reserve(6),
        reserve(7),
        reserve(8)
    );
    let mut won = 0;
    for outcome in [a, b, c, d, e, f, g, i] {
        match outcome {
            Ok(_) => won += 1,
            // Refused on fresh stock, or still conflicting after the
            // retries: either way nothing was written for it.
            Err(error) => assert!(["INV-E0003", "CR-E0003"].contains(&code(&error)), "{error}"),
        }
    }
    let east = inv.product("CAP").await.unwrap().warehouse("east");
    assert!((1..=6).contains(&won), "{won} reservations won");
    assert_eq!(east.reserved, 3 * won);
    assert_eq!(east.available(), 20 - 3 * won);
}

#[tokio::test]
async fn a_long_stream_is_snapshotted_and_loads_the_same() {
    let h = harness().await;
    let inv = &h.inventory;
    inv.register("TACK", "Tack", 0, 10).await.unwrap();
    for n in 0..55 {
        inv.reserve(&reservation(&format!("r{n}"), "TACK", "east", 1))
            .await
            .unwrap_err(); // nothing on hand yet: refused, nothing written
        inv.receive("TACK", "east", 1).await.unwrap();
        inv.reserve(&reservation(&format!("r{n}"), "TACK", "east", 1))
            .await
            .unwrap();
    }
    // 1 + 55 * 2 events: a snapshot at 100.
    let stream = composable_rust::StreamId::new("product-TACK").unwrap();
    let snapshot = inv.store().load_snapshot(&stream).await.unwrap().unwrap();
    assert_eq!(snapshot.stream_version, 100);
    let east = inv.product("TACK").await.unwrap().warehouse("east");
    assert_eq!((east.on_hand, east.reserved, east.available()), (55, 55, 0));
    assert_eq!(event_types(inv, "TACK").await.len(), 111);
}
