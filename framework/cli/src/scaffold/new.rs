//! `composable new NAME`: renders the project template into `./NAME`.

use std::path::{Path, PathBuf};

use super::names::project_name;
use super::plan::{Action, FileChange, Plan, is_missing_or_empty};
use super::{ScaffoldError, render};

/// Plans a new project called `name` in `parent/name`, depending on the
/// framework clone at `framework_path` (by path), or on its git repository
/// when `None`.
pub fn plan_new(
    name: &str,
    parent: &Path,
    framework_path: Option<&Path>,
) -> Result<Plan, ScaffoldError> {
    let name = project_name(name)?;
    let root = parent.join(&name.name);
    if !is_missing_or_empty(&root)? {
        return Err(ScaffoldError::TargetNotEmpty { directory: root });
    }
    let framework_path = match framework_path {
        Some(path) => toml_string_body(&framework_clone(path)?),
        None => String::new(),
    };
    let values = liquid::object!({
        "project-name": name.name,
        "crate_name": name.crate_name,
        "framework_path": framework_path,
    });
    let files = render::project_files(&values)?
        .into_iter()
        .map(|(path, contents)| FileChange {
            path: PathBuf::from(path),
            action: Action::Create,
            contents,
        })
        .collect();
    Ok(Plan { root, files })
}

/// The absolute path of the framework clone at `path`, checked to hold
/// `framework/composable-rust/Cargo.toml`.
fn framework_clone(path: &Path) -> Result<PathBuf, ScaffoldError> {
    let invalid = |reason: String| ScaffoldError::InvalidFrameworkPath {
        path: path.to_path_buf(),
        reason,
    };
    let absolute = path
        .canonicalize()
        .map_err(|e| invalid(format!("cannot open it ({e})")))?;
    let facade = absolute.join("framework/composable-rust/Cargo.toml");
    if !facade.is_file() {
        return Err(invalid(format!("{} does not exist", facade.display())));
    }
    if absolute.to_str().is_none() {
        return Err(invalid("the path is not valid UTF-8".to_owned()));
    }
    Ok(absolute)
}

/// `path` written inside a TOML basic string: `/` separators, `\` and `"`
/// escaped.
fn toml_string_body(path: &Path) -> String {
    let text = path.to_string_lossy().replace('\\', "/");
    text.replace('"', "\\\"")
}
