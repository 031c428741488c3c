//! Runs the shop's workload on PostgreSQL (`DATABASE_URL`) and Redis
//! (`REDIS_URL`) with a Prometheus recorder installed, prints what it did,
//! then (with `--serve ADDR`) keeps a trickle of orders going and serves
//! `http://ADDR/metrics` until stopped. Its data lives in schemas and a key
//! prefix of its own, named after the run, deleted at the end of a run
//! without `--serve`.

use std::time::Duration;

use observability::{Settings, Shop, install_recorder, serve};

#[tokio::main]
async fn main() -> Result<(), observability::Error> {
    let serve_at = match std::env::args().skip(1).collect::<Vec<_>>().as_slice() {
        [] => None,
        [flag, addr] if flag == "--serve" => Some(addr.clone()),
        _ => return Err("usage: observability [--serve ADDR]".into()),
    };
    let handle = install_recorder()?;

    let run = uuid::Uuid::new_v4().simple().to_string();
    let settings = Settings {
        database_url: env(
            "DATABASE_URL",
            "postgres://postgres@localhost:5432/postgres",
        )?,
        events_schema: format!("observability_{run}"),
        read_schema: format!("observability_read_{run}"),
        redis_url: env("REDIS_URL", "redis://127.0.0.1:6379")?,
        redis_prefix: format!("example:observability:{run}"),
    };
    let shop = Shop::connect(&settings).await?;
    let outcome = shop.run_once().await?;
    println!("{outcome:#?}");

    if let Some(addr) = serve_at {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        eprintln!(
            "serving http://{}/metrics (Ctrl-C stops)",
            listener.local_addr()?
        );
        tokio::select! {
            served = serve(listener, handle) => served?,
            busy = shop.keep_busy(Duration::from_millis(250)) => busy?,
        }
    }
    shop.shutdown().await?;
    shop.drop_data().await?;
    Ok(())
}

/// The variable `name`, or an error saying how to set it.
fn env(name: &str, example: &str) -> Result<String, String> {
    std::env::var(name)
        .ok()
        .filter(|value| !value.is_empty())
        .ok_or_else(|| format!("set {name}, e.g. {name}={example}"))
}
