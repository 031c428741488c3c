//! The Grafana dashboard (`deploy/grafana/composable-rust.json`) against a
//! real Prometheus: the shop's workload runs on PostgreSQL and Redis with
//! the Prometheus recorder installed and `/metrics` served; a `prometheus`
//! process of the test's own (temporary config and storage, a free port)
//! scrapes it every second; once it has, every PromQL expression of every
//! panel is evaluated through Prometheus's HTTP API, and the test fails
//! naming each panel whose query returns no data (or an error).
//!
//! Without a `prometheus` binary the test is skipped, saying so, unless
//! `COMPOSABLE_REQUIRE_PROMETHEUS=1` (CI sets it).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use composable_rust_testing::fixtures::{TestKeyPrefix, TestSchema};
use composable_rust_testing::services::database_url;
use observability::{Settings, Shop, install_recorder, serve};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The dashboard, relative to this crate.
const DASHBOARD: &str = "../../deploy/grafana/composable-rust.json";

/// How long Prometheus gets to scrape enough samples for every query.
const DEADLINE: Duration = Duration::from_secs(60);

/// One test: a process has one global recorder.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_panel_of_the_dashboard_has_data_in_a_real_prometheus() {
    let Some(binary) = prometheus_binary() else {
        assert!(
            std::env::var("COMPOSABLE_REQUIRE_PROMETHEUS").as_deref() != Ok("1"),
            "COMPOSABLE_REQUIRE_PROMETHEUS=1 but there is no `prometheus` on PATH: install \
             it (Debian: `apt-get install prometheus`, or ci/install-packages) or set PROMETHEUS_BIN"
        );
        eprintln!(
            "SKIPPED: no `prometheus` on PATH (Debian: `apt-get install prometheus`); set \
             COMPOSABLE_REQUIRE_PROMETHEUS=1 to make this a failure"
        );
        return;
    };
    let panels = dashboard_queries();
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

    let prometheus = Prometheus::start(&binary, target).await;
    prometheus.wait_for_scrape().await;
    let missing = prometheus.panels_without_data(&panels).await;

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

/// `(panel title, expression)` for every target of every panel (rows'
/// panels included).
fn dashboard_queries() -> Vec<(String, String)> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(DASHBOARD);
    let text = std::fs::read_to_string(&path).unwrap();
    let dashboard: Value = serde_json::from_str(&text).unwrap();
    let mut queries = Vec::new();
    let mut panels: Vec<&Value> = dashboard["panels"].as_array().unwrap().iter().collect();
    while let Some(panel) = panels.pop() {
        if let Some(nested) = panel["panels"].as_array() {
            panels.extend(nested);
        }
        let title = panel["title"].as_str().unwrap_or("(untitled)");
        for target in panel["targets"].as_array().into_iter().flatten() {
            let expr = target["expr"].as_str().unwrap_or_default();
            assert!(
                !expr.is_empty(),
                "panel {title:?} has a target without expr"
            );
            queries.push((title.to_owned(), expr.to_owned()));
        }
    }
    queries
}

/// `PROMETHEUS_BIN`, or `prometheus` on `PATH`.
fn prometheus_binary() -> Option<PathBuf> {
    if let Some(binary) = std::env::var_os("PROMETHEUS_BIN") {
        return Some(PathBuf::from(binary));
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join("prometheus"))
        .find(|candidate| candidate.is_file())
}

/// A `prometheus` process with its own config and storage in a temporary
/// directory, killed and cleaned up when dropped.
struct Prometheus {
    process: tokio::process::Child,
    address: SocketAddr,
    dir: PathBuf,
}

impl Prometheus {
    async fn start(binary: &Path, target: SocketAddr) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "composable-prometheus-{}",
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(dir.join("data")).unwrap();
        let config = format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
             scrape_configs:\n  - job_name: observability\n    static_configs:\n      - targets: ['{target}']\n"
        );
        std::fs::write(dir.join("prometheus.yml"), config).unwrap();
        // A free port: taken, then given back for Prometheus to listen on.
        let address = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let process = tokio::process::Command::new(binary)
            .arg(format!(
                "--config.file={}",
                dir.join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address={address}"))
            .arg("--log.level=warn")
            .stdout(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start {}: {error}", binary.display()));
        Self {
            process,
            address,
            dir,
        }
    }

    /// The result vector of the instant query `expr`, or Prometheus's error.
    async fn query(&self, expr: &str) -> Result<Vec<Value>, String> {
        let path = format!("/api/v1/query?query={}", percent_encode(expr));
        let body = http_get(self.address, &path)
            .await
            .map_err(|error| format!("Prometheus unreachable: {error}"))?;
        let reply: Value =
            serde_json::from_str(&body).map_err(|error| format!("{error}: {body}"))?;
        if reply["status"] != "success" {
            return Err(format!("{}: {}", reply["errorType"], reply["error"]));
        }
        Ok(reply["data"]["result"]
            .as_array()
            .cloned()
            .unwrap_or_default())
    }

    /// Waits until a scrape of the example succeeded (`up` is 1).
    async fn wait_for_scrape(&self) {
        let started = Instant::now();
        loop {
            if let Ok(result) = self.query("up{job=\"observability\"}").await
                && result
                    .first()
                    .and_then(|sample| sample["value"][1].as_str())
                    == Some("1")
            {
                return;
            }
            assert!(
                started.elapsed() < DEADLINE,
                "Prometheus never scraped the example within {DEADLINE:?}"
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Evaluates every query until all return data or the deadline passes;
    /// returns `panel: expr (why)` for those that never did.
    async fn panels_without_data(&self, panels: &[(String, String)]) -> Vec<String> {
        let started = Instant::now();
        loop {
            let mut missing = Vec::new();
            for (title, expr) in panels {
                match self.query(expr).await {
                    Ok(result) if !result.is_empty() => {}
                    Ok(_) => missing.push(format!("{title}: {expr} (no data)")),
                    Err(error) => missing.push(format!("{title}: {expr} ({error})")),
                }
            }
            if missing.is_empty() || started.elapsed() >= DEADLINE {
                return missing;
            }
            // rate() and increase() need two scrapes inside their window.
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.process.start_kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A plain HTTP/1.0 GET of `path` on `address`; the body.
async fn http_get(address: SocketAddr, path: &str) -> std::io::Result<String> {
    let mut socket = TcpStream::connect(address).await?;
    let request = format!("GET {path} HTTP/1.0\r\nHost: {address}\r\n\r\n");
    socket.write_all(request.as_bytes()).await?;
    let mut response = String::new();
    socket.read_to_string(&mut response).await?;
    let (_, body) = response
        .split_once("\r\n\r\n")
        .ok_or_else(|| std::io::Error::other(format!("not HTTP: {response}")))?;
    Ok(body.to_owned())
}

/// Percent-encodes everything but the unreserved characters of RFC 3986.
fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                char::from(byte).to_string()
            }
            _ => format!("%{byte:02X}"),
        })
        .collect()
}
