//! The metrics the workload reports, read back from the Prometheus
//! exposition, and the HTTP endpoint.

use composable_rust::health::{FnCheck, HealthRegistry, HealthStatus, ProjectionCheck};
use composable_rust::projection::cached::{CACHE_HITS, CACHE_MISSES};
use composable_rust::projection::manager::metrics;
use metrics_exporter_prometheus::PrometheusBuilder;
use std::sync::Arc;

use composable_rust::{InMemoryEventStore, InMemoryProjectionStore, ProjectionManager};
use projection_metrics::{OrderStats, Totals, run_workload, sample, serve, stable_lines};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// One test installs the global recorder (a process has only one).
#[tokio::test]
async fn the_exposition_has_the_expected_counters_and_gauges() {
    let handle = PrometheusBuilder::new().install_recorder().unwrap();
    let outcome = run_workload().await.unwrap();
    assert_eq!(outcome.events, 7);
    assert_eq!(outcome.dead_letters, 1);
    assert_eq!(
        outcome.totals,
        Totals {
            placed: 4,
            shipped: 2,
            revenue_cents: 10_000
        }
    );

    let text = handle.render();
    let series = |name: &str| format!("{name}{{projection=\"order-stats\"}}");
    let value = |series: &str| {
        sample(&text, series).unwrap_or_else(|| panic!("no sample {series} in\n{text}"))
    };
    // Every event the checkpoint moved past, the dead-lettered one included.
    assert_eq!(value(&series(metrics::EVENTS_APPLIED)), 7.0);
    // Three attempts at the malformed event, then one dead letter.
    assert_eq!(value(&series(metrics::APPLY_ERRORS)), 3.0);
    assert_eq!(value(&series(metrics::DEAD_LETTERS)), 1.0);
    // Caught up when it stopped.
    assert_eq!(value(&series(metrics::EVENTS_BEHIND)), 0.0);
    assert_eq!(value(&series(metrics::SECONDS_BEHIND)), 0.0);
    // The dashboard's two reads: a miss, then a hit.
    assert_eq!(value(CACHE_MISSES), 1.0);
    assert_eq!(value(CACHE_HITS), 1.0);
    // No infrastructure failures: the counter was never touched.
    assert_eq!(sample(&text, &series(metrics::BACKEND_ERRORS)), None);

    // The stable lines leave the batch-duration timings out, and nothing else.
    let stable = stable_lines(&text);
    assert!(
        stable
            .iter()
            .all(|line| !line.contains(metrics::BATCH_SECONDS))
    );
    assert!(text.contains(metrics::BATCH_SECONDS));
    assert_eq!(
        stable.iter().filter(|line| !line.starts_with('#')).count(),
        // The seven above, the cache's circuit breaker state and the event
        // store's appended events.
        9
    );
}

#[tokio::test]
async fn serves_the_exposition_over_http() {
    // A recorder that is not installed: its exposition is empty, which is
    // enough to test the endpoint.
    let handle = PrometheusBuilder::new().build_recorder().handle();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(serve(listener, handle, HealthRegistry::new()));

    for (path, status) in [("/metrics", "200 OK"), ("/", "404 Not Found")] {
        let mut socket = tokio::net::TcpStream::connect(addr).await.unwrap();
        let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n");
        socket.write_all(request.as_bytes()).await.unwrap();
        let mut response = String::new();
        socket.read_to_string(&mut response).await.unwrap();
        assert!(
            response.starts_with(&format!("HTTP/1.1 {status}\r\n")),
            "{response}"
        );
    }
    server.abort();
}

/// Sends `GET path` and returns the whole response.
async fn get(addr: std::net::SocketAddr, path: &str) -> String {
    let mut socket = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n");
    socket.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    socket.read_to_string(&mut response).await.unwrap();
    response
}

#[tokio::test]
async fn serves_the_health_probes_as_json() {
    let handle = PrometheusBuilder::new().build_recorder().handle();
    // Not the workload's manager: the other test counts what the workload
    // reports to the process's one recorder. A manager of an empty store
    // is caught up and running.
    let manager = ProjectionManager::new(
        OrderStats::default(),
        Arc::new(InMemoryProjectionStore::new()),
        InMemoryEventStore::new(),
    );
    let health = HealthRegistry::new()
        .with_liveness(ProjectionCheck::alive(manager.clone()))
        .with_readiness(ProjectionCheck::lag(manager, 100))
        .with_readiness(FnCheck::new("payments", || async {
            HealthStatus::unhealthy("the payment gateway refuses connections")
        }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(serve(listener, handle, health));

    let live = get(addr, "/health").await;
    assert!(live.starts_with("HTTP/1.1 200 OK\r\n"), "{live}");
    assert!(
        live.contains("Content-Type: application/json\r\n"),
        "{live}"
    );
    let body: serde_json::Value =
        serde_json::from_str(live.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    assert_eq!(body["probe"], "liveness");
    assert_eq!(body["checks"][0]["name"], "projection:order-stats");
    assert_eq!(body["checks"][0]["level"], "healthy");

    let ready = get(addr, "/ready").await;
    assert!(
        ready.starts_with("HTTP/1.1 503 Service Unavailable\r\n"),
        "{ready}"
    );
    let body: serde_json::Value =
        serde_json::from_str(ready.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    assert_eq!(body["status"], "unhealthy");
    assert_eq!(body["checks"][0]["level"], "healthy", "caught up");
    assert_eq!(
        body["checks"][1]["reason"],
        "the payment gateway refuses connections"
    );
    server.abort();
}
