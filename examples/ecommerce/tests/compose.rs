//! Checks docker-compose.yml and the files it mounts without a Docker
//! engine (CI has none, so the compose file is never started there): every
//! service is there, the shop gets every variable of
//! `ecommerce::config::ENV_VARS` (and only those) and that environment is
//! a configuration the shop accepts, Prometheus scrapes the shop's
//! `/metrics`, Grafana's datasource is that Prometheus, and every
//! dashboard Grafana is given exists and is a dashboard.
//!
//! No YAML crate is in the workspace, so [`ComposeFile::parse`] reads the
//! subset the compose file is written in, line by line, and refuses what it
//! does not understand (tabs, an `environment:` in list form) instead of
//! guessing: top-level keys at column 0; under `services:`, a service name
//! at two spaces; its keys at four (`key: value`, or `key:` opening a
//! block); a block's entries at six, either `- item` (a list) or
//! `name: value` (a mapping). Lines indented deeper (e.g. `condition:`
//! under a `depends_on` entry) are not read: no check relies on them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

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

/// One service's keys: scalars, block lists and block mappings.
#[derive(Debug, Default)]
struct Service {
    scalars: BTreeMap<String, String>,
    lists: BTreeMap<String, Vec<String>>,
    maps: BTreeMap<String, BTreeMap<String, String>>,
}

/// The services of a compose file, read from the subset described in the
/// module documentation.
#[derive(Debug)]
struct ComposeFile {
    services: BTreeMap<String, Service>,
}

impl ComposeFile {
    /// Parses `text`, or says which line is outside the subset.
    fn parse(text: &str) -> Result<Self, String> {
        let mut services = BTreeMap::new();
        let mut in_services = false;
        let mut service: Option<String> = None;
        let mut block: Option<String> = None;
        for (index, line) in text.lines().enumerate() {
            let number = index + 1;
            if line.contains('\t') {
                return Err(format!("line {number}: a tab (indent with spaces)"));
            }
            let trimmed = line.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            let indent = line.len() - line.trim_start().len();
            match indent {
                0 => {
                    in_services = trimmed == "services:";
                    service = None;
                    block = None;
                }
                _ if !in_services => {}
                2 => {
                    let name = trimmed
                        .strip_suffix(':')
                        .ok_or_else(|| format!("line {number}: expected `name:` of a service"))?;
                    services.insert(name.to_owned(), Service::default());
                    service = Some(name.to_owned());
                    block = None;
                }
                4 => {
                    let current = services
                        .get_mut(service.as_deref().unwrap_or_default())
                        .ok_or_else(|| format!("line {number}: a key outside a service"))?;
                    let (key, value) = key_value(trimmed)
                        .ok_or_else(|| format!("line {number}: expected `key: value`"))?;
                    if value.is_empty() {
                        block = Some(key.to_owned());
                    } else {
                        current.scalars.insert(key.to_owned(), value);
                        block = None;
                    }
                }
                6 => {
                    let (Some(name), Some(key)) = (service.as_deref(), block.as_deref()) else {
                        return Err(format!("line {number}: an entry outside a block"));
                    };
                    let current = services.get_mut(name).expect("the service was inserted");
                    if let Some(item) = trimmed.strip_prefix("- ") {
                        if current.maps.contains_key(key) {
                            return Err(format!(
                                "line {number}: `{key}` mixes a list and a mapping"
                            ));
                        }
                        current
                            .lists
                            .entry(key.to_owned())
                            .or_default()
                            .push(unquote(item.trim()));
                    } else {
                        if current.lists.contains_key(key) {
                            return Err(format!(
                                "line {number}: `{key}` mixes a list and a mapping"
                            ));
                        }
                        let (entry, value) = key_value(trimmed)
                            .ok_or_else(|| format!("line {number}: expected `name: value`"))?;
                        current
                            .maps
                            .entry(key.to_owned())
                            .or_default()
                            .insert(entry.to_owned(), value);
                    }
                }
                // Deeper lines belong to an entry read at six spaces; no
                // check needs them (see the module documentation).
                _ if indent > 6 => {}
                _ => {
                    return Err(format!(
                        "line {number}: indentation {indent} is not 0, 2, 4 or 6"
                    ));
                }
            }
        }
        Ok(Self { services })
    }

    fn service(&self, name: &str) -> &Service {
        self.services
            .get(name)
            .unwrap_or_else(|| panic!("docker-compose.yml has no service `{name}`"))
    }
}

/// `key: value` (value unquoted, possibly empty), or `None`.
fn key_value(text: &str) -> Option<(&str, String)> {
    let (key, value) = text.split_once(':')?;
    let key = key.trim();
    if key.is_empty() || key.contains(' ') {
        return None;
    }
    Some((key, unquote(value.trim())))
}

/// `"x"` or `'x'` becomes `x`.
fn unquote(value: &str) -> String {
    for quote in ['"', '\''] {
        if let Some(inner) = value
            .strip_prefix(quote)
            .and_then(|rest| rest.strip_suffix(quote))
        {
            return inner.to_owned();
        }
    }
    value.to_owned()
}

/// The crate's folder (where docker-compose.yml is).
fn here() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn compose() -> ComposeFile {
    let path = here().join("docker-compose.yml");
    let text = std::fs::read_to_string(&path).unwrap();
    ComposeFile::parse(&text).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

/// The `(host path, container path)` of each `volumes:` bind mount of a
/// service (named volumes skipped).
fn bind_mounts(service: &Service) -> Vec<(PathBuf, String)> {
    service
        .lists
        .get("volumes")
        .into_iter()
        .flatten()
        .filter(|volume| volume.starts_with('.') || volume.starts_with('/'))
        .map(|volume| {
            let mut parts = volume.split(':');
            let host = parts.next().unwrap_or_default();
            let container = parts
                .next()
                .unwrap_or_else(|| panic!("volume {volume:?} has no container path"));
            (here().join(host), container.to_owned())
        })
        .collect()
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
fn the_reader_refuses_what_it_does_not_understand() {
    assert!(ComposeFile::parse("services:\n\tshop:\n").is_err(), "a tab");
    assert!(
        ComposeFile::parse("services:\n  shop:\n    environment:\n      - A=1\n      B: 2\n")
            .is_err(),
        "a list and a mapping mixed"
    );
    assert!(
        ComposeFile::parse("services:\n  shop:\n   image: x\n").is_err(),
        "an odd indentation"
    );
    let parsed = ComposeFile::parse(
        "services:\n  shop:\n    image: 'x:1'\n    environment:\n      A: \"1\"\n      B: two words\n",
    )
    .unwrap();
    let shop = parsed.service("shop");
    assert_eq!(shop.scalars["image"], "x:1");
    assert_eq!(shop.maps["environment"]["A"], "1");
    assert_eq!(shop.maps["environment"]["B"], "two words");
}

#[test]
fn every_service_is_defined() {
    let compose = compose();
    let missing: Vec<_> = SERVICES
        .iter()
        .filter(|name| !compose.services.contains_key(**name))
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
