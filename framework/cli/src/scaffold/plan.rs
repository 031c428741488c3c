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
    /// rustfmt's width). When a write fails, what was written is undone
    /// (created files and directories removed, changed files restored), so
    /// an error leaves the project as it was.
    pub fn apply(&self) -> Result<(), ScaffoldError> {
        let mut originals = Vec::new();
        for file in &self.files {
            let path = self.root.join(&file.path);
            match file.action {
                Action::Create if path.exists() => {
                    return Err(ScaffoldError::FileExists { path });
                }
                Action::Create => {}
                Action::Change { .. } => {
                    let before =
                        fs::read(&path).map_err(|e| ScaffoldError::io("read", &path, e))?;
                    originals.push((path, before));
                }
            }
        }
        let mut undo = Undo {
            created: Vec::new(),
            originals,
        };
        for file in &self.files {
            let path = self.root.join(&file.path);
            if let Some(parent) = path.parent() {
                undo.create_dirs(parent)?;
            }
            let existed = path.exists();
            fs::write(&path, &file.contents).map_err(|e| ScaffoldError::io("write", &path, e))?;
            if !existed {
                undo.created.push(path);
            }
        }
        undo.created.clear();
        undo.originals.clear();
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

/// What [`Plan::apply`] has done so far, undone on drop unless cleared: the
/// files and directories it created (removed, newest first) and the
/// original contents of the files it changes (written back).
struct Undo {
    created: Vec<PathBuf>,
    originals: Vec<(PathBuf, Vec<u8>)>,
}

impl Undo {
    /// `create_dir_all`, remembering each directory it creates.
    fn create_dirs(&mut self, dir: &Path) -> Result<(), ScaffoldError> {
        let mut missing = Vec::new();
        let mut next = Some(dir);
        while let Some(dir) = next.filter(|dir| !dir.as_os_str().is_empty() && !dir.exists()) {
            missing.push(dir.to_path_buf());
            next = dir.parent();
        }
        for dir in missing.into_iter().rev() {
            fs::create_dir(&dir).map_err(|e| ScaffoldError::io("create", &dir, e))?;
            self.created.push(dir);
        }
        Ok(())
    }
}

impl Drop for Undo {
    fn drop(&mut self) {
        for path in self.created.iter().rev() {
            let _ = if path.is_dir() {
                fs::remove_dir(path)
            } else {
                fs::remove_file(path)
            };
        }
        for (path, contents) in &self.originals {
            let _ = fs::write(path, contents);
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_write_leaves_the_project_as_it_was() {
        let root = std::env::temp_dir().join(format!("scaffold-undo-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        fs::create_dir_all(&root).unwrap();
        fs::write(root.join("lib.rs"), "old\n").unwrap();
        // A regular file where a directory is needed: the third write fails.
        fs::write(root.join("blocker"), "").unwrap();
        let plan = Plan {
            root: root.clone(),
            files: vec![
                FileChange {
                    path: "src/new/a.rs".into(),
                    action: Action::Create,
                    contents: "a\n".into(),
                },
                FileChange {
                    path: "lib.rs".into(),
                    action: Action::Change {
                        what: "pub mod a;".into(),
                    },
                    contents: "new\n".into(),
                },
                FileChange {
                    path: "blocker/x.rs".into(),
                    action: Action::Create,
                    contents: "x\n".into(),
                },
            ],
        };
        let error = plan.apply().unwrap_err();
        assert!(matches!(error, ScaffoldError::Io { .. }), "{error}");
        assert!(
            !root.join("src").exists(),
            "created directories are removed"
        );
        assert_eq!(fs::read_to_string(root.join("lib.rs")).unwrap(), "old\n");
        fs::remove_dir_all(&root).unwrap();
    }
}
