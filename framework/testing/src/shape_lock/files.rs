//! The recordings on disk: their format, their file names, and reading
//! them back.

use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{ENV_VAR, RECORD};

/// A recording: one event as the store keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(super) struct Recording {
    #[serde(rename = "type")]
    pub(super) event_type: String,
    pub(super) schema_version: u32,
    pub(super) payload: Value,
}

/// Why a recording could not be read.
pub(super) enum ReadError {
    /// There is no such file.
    Missing,
    /// It is not a recording, or cannot be read; the reason.
    Invalid(String),
}

/// The recording at `path`.
pub(super) fn read_recording(path: &Path) -> Result<Recording, ReadError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            return Err(ReadError::Missing);
        }
        Err(error) => return Err(ReadError::Invalid(format!("cannot read it: {error}"))),
    };
    serde_json::from_str(&text).map_err(|error| {
        ReadError::Invalid(format!(
            "not a recording ({error}); a recording is {{ \"type\", \"schema_version\", \"payload\" }}"
        ))
    })
}

/// `<type>.v<N>.json`.
pub(super) fn file_name(event_type: &str, version: u32) -> String {
    format!("{event_type}.v{version}.json")
}

/// Why `event_type` cannot be a file name, if it cannot.
pub(super) fn unsafe_file_name(event_type: &str) -> Option<&'static str> {
    if event_type.is_empty() {
        Some("it is empty")
    } else if event_type.starts_with('.') {
        Some("it starts with `.`")
    } else if !event_type
        .chars()
        .all(|c| c.is_alphanumeric() || matches!(c, '.' | '-' | '_'))
    {
        Some("it has characters other than letters, digits, `.`, `-` and `_`")
    } else {
        None
    }
}

/// `E`'s name without its module path or generic arguments.
pub(super) fn enum_name<E>() -> String {
    let full = std::any::type_name::<E>();
    let base = full.split('<').next().unwrap_or(full);
    base.rsplit("::").next().unwrap_or(base).to_owned()
}

/// The command that records, for messages.
pub(super) fn record_command() -> String {
    let package = std::env::var("CARGO_PKG_NAME").unwrap_or_else(|_| "<your package>".to_owned());
    format!("{ENV_VAR}={RECORD} cargo test -p {package}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_are_checked() {
        assert_eq!(file_name("todo.created", 2), "todo.created.v2.json");
        assert!(unsafe_file_name("todo.created").is_none());
        assert!(unsafe_file_name("../etc").is_some());
        assert!(unsafe_file_name("a/b").is_some());
        assert!(unsafe_file_name("").is_some());
    }

    #[test]
    fn enum_names_drop_the_module_path() {
        struct Local;
        assert_eq!(enum_name::<Local>(), "Local");
        assert_eq!(enum_name::<Vec<Local>>(), "Vec");
    }
}
