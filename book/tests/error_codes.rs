//! The one check of every error code the framework can report: each is
//! unique, has the form `CR-Ennnn`, lies in the range of the crate that owns
//! it (core `CR-E00xx`, PostgreSQL `CR-E01xx`, Redis `CR-E02xx`, the command
//! line `CR-E03xx`, Kafka `CR-E04xx`; OpenTelemetry `CR-E0060` to `CR-E0064`
//! in core's range), has a
//! summary, and is explained in the book's troubleshooting appendix under a
//! heading that starts with the code.

use std::collections::HashMap;

use composable_rust::ErrorCode;
use composable_rust::core::error::codes;

const TROUBLESHOOTING: &str = include_str!("../src/appendix/troubleshooting.md");

/// Every crate's codes, with the range prefix it owns.
fn all_codes() -> Vec<(&'static str, &'static str, &'static ErrorCode)> {
    let crates: [(&str, &str, &'static [ErrorCode]); 8] = [
        ("composable-rust-core", "CR-E00", codes::ALL),
        (
            "composable-rust-postgres",
            "CR-E01",
            composable_rust::postgres::codes::ALL,
        ),
        (
            "composable-rust-redis",
            "CR-E02",
            composable_rust::redis::codes::ALL,
        ),
        (
            "composable-rust-kafka",
            "CR-E04",
            composable_rust::kafka::codes::ALL,
        ),
        (
            "composable-rust-otel",
            "CR-E00",
            composable_rust::otel::codes::ALL,
        ),
        (
            "composable-rust-testing",
            "CR-E00",
            composable_rust::testing::codes::ALL,
        ),
        (
            "composable-rust-cli (scaffold)",
            "CR-E03",
            composable_rust_cli::scaffold::codes::ALL,
        ),
        (
            "composable-rust-cli (ops)",
            "CR-E03",
            composable_rust_cli::ops::codes::ALL,
        ),
    ];
    crates
        .into_iter()
        .flat_map(|(krate, range, codes)| codes.iter().map(move |code| (krate, range, code)))
        .collect()
}

#[test]
fn every_error_code_is_unique_well_formed_in_its_range_and_explained() {
    let mut owners: HashMap<&str, &str> = HashMap::new();
    for (krate, range, code) in all_codes() {
        assert!(
            code.is_well_formed(),
            "{code} of {krate} is not of the form CR-Ennnn"
        );
        assert!(
            code.as_str().starts_with(range),
            "{code} of {krate} is outside its range {range}xx"
        );
        assert!(
            !code.summary().is_empty(),
            "{code} of {krate} has no summary"
        );
        if let Some(other) = owners.insert(code.as_str(), krate) {
            panic!("{code} is declared twice: by {other} and by {krate}");
        }
        let heading = format!("### {}: ", code.as_str());
        assert!(
            TROUBLESHOOTING.contains(&heading),
            "{code} ({}) is not explained in book/src/appendix/troubleshooting.md; \
             add a section starting with `{heading}`",
            code.summary()
        );
    }
}
