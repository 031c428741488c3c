//! `HealthRegistry` and the core's checks: levels, time limits, the JSON
//! an HTTP endpoint serves, projection lag, the bus.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use composable_rust_core::event_bus::{InMemoryEventBus, Topic};
use composable_rust_core::health::{
    EventBusCheck, FnCheck, HealthLevel, HealthRegistry, HealthStatus, ProjectionCheck,
};
use composable_rust_core::{
    EventStore, ExpectedVersion, InMemoryEventStore, InMemoryProjectionStore, NewEvent, Projection,
    ProjectionError, ProjectionManager, ProjectionStore, StoredEvent, StreamId,
};

#[tokio::test(start_paused = true)]
async fn a_check_that_does_not_answer_in_time_is_unhealthy_and_the_others_still_answer() {
    let registry = HealthRegistry::new()
        .with_timeout(Duration::from_secs(1))
        .with_readiness(FnCheck::new("hangs", || async {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            HealthStatus::healthy()
        }))
        .with_readiness(FnCheck::new("fine", || async { HealthStatus::healthy() }));
    let started = tokio::time::Instant::now();
    let report = registry.readiness().await;
    assert_eq!(
        started.elapsed(),
        Duration::from_secs(1),
        "checks run concurrently"
    );
    assert_eq!(report.status, HealthLevel::Unhealthy);
    assert_eq!(report.http_status(), 503);
    assert_eq!(report.checks[0].name, "hangs");
    assert_eq!(
        report.checks[0].status.reason.as_deref(),
        Some("the check did not answer within 1s")
    );
    assert_eq!(report.checks[1].status, HealthStatus::healthy());
    // Liveness has its own checks: none here.
    assert_eq!(registry.liveness().await.http_status(), 200);
}

#[tokio::test]
async fn the_report_serializes_to_the_json_an_endpoint_serves() {
    let registry = HealthRegistry::new()
        .with_readiness(FnCheck::new("db", || async { HealthStatus::healthy() }))
        .with_readiness(FnCheck::new("cache", || async {
            HealthStatus::degraded("answering slowly")
        }));
    let report = registry.readiness().await;
    assert!(report.is_passing());
    let mut json: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
    for check in json["checks"].as_array_mut().unwrap() {
        check.as_object_mut().unwrap().remove("elapsed_ms");
    }
    assert_eq!(
        json,
        serde_json::json!({
            "probe": "readiness",
            "status": "degraded",
            "checks": [
                { "name": "db", "level": "healthy" },
                { "name": "cache", "level": "degraded", "reason": "answering slowly" },
            ],
        })
    );
}

struct Noop;

#[async_trait]
impl Projection for Noop {
    type Store = InMemoryProjectionStore;

    fn name(&self) -> &str {
        "noop"
    }

    async fn apply(
        &self,
        _: &StoredEvent,
        _: &mut <Self::Store as ProjectionStore>::Tx,
    ) -> Result<(), ProjectionError> {
        Ok(())
    }

    async fn reset(
        &self,
        _: &mut <Self::Store as ProjectionStore>::Tx,
    ) -> Result<(), ProjectionError> {
        Ok(())
    }
}

#[tokio::test]
async fn a_projection_too_far_behind_is_not_ready_until_it_catches_up() {
    let events = InMemoryEventStore::new();
    for i in 0..10 {
        let stream = StreamId::new(format!("item-{i}")).unwrap();
        events
            .append(
                &stream,
                ExpectedVersion::NoStream,
                vec![NewEvent::new("Happened", serde_json::json!({}))],
            )
            .await
            .unwrap();
    }
    let manager = ProjectionManager::new(Noop, Arc::new(InMemoryProjectionStore::new()), events);
    let registry = HealthRegistry::new()
        .with_readiness(ProjectionCheck::lag(manager.clone(), 5))
        .with_liveness(ProjectionCheck::alive(manager.clone()));

    let report = registry.readiness().await;
    assert_eq!(report.checks[0].name, "projection:noop");
    assert_eq!(
        report.checks[0].status,
        HealthStatus::unhealthy("10 events behind, over the threshold of 5")
    );
    assert!(registry.liveness().await.is_passing(), "behind is not dead");

    manager.catch_up().await.unwrap();
    assert_eq!(registry.readiness().await.status, HealthLevel::Healthy);
}

#[tokio::test]
async fn the_in_memory_bus_is_reachable() {
    let check = EventBusCheck::new(InMemoryEventBus::new(), Topic::new("orders").unwrap());
    let report = HealthRegistry::new()
        .with_readiness(check)
        .readiness()
        .await;
    assert_eq!(report.checks[0].name, "event-bus");
    assert_eq!(report.status, HealthLevel::Healthy);
}

#[tokio::test]
async fn an_open_circuit_is_not_ready_unless_it_only_degrades() {
    use composable_rust_core::StoreError;
    use composable_rust_core::health::CircuitBreakerCheck;
    use composable_rust_core::resilience::{CircuitBreaker, CircuitState};

    let breaker = CircuitBreaker::builder("payments")
        .with_failure_threshold(1)
        .build();
    let cache = CircuitBreaker::builder("cache")
        .with_failure_threshold(1)
        .build();
    let registry = HealthRegistry::new()
        .with_readiness(CircuitBreakerCheck::new(breaker.clone()))
        .with_readiness(CircuitBreakerCheck::degrading(cache.clone()));
    let report = registry.readiness().await;
    assert_eq!(report.checks[0].name, "circuit:payments");
    assert_eq!(report.status, HealthLevel::Healthy);

    // One transient failure opens each breaker.
    let failure: Result<(), StoreError> = Err(StoreError::ShutdownTimedOut {
        in_flight: 1,
        deadline: Duration::ZERO,
    });
    for b in [&breaker, &cache] {
        b.acquire().unwrap().record(&failure);
        assert_eq!(b.state(), CircuitState::Open);
    }
    let report = registry.readiness().await;
    assert_eq!(report.checks[0].status.level, HealthLevel::Unhealthy);
    assert_eq!(report.checks[1].status.level, HealthLevel::Degraded);
    assert!(!report.is_passing());
}
