//! Rule: every `output.txt` is what its program prints today.
//!
//! A listing (or an example under `examples/`) that has an `output.txt`
//! shows the reader what running it prints, and the chapter includes that
//! file. When the code changes, the file goes stale without anyone noticing,
//! so this rule runs `cargo run -q -p <its package>` and reports any
//! difference as a diff (skipped with
//! [`Options::run_outputs`](crate::Options::run_outputs) = `false`). The
//! same run is how [`regenerate_outputs`](crate::regenerate_outputs)
//! rewrites the file.

use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::Checker;
use crate::files::subdirectories;
use crate::{diff, workspace};

/// The crates directly under `examples/`.
pub(crate) fn example_crates(root: &Path) -> Vec<PathBuf> {
    subdirectories(&root.join("examples"))
        .into_iter()
        .filter(|dir| dir.join("Cargo.toml").is_file())
        .collect()
}

/// The directories that hold an `output.txt`.
pub(crate) fn with_output(dirs: impl IntoIterator<Item = PathBuf>) -> Vec<PathBuf> {
    dirs.into_iter()
        .filter(|dir| dir.join("output.txt").is_file())
        .collect()
}

impl Checker {
    /// `output.txt` must be exactly what the listing prints today.
    pub(crate) fn check_output(&mut self, listing: &Path, cargo_env: &[(OsString, OsString)]) {
        let output_file = listing.join("output.txt");
        let package = match workspace::package_name(&listing.join("Cargo.toml")) {
            Ok(package) => package,
            Err(e) => {
                self.problem(listing.join("Cargo.toml"), None, e);
                return;
            }
        };
        let expected = match fs::read_to_string(&output_file) {
            Ok(text) => text,
            Err(e) => {
                self.problem(&output_file, None, format!("cannot read: {e}"));
                return;
            }
        };
        match run_listing(&self.root, &package, cargo_env) {
            Err(e) => self.problem(&output_file, None, e),
            Ok(actual) if actual == expected => {}
            Ok(actual) => {
                let rel = self.rel(&output_file);
                let diff = diff::unified(
                    &expected,
                    &actual,
                    &rel,
                    &format!("`cargo run -q -p {package}`"),
                );
                self.problem(
                    &output_file,
                    None,
                    format!("stale output: `cargo run -q -p {package}` prints something else now; run ci/regenerate-output to update it\n{diff}"),
                );
            }
        }
    }
}

/// Runs `cargo run -q -p <package>` in `root` and returns its stdout.
fn run_listing(
    root: &Path,
    package: &str,
    cargo_env: &[(OsString, OsString)],
) -> Result<String, String> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let output = Command::new(&cargo)
        .args(["run", "-q", "-p", package])
        .current_dir(root)
        .envs(cargo_env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .output()
        .map_err(|e| {
            format!(
                "cannot start `{} run -q -p {package}`: {e}",
                cargo.to_string_lossy()
            )
        })?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let tail: Vec<&str> = stderr.lines().rev().take(30).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        return Err(format!(
            "`cargo run -q -p {package}` failed ({}); output.txt must come from a successful run. Its stderr ends with:\n{}",
            output.status,
            tail.join("\n")
        ));
    }
    String::from_utf8(output.stdout)
        .map_err(|_| format!("`cargo run -q -p {package}` printed invalid UTF-8"))
}

/// Runs the package whose crate is `dir` and writes what it prints to
/// `dir/output.txt`: `Ok(true)` if the file changed, `Ok(false)` if it was
/// already right.
pub(crate) fn rewrite(
    root: &Path,
    dir: &Path,
    cargo_env: &[(OsString, OsString)],
) -> Result<bool, String> {
    let output_file = dir.join("output.txt");
    workspace::package_name(&dir.join("Cargo.toml"))
        .and_then(|package| run_listing(root, &package, cargo_env))
        .and_then(|actual| {
            let old = fs::read_to_string(&output_file).ok();
            if old.as_deref() == Some(actual.as_str()) {
                return Ok(false);
            }
            fs::write(&output_file, actual)
                .map(|()| true)
                .map_err(|e| format!("cannot write {}: {e}", output_file.display()))
        })
}
