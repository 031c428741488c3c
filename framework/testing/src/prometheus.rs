//! A real Prometheus for tests (feature `prometheus`): checks that a
//! Grafana dashboard's every query has data against the metrics an
//! application really exports.
//!
//! [`Prometheus::start`] runs a `prometheus` process of the test's own (a
//! temporary config and storage directory, a free port on 127.0.0.1)
//! scraping the given targets' `/metrics` every second;
//! [`Prometheus::wait_for_scrape`] waits until every target has been
//! scraped; [`Prometheus::panels_without_data`] evaluates every panel
//! expression of a dashboard ([`dashboard_queries`]) through Prometheus's
//! HTTP API until all return data or a deadline passes, and names those
//! that never did. The process is killed and its directory removed when
//! the [`Prometheus`] is dropped.
//!
//! A machine without Prometheus skips such a test, saying so, unless
//! `COMPOSABLE_REQUIRE_PROMETHEUS=1` (CI sets it): [`binary_or_skip`].
//!
//! ```no_run
//! # async fn example(target: std::net::SocketAddr) {
//! use composable_rust_testing::prometheus::{binary_or_skip, dashboard_queries, Prometheus};
//! use std::time::Duration;
//!
//! let Some(binary) = binary_or_skip() else { return };
//! let queries = dashboard_queries("deploy/grafana/dashboards/shop.json".as_ref());
//! let mut prometheus = Prometheus::start(&binary, "shop", &[target]).await;
//! prometheus.wait_for_scrape(Duration::from_secs(60)).await;
//! let missing = prometheus.panels_without_data(&queries, Duration::from_secs(60)).await;
//! assert!(missing.is_empty(), "panels without data:\n{}", missing.join("\n"));
//! # }
//! ```
//!
//! Expressions are evaluated as written: a dashboard checked this way uses
//! fixed windows (`rate(x[1m])`), not Grafana's `$__rate_interval`, which
//! Prometheus alone cannot expand (such a panel is reported, never
//! silently passed).

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The variable that turns a missing `prometheus` binary from a skip into
/// a failure.
pub const REQUIRE_VAR: &str = "COMPOSABLE_REQUIRE_PROMETHEUS";

/// `PROMETHEUS_BIN`, or `prometheus` on `PATH`, if there is one.
pub fn binary() -> Option<PathBuf> {
    if let Some(binary) = std::env::var_os("PROMETHEUS_BIN") {
        return Some(PathBuf::from(binary));
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join("prometheus"))
        .find(|candidate| candidate.is_file())
}

/// The `prometheus` binary, or `None` after printing why the test is
/// skipped.
///
/// # Panics
///
/// When there is no binary and `COMPOSABLE_REQUIRE_PROMETHEUS=1`: CI must
/// not skip the check.
#[track_caller]
pub fn binary_or_skip() -> Option<PathBuf> {
    if let Some(binary) = binary() {
        return Some(binary);
    }
    assert!(
        std::env::var(REQUIRE_VAR).as_deref() != Ok("1"),
        "{REQUIRE_VAR}=1 but there is no `prometheus` on PATH: install it (Debian: \
         `apt-get install prometheus`, or ci/install-packages) or set PROMETHEUS_BIN"
    );
    eprintln!(
        "SKIPPED: no `prometheus` on PATH (Debian: `apt-get install prometheus`); set \
         {REQUIRE_VAR}=1 to make this a failure"
    );
    None
}

/// One expression of one dashboard panel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PanelQuery {
    /// The panel's title.
    pub panel: String,
    /// Its PromQL expression, as written in the dashboard.
    pub expr: String,
}

/// Every target expression of every panel of the Grafana dashboard JSON at
/// `path` (the panels of rows included), in no particular order.
///
/// # Panics
///
/// When the file cannot be read or is not a dashboard (no `panels` array),
/// or a target has no `expr`: the dashboard itself is wrong.
#[track_caller]
pub fn dashboard_queries(path: &Path) -> Vec<PanelQuery> {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|error| panic!("cannot read the dashboard {}: {error}", path.display()));
    let dashboard: Value = serde_json::from_str(&text)
        .unwrap_or_else(|error| panic!("{} is not JSON: {error}", path.display()));
    let mut panels: Vec<&Value> = dashboard["panels"]
        .as_array()
        .unwrap_or_else(|| panic!("{} has no `panels` array", path.display()))
        .iter()
        .collect();
    let mut queries = Vec::new();
    while let Some(panel) = panels.pop() {
        if let Some(nested) = panel["panels"].as_array() {
            panels.extend(nested);
        }
        let title = panel["title"].as_str().unwrap_or("(untitled)");
        for target in panel["targets"].as_array().into_iter().flatten() {
            let expr = target["expr"].as_str().unwrap_or_default();
            assert!(
                !expr.is_empty(),
                "panel {title:?} of {} has a target without expr",
                path.display()
            );
            queries.push(PanelQuery {
                panel: title.to_owned(),
                expr: expr.to_owned(),
            });
        }
    }
    queries
}

/// Why a query returned no result vector.
#[derive(Debug)]
pub enum QueryError {
    /// Prometheus's HTTP API could not be reached (the process died, or
    /// has not started listening yet).
    Unreachable(std::io::Error),
    /// The reply was not the JSON document of the query API.
    BadReply(String),
    /// Prometheus refused the query (a syntax error, an unknown function).
    Rejected {
        /// Prometheus's `errorType`.
        kind: String,
        /// Prometheus's `error`.
        error: String,
    },
}

impl fmt::Display for QueryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unreachable(error) => write!(f, "Prometheus unreachable: {error}"),
            Self::BadReply(reply) => write!(f, "not a query reply: {reply}"),
            Self::Rejected { kind, error } => write!(f, "{kind}: {error}"),
        }
    }
}

