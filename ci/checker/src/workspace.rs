//! Just enough of `Cargo.toml` to know the workspace members, a package's
//! name and its dependencies, without a TOML dependency: `[workspace]
//! members`/`exclude` arrays of strings (globs with `*`, `?` and `**`
//! allowed, as cargo allows), `[package] name`, and the names and features
//! of `[dependencies]` and `[dev-dependencies]`.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// The member crate directories of the workspace rooted at `root`, as
/// absolute paths. Globs are expanded; only directories with a `Cargo.toml`
/// count; `exclude` entries (and anything below them) are removed.
pub fn members(root: &Path) -> Result<BTreeSet<PathBuf>, String> {
    let manifest = root.join("Cargo.toml");
    let text = fs::read_to_string(&manifest)
        .map_err(|e| format!("cannot read {}: {e}", manifest.display()))?;
    let table = table(&text, "workspace")
        .ok_or_else(|| format!("{} has no [workspace] table", manifest.display()))?;
    let excludes: Vec<PathBuf> = string_array(&table, "exclude")
        .into_iter()
        .map(|e| crate::normalize(&root.join(e)))
        .collect();
    let mut found = BTreeSet::new();
    for pattern in string_array(&table, "members") {
        let segments: Vec<&str> = pattern
            .split('/')
            .filter(|s| !s.is_empty() && *s != ".")
            .collect();
        expand(root, &segments, &mut found);
    }
    Ok(found
        .into_iter()
        .map(|dir| crate::normalize(&dir))
        .filter(|dir| dir.join("Cargo.toml").is_file())
        .filter(|dir| !excludes.iter().any(|e| dir.starts_with(e)))
        .collect())
}

/// The `name` in the `[package]` table of the manifest at `manifest`.
pub fn package_name(manifest: &Path) -> Result<String, String> {
    let text = fs::read_to_string(manifest)
        .map_err(|e| format!("cannot read {}: {e}", manifest.display()))?;
    let table = table(&text, "package")
        .ok_or_else(|| format!("{} has no [package] table", manifest.display()))?;
    for line in table.lines() {
        if let Some((key, value)) = line.split_once('=')
            && key.trim() == "name"
            && let Some(name) = strings(value).into_iter().next()
        {
            return Ok(name);
        }
    }
    Err(format!("{} has no `name` in [package]", manifest.display()))
}

/// The tables [`dependencies`] reads.
pub const DEPENDENCY_TABLES: [&str; 2] = ["dependencies", "dev-dependencies"];

/// The package every crate of the workspace but the framework's depends on
/// (the framework's crates: as a dev-dependency) so that building one
/// package compiles its dependencies with the same features as the whole
/// workspace's build, and reuses them; see `ci/workspace-hack/Cargo.toml`.
/// It is not part of any listing's code: a reader's project never has it.
pub const WORKSPACE_HACK: &str = "workspace-hack";

/// The dependencies a manifest declares in `[dependencies]` and
/// `[dev-dependencies]`, keyed by (table, dependency name), each with the
/// features its entry writes (`features = [...]`). Versions, sources
/// (`path`, `git`, `workspace = true`), `default-features` and every other
/// key are left out, and so are features a `workspace = true` entry
/// inherits from the workspace. All the forms cargo accepts are read:
/// `name = "1"`, `name = { ..., features = [...] }`, dotted keys
/// (`name.workspace = true`, `name.features = [...]`) and sub-tables
/// (`[dependencies.name]`).
pub fn dependencies(text: &str) -> BTreeMap<(String, String), BTreeSet<String>> {
    enum Section {
        Other,
        Table(String),
        Dependency(String, String),
    }
    let mut found: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
    let mut section = Section::Other;
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        // Multi-line values are read whole below, so a line starting with
        // `[` is a table header (`[target.'cfg(unix)'.dependencies]` too).
        if trimmed.starts_with('[') {
            let inside = trimmed
                .trim_start_matches('[')
                .rsplit_once(']')
                .map_or("", |(inside, _)| inside.trim_end_matches(']'));
            let parts = key_parts(inside);
            section = match parts.as_slice() {
                [table]
                    if !trimmed.starts_with("[[")
                        && DEPENDENCY_TABLES.contains(&table.as_str()) =>
                {
                    Section::Table(table.clone())
                }
                [table, name]
                    if !trimmed.starts_with("[[")
                        && DEPENDENCY_TABLES.contains(&table.as_str()) =>
                {
                    found.entry((table.clone(), name.clone())).or_default();
                    Section::Dependency(table.clone(), name.clone())
                }
                _ => Section::Other,
            };
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let mut value = value.to_owned();
        while !array_closed(&value) || !braces_closed(&value) {
            match lines.next() {
                Some(next) => {
                    value.push('\n');
                    value.push_str(next);
                }
                None => break,
            }
        }
        let key = key_parts(key);
        match (&section, key.as_slice()) {
            (Section::Table(table), [name]) => {
                let entry = found.entry((table.clone(), name.clone())).or_default();
                if let Some(features) = inline_features(&value) {
                    entry.extend(features);
                }
            }
            (Section::Table(table), [name, rest @ ..]) => {
                let entry = found.entry((table.clone(), name.clone())).or_default();
                if rest == ["features"] {
                    entry.extend(strings(&value));
                }
            }
            (Section::Dependency(table, name), [key]) if key == "features" => {
                found
                    .entry((table.clone(), name.clone()))
                    .or_default()
                    .extend(strings(&value));
            }
            _ => {}
        }
    }
    found
}

