//! `ecommerce serve`: runs the shop until SIGTERM or Ctrl-C, then shuts it
//! down gracefully. Configuration comes from the environment (see
//! `ecommerce::config::ENV_VARS` and the README).

use std::process::ExitCode;

use ecommerce::{Config, telemetry};

const USAGE: &str =
    "usage: ecommerce serve   (configured by environment variables; see the README)";

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().map(String::as_str).collect::<Vec<_>>() != ["serve"] {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    }
    telemetry::init_tracing();
    match serve().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn serve() -> Result<(), Box<dyn std::error::Error>> {
    let mut config = Config::from_env()?;
    config.metrics = Some(telemetry::install_recorder()?);
    let shop = ecommerce::start(config).await?;
    println!("listening on {}", shop.base_url());
    signal().await;
    eprintln!("stopping: finishing requests in flight and draining the workers");
    let report = shop.shutdown().await;
    for runner in &report.runners {
        eprintln!("  {}: {:?}", runner.name, runner.outcome);
    }
    Ok(())
}

/// SIGTERM (what orchestrators send) or Ctrl-C.
async fn signal() {
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(_) => {
                    // No SIGTERM handler: Ctrl-C only.
                    let _ = tokio::signal::ctrl_c().await;
                    return;
                }
            };
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
