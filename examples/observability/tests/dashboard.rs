//! The Grafana dashboard (`deploy/grafana/composable-rust.json`) against a
//! real Prometheus: the shop's workload runs on PostgreSQL and Redis with
//! the Prometheus recorder installed and `/metrics` served; a `prometheus`
//! process of the test's own (temporary config and storage, a free port;
//! `composable_rust_testing::prometheus`) scrapes it every second; once it
//! has, every PromQL expression of every panel is evaluated through
//! Prometheus's HTTP API, and the test fails naming each panel whose query
//! returns no data (or an error).
//!
//! Without a `prometheus` binary the test is skipped, saying so, unless
//! `COMPOSABLE_REQUIRE_PROMETHEUS=1` (CI sets it).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use composable_rust_testing::fixtures::{TestKeyPrefix, TestSchema};
use composable_rust_testing::prometheus::{Prometheus, binary_or_skip, dashboard_queries};
use composable_rust_testing::services::database_url;
use observability::{Settings, Shop, install_recorder, serve};

/// The dashboard, relative to this crate.
const DASHBOARD: &str = "../../deploy/grafana/composable-rust.json";

/// How long Prometheus gets to scrape enough samples for every query.
const DEADLINE: Duration = Duration::from_secs(60);

/// One test: a process has one global recorder.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_panel_of_the_dashboard_has_data_in_a_real_prometheus() {
    let Some(binary) = binary_or_skip() else {
        return;
    };
    let panels = dashboard_queries(&Path::new(env!("CARGO_MANIFEST_DIR")).join(DASHBOARD));
    assert!(
        panels.len() >= 10,
        "the dashboard has {} panels",
        panels.len()
    );

    let handle = install_recorder().unwrap();
    // Declared before the shop, so they are dropped after it.
    let events_schema = TestSchema::new();
    let read_schema = TestSchema::new();
    let prefix = TestKeyPrefix::new();
    let settings = Settings {
        database_url: database_url(),
        events_schema: events_schema.name().to_owned(),
        read_schema: read_schema.name().to_owned(),
        redis_url: prefix.url().to_owned(),
        redis_prefix: prefix.as_str().to_owned(),
    };
    let shop = Arc::new(Shop::connect(&settings).await.unwrap());
    let outcome = shop.run_once().await.unwrap();
    assert_eq!((outcome.placed, outcome.refused), (6, 1));
    assert_eq!(outcome.projection_dead_letters, 1);
    assert_eq!(outcome.bus_dead_letters, 1);
    assert_eq!(outcome.totals.shipped, 3);
    assert_eq!(
        outcome
            .warehouse_commands
            .iter()
            .filter(|command| *command == "release stock")
            .count(),
        3,
        "three orders did not ship in time"
    );

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let target = listener.local_addr().unwrap();
    let server = tokio::spawn(serve(listener, handle));
    let busy = tokio::spawn({
        let shop = Arc::clone(&shop);
        async move { shop.keep_busy(Duration::from_millis(200)).await }
    });

    let mut prometheus = Prometheus::start(&binary, "observability", &[target]).await;
    prometheus.wait_for_scrape(DEADLINE).await;
    let missing = prometheus.panels_without_data(&panels, DEADLINE).await;

    // A workload that stopped early starves every rate() of samples: say
    // why it stopped instead of blaming the panels.
    if busy.is_finished() {
        let stopped = busy.await.unwrap();
        panic!("the workload stopped while Prometheus scraped: {stopped:?}");
    }
    busy.abort();
    server.abort();
    let _ = busy.await;
    let _ = server.await;
    shop.shutdown().await.unwrap();
    drop(shop);
    assert!(
        missing.is_empty(),
        "panels of {DASHBOARD} whose query returned no data after {DEADLINE:?}:\n{}",
        missing.join("\n")
    );
}
