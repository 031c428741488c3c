//! Reading a `docker-compose.yml` in tests, without a Docker engine: a
//! service's tests can check that the compose file it ships names every
//! server and variable the code reads, publishes the ports the README
//! hands out, and mounts files that exist.
//!
//! No YAML crate is used: [`ComposeFile::parse`] reads the subset compose
//! files are written in, line by line, and refuses what it does not
//! understand (tabs, an odd indentation, a block mixing a list and a
//! mapping) instead of guessing. The subset: top-level keys at column 0;
//! under `services:`, a service name at two spaces; its keys at four
//! (`key: value`, or `key:` opening a block); a block's entries at six,
//! either `- item` (a list) or `name: value` (a mapping). Lines indented
//! deeper (e.g. `condition:` under a `depends_on` entry) are not read.
//! Comments and blank lines are skipped; quotes around a value are
//! removed.
//!
//! ```
//! use composable_rust_testing::compose::ComposeFile;
//!
//! let compose = ComposeFile::parse(
//!     "services:\n  db:\n    image: postgres:17\n    ports:\n      - \"5432:5432\"\n",
//! )
//! .unwrap();
//! let db = compose.service("db");
//! assert_eq!(db.image(), Some("postgres:17"));
//! assert_eq!(db.published_ports().unwrap(), [5432]);
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

/// A line of a compose file outside the subset [`ComposeFile::parse`]
/// reads (or a value it cannot use), with its 1-based line number when
/// it comes from one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComposeError {
    /// The line, from 1 (0 when the problem is a value, not a line).
    pub line: usize,
    /// What is wrong, and what the reader expected instead.
    pub reason: String,
}

impl fmt::Display for ComposeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}", self.reason)
        } else {
            write!(f, "line {}: {}", self.line, self.reason)
        }
    }
}

impl std::error::Error for ComposeError {}

/// One service's keys: scalars (`image: x`), block lists (`ports:` then
/// `- "5432:5432"`) and block mappings (`environment:` then `A: 1`).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Service {
    /// `key: value` lines at four spaces.
    pub scalars: BTreeMap<String, String>,
    /// `key:` blocks whose entries are `- item`.
    pub lists: BTreeMap<String, Vec<String>>,
    /// `key:` blocks whose entries are `name: value`.
    pub maps: BTreeMap<String, BTreeMap<String, String>>,
}

impl Service {
    /// The service's `image:`, if it has one.
    pub fn image(&self) -> Option<&str> {
        self.scalars.get("image").map(String::as_str)
    }

    /// The host ports of the service's `ports:` entries (`"HOST:CONTAINER"`
    /// or `"IP:HOST:CONTAINER"`), in the file's order.
    ///
    /// # Errors
    ///
    /// A [`ComposeError`] naming an entry without a numeric host port.
    pub fn published_ports(&self) -> Result<Vec<u16>, ComposeError> {
        self.lists
            .get("ports")
            .into_iter()
            .flatten()
            .map(|mapping| {
                let mut parts = mapping.rsplit(':');
                let _container = parts.next();
                parts
                    .next()
                    .and_then(|host| host.parse().ok())
                    .ok_or_else(|| ComposeError {
                        line: 0,
                        reason: format!(
                            "port mapping {mapping:?} has no host port (write \"HOST:CONTAINER\")"
                        ),
                    })
            })
            .collect()
    }

    /// The `(host path, container path)` of each bind mount of the
    /// service's `volumes:` (named volumes skipped), host paths joined to
    /// `base`, the folder of the compose file.
    ///
    /// # Errors
    ///
    /// A [`ComposeError`] naming a bind mount without a container path.
    pub fn bind_mounts(&self, base: &Path) -> Result<Vec<(PathBuf, String)>, ComposeError> {
        self.lists
            .get("volumes")
            .into_iter()
            .flatten()
            .filter(|volume| volume.starts_with('.') || volume.starts_with('/'))
            .map(|volume| {
                let mut parts = volume.split(':');
                let host = parts.next().unwrap_or_default();
                let container = parts.next().ok_or_else(|| ComposeError {
                    line: 0,
                    reason: format!("volume {volume:?} has no container path"),
                })?;
                Ok((base.join(host), container.to_owned()))
            })
            .collect()
    }
}

/// The services of a compose file, read from the subset described in the
/// module documentation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComposeFile {
    services: BTreeMap<String, Service>,
}

