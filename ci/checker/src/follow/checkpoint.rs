//! Checkpoints: the reader's project must equal a listing crate.
//!
//! Equal means: every file of the listing (except `Cargo.toml`,
//! `Cargo.lock`, `output.txt`, `target/` and hidden files) exists in the
//! reader's project with the same bytes; the reader's `src/`, `tests/` (and
//! any other directory the listing has, e.g. `migrations/`) hold no file the
//! listing does not; and both `Cargo.toml` declare the same
//! `[dependencies]` and `[dev-dependencies]` with the same features
//! (versions, sources and every other key differ legitimately: the listing
//! is a workspace member, the reader's project is not).

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use crate::diff;
use crate::workspace::{self, DEPENDENCY_TABLES};

/// Lines of a diff shown for one file.
const DIFF_LINES: usize = 40;

/// Top-level files of a listing that are not part of the reader's project.
const NOT_THE_READERS: [&str; 3] = ["Cargo.toml", "Cargo.lock", "output.txt"];

/// Compares the reader's `project` with `listing` (shown as `shown`);
/// `Err` describes the first difference (and counts the others).
pub(crate) fn compare(listing: &Path, shown: &str, project: &Path) -> Result<(), String> {
    let mut differences = Vec::new();

    if !project.join("Cargo.toml").is_file() {
        return Err(format!(
            "checkpoint {shown}: the reader's current directory has no Cargo.toml; the chapter should `cd` into the project before this point"
        ));
    }
    if let Some(difference) = compare_manifests(listing, shown, project) {
        differences.push(difference);
    }

    let listing_files: BTreeSet<PathBuf> = files_below(listing, listing)
        .into_iter()
        .filter(|rel| {
            !(rel.components().count() == 1
                && NOT_THE_READERS.iter().any(|name| rel == Path::new(name)))
        })
        .collect();
    for rel in &listing_files {
        let expected = fs::read(listing.join(rel)).unwrap_or_default();
        match fs::read(project.join(rel)) {
            Err(_) => differences.push(Difference {
                file: rel.clone(),
                detail: format!(
                    "{} is missing from the reader's project: the listing has it, but no step of the chapter creates it (show it in a block captioned `Filename: {}`)",
                    rel.display(),
                    rel.display()
                ),
            }),
            Ok(actual) if actual == expected => {}
            Ok(actual) => differences.push(Difference {
                file: rel.clone(),
                detail: format!(
                    "the reader's {} differs from the listing's:\n{}",
                    rel.display(),
                    short_diff(
                        &expected,
                        &actual,
                        &format!("{shown}/{}", rel.display()),
                        &format!("reader's {}", rel.display())
                    )
                ),
            }),
        }
    }

    // Extra files in the directories the reader's code lives in.
    let mut dirs: BTreeSet<PathBuf> = ["src", "tests"].iter().map(PathBuf::from).collect();
    for rel in &listing_files {
        let mut components = rel.components();
        if let (Some(first), Some(_)) = (components.next(), components.next()) {
            dirs.insert(PathBuf::from(first.as_os_str()));
        }
    }
    for dir in dirs {
        for rel in files_below(project, &project.join(&dir)) {
            if !listing_files.contains(&rel) {
                differences.push(Difference {
                    file: rel.clone(),
                    detail: format!(
                        "the reader's project has {}, which the listing does not have",
                        rel.display()
                    ),
                });
            }
        }
    }

    let Some(first) = differences.first() else {
        return Ok(());
    };
    let mut message = format!(
        "checkpoint {shown}: the reader's project differs from the listing: {}",
        first.detail
    );
    if differences.len() > 1 {
        let others: Vec<String> = differences[1..]
            .iter()
            .map(|d| d.file.display().to_string())
            .collect();
        message.push_str(&format!(
            "\n({} more difference(s): {})",
            others.len(),
            others.join(", ")
        ));
    }
    Err(message)
}

struct Difference {
    file: PathBuf,
    detail: String,
}

