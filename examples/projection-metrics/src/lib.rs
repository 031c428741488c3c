//! A projection run over an in-memory event store while a Prometheus
//! recorder collects the metrics the framework reports.
//!
//! - [`OrderStats`]: a small projection (orders placed, shipped, revenue);
//! - [`run_workload`]: appends some orders, one of them malformed, runs the
//!   projection with a `ProjectionManager` until it has caught up, and reads
//!   the result through a `CachedProjectionStore`;
//! - [`stable_lines`]: the counters and gauges of an exposition, without
//!   histograms and summaries (whose timings differ on every run);
//! - [`serve`]: answers `GET /metrics`, and the health probes `GET /health`
//!   (liveness) and `GET /ready` (readiness), with plain tokio.

use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use composable_rust::event::decode;
use composable_rust::health::HealthRegistry;
use composable_rust::prelude::*;
use composable_rust::projection::{
    CacheMode, CachedProjectionStore, ProjectionConfig, RetryPolicy,
};
use composable_rust::{ExpectedVersion, NewEvent, Upcasters};
use composable_rust::{
    InMemoryEventStore, InMemoryProjectionStore, ProjectionError, ProjectionManager,
};
use metrics_exporter_prometheus::PrometheusHandle;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// What happens to an order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
pub enum OrderEvent {
    Placed { customer: String, total_cents: u64 },
    Shipped,
}

/// The dashboard's figures.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Totals {
    pub placed: u64,
    pub shipped: u64,
    pub revenue_cents: u64,
}

/// The content type of the Prometheus exposition.
const EXPOSITION: &str = "text/plain; version=0.0.4";
/// The content type of the health reports.
const JSON: &str = "application/json";

/// The key of the dashboard's figures.
pub const TOTALS_KEY: &str = "order-stats:totals";

/// Keeps the [`Totals`] up to date.
#[derive(Debug)]
pub struct OrderStats<S> {
    upcasters: Upcasters,
    _store: PhantomData<fn() -> S>,
}

impl<S> Default for OrderStats<S> {
    fn default() -> Self {
        Self {
            upcasters: Upcasters::new(),
            _store: PhantomData,
        }
    }
}

#[async_trait]
impl<S: ProjectionCheckpoint> Projection for OrderStats<S> {
    type Store = S;

    fn name(&self) -> &str {
        "order-stats"
    }

    async fn apply(&self, event: &StoredEvent, tx: &mut S::Tx) -> Result<(), ProjectionError> {
        // A payload that does not decode is an error of this event: it is
        // retried, then dead-lettered.
        let Some(order_event) = decode::<OrderEvent>(event, &self.upcasters)? else {
            return Ok(());
        };
        let mut totals: Totals = tx.get_json(TOTALS_KEY).await?.unwrap_or_default();
        match order_event {
            OrderEvent::Placed { total_cents, .. } => {
                totals.placed += 1;
                totals.revenue_cents += total_cents;
            }
            OrderEvent::Shipped => totals.shipped += 1,
        }
        tx.save_json(TOTALS_KEY, &totals).await
    }

    async fn reset(&self, tx: &mut S::Tx) -> Result<(), ProjectionError> {
        tx.delete_prefix("order-stats:").await.map(|_| ())
    }
}

/// The read model: an in-memory primary store with an in-memory cache in
/// front (PostgreSQL and Redis in production).
pub type ReadModel = CachedProjectionStore<InMemoryProjectionStore, InMemoryProjectionStore>;

/// What [`run_workload`] did.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Events appended, the malformed one included.
    pub events: u64,
    /// The figures read back through the cache.
    pub totals: Totals,
    /// Events the projection dead-lettered.
    pub dead_letters: usize,
    /// The (stopped) manager, for health checks.
    pub manager: ProjectionManager<OrderStats<ReadModel>>,
}

