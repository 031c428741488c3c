//! Checks docker-compose.yml and the files it mounts without a Docker
//! engine (CI has none, so the compose file is never started there): every
//! service is there, the shop gets every variable of
//! `ecommerce::config::ENV_VARS` (and only those) and that environment is
//! a configuration the shop accepts, Prometheus scrapes the shop's
//! `/metrics`, Grafana's datasource is that Prometheus, and every
//! dashboard Grafana is given exists and is a dashboard.
//!
//! The compose file is read by `composable_rust_testing::compose`, which
//! refuses what it does not understand instead of guessing.

use std::path::{Path, PathBuf};

use composable_rust_testing::compose::{ComposeFile, Service};
use ecommerce::config::{ENV_VARS, MIN_SECRET_BYTES};

/// The services the compose file must define.
const SERVICES: &[&str] = &[
    "postgres",
    "redis",
    "broker",
    "prometheus",
    "grafana",
    "shop",
];

/// Where the Grafana image looks for provisioning, and where the dashboard
/// provider (deploy/grafana/provisioning/dashboards) reads dashboards.
const GRAFANA_PROVISIONING: &str = "/etc/grafana/provisioning";
const GRAFANA_DASHBOARDS: &str = "/var/lib/grafana/dashboards";

/// The crate's folder (where docker-compose.yml is).
fn here() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn compose() -> ComposeFile {
    ComposeFile::read(here().join("docker-compose.yml"))
}

/// The `(host path, container path)` of each bind mount of a service.
fn bind_mounts(service: &Service) -> Vec<(PathBuf, String)> {
    service
        .bind_mounts(&here())
        .unwrap_or_else(|error| panic!("docker-compose.yml: {error}"))
}

/// The host file or folder mounted at `container`.
fn mounted_at(service: &Service, container: &str) -> PathBuf {
    bind_mounts(service)
        .into_iter()
        .find(|(_, path)| path == container)
        .map(|(host, _)| host)
        .unwrap_or_else(|| panic!("nothing is mounted at {container}"))
}

#[test]
fn every_service_is_defined() {
    let compose = compose();
    let missing: Vec<_> = SERVICES
        .iter()
        .filter(|name| !compose.services().contains_key(**name))
        .collect();
    assert!(
        missing.is_empty(),
        "services missing from docker-compose.yml: {missing:?}"
    );
    assert!(
        compose.service("broker").scalars["image"].contains("redpanda"),
        "the broker is Redpanda"
    );
}

#[test]
fn the_shop_gets_every_variable_it_reads_and_accepts_them() {
    let compose = compose();
    let environment = compose
        .service("shop")
        .maps
        .get("environment")
        .expect("the shop service has an `environment:` mapping");
    let missing: Vec<_> = ENV_VARS
        .iter()
        .filter(|name| !environment.contains_key(**name))
        .collect();
    assert!(
        missing.is_empty(),
        "the shop's environment lacks {missing:?}"
    );
    let unknown: Vec<_> = environment
        .keys()
        .filter(|name| !ENV_VARS.contains(&name.as_str()))
        .collect();
    assert!(
        unknown.is_empty(),
        "the shop does not read {unknown:?} (a typo?)"
    );

    // The secret is never written in the file: compose takes it from the
    // caller's environment and refuses to start without it.
    let secret = &environment["SHOP_TOKEN_SECRET"];
    assert!(
        secret.starts_with("${SHOP_TOKEN_SECRET:?"),
        "SHOP_TOKEN_SECRET must be required from the environment, not {secret:?}"
    );

    // What the shop would read in the container (the secret as the caller
    // would provide it) is a configuration it accepts.
    let provided = "s".repeat(MIN_SECRET_BYTES);
    let config = ecommerce::Config::from_lookup(|name| {
        if name == "SHOP_TOKEN_SECRET" {
            return Some(provided.clone());
        }
        environment.get(name).cloned()
    })
    .unwrap_or_else(|error| panic!("the compose environment is refused: {error}"));
    assert!(
        config.bind.ip().is_unspecified(),
        "the shop must listen on every interface of its container, not {}",
        config.bind
    );
    let published = &compose.service("shop").lists["ports"];
    assert!(
        published.contains(&format!("{0}:{0}", config.bind.port())),
        "the shop's port {} is not published: {published:?}",
        config.bind.port()
    );
}