impl std::error::Error for QueryError {}

/// A `prometheus` process with its own config and storage in a temporary
/// directory, scraping its targets every second; killed and cleaned up
/// when dropped.
#[derive(Debug)]
pub struct Prometheus {
    process: tokio::process::Child,
    address: SocketAddr,
    dir: PathBuf,
    job: String,
    targets: usize,
}

impl Prometheus {
    /// Starts `binary` scraping `http://{target}/metrics` of every target
    /// every second, as the job `job`.
    ///
    /// # Panics
    ///
    /// When the temporary directory cannot be written or the process
    /// cannot be started.
    pub async fn start(binary: &Path, job: &str, targets: &[SocketAddr]) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "composable-prometheus-{}",
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(dir.join("data"))
            .unwrap_or_else(|error| panic!("cannot create {}: {error}", dir.display()));
        let targets_yaml = targets
            .iter()
            .map(|target| format!("'{target}'"))
            .collect::<Vec<_>>()
            .join(", ");
        // The job name goes into YAML and into the `up{job=...}` query:
        // quoted in both, so it is written as given.
        let config = format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
             scrape_configs:\n  - job_name: '{job}'\n    metrics_path: /metrics\n    \
             static_configs:\n      - targets: [{targets_yaml}]\n"
        );
        std::fs::write(dir.join("prometheus.yml"), config).unwrap_or_else(|error| {
            panic!("cannot write the config in {}: {error}", dir.display())
        });
        // A free port: taken, then given back for Prometheus to listen on.
        let address = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .unwrap_or_else(|error| panic!("no free port on 127.0.0.1: {error}"));
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
            job: job.to_owned(),
            targets: targets.len(),
        }
    }

    /// Where Prometheus's HTTP API listens.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// The result vector of the instant query `expr`.
    ///
    /// # Errors
    ///
    /// [`QueryError`] when Prometheus is unreachable, answers something
    /// else than a query reply, or refuses the expression.
    pub async fn query(&self, expr: &str) -> Result<Vec<Value>, QueryError> {
        let path = format!("/api/v1/query?query={}", percent_encode(expr));
        let body = http_get(self.address, &path)
            .await
            .map_err(QueryError::Unreachable)?;
        let reply: Value = serde_json::from_str(&body)
            .map_err(|error| QueryError::BadReply(format!("{error}: {body}")))?;
        if reply["status"] != "success" {
            return Err(QueryError::Rejected {
                kind: reply["errorType"].as_str().unwrap_or_default().to_owned(),
                error: reply["error"].as_str().unwrap_or_default().to_owned(),
            });
        }
        Ok(reply["data"]["result"]
            .as_array()
            .cloned()
            .unwrap_or_default())
    }

    /// Waits until the last scrape of every target succeeded (`up` is 1
    /// for each).
    ///
    /// # Panics
    ///
    /// When `deadline` passes first, or the process exits.
    pub async fn wait_for_scrape(&mut self, deadline: Duration) {
        let started = Instant::now();
        let up = format!("up{{job=\"{}\"}} == 1", self.job.replace('"', "\\\""));
        loop {
            if let Ok(result) = self.query(&up).await
                && result.len() == self.targets
            {
                return;
            }
            if let Ok(Some(status)) = self.process.try_wait() {
                panic!("prometheus exited ({status}) before it scraped its targets");
            }
            assert!(
                started.elapsed() < deadline,
                "Prometheus never scraped all {} target(s) of job {:?} within {deadline:?}",
                self.targets,
                self.job
            );
            // Polling Prometheus's own API: a scrape is not an event the
            // test can be notified of.
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Evaluates every query until all return data or `deadline` passes;
    /// returns `panel: expr (why)` for each that never did (empty when
    /// every panel has data).
    pub async fn panels_without_data(
        &self,
        queries: &[PanelQuery],
        deadline: Duration,
    ) -> Vec<String> {
        let started = Instant::now();
        loop {
            let mut missing = Vec::new();
            for query in queries {
                let PanelQuery { panel, expr } = query;
                if expr.contains('$') {
                    missing.push(format!(
                        "{panel}: {expr} (a Grafana variable Prometheus cannot expand)"
                    ));
                    continue;
                }
                match self.query(expr).await {
                    Ok(result) if !result.is_empty() => {}
                    Ok(_) => missing.push(format!("{panel}: {expr} (no data)")),
                    Err(error) => missing.push(format!("{panel}: {expr} ({error})")),
                }
            }
            if missing.is_empty() || started.elapsed() >= deadline {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_encoding_keeps_only_unreserved_characters() {
        assert_eq!(
            percent_encode("rate(x[1m]) / 2"),
            "rate%28x%5B1m%5D%29%20%2F%202"
        );
    }

    #[test]
    fn dashboard_queries_include_the_panels_of_rows() {
        let path = std::env::temp_dir().join(format!(
            "composable-dashboard-{}.json",
            uuid::Uuid::new_v4().simple()
        ));
        let dashboard = serde_json::json!({
            "panels": [
                {"title": "top", "targets": [{"expr": "up"}]},
                {"title": "row", "type": "row", "panels": [
                    {"title": "inner", "targets": [{"expr": "a"}, {"expr": "b"}]}
                ]}
            ]
        });
        std::fs::write(&path, dashboard.to_string()).unwrap();
        let mut queries = dashboard_queries(&path);
        let _ = std::fs::remove_file(&path);
        queries.sort_by(|a, b| a.expr.cmp(&b.expr));
        let pairs: Vec<(&str, &str)> = queries
            .iter()
            .map(|query| (query.panel.as_str(), query.expr.as_str()))
            .collect();
        assert_eq!(pairs, [("inner", "a"), ("inner", "b"), ("top", "up")]);
    }
}
