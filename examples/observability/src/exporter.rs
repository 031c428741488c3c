//! The Prometheus side: a recorder whose durations are histograms with the
//! framework's buckets, and `GET /metrics` served with plain tokio.

use std::time::Duration;

use composable_rust::metrics::{DURATION_BUCKETS, describe};
use metrics_exporter_prometheus::{BuildError, Matcher, PrometheusBuilder, PrometheusHandle};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

// ANCHOR: install
/// Installs the Prometheus recorder as the process's recorder. Every
/// `_seconds` metric becomes a histogram with [`DURATION_BUCKETS`] (the
/// exporter would render summaries otherwise, which cannot be aggregated
/// across instances), and every metric gets its `# HELP` line.
///
/// Call it first: what is reported before a recorder is installed is lost.
pub fn install_recorder() -> Result<PrometheusHandle, BuildError> {
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".to_owned()), DURATION_BUCKETS)?
        .install_recorder()?;
    describe();
    Ok(handle)
}
// ANCHOR_END: install

/// Serves `GET /metrics` on `listener` with the exposition `handle`
/// renders, one connection at a time, until the task is dropped; runs the
/// recorder's upkeep every few seconds.
pub async fn serve(listener: TcpListener, handle: PrometheusHandle) -> std::io::Result<()> {
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
        let (status, body) = if request.starts_with(b"GET /metrics ") {
            ("200 OK", handle.render())
        } else {
            ("404 Not Found", "try GET /metrics\n".to_owned())
        };
        let response = format!(
            "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        socket.write_all(response.as_bytes()).await?;
        socket.shutdown().await?;
    }
}
