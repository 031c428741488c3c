//! Runs the order statistics projection with a Prometheus recorder
//! installed and prints the counters and gauges it reported. With
//! `--serve ADDR`, then serves the whole exposition at `http://ADDR/metrics`.

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

    run_workload().await?;
    for line in stable_lines(&handle.render()) {
        println!("{line}");
    }

    if let Some(addr) = serve_at {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        eprintln!("serving http://{addr}/metrics (Ctrl-C stops)");
        serve(listener, handle).await?;
    }
    Ok(())
}
// ANCHOR_END: main