/// The dependency tables of both manifests, normalised; a difference if
/// they disagree.
fn compare_manifests(listing: &Path, shown: &str, project: &Path) -> Option<Difference> {
    let read = |path: &Path| fs::read_to_string(path).unwrap_or_default();
    let mut listing_deps = workspace::dependencies(&read(&listing.join("Cargo.toml")));
    // The listing's build aid (see ci/workspace-hack), not a dependency the
    // reader's project needs.
    listing_deps.retain(|(_, name), _| name != workspace::WORKSPACE_HACK);
    let expected = normalised(&listing_deps);
    let actual = normalised(&workspace::dependencies(&read(&project.join("Cargo.toml"))));
    (expected != actual).then(|| Difference {
        file: PathBuf::from("Cargo.toml"),
        detail: format!(
            "Cargo.toml declares other dependencies (compared: names and features of [dependencies] and [dev-dependencies]; a `workspace = true` entry counts only the features it writes):\n{}",
            short_diff(
                expected.as_bytes(),
                actual.as_bytes(),
                &format!("{shown}/Cargo.toml (dependencies)"),
                "reader's Cargo.toml (dependencies)"
            )
        ),
    })
}

/// One line per dependency, under a header per table.
fn normalised(deps: &BTreeMap<(String, String), BTreeSet<String>>) -> String {
    let mut out = String::new();
    for table in DEPENDENCY_TABLES {
        out.push_str(&format!("[{table}]\n"));
        for ((_, name), features) in deps.iter().filter(|((t, _), _)| t == table) {
            out.push_str(name);
            if !features.is_empty() {
                let quoted: Vec<String> = features.iter().map(|f| format!("{f:?}")).collect();
                out.push_str(&format!(" features = [{}]", quoted.join(", ")));
            }
            out.push('\n');
        }
    }
    out
}

/// A unified diff, cut to [`DIFF_LINES`] lines.
fn short_diff(expected: &[u8], actual: &[u8], expected_name: &str, actual_name: &str) -> String {
    let (Ok(expected), Ok(actual)) = (std::str::from_utf8(expected), std::str::from_utf8(actual))
    else {
        return format!("(binary files differ: {expected_name}, {actual_name})\n");
    };
    let diff = diff::unified(expected, actual, expected_name, actual_name);
    let lines: Vec<&str> = diff.lines().collect();
    let mut out = lines
        .iter()
        .take(DIFF_LINES)
        .map(|line| format!("{line}\n"))
        .collect::<String>();
    if lines.len() > DIFF_LINES {
        out.push_str(&format!(
            "... ({} more diff lines)\n",
            lines.len() - DIFF_LINES
        ));
    }
    out
}

/// Every file below `dir` (skipping `target` and hidden entries), relative
/// to `base`, sorted.
fn files_below(base: &Path, dir: &Path) -> Vec<PathBuf> {
    fn walk(base: &Path, dir: &Path, found: &mut Vec<PathBuf>) {
        for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') || (path.is_dir() && name == "target") {
                continue;
            }
            if path.is_dir() {
                walk(base, &path, found);
            } else if let Ok(rel) = path.strip_prefix(base) {
                found.push(rel.to_path_buf());
            }
        }
    }
    let mut found = Vec::new();
    walk(base, dir, &mut found);
    found.sort();
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalised_dependencies() {
        let deps = workspace::dependencies(
            "[dependencies]\ntokio = { version = \"1\", features = [\"rt\"] }\nserde = \"1\"\n[dev-dependencies]\nx = { path = \"../x\" }\n",
        );
        assert_eq!(
            normalised(&deps),
            "[dependencies]\nserde\ntokio features = [\"rt\"]\n[dev-dependencies]\nx\n"
        );
        assert_eq!(
            normalised(&BTreeMap::new()),
            "[dependencies]\n[dev-dependencies]\n"
        );
    }

    #[test]
    fn the_workspace_hack_of_a_listing_is_not_asked_of_the_reader() {
        let dir = std::env::temp_dir().join(format!(
            "book-checker-hack-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let (listing, project) = (dir.join("listing"), dir.join("project"));
        for d in [&listing, &project] {
            fs::create_dir_all(d).unwrap();
        }
        let reader = "[dependencies]\nserde = \"1\"\n";
        fs::write(project.join("Cargo.toml"), reader).unwrap();
        fs::write(
            listing.join("Cargo.toml"),
            "[dependencies]\nserde = \"1\"\nworkspace-hack = { workspace = true }\n",
        )
        .unwrap();
        assert!(compare_manifests(&listing, "listing", &project).is_none());
        // Any other extra dependency is still a difference.
        fs::write(
            listing.join("Cargo.toml"),
            "[dependencies]\nserde = \"1\"\ntokio = \"1\"\n",
        )
        .unwrap();
        assert!(compare_manifests(&listing, "listing", &project).is_some());
        fs::remove_dir_all(&dir).unwrap();
    }
}
