//! `composable add aggregate|projection|saga NAME`: a new module with a
//! first test, registered where the template registers its own.
//!
//! | kind | module | test | registered in |
//! |---|---|---|---|
//! | aggregate | `src/aggregates/<name>.rs` | `tests/<name>.rs` | `src/aggregates/mod.rs` |
//! | projection | `src/projections/<name>.rs` | `tests/<name>.rs` | `src/projections/mod.rs`, `App::catch_up_projections` in `src/app.rs` |
//! | saga | `src/sagas/<name>.rs` | `tests/<name>.rs` | `src/sagas/mod.rs` |

use std::fs;
use std::path::{Path, PathBuf};

use clap::ValueEnum;

use super::names::{ItemName, item_name};
use super::plan::{Action, FileChange, Plan};
use super::{ScaffoldError, render};

/// What `composable add` adds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Kind {
    /// An event-sourced aggregate: events, state, commands, rules.
    Aggregate,
    /// A read model kept from the events.
    Projection,
    /// A process that follows events and sends commands.
    Saga,
}

impl Kind {
    fn noun(self) -> &'static str {
        match self {
            Kind::Aggregate => "aggregate",
            Kind::Projection => "projection",
            Kind::Saga => "saga",
        }
    }

    /// The directory of this kind's modules, under `src/`.
    fn directory(self) -> &'static str {
        match self {
            Kind::Aggregate => "aggregates",
            Kind::Projection => "projections",
            Kind::Saga => "sagas",
        }
    }

    /// The module's and the test's templates.
    fn templates(self) -> (&'static str, &'static str) {
        match self {
            Kind::Aggregate => (
                include_str!("items/aggregate.rs.liquid"),
                include_str!("items/aggregate_test.rs.liquid"),
            ),
            Kind::Projection => (
                include_str!("items/projection.rs.liquid"),
                include_str!("items/projection_test.rs.liquid"),
            ),
            Kind::Saga => (
                include_str!("items/saga.rs.liquid"),
                include_str!("items/saga_test.rs.liquid"),
            ),
        }
    }
}

/// The line in `src/app.rs` above which projections are registered.
pub const PROJECTIONS_MARKER: &str = "// composable: projections";

/// Plans adding a `kind` called `name` to the project that contains
/// `start` (the nearest directory upwards with a `Cargo.toml` that has a
/// `[package]`).
pub fn plan_add(kind: Kind, name: &str, start: &Path) -> Result<Plan, ScaffoldError> {
    let item = item_name(name, kind.noun())?;
    let (root, crate_name) = find_project(start)?;
    let registry_path = PathBuf::from("src").join(kind.directory()).join("mod.rs");
    let registry = read_registration_point(&root, &registry_path)?;

    let module_path = PathBuf::from("src")
        .join(kind.directory())
        .join(format!("{}.rs", item.module));
    let test_path = PathBuf::from("tests").join(format!("{}.rs", item.module));
    for path in [&module_path, &test_path] {
        if root.join(path).exists() {
            return Err(ScaffoldError::FileExists {
                path: root.join(path),
            });
        }
    }
    let declaration = format!("pub mod {};", item.module);
    if registry.lines().any(|line| line.trim() == declaration) {
        return Err(ScaffoldError::FileExists {
            path: root.join(&module_path),
        });
    }

    let values = liquid::object!({
        "type": item.type_name.clone(),
        "module": item.module.clone(),
        "kebab": item.kebab.clone(),
        "crate_name": crate_name,
    });
    let (module_template, test_template) = kind.templates();
    let mut files = vec![
        FileChange {
            path: module_path.clone(),
            action: Action::Create,
            contents: render::render(&module_path.display().to_string(), module_template, &values)?,
        },
        FileChange {
            path: test_path.clone(),
            action: Action::Create,
            contents: render::render(&test_path.display().to_string(), test_template, &values)?,
        },
        FileChange {
            contents: declare_module(&registry, &declaration),
            path: registry_path,
            action: Action::Change { what: declaration },
        },
    ];
    if kind == Kind::Projection {
        files.push(register_projection(&root, &item)?);
    }
    Ok(Plan { root, files })
}

/// The project around `start` and its crate name.
fn find_project(start: &Path) -> Result<(PathBuf, String), ScaffoldError> {
    let start = start
        .canonicalize()
        .map_err(|e| ScaffoldError::io("read", start, e))?;
    for dir in start.ancestors() {
        let manifest = dir.join("Cargo.toml");
        if !manifest.is_file() {
            continue;
        }
        let text =
            fs::read_to_string(&manifest).map_err(|e| ScaffoldError::io("read", &manifest, e))?;
        if let Some(name) = package_name(&text) {
            return Ok((dir.to_path_buf(), name.replace('-', "_")));
        }
    }
    Err(ScaffoldError::NotInAProject { start })
}

