//! Runs the order statistics projection with a Prometheus recorder
//! installed and prints the counters and gauges it reported. With
//! `--serve ADDR`, then serves the whole exposition at `http://ADDR/metrics`
//! and the health probes at `/health` and `/ready`.

use composable_rust::health::{HealthRegistry, ProjectionCheck};
use metrics_exporter_prometheus::PrometheusBuilder;
use projection_metrics::{run_workload, serve, stable_lines};

// ANCHOR: main
#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let serve_at = match std::env::args().skip(1).collect::<Vec<_>>().as_slice() {
        [] => None,
        [flag, addr] if flag == "--serve" => Some(addr.clone()),
        _ => return Err("usage: projection-metrics [--serve ADDR]".into()),
    };

    // Install the recorder first: metrics reported before that are lost.
    let handle = PrometheusBuilder::new().install_recorder()?;

    let outcome = run_workload().await?;
    for line in stable_lines(&handle.render()) {
        println!("{line}");
    }

    if let Some(addr) = serve_at {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        eprintln!("serving http://{addr}/metrics (Ctrl-C stops)");
        // Liveness: the projection has not stopped on a failure retrying
        // cannot fix. Readiness: it is at most 100 events behind.
        let health = HealthRegistry::new()
            .with_liveness(ProjectionCheck::alive(outcome.manager.clone()))
            .with_readiness(ProjectionCheck::lag(outcome.manager, 100));
        serve(listener, handle, health).await?;
    }
    Ok(())
}
// ANCHOR_END: main