#[test]
fn the_shop_image_is_built_by_the_dockerfile() {
    let compose = compose();
    let build = &compose.service("shop").maps["build"];
    let context = here().join(&build["context"]);
    let dockerfile = context.join(&build["dockerfile"]);
    let text = std::fs::read_to_string(&dockerfile)
        .unwrap_or_else(|error| panic!("{}: {error}", dockerfile.display()));
    assert!(
        context.join("Cargo.toml").is_file(),
        "the build context {} is not the workspace root",
        context.display()
    );
    assert!(
        text.contains("-p ecommerce"),
        "the Dockerfile builds the shop"
    );
    assert!(
        text.contains("CMD [\"serve\"]"),
        "the image runs `ecommerce serve`"
    );
    assert!(
        text.contains("\nUSER "),
        "the image runs as a non-root user"
    );
}

#[test]
fn prometheus_scrapes_the_shops_metrics() {
    let compose = compose();
    let config_path = mounted_at(
        compose.service("prometheus"),
        "/etc/prometheus/prometheus.yml",
    );
    let config = std::fs::read_to_string(&config_path)
        .unwrap_or_else(|error| panic!("{}: {error}", config_path.display()));
    let value_of = |key: &str| {
        config
            .lines()
            .find_map(|line| line.trim().strip_prefix(key))
            .map(|value| value.trim().to_owned())
            .unwrap_or_else(|| panic!("{} has no `{key}`", config_path.display()))
    };
    assert_eq!(value_of("metrics_path:"), "/metrics");
    let targets = value_of("- targets:");
    let shop_bind = &compose.service("shop").maps["environment"]["SHOP_BIND"];
    let port = shop_bind.rsplit(':').next().unwrap();
    assert_eq!(
        targets,
        format!("['shop:{port}']"),
        "Prometheus must scrape the shop service on its SHOP_BIND port"
    );
}

#[test]
fn grafana_is_provisioned_with_prometheus_and_every_dashboard_is_json() {
    let compose = compose();
    let grafana = compose.service("grafana");
    let provisioning = mounted_at(grafana, GRAFANA_PROVISIONING);
    let datasources =
        std::fs::read_to_string(provisioning.join("datasources/prometheus.yml")).unwrap();
    assert!(
        datasources.contains("type: prometheus")
            && datasources.contains("url: http://prometheus:9090"),
        "the datasource is the compose file's Prometheus"
    );
    assert!(
        compose.service("prometheus").lists["ports"].contains(&"9090:9090".to_owned()),
        "Prometheus listens on 9090"
    );
    let providers = std::fs::read_to_string(provisioning.join("dashboards/shop.yml")).unwrap();
    assert!(
        providers.contains(&format!("path: {GRAFANA_DASHBOARDS}")),
        "the dashboard provider reads {GRAFANA_DASHBOARDS}"
    );

    let dashboards: Vec<PathBuf> = bind_mounts(grafana)
        .into_iter()
        .filter(|(_, container)| container.starts_with(GRAFANA_DASHBOARDS))
        .map(|(host, _)| host)
        .collect();
    assert!(
        dashboards.iter().any(|path| path.ends_with("shop.json")),
        "the shop's dashboard is mounted: {dashboards:?}"
    );
    for path in &dashboards {
        check_dashboard(path);
    }
}

/// `path` exists, is JSON and is a dashboard whose every target has a
/// PromQL expression.
fn check_dashboard(path: &Path) {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|error| panic!("dashboard {}: {error}", path.display()));
    let dashboard: serde_json::Value = serde_json::from_str(&text)
        .unwrap_or_else(|error| panic!("dashboard {} is not JSON: {error}", path.display()));
    assert!(
        dashboard["uid"].is_string() && dashboard["title"].is_string(),
        "{} has no uid or title",
        path.display()
    );
    let queries = composable_rust_testing::prometheus::dashboard_queries(path);
    assert!(!queries.is_empty(), "{} has no queries", path.display());
}
