//! The services tests talk to: where to find them, from the environment.
//!
//! Tests that need PostgreSQL or Redis read `DATABASE_URL` and `REDIS_URL`.
//! When a variable is missing the test fails, saying how to provide the
//! service; it never passes silently. From a checkout, `source
//! ci/start-services` starts local servers when needed and exports both.

/// `DATABASE_URL`, or a panic that says how to set it.
#[track_caller]
pub fn database_url() -> String {
    service_url(
        "DATABASE_URL",
        "a PostgreSQL server",
        "DATABASE_URL=postgres://postgres@localhost:5432/postgres",
    )
}

/// `REDIS_URL`, or a panic that says how to set it.
#[track_caller]
pub fn redis_url() -> String {
    service_url(
        "REDIS_URL",
        "a Redis server",
        "REDIS_URL=redis://127.0.0.1:6379",
    )
}

#[track_caller]
fn service_url(variable: &str, service: &str, example: &str) -> String {
    match std::env::var(variable) {
        Ok(url) if !url.is_empty() => url,
        _ => panic!(
            "{variable} is not set: this test needs {service}. Set it, e.g. `{example}`, or run \
             `source ci/start-services` first (ci/test does)"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[should_panic(expected = "CR_TEST_UNSET_URL is not set: this test needs a test service")]
    fn a_missing_variable_fails_and_says_how_to_set_it() {
        service_url(
            "CR_TEST_UNSET_URL",
            "a test service",
            "CR_TEST_UNSET_URL=x://y",
        );
    }
}
