//! docker-compose.yml and README.md name every setting the service reads:
//! each environment variable the code in `src/` reads with
//! `std::env::var("...")` is exported in both (`export NAME=URL`), and
//! the port of that URL is published by a service of docker-compose.yml.
//! So a variable added to the code without telling a newcomer where its
//! server comes from fails here, with no Docker needed: the compose file
//! is read by `composable_rust::testing::compose`, which refuses what it
//! does not understand instead of guessing.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use composable_rust::testing::compose::ComposeFile;

fn project() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

/// The Rust files under `dir`, recursively.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap().map(Result::unwrap) {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            out.push(path);
        }
    }
}

/// The variables the service reads: `std::env::var("NAME")` in `src/`.
fn variables_read() -> BTreeSet<String> {
    let mut files = Vec::new();
    rust_files(&project().join("src"), &mut files);
    let call = "env::var(\"";
    let mut names = BTreeSet::new();
    for file in files {
        let text = read(&file);
        for (at, _) in text.match_indices(call) {
            let rest = &text[at + call.len()..];
            let end = rest.find('"').expect("a closing quote");
            names.insert(rest[..end].to_owned());
        }
    }
    names
}

/// `export NAME=VALUE` lines (after a `#` or `$ ` prompt, or bare).
fn exports(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|line| {
            let line = line.trim_start_matches(['#', '$', ' ']);
            let (name, value) = line.strip_prefix("export ")?.split_once('=')?;
            Some((name.to_owned(), value.trim().to_owned()))
        })
        .collect()
}

/// The port of `host:port` or `scheme://[user@]host:port[/path]`.
fn port_of(url: &str) -> Option<u16> {
    let authority = url.split("://").last()?.split('/').next()?;
    authority.rsplit(':').next()?.parse().ok()
}

#[test]
fn every_setting_the_service_reads_has_a_server_in_docker_compose() {
    let compose = read(&project().join("docker-compose.yml"));
    let readme = read(&project().join("README.md"));
    let services =
        ComposeFile::parse(&compose).unwrap_or_else(|error| panic!("docker-compose.yml: {error}"));
    assert!(
        !services.services().is_empty(),
        "docker-compose.yml has no services"
    );
    let mut published = Vec::new();
    for (name, service) in services.services() {
        assert!(service.image().is_some(), "service {name} has no image");
        let ports = service
            .published_ports()
            .unwrap_or_else(|error| panic!("service {name}: {error}"));
        assert!(!ports.is_empty(), "service {name} publishes no port");
        published.extend(ports);
    }
    let read_vars = variables_read();
    assert!(read_vars.contains("DATABASE_URL"), "{read_vars:?}");
    let compose_exports = exports(&compose);
    let readme_exports = exports(&readme);
    for name in &read_vars {
        let value = compose_exports
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, value)| value)
            .unwrap_or_else(|| panic!("docker-compose.yml does not say `export {name}=...`"));
        assert!(
            readme_exports.iter().any(|(n, v)| n == name && v == value),
            "README.md does not say `export {name}={value}` as docker-compose.yml does"
        );
    }
    // Every address either file hands out (also the optional ones, such as
    // KAFKA_BOOTSTRAP) reaches a service of the compose file.
    for (name, value) in compose_exports.iter().chain(&readme_exports) {
        let port = port_of(value).unwrap_or_else(|| panic!("{name}={value} names no port"));
        assert!(
            published.contains(&port),
            "{name}={value}: no service of docker-compose.yml publishes port {port}"
        );
    }
}

#[test]
fn the_helpers_read_urls_and_exports() {
    assert_eq!(
        port_of("postgres://postgres@localhost:5432/postgres"),
        Some(5432)
    );
    assert_eq!(port_of("127.0.0.1:9092"), Some(9092));
    assert_eq!(
        exports("#   export REDIS_URL=redis://127.0.0.1:6379\n$ export X=1"),
        [
            ("REDIS_URL".to_owned(), "redis://127.0.0.1:6379".to_owned()),
            ("X".to_owned(), "1".to_owned())
        ]
    );
}
