//! The service of listing 38-1: ready, then stopped within its deadline
//! with every runner finished.

use std::sync::atomic::Ordering;
use std::time::Duration;

use composable_rust::health::HealthLevel;
use composable_rust::{
    EventStore, ExpectedVersion, InMemoryEventBus, InMemoryEventStore, NewEvent, StreamId,
};
use listing_38_01::{run_until, start};

#[tokio::test]
async fn ready_then_stopped_within_the_deadline() {
    let events = InMemoryEventStore::new();
    let bus = InMemoryEventBus::new();
    let mut last = None;
    for n in 0..20 {
        let stream = StreamId::new(format!("order-{n}")).unwrap();
        let written = events
            .append(
                &stream,
                ExpectedVersion::NoStream,
                vec![NewEvent::new("Placed", serde_json::json!({}))],
            )
            .await
            .unwrap();
        last = Some(written.last_position);
    }
    let service = start(events, bus).await.unwrap();
    service
        .projection
        .wait_for(last.unwrap(), Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(
        service.health.readiness().await.status,
        HealthLevel::Healthy
    );
    assert_eq!(service.health.liveness().await.status, HealthLevel::Healthy);
    let notified = std::sync::Arc::clone(&service.notified);

    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    stop.send(()).unwrap();
    let report = run_until(
        service,
        async { stopped.await.unwrap() },
        Duration::from_secs(5),
    )
    .await
    .unwrap();
    let names: Vec<&str> = report.runners.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(
        names,
        ["publisher", "projection:event-count", "consumer:notifier"]
    );
    assert!(notified.load(Ordering::Relaxed) <= 20);
}
