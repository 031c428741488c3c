//! A plan: the files a command will create or change, worked out and
//! checked before anything is written, so a refused command writes
//! nothing and `--dry-run` can print exactly what a real run would do.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::ScaffoldError;

/// What happens to one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// A new file.
    Create,
    /// An existing file gets `what` (e.g. "pub mod account;").
    Change {
        /// The addition, as one line for the plan.
        what: String,
    },
}

/// One file of a plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileChange {
    /// Relative to the plan's root.
    pub path: PathBuf,
    /// Create or change.
    pub action: Action,
    /// The file's whole content afterwards.
    pub contents: String,
}

/// The files a command creates or changes, under `root`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The directory the paths are relative to.
    pub root: PathBuf,
    /// Every file, in the order it is written.
    pub files: Vec<FileChange>,
}

impl Plan {
    /// The plan as lines: `would create PATH` / `would change PATH: WHAT`
    /// for a dry run, `created PATH` / `changed PATH: WHAT` once applied.
    pub fn describe(&self, dry_run: bool) -> String {
        let (create, change) = if dry_run {
            ("would create", "would change")
        } else {
            ("created", "changed")
        };
        let mut out = String::new();
        for file in &self.files {
            let path = file.path.display();
            let _ = match &file.action {
                Action::Create => writeln!(out, "{create} {path}"),
                Action::Change { what } => writeln!(out, "{change} {path}: {what}"),
            };
        }
        out
    }

    /// Checks again that no file to create exists, then writes every file,
    /// then formats the Rust files with rustfmt when it is installed (a
    /// generated line registered in existing code may be longer than
    /// rustfmt's width).
    pub fn apply(&self) -> Result<(), ScaffoldError> {
        for file in &self.files {
            let path = self.root.join(&file.path);
            if file.action == Action::Create && path.exists() {
                return Err(ScaffoldError::FileExists { path });
            }
        }
        for file in &self.files {
            let path = self.root.join(&file.path);
            if let Some(parent) = path.parent() {
                fs::create_dir_all(parent).map_err(|e| ScaffoldError::io("create", parent, e))?;
            }
            fs::write(&path, &file.contents).map_err(|e| ScaffoldError::io("write", &path, e))?;
        }
        let rust: Vec<PathBuf> = self
            .files
            .iter()
            .filter(|file| file.path.extension().is_some_and(|e| e == "rs"))
            .map(|file| self.root.join(&file.path))
            .collect();
        rustfmt(&rust);
        Ok(())
    }
}

/// Formats `files` with rustfmt (edition 2024); skipped quietly when
/// rustfmt is not installed: the code compiles either way.
fn rustfmt(files: &[PathBuf]) {
    if files.is_empty() {
        return;
    }
    let _ = Command::new("rustfmt")
        .args(["--edition", "2024"])
        .args(files)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// Whether `dir` is missing or an empty directory.
pub(crate) fn is_missing_or_empty(dir: &Path) -> Result<bool, ScaffoldError> {
    match fs::read_dir(dir) {
        Ok(mut entries) => Ok(entries.next().is_none()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotADirectory => Ok(false),
        Err(e) => Err(ScaffoldError::io("read", dir, e)),
    }
}