/// The parts of a (possibly dotted, possibly quoted) TOML key.
fn key_parts(key: &str) -> Vec<String> {
    key.split('.')
        .map(|part| part.trim().trim_matches(['"', '\'']).to_owned())
        .collect()
}

/// Whether an inline table's braces are balanced (ignoring strings and comments).
fn braces_closed(value: &str) -> bool {
    let mut depth = 0i32;
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            '"' | '\'' => {
                for d in chars.by_ref() {
                    if d == c {
                        break;
                    }
                }
            }
            '#' => break,
            _ => {}
        }
    }
    depth <= 0
}

/// The `features` array of an inline table value (`{ ..., features = [...] }`),
/// or `None` when the value is not an inline table or has no features.
fn inline_features(value: &str) -> Option<Vec<String>> {
    let value = value.trim();
    if !value.starts_with('{') {
        return None;
    }
    let mut from = 0;
    while let Some(pos) = value[from..].find("features") {
        let at = from + pos;
        from = at + "features".len();
        let before = value[..at].chars().next_back();
        if before.is_some_and(|c| c.is_alphanumeric() || c == '-' || c == '_') {
            continue; // `default-features`
        }
        let after = value[from..].trim_start();
        let Some(after) = after.strip_prefix('=') else {
            continue;
        };
        let after = after.trim_start();
        if !after.starts_with('[') {
            continue;
        }
        let close = after.find(']').unwrap_or(after.len());
        return Some(strings(&after[..close]));
    }
    None
}

/// The body of the top-level table `[name]` (up to the next table header).
fn table(text: &str, name: &str) -> Option<String> {
    let mut body = None::<String>;
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('[') && !trimmed.starts_with("[[") && is_header(trimmed) {
            if body.is_some() {
                break;
            }
            let header = trimmed
                .trim_start_matches('[')
                .split(']')
                .next()
                .unwrap_or("")
                .trim();
            if header == name {
                body = Some(String::new());
            }
            continue;
        } else if trimmed.starts_with("[[") && body.is_some() {
            break;
        }
        if let Some(body) = body.as_mut() {
            body.push_str(line);
            body.push('\n');
        }
    }
    body
}

/// Whether a line starting with `[` is a table header rather than the
/// continuation of an array value (`  "a", ["b"]`): headers are `[name]`
/// possibly followed by a comment.
fn is_header(trimmed: &str) -> bool {
    let Some(close) = trimmed.find(']') else {
        return false;
    };
    let inside = &trimmed[1..close];
    let after = trimmed[close + 1..].trim();
    !inside.contains(['"', '\'', ','])
        && !inside.trim().is_empty()
        && (after.is_empty() || after.starts_with('#'))
}

/// The strings of the array value of `key` in a table body.
fn string_array(table: &str, key: &str) -> Vec<String> {
    let mut lines = table.lines();
    while let Some(line) = lines.next() {
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        if k.trim() != key {
            continue;
        }
        let mut value = v.to_owned();
        while !array_closed(&value) {
            match lines.next() {
                Some(next) => {
                    value.push('\n');
                    value.push_str(next);
                }
                None => break,
            }
        }
        return strings(&value);
    }
    Vec::new()
}

/// Whether an array value's brackets are balanced (ignoring strings and comments).
fn array_closed(value: &str) -> bool {
    let mut depth = 0i32;
    let mut chars = value.chars().peekable();
    let mut seen_open = false;
    while let Some(c) = chars.next() {
        match c {
            '[' => {
                depth += 1;
                seen_open = true;
            }
            ']' => depth -= 1,
            '"' | '\'' => {
                for d in chars.by_ref() {
                    if d == c {
                        break;
                    }
                }
            }
            '#' => {
                for d in chars.by_ref() {
                    if d == '\n' {
                        break;
                    }
                }
            }
            _ => {}
        }
    }
    !seen_open || depth <= 0
}

/// The string literals (basic `"…"` and literal `'…'`) in a value, skipping comments.
fn strings(value: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                let mut s = String::new();
                while let Some(d) = chars.next() {
                    match d {
                        '"' => break,
                        '\\' => {
                            if let Some(e) = chars.next() {
                                s.push(match e {
                                    'n' => '\n',
                                    't' => '\t',
                                    other => other,
                                });
                            }
                        }
                        other => s.push(other),
                    }
                }
                out.push(s);
            }
            '\'' => out.push(chars.by_ref().take_while(|&d| d != '\'').collect()),
            '#' => {
                for d in chars.by_ref() {
                    if d == '\n' {
                        break;
                    }
                }
            }
            _ => {}
        }
    }
    out
}

