//! Low-stock alerts over the Redis Streams event bus: the publisher puts
//! the alert events on the `inventory-alerts` topic, the `stock-alerts`
//! consumer group receives them and the alert log records them (in
//! PostgreSQL). Needs `DATABASE_URL` and `REDIS_URL`; the keys live under a
//! prefix of the test's own, deleted afterwards.

mod common;

use std::sync::Arc;

use common::{harness, harness_on, reservation};
use composable_rust::Topic;
use composable_rust::prelude::*;
use composable_rust::redis::RedisStreamsEventBus;
use composable_rust_testing::fixtures::TestKeyPrefix;
use inventory::AlertStatus;
use inventory::app::{ALERTS_GROUP, ALERTS_TOPIC};

#[tokio::test]
async fn low_stock_alerts_travel_over_redis_streams_and_resolve() {
    let prefix = TestKeyPrefix::new();
    let bus = RedisStreamsEventBus::connect(prefix.url(), prefix.as_str())
        .await
        .unwrap();
    let h = harness_on(Arc::new(bus.clone())).await;
    let inv = &h.inventory;
    inv.register("KETTLE", "Kettle", 5, 10).await.unwrap();
    inv.receive("KETTLE", "east", 6).await.unwrap();
    inv.reserve(&reservation("r1", "KETTLE", "east", 3))
        .await
        .unwrap();
    let progress = inv.process().await.unwrap();
    assert_eq!(progress.alert_updates, 1);

    let topic = Topic::new(ALERTS_TOPIC).unwrap();
    let on_bus = bus.read(&topic, None, 10).await.unwrap();
    assert_eq!(on_bus.len(), 1, "only the alert event is published");
    assert_eq!(on_bus[0].event.event_type, "inventory.low_stock");
    assert!(
        bus.pending(&topic, ALERTS_GROUP).await.unwrap().is_empty(),
        "the group acknowledged it"
    );
    let open = inv
        .read_models()
        .alerts(Some(AlertStatus::Open))
        .await
        .unwrap();
    assert_eq!(open.len(), 1);
    assert_eq!(
        (
            open[0].id.as_str(),
            open[0].available,
            open[0].reorder_point
        ),
        ("KETTLE@east#1", 3, 5)
    );

    // The purchase order arrives: the alert resolves.
    let delivery = h.supplier.ship("PO-KETTLE-east-1").unwrap();
    inv.receive_delivery(&delivery).await.unwrap();
    inv.process().await.unwrap();
    assert!(
        inv.read_models()
            .alerts(Some(AlertStatus::Open))
            .await
            .unwrap()
            .is_empty()
    );
    let resolved = inv
        .read_models()
        .alerts(Some(AlertStatus::Resolved))
        .await
        .unwrap();
    assert_eq!(resolved.len(), 1);
    assert!(resolved[0].resolved_at.is_some());

    // A copy of the low-stock event (a publisher re-publishing after a
    // crash) does not reopen the alert.
    bus.publish(&topic, &on_bus[0].event).await.unwrap();
    inv.process().await.unwrap();
    let all = inv.read_models().alerts(None).await.unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].status, AlertStatus::Resolved);
    drop(h);
    prefix.clear().await.unwrap();
}

#[tokio::test]
async fn alerts_on_the_in_memory_bus_open_per_episode() {
    let h = harness().await;
    let inv = &h.inventory;
    inv.register("TEAPOT", "Teapot", 5, 10).await.unwrap();
    inv.receive("TEAPOT", "east", 6).await.unwrap();
    inv.receive("TEAPOT", "west", 6).await.unwrap();
    inv.reserve(&reservation("r1", "TEAPOT", "east", 3))
        .await
        .unwrap();
    inv.reserve(&reservation("r2", "TEAPOT", "west", 2))
        .await
        .unwrap();
    inv.release("TEAPOT", "r1").await.unwrap();
    inv.reserve(&reservation("r3", "TEAPOT", "east", 4))
        .await
        .unwrap();
    inv.process().await.unwrap();

    let all = inv.read_models().alerts(None).await.unwrap();
    let summary: Vec<(String, AlertStatus)> = all
        .into_iter()
        .map(|alert| (alert.id, alert.status))
        .collect();
    assert_eq!(
        summary,
        [
            ("TEAPOT@east#1".to_owned(), AlertStatus::Resolved),
            ("TEAPOT@west#1".to_owned(), AlertStatus::Open),
            ("TEAPOT@east#2".to_owned(), AlertStatus::Open),
        ]
    );
}
