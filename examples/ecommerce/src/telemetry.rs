//! Metrics and logs. The shop's own metrics (beside the framework's
//! `composable_*` series) are named here, in one place, so dashboards and
//! alerts can rely on them:
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `shop_http_requests_total` | counter | `method`, `route` (the path template), `status` |
//! | `shop_http_request_duration_seconds` | histogram | `method`, `route` |
//! | `shop_http_rejected_total` | counter | `reason`: overload, body_too_large, unauthenticated, invalid |
//! | `shop_orders_placed_total` | counter | |
//! | `shop_checkout_outcomes_total` | counter | `outcome`: shipped, cancelled |

use composable_rust::metrics::{DURATION_BUCKETS, describe};
use metrics_exporter_prometheus::{BuildError, Matcher, PrometheusBuilder, PrometheusHandle};

/// Requests served, by method, route template and status.
pub const HTTP_REQUESTS: &str = "shop_http_requests_total";
/// Request latency, by method and route template.
pub const HTTP_DURATION: &str = "shop_http_request_duration_seconds";
/// Requests refused before a handler ran (or by validation), by reason.
pub const HTTP_REJECTED: &str = "shop_http_rejected_total";
/// Orders placed (new orders only, not idempotent replays).
pub const ORDERS_PLACED: &str = "shop_orders_placed_total";
/// Checkouts that ended, by outcome.
pub const CHECKOUT_OUTCOMES: &str = "shop_checkout_outcomes_total";

/// Installs the Prometheus recorder as the process's recorder (once per
/// process: `main` and a dashboard test call it). Durations become
/// histograms with the framework's buckets.
///
/// # Errors
///
/// [`BuildError`] if a recorder is already installed.
pub fn install_recorder() -> Result<PrometheusHandle, BuildError> {
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".to_owned()), DURATION_BUCKETS)?
        .install_recorder()?;
    describe();
    describe_shop();
    Ok(handle)
}

/// The `# HELP` lines of the shop's metrics.
fn describe_shop() {
    metrics::describe_counter!(
        HTTP_REQUESTS,
        "HTTP requests served, by method, route and status"
    );
    metrics::describe_histogram!(
        HTTP_DURATION,
        metrics::Unit::Seconds,
        "HTTP request latency, by method and route"
    );
    metrics::describe_counter!(HTTP_REJECTED, "HTTP requests refused, by reason");
    metrics::describe_counter!(ORDERS_PLACED, "orders placed");
    metrics::describe_counter!(CHECKOUT_OUTCOMES, "checkouts ended, by outcome");
}

/// Counts a refused request.
pub fn rejected(reason: &'static str) {
    metrics::counter!(HTTP_REJECTED, "reason" => reason).increment(1);
}

/// Counts a new order.
pub fn order_placed() {
    metrics::counter!(ORDERS_PLACED).increment(1);
}

/// Counts a checkout that ended (`shipped` or `cancelled`).
pub fn checkout_outcome(outcome: &'static str) {
    metrics::counter!(CHECKOUT_OUTCOMES, "outcome" => outcome).increment(1);
}

/// Logs to stderr, filtered by `RUST_LOG` (default `info`). Safe to call
/// twice (the second call does nothing).
pub fn init_tracing() {
    let level = std::env::var("RUST_LOG")
        .ok()
        .and_then(|value| value.parse::<tracing::Level>().ok())
        .unwrap_or(tracing::Level::INFO);
    let _ = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(std::io::stderr)
        .try_init();
}