/// Adds every directory below `dir` matching the glob `segments`.
fn expand(dir: &Path, segments: &[&str], found: &mut BTreeSet<PathBuf>) {
    let Some((first, rest)) = segments.split_first() else {
        found.insert(dir.to_path_buf());
        return;
    };
    if *first == "**" {
        // Zero directories, or one more and stay on `**`.
        expand(dir, rest, found);
        for child in subdirectories(dir) {
            expand(&child, segments, found);
        }
    } else if *first == ".." {
        expand(&dir.join(".."), rest, found);
    } else if first.contains(['*', '?', '[']) {
        for child in subdirectories(dir) {
            let name = child
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            if glob_match(first, &name) {
                expand(&child, rest, found);
            }
        }
    } else {
        let child = dir.join(first);
        if child.is_dir() {
            expand(&child, rest, found);
        }
    }
}

/// The visible subdirectories of `dir`, sorted.
fn subdirectories(dir: &Path) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.is_dir()
                && !p
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        })
        .collect();
    dirs.sort();
    dirs
}

/// Matches one path segment against a glob segment (`*`, `?`, `[abc]`, `[a-z]`, `[!a]`).
pub fn glob_match(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    matches(&p, &n)
}

fn matches(p: &[char], n: &[char]) -> bool {
    match p.first() {
        None => n.is_empty(),
        Some('*') => (0..=n.len()).any(|skip| matches(&p[1..], &n[skip..])),
        Some('?') => !n.is_empty() && matches(&p[1..], &n[1..]),
        Some('[') => {
            let Some(close) = p.iter().skip(1).position(|&c| c == ']').map(|i| i + 1) else {
                return n.first() == Some(&'[') && matches(&p[1..], &n[1..]);
            };
            let Some(&c) = n.first() else {
                return false;
            };
            let mut class = &p[1..close];
            let negated = matches!(class.first(), Some('!' | '^'));
            if negated {
                class = &class[1..];
            }
            let mut hit = false;
            let mut i = 0;
            while i < class.len() {
                if i + 2 < class.len() && class[i + 1] == '-' {
                    hit |= class[i] <= c && c <= class[i + 2];
                    i += 3;
                } else {
                    hit |= class[i] == c;
                    i += 1;
                }
            }
            hit != negated && matches(&p[close + 1..], &n[1..])
        }
        Some(&c) => n.first() == Some(&c) && matches(&p[1..], &n[1..]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_members_and_exclude() {
        let text = r#"
[workspace]
resolver = "2"
members = [
    "framework/core", # the core
    'book',
    "listings/*/*",
]
exclude = ["listings/ch99-x/*"]

[workspace.dependencies]
members = ["not/this"]
"#;
        let table = table(text, "workspace").unwrap();
        assert_eq!(
            string_array(&table, "members"),
            ["framework/core", "book", "listings/*/*"]
        );
        assert_eq!(string_array(&table, "exclude"), ["listings/ch99-x/*"]);
        assert_eq!(
            string_array("members = [\"a\", \"b\"]\n", "members"),
            ["a", "b"]
        );
    }

    #[test]
    fn dependencies_in_every_form() {
        let text = r#"
[package]
name = "reader"
features = ["not", "a", "dependency"]

[dependencies]
composable-rust = { version = "0.1.0", path = "../composable-rust/framework/composable-rust" }
tokio = { version = "1.54.1", default-features = false, features = ["rt-multi-thread", "macros"] }
serde.workspace = true
serde.features = ["derive"]
"quoted" = "1"

[dependencies.uuid]
version = "1"
features = [
    "v4", # random
    "serde",
]

[dev-dependencies]
composable-rust = { workspace = true, features = ["testing"] }

[target.'cfg(unix)'.dependencies]
libc = "0.2"

[[bin]]
name = "x"
"#;
        let deps = dependencies(text);
        let shown: Vec<String> = deps
            .iter()
            .map(|((table, name), features)| {
                format!("{table} {name} {:?}", features.iter().collect::<Vec<_>>())
            })
            .collect();
        assert_eq!(
            shown,
            [
                "dependencies composable-rust []",
                "dependencies quoted []",
                "dependencies serde [\"derive\"]",
                "dependencies tokio [\"macros\", \"rt-multi-thread\"]",
                "dependencies uuid [\"serde\", \"v4\"]",
                "dev-dependencies composable-rust [\"testing\"]",
            ]
        );
    }

    #[test]
    fn globs() {
        assert!(glob_match("*", "listing-01-01"));
        assert!(glob_match("listing-??-*", "listing-01-02"));
        assert!(glob_match("ch[0-9][0-9]-*", "ch01-intro"));
        assert!(!glob_match("ch[!0]*", "ch0"));
        assert!(!glob_match("listing-*", "ch01"));
    }
}