/// The `name` of the `[package]` table of a manifest, as `cargo new` and
/// the template write it (`name = "..."` on a line of its own).
fn package_name(manifest: &str) -> Option<String> {
    let mut in_package = false;
    for line in manifest.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_package = line == "[package]";
            continue;
        }
        if !in_package {
            continue;
        }
        let Some(value) = line.strip_prefix("name").map(str::trim_start) else {
            continue;
        };
        let Some(value) = value.strip_prefix('=') else {
            continue;
        };
        let value = value.trim();
        let quote = value.chars().next().filter(|c| *c == '"' || *c == '\'')?;
        return value[1..].split(quote).next().map(str::to_owned);
    }
    None
}

/// A file the template registers modules in, or why the project is not
/// from the template.
fn read_registration_point(root: &Path, path: &Path) -> Result<String, ScaffoldError> {
    let full = root.join(path);
    match fs::read_to_string(&full) {
        Ok(text) => Ok(text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(ScaffoldError::NotFromTemplate {
            root: root.to_path_buf(),
            missing: format!("there is no {}", path.display()),
        }),
        Err(e) => Err(ScaffoldError::io("read", full, e)),
    }
}

/// `registry` with `declaration` among its `pub mod` lines, in the
/// alphabetical place rustfmt keeps them in (after the last line that
/// sorts before it; at the end if there is none).
fn declare_module(registry: &str, declaration: &str) -> String {
    let lines: Vec<&str> = registry.lines().collect();
    let modules: Vec<usize> = (0..lines.len())
        .filter(|&i| lines[i].starts_with("pub mod ") && lines[i].ends_with(';'))
        .collect();
    let at = match modules.iter().rev().find(|&&i| lines[i] < declaration) {
        Some(&i) => i + 1,
        None => modules.first().copied().unwrap_or(lines.len()),
    };
    let mut out: Vec<&str> = lines.clone();
    out.insert(at, declaration);
    let mut text = out.join("\n");
    text.push('\n');
    text
}

/// `src/app.rs` with the projection caught up in `catch_up_projections`,
/// on a line above [`PROJECTIONS_MARKER`].
fn register_projection(root: &Path, item: &ItemName) -> Result<FileChange, ScaffoldError> {
    let path = PathBuf::from("src/app.rs");
    let app = read_registration_point(root, &path)?;
    let Some(marker) = app
        .lines()
        .position(|line| line.trim_start().starts_with(PROJECTIONS_MARKER))
    else {
        return Err(ScaffoldError::NotFromTemplate {
            root: root.to_path_buf(),
            missing: format!(
                "src/app.rs has no line `{PROJECTIONS_MARKER}` where projections are registered"
            ),
        });
    };
    let lines: Vec<&str> = app.lines().collect();
    let indent: String = lines[marker]
        .chars()
        .take_while(|c| c.is_whitespace())
        .collect();
    let call = format!(
        "applied += self.catch_up(crate::projections::{}::{}Projection::new()).await?;",
        item.module, item.type_name
    );
    let mut out: Vec<String> = lines.iter().map(|line| (*line).to_owned()).collect();
    out.insert(marker, format!("{indent}{call}"));
    let mut contents = out.join("\n");
    contents.push('\n');
    Ok(FileChange {
        path,
        action: Action::Change { what: call },
        contents,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modules_are_declared_in_order() {
        let registry = "//! Doc.\n\npub mod order;\npub mod shipping;\n";
        assert_eq!(
            declare_module(registry, "pub mod account;"),
            "//! Doc.\n\npub mod account;\npub mod order;\npub mod shipping;\n"
        );
        assert_eq!(
            declare_module(registry, "pub mod payment;"),
            "//! Doc.\n\npub mod order;\npub mod payment;\npub mod shipping;\n"
        );
        assert_eq!(
            declare_module(registry, "pub mod zoo;"),
            "//! Doc.\n\npub mod order;\npub mod shipping;\npub mod zoo;\n"
        );
        assert_eq!(
            declare_module("//! Doc.\n", "pub mod a;"),
            "//! Doc.\npub mod a;\n"
        );
    }

    #[test]
    fn the_package_name_is_read_from_its_table() {
        let manifest =
            "[workspace]\nname = \"no\"\n\n[package]\nversion = \"1\"\nname = \"my-shop\"\n";
        assert_eq!(package_name(manifest), Some("my-shop".into()));
        assert_eq!(package_name("[package]\nname = 'x'\n"), Some("x".into()));
        assert_eq!(package_name("[workspace]\nmembers = []\n"), None);
    }
}