impl ComposeFile {
    /// Reads and parses the compose file at `path`.
    ///
    /// # Panics
    ///
    /// When the file cannot be read or is outside the subset, with the
    /// path and the line: this is a test helper.
    pub fn read(path: impl AsRef<Path>) -> Self {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path)
            .unwrap_or_else(|error| panic!("{}: {error}", path.display()));
        Self::parse(&text).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
    }

    /// Parses `text`, or says which line is outside the subset.
    ///
    /// # Errors
    ///
    /// A [`ComposeError`] naming the first line it does not understand.
    pub fn parse(text: &str) -> Result<Self, ComposeError> {
        let mut services: BTreeMap<String, Service> = BTreeMap::new();
        let mut in_services = false;
        let mut service: Option<String> = None;
        let mut block: Option<String> = None;
        for (index, line) in text.lines().enumerate() {
            let number = index + 1;
            let refuse = |reason: String| ComposeError {
                line: number,
                reason,
            };
            if line.contains('\t') {
                return Err(refuse("a tab (indent with spaces)".to_owned()));
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
                        .ok_or_else(|| refuse("expected `name:` of a service".to_owned()))?;
                    services.insert(name.to_owned(), Service::default());
                    service = Some(name.to_owned());
                    block = None;
                }
                4 => {
                    let current = service
                        .as_deref()
                        .and_then(|name| services.get_mut(name))
                        .ok_or_else(|| refuse("a key outside a service".to_owned()))?;
                    let (key, value) = key_value(trimmed)
                        .ok_or_else(|| refuse("expected `key: value`".to_owned()))?;
                    if value.is_empty() {
                        block = Some(key.to_owned());
                    } else {
                        current.scalars.insert(key.to_owned(), value);
                        block = None;
                    }
                }
                6 => {
                    let (Some(name), Some(key)) = (service.as_deref(), block.as_deref()) else {
                        return Err(refuse("an entry outside a block".to_owned()));
                    };
                    let current = services.get_mut(name).expect("the service was inserted");
                    if let Some(item) = trimmed.strip_prefix("- ") {
                        if current.maps.contains_key(key) {
                            return Err(refuse(format!("`{key}` mixes a list and a mapping")));
                        }
                        current
                            .lists
                            .entry(key.to_owned())
                            .or_default()
                            .push(unquote(item.trim()));
                    } else {
                        if current.lists.contains_key(key) {
                            return Err(refuse(format!("`{key}` mixes a list and a mapping")));
                        }
                        let (entry, value) = key_value(trimmed)
                            .ok_or_else(|| refuse("expected `name: value`".to_owned()))?;
                        current
                            .maps
                            .entry(key.to_owned())
                            .or_default()
                            .insert(entry.to_owned(), value);
                    }
                }
                // Deeper lines belong to an entry read at six spaces (see
                // the module documentation).
                _ if indent > 6 => {}
                _ => {
                    return Err(refuse(format!("indentation {indent} is not 0, 2, 4 or 6")));
                }
            }
        }
        Ok(Self { services })
    }

    /// Every service, by name.
    pub fn services(&self) -> &BTreeMap<String, Service> {
        &self.services
    }

    /// The service `name`.
    ///
    /// # Panics
    ///
    /// When the file defines no such service (a test helper: the message
    /// names it).
    pub fn service(&self, name: &str) -> &Service {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_what_it_does_not_understand() {
        let tab = ComposeFile::parse("services:\n\tshop:\n").unwrap_err();
        assert_eq!(tab.line, 2);
        assert!(
            ComposeFile::parse("services:\n  shop:\n    environment:\n      - A=1\n      B: 2\n")
                .is_err(),
            "a list and a mapping mixed"
        );
        let odd = ComposeFile::parse("services:\n  shop:\n   image: x\n").unwrap_err();
        assert_eq!(odd.to_string(), "line 3: indentation 3 is not 0, 2, 4 or 6");
    }

    #[test]
    fn reads_scalars_lists_and_mappings() {
        let parsed = ComposeFile::parse(
            "# a comment\nservices:\n  shop:\n    image: 'x:1'\n    environment:\n      # why\n      A: \"1\"\n      B: two words\n    ports:\n      - \"127.0.0.1:3000:3000\"\n      - 9090:9090\n    depends_on:\n      db:\n        condition: service_healthy\n    volumes:\n      - ./conf:/etc/conf:ro\n      - data:/var/lib/data\nvolumes:\n  data:\n",
        )
        .unwrap();
        assert_eq!(parsed.services().len(), 1);
        let shop = parsed.service("shop");
        assert_eq!(shop.image(), Some("x:1"));
        assert_eq!(shop.maps["environment"]["A"], "1");
        assert_eq!(shop.maps["environment"]["B"], "two words");
        assert_eq!(shop.published_ports().unwrap(), [3000, 9090]);
        assert!(shop.maps["depends_on"].contains_key("db"));
        assert_eq!(
            shop.bind_mounts(Path::new("/app")).unwrap(),
            [(PathBuf::from("/app/./conf"), "/etc/conf".to_owned())]
        );
    }

    #[test]
    fn a_port_without_a_host_port_is_an_error() {
        let parsed =
            ComposeFile::parse("services:\n  db:\n    ports:\n      - \"5432\"\n").unwrap();
        let error = parsed.service("db").published_ports().unwrap_err();
        assert!(error.to_string().contains("\"5432\""), "{error}");
    }
}
