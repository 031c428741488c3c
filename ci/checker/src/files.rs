//! Paths and directory walks every rule shares.
//!
//! The checker reports paths relative to the repository root and compares
//! paths that may not exist yet (an include of a missing file), so paths are
//! normalised lexically here rather than canonicalised. The directory walks
//! return sorted lists, so reports come out in the same order on every
//! machine.

use std::fs;
use std::path::{Component, Path, PathBuf};

/// Lexically resolves `.` and `..` (files may not exist, so no canonicalize).
pub fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

/// `path` relative to `root` when it is below it, for messages.
pub(crate) fn relative(root: &Path, path: &Path) -> PathBuf {
    path.strip_prefix(root)
        .map_or_else(|_| path.to_path_buf(), Path::to_path_buf)
}

/// The absolute, normalised form of a root given on the command line.
pub(crate) fn absolute_root(root: &Path) -> PathBuf {
    let absolute = if root.is_absolute() {
        root.to_path_buf()
    } else {
        std::env::current_dir().map_or_else(|_| root.to_path_buf(), |cwd| cwd.join(root))
    };
    normalize(&absolute)
}

/// Every `.md` file below `dir`, sorted.
pub(crate) fn markdown_files(dir: &Path) -> Vec<PathBuf> {
    fn walk(dir: &Path, found: &mut Vec<PathBuf>) {
        for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, found);
            } else if path.extension().is_some_and(|e| e == "md") {
                found.push(path);
            }
        }
    }
    let mut found = Vec::new();
    walk(dir, &mut found);
    found.sort();
    found
}

/// Visible subdirectories of `dir` (neither hidden nor `target`), sorted by
/// name.
pub(crate) fn subdirectories(dir: &Path) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .filter(|p| !file_name(p).starts_with('.') && file_name(p) != "target")
        .collect();
    dirs.sort();
    dirs
}

/// The last component of `path`, lossily as a string (empty if none).
pub(crate) fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes() {
        assert_eq!(normalize(Path::new("/a/b/../c/./d")), Path::new("/a/c/d"));
    }
}
