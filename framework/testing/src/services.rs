//! The services tests talk to: where to find them, from the environment.
//!
//! Tests that need PostgreSQL or Redis read `DATABASE_URL` and `REDIS_URL`
//! through [`database_url`] and [`redis_url`]. When a variable is missing
//! the test fails, saying how to provide the service; it never passes
//! silently. From a checkout, `source ci/start-services` starts local
//! servers when needed and exports both.
//!
//! Benchmarks use [`try_database_url`] and [`try_redis_url`] instead: when
//! the variable is missing they print the [`MissingService`] message and
//! exit with status 0 (the benchmark is skipped, not failed), so `cargo
//! bench --workspace` runs on a machine without the services.
//!
//! The fixtures that isolate a test on those servers (a schema, a key
//! prefix) are in [`fixtures`](crate::fixtures).

use std::fmt;

/// `DATABASE_URL`, or a panic that says how to set it.
#[track_caller]
pub fn database_url() -> String {
    try_database_url().unwrap_or_else(|missing| missing.fail())
}

/// `REDIS_URL`, or a panic that says how to set it.
#[track_caller]
pub fn redis_url() -> String {
    try_redis_url().unwrap_or_else(|missing| missing.fail())
}

/// `KAFKA_BOOTSTRAP` (a Kafka-protocol broker's `host:port` list), or a
/// panic that says how to set it.
#[track_caller]
pub fn kafka_bootstrap() -> String {
    try_kafka_bootstrap().unwrap_or_else(|missing| missing.fail())
}

/// `KAFKA_BOOTSTRAP`, or why it is missing and how to set it.
///
/// # Errors
///
/// [`MissingService`] when the variable is unset or empty.
pub fn try_kafka_bootstrap() -> Result<String, MissingService> {
    service_url(
        "KAFKA_BOOTSTRAP",
        "a Kafka-protocol broker (Kafka, Redpanda, or tansu as in CI)",
        "KAFKA_BOOTSTRAP=127.0.0.1:9092",
    )
}

/// `DATABASE_URL`, or why it is missing and how to set it.
///
/// # Errors
///
/// [`MissingService`] when the variable is unset or empty.
pub fn try_database_url() -> Result<String, MissingService> {
    service_url(
        "DATABASE_URL",
        "a PostgreSQL server",
        "DATABASE_URL=postgres://postgres@localhost:5432/postgres",
    )
}

/// `REDIS_URL`, or why it is missing and how to set it.
///
/// # Errors
///
/// [`MissingService`] when the variable is unset or empty.
pub fn try_redis_url() -> Result<String, MissingService> {
    service_url(
        "REDIS_URL",
        "a Redis server",
        "REDIS_URL=redis://127.0.0.1:6379",
    )
}

/// A service URL variable that is not set; its message says how to set
/// it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissingService {
    variable: &'static str,
    service: &'static str,
    example: &'static str,
}

impl MissingService {
    /// The variable that is missing, e.g. `DATABASE_URL`.
    pub fn variable(&self) -> &'static str {
        self.variable
    }

    #[track_caller]
    fn fail(self) -> ! {
        panic!("{self}")
    }
}

impl fmt::Display for MissingService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Self {
            variable,
            service,
            example,
        } = self;
        write!(
            f,
            "{variable} is not set: this needs {service}. Set it, e.g. `{example}`, or start \
             local services with the framework's script: `source ci/start-services` in its \
             checkout, or `source ../composable-rust/ci/start-services` from a project beside \
             it (ci/test does this)"
        )
    }
}

impl std::error::Error for MissingService {}

fn service_url(
    variable: &'static str,
    service: &'static str,
    example: &'static str,
) -> Result<String, MissingService> {
    match std::env::var(variable) {
        Ok(url) if !url.is_empty() => Ok(url),
        _ => Err(MissingService {
            variable,
            service,
            example,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[should_panic(expected = "CR_TEST_UNSET_URL is not set: this needs a test service")]
    fn a_missing_variable_fails_and_says_how_to_set_it() {
        service_url(
            "CR_TEST_UNSET_URL",
            "a test service",
            "CR_TEST_UNSET_URL=x://y",
        )
        .unwrap_or_else(|missing| missing.fail());
    }

    #[test]
    fn the_try_variant_returns_the_message_instead() {
        let missing = service_url(
            "CR_TEST_UNSET_URL",
            "a test service",
            "CR_TEST_UNSET_URL=x://y",
        )
        .unwrap_err();
        assert_eq!(missing.variable(), "CR_TEST_UNSET_URL");
        assert!(
            missing.to_string().contains("`CR_TEST_UNSET_URL=x://y`"),
            "{missing}"
        );
    }
}
