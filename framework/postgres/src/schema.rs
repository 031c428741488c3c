//! The schema the store's tables live in: a validated name, and the only
//! values ever spliced into SQL text.
//!
//! SQL cannot take an identifier as a bind parameter, so table names are
//! written into the statements once, when the store is built. That is
//! only safe for names we have checked: a schema name must match
//! `^[a-z_][a-z0-9_]{0,55}$` and must not start with `pg_` (reserved by
//! PostgreSQL). It is then double-quoted as well, so no keyword or case
//! folding can change its meaning.
//!
//! Why 56 characters and not PostgreSQL's 63: the LISTEN/NOTIFY channel is
//! `<schema>_events`, and channel names share the 63-byte identifier limit.

use crate::error::PostgresError;

/// The schema used by [`PostgresEventStore::new`](crate::PostgresEventStore::new)
/// and [`connect`](crate::PostgresEventStore::connect).
pub const DEFAULT_SCHEMA: &str = "composable_rust";

/// Checks the rules every identifier the crate splices into SQL follows:
/// 1 to `max_len` characters from a-z, 0-9 and _, starting with a letter or
/// _, not starting with `pg_`. Returns why `name` breaks them.
pub(crate) fn check_identifier(name: &str, max_len: usize) -> Result<(), &'static str> {
    let mut chars = name.chars();
    let Some(first) = chars.next() else {
        return Err("it is empty");
    };
    if name.len() > max_len {
        return Err("it is too long");
    }
    if !(first.is_ascii_lowercase() || first == '_') {
        return Err("it must start with a lower-case letter or _");
    }
    if !chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_') {
        return Err("it may only contain a-z, 0-9 and _");
    }
    if name.starts_with("pg_") {
        return Err("names starting with pg_ are reserved by PostgreSQL");
    }
    Ok(())
}

/// The longest accepted schema name, in bytes.
const MAX_LEN: usize = 56;

/// A schema name that passed validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SchemaName(String);

impl SchemaName {
    /// Validates `name`.
    pub(crate) fn new(name: &str) -> Result<Self, PostgresError> {
        if let Err(reason) = check_identifier(name, MAX_LEN) {
            return Err(PostgresError::InvalidSchemaName {
                name: name.to_owned(),
                reason,
            });
        }
        Ok(Self(name.to_owned()))
    }

    /// [`DEFAULT_SCHEMA`], which is valid (a unit test checks it).
    pub(crate) fn default_schema() -> Self {
        Self(DEFAULT_SCHEMA.to_owned())
    }

    /// The bare name.
    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }

    /// The name as a quoted SQL identifier, e.g. `"composable_rust"`.
    pub(crate) fn quoted(&self) -> String {
        // Validation admits no `"`, so quoting needs no escaping.
        format!("\"{}\"", self.0)
    }

    /// The LISTEN/NOTIFY channel of this schema's events: `<schema>_events`
    /// (the migration's trigger builds the same name).
    pub(crate) fn notify_channel(&self) -> String {
        format!("{}_events", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use composable_rust_core::CodedError;

    #[test]
    fn the_default_is_valid() {
        assert_eq!(
            SchemaName::new(DEFAULT_SCHEMA).unwrap(),
            SchemaName::default_schema()
        );
    }

    #[test]
    fn good_names_are_accepted() {
        for good in ["a", "_", "app", "cr_test_1", "x".repeat(56).as_str()] {
            assert!(SchemaName::new(good).is_ok(), "{good}");
        }
    }

    #[test]
    fn bad_names_are_rejected_with_the_code() {
        let too_long = "x".repeat(57);
        for bad in [
            "",
            "App",
            "1app",
            "a-b",
            "a b",
            "a\"b",
            "é",
            "pg_catalog",
            "app; DROP TABLE x",
            too_long.as_str(),
        ] {
            let error = SchemaName::new(bad).unwrap_err();
            assert_eq!(error.code().as_str(), "CR-E0101", "{bad}");
            assert!(error.to_string().starts_with("[CR-E0101]"), "{error}");
        }
    }

    #[test]
    fn channels_fit_postgres_identifier_limit() {
        let longest = SchemaName::new(&"x".repeat(56)).unwrap();
        assert!(longest.notify_channel().len() <= 63);
        assert_eq!(longest.quoted(), format!("\"{}\"", "x".repeat(56)));
    }
}