/// Appends nine orders' events and one malformed event, runs the projection
/// until it has applied them all, stops it, and reads the totals twice
/// through the cache (a miss, then a hit). Every metric this reports goes
/// to the globally installed recorder.
pub async fn run_workload() -> Result<Outcome, Box<dyn std::error::Error>> {
    let events = InMemoryEventStore::new();
    let mut appended = 0;
    for order in 1..=4_u64 {
        let stream = StreamId::for_aggregate("order", order)?;
        let placed = OrderEvent::Placed {
            customer: format!("customer-{order}"),
            total_cents: order * 1_000,
        };
        let mut batch = vec![NewEvent::from_event(&placed)?];
        if order % 2 == 0 {
            batch.push(NewEvent::from_event(&OrderEvent::Shipped)?);
        }
        appended += batch.len() as u64;
        events
            .append(&stream, ExpectedVersion::NoStream, batch)
            .await?;
    }
    // Another service wrote an order without its total: it cannot decode.
    let mut malformed = NewEvent::from_event(&OrderEvent::Shipped)?;
    malformed.event_type = "Placed".into();
    malformed.payload = serde_json::json!({ "customer": "customer-5" });
    let stream = StreamId::for_aggregate("order", 5)?;
    let last = events
        .append(&stream, ExpectedVersion::NoStream, vec![malformed])
        .await?
        .last_position;
    appended += 1;

    // ANCHOR: run
    let read_model = Arc::new(CachedProjectionStore::new(
        InMemoryProjectionStore::new(),
        InMemoryProjectionStore::new(),
        CacheMode::CacheAside,
    ));
    let config = ProjectionConfig {
        retry: RetryPolicy {
            max_attempts: 3,
            initial_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(10),
        },
        // Refresh the lag gauges after every batch.
        lag_interval: Duration::ZERO,
        ..ProjectionConfig::default()
    };
    let manager =
        ProjectionManager::builder(OrderStats::default(), Arc::clone(&read_model), events)
            .with_config(config)
            .build();
    let running = manager.start();
    manager.wait_for(last, Duration::from_secs(5)).await?;
    manager.shutdown();
    running.await??;
    // ANCHOR_END: run

    // The dashboard reads twice: the first read misses the cache and
    // fills it, the second hits.
    let mut totals = Totals::default();
    for _ in 0..2 {
        totals = read_model.get_json(TOTALS_KEY).await?.unwrap_or_default();
    }
    Ok(Outcome {
        events: appended,
        totals,
        dead_letters: manager.dead_letters().await?.len(),
        manager,
    })
}

/// The lines of a Prometheus exposition that describe counters and gauges
/// (each metric's `# TYPE` line and its samples), sorted by metric name.
/// Histograms and summaries are left out: their values are timings.
pub fn stable_lines(exposition: &str) -> Vec<&str> {
    let mut metrics: Vec<Vec<&str>> = Vec::new();
    let mut keep = false;
    for line in exposition.lines() {
        if let Some(declaration) = line.strip_prefix("# TYPE ") {
            keep = declaration.ends_with(" counter") || declaration.ends_with(" gauge");
            if keep {
                metrics.push(Vec::new());
            }
        }
        let wanted = keep && !line.is_empty() && !line.starts_with("# HELP");
        if let Some(metric) = metrics.last_mut().filter(|_| wanted) {
            metric.push(line);
        }
    }
    metrics.sort();
    metrics.concat()
}

/// The value of the sample `name{labels}` (or `name` without labels) in an
/// exposition.
pub fn sample(exposition: &str, series: &str) -> Option<f64> {
    exposition.lines().find_map(|line| {
        let (key, value) = line.rsplit_once(' ')?;
        (key == series).then(|| value.parse().ok()).flatten()
    })
}

/// Serves `GET /metrics` on `listener` with the exposition `handle`
/// renders, and `GET /health` and `GET /ready` with the liveness and
/// readiness reports of `health` as JSON (200 when the probe passes, 503
/// when it does not), one connection at a time, until the task is
/// dropped; runs the recorder's upkeep every few seconds.
pub async fn serve(
    listener: TcpListener,
    handle: PrometheusHandle,
    health: HealthRegistry,
) -> std::io::Result<()> {
    let upkeep = handle.clone();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(5)).await;
            upkeep.run_upkeep();
        }
    });
    loop {
        let (mut socket, _) = listener.accept().await?;
        let mut request = Vec::new();
        let mut buffer = [0_u8; 1024];
        // Read the request head; the body (there is none for GET) is ignored.
        while !request.windows(4).any(|w| w == b"\r\n\r\n") && request.len() < 16 * 1024 {
            match socket.read(&mut buffer).await? {
                0 => break,
                n => request.extend_from_slice(&buffer[..n]),
            }
        }
        let probe = if request.starts_with(b"GET /health ") {
            Some(health.liveness().await)
        } else if request.starts_with(b"GET /ready ") {
            Some(health.readiness().await)
        } else {
            None
        };
        let (status, content_type, body) = match probe {
            Some(report) if report.is_passing() => ("200 OK", JSON, report.to_json()),
            Some(report) => ("503 Service Unavailable", JSON, report.to_json()),
            None if request.starts_with(b"GET /metrics ") => {
                ("200 OK", EXPOSITION, handle.render())
            }
            None => (
                "404 Not Found",
                EXPOSITION,
                "try GET /metrics, /health or /ready\n".to_owned(),
            ),
        };
        let response = format!(
            "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        socket.write_all(response.as_bytes()).await?;
        socket.shutdown().await?;
    }
}
