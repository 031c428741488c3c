//! `book-checker`: keeps *The Composable Rust Book* honest.
//!
//! The book promises that every Rust fence a reader sees is compiled and
//! tested, either as an inline snippet (the `composable-rust-book` doctest
//! crate runs it) or as a numbered listing crate under
//! `listings/chNN-slug/listing-NN-MM/` that the chapter includes and cargo
//! tests. [`check`] finds the ways that promise can quietly break:
//!
//! - a code fence without a language tag, or an indented code block;
//! - a Rust fence marked `ignore` without `<!-- ignore: <reason> -->` on the
//!   line just before it;
//! - a Rust fence inside an `admonish` block (rustdoc never sees it);
//! - an include directive whose file or anchor does not exist;
//! - a Rust fence that includes a file from `listings/` or `examples/` that is
//!   not part of a workspace member crate (so nothing tests it);
//! - a listing directory that no chapter includes, that is not a workspace
//!   member, or whose name is not `listing-NN-MM` under `chNN-slug`;
//! - a chapter missing from `SUMMARY.md`, or a `SUMMARY.md` link to a
//!   missing file;
//! - a listing's (or an example's) `output.txt` that is not what
//!   `cargo run -q -p <its package>` prints today (skipped with
//!   [`Options::run_outputs`] = `false`).
//!
//! [`regenerate_outputs`] rewrites those `output.txt` files from real runs.

#![deny(missing_docs)]

pub mod diff;
pub mod directives;
pub mod markdown;
pub mod workspace;

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::fmt;
use std::fs;
use std::path::{Component, Path, PathBuf};
use std::process::{Command, Stdio};

use directives::{AnchorState, Selection};
use markdown::{CodeBlock, LineIndex};

/// The fence tags a reader will meet, for messages.
const TAG_HINT: &str = "rust, text, console, toml, sql, mermaid …";

/// What to check and how.
#[derive(Debug, Clone)]
pub struct Options {
    /// The repository root (holds `Cargo.toml`, `book/src`, `listings/`).
    pub root: PathBuf,
    /// Run every listing and example that has an `output.txt` and compare its output.
    pub run_outputs: bool,
    /// Extra environment variables for the `cargo run` of listings
    /// (tests use it to give a fixture its own `CARGO_TARGET_DIR`).
    pub cargo_env: Vec<(OsString, OsString)>,
}

impl Options {
    /// Full checks of the repository at `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self {
            root: root.into(),
            run_outputs: true,
            cargo_env: Vec::new(),
        }
    }
}

/// One thing that is wrong, where, and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Problem {
    /// Path relative to the repository root.
    pub path: PathBuf,
    /// 1-based line, when the problem is at a line of a file.
    pub line: Option<usize>,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl Problem {
    fn new(path: impl Into<PathBuf>, line: Option<usize>, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            line,
            message: message.into(),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{line}: {}", self.path.display(), self.message),
            None => write!(f, "{}: {}", self.path.display(), self.message),
        }
    }
}

/// The result of [`check`].
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Everything found wrong, sorted by file and line.
    pub problems: Vec<Problem>,
    /// Markdown files checked under `book/src`.
    pub chapters: usize,
    /// Listing directories found under `listings/`.
    pub listings: usize,
    /// `output.txt` files compared with a real run.
    pub outputs_checked: usize,
}

impl Report {
    /// True when nothing is wrong.
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }
}

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
fn relative(root: &Path, path: &Path) -> PathBuf {
    path.strip_prefix(root)
        .map_or_else(|_| path.to_path_buf(), Path::to_path_buf)
}

/// The absolute, normalised form of a root given on the command line.
fn absolute_root(root: &Path) -> PathBuf {
    let absolute = if root.is_absolute() {
        root.to_path_buf()
    } else {
        std::env::current_dir().map_or_else(|_| root.to_path_buf(), |cwd| cwd.join(root))
    };
    normalize(&absolute)
}

/// Every `.md` file below `dir`, sorted.
fn markdown_files(dir: &Path) -> Vec<PathBuf> {
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

/// Visible subdirectories of `dir`, sorted by name.
fn subdirectories(dir: &Path) -> Vec<PathBuf> {
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

/// The crates directly under `examples/`.
fn example_crates(root: &Path) -> Vec<PathBuf> {
    subdirectories(&root.join("examples"))
        .into_iter()
        .filter(|dir| dir.join("Cargo.toml").is_file())
        .collect()
}

/// The directories that hold an `output.txt`.
fn with_output(dirs: impl IntoIterator<Item = PathBuf>) -> Vec<PathBuf> {
    dirs.into_iter()
        .filter(|dir| dir.join("output.txt").is_file())
        .collect()
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Runs every check on the repository described by `options`.
pub fn check(options: &Options) -> Report {
    let root = absolute_root(&options.root);
    let mut checker = Checker {
        root: root.clone(),
        src: root.join("book").join("src"),
        members: BTreeSet::new(),
        included: BTreeSet::new(),
        problems: Vec::new(),
    };
    let mut report = Report::default();

    match workspace::members(&root) {
        Ok(members) => checker.members = members,
        Err(e) => checker.problem(
            root.join("Cargo.toml"),
            None,
            format!("{e}; the checker reads the workspace members from it (run from the repository root or pass --root DIR)"),
        ),
    }

    if checker.src.is_dir() {
        let chapters = markdown_files(&checker.src);
        report.chapters = chapters.len();
        for chapter in &chapters {
            checker.check_chapter(chapter);
        }
        checker.check_summary(&chapters);
    } else {
        let src = checker.src.clone();
        checker.problem(
            src,
            None,
            "no such directory; the book's chapters live in book/src (run from the repository root or pass --root DIR)",
        );
    }

    let listings = checker.check_listings();
    report.listings = listings.len();
    if options.run_outputs {
        for dir in with_output(listings.into_iter().chain(example_crates(&root))) {
            checker.check_output(&dir, &options.cargo_env);
            report.outputs_checked += 1;
        }
    }

    checker.problems.sort();
    report.problems = checker.problems;
    report
}

/// State shared by the checks.
struct Checker {
    root: PathBuf,
    src: PathBuf,
    members: BTreeSet<PathBuf>,
    /// Every file some chapter includes (normalised absolute paths).
    included: BTreeSet<PathBuf>,
    problems: Vec<Problem>,
}

impl Checker {
    fn problem(&mut self, path: impl AsRef<Path>, line: Option<usize>, message: impl Into<String>) {
        let path = relative(&self.root, path.as_ref());
        self.problems.push(Problem::new(path, line, message));
    }

    fn rel(&self, path: &Path) -> String {
        relative(&self.root, path).display().to_string()
    }

    fn check_chapter(&mut self, chapter: &Path) {
        let text = match fs::read_to_string(chapter) {
            Ok(text) => text,
            Err(e) => {
                self.problem(chapter, None, format!("cannot read: {e}"));
                return;
            }
        };
        let dir = chapter.parent().unwrap_or(&self.root).to_path_buf();
        self.check_directives(chapter, &dir, &text);
        self.check_blocks(chapter, &dir, &text, 0, false);
    }

    /// Include directives anywhere in the chapter: file and anchor must exist.
    fn check_directives(&mut self, chapter: &Path, dir: &Path, text: &str) {
        let index = LineIndex::new(text);
        for directive in directives::find(text) {
            let line = Some(index.line(directive.start));
            let shown = &text[directive.start..directive.end];
            let target = normalize(&dir.join(&directive.path));
            self.included.insert(target.clone());
            let rel_target = self.rel(&target);
            if !target.is_file() {
                self.problem(
                    chapter,
                    line,
                    format!(
                        "`{shown}`: {rel_target} does not exist; fix the path (it is relative to the chapter's directory, {}/) or create the file (to show a directive literally, escape it: `\\{{{{#…}}}}`)",
                        self.rel(dir)
                    ),
                );
                continue;
            }
            let Selection::Anchor(name) = &directive.selection else {
                continue;
            };
            let content = match fs::read_to_string(&target) {
                Ok(content) => content,
                Err(e) => {
                    self.problem(
                        chapter,
                        line,
                        format!("`{shown}`: cannot read {rel_target}: {e}"),
                    );
                    continue;
                }
            };
            match directives::anchor_state(&content, name) {
                AnchorState::Complete => {}
                AnchorState::Missing => self.problem(
                    chapter,
                    line,
                    format!(
                        "`{shown}`: anchor `{name}` not found in {rel_target}; add `// ANCHOR: {name}` before and `// ANCHOR_END: {name}` after the lines to show, or fix the anchor name"
                    ),
                ),
                AnchorState::Unterminated => self.problem(
                    chapter,
                    line,
                    format!(
                        "`{shown}`: anchor `{name}` in {rel_target} has no `ANCHOR_END: {name}`; add `// ANCHOR_END: {name}` after the lines to show"
                    ),
                ),
            }
        }
    }

    /// Code-block rules. `line_offset` and `in_admonish` describe text nested
    /// in an admonish block.
    fn check_blocks(
        &mut self,
        chapter: &Path,
        dir: &Path,
        text: &str,
        line_offset: usize,
        in_admonish: bool,
    ) {
        let lines: Vec<&str> = text.lines().collect();
        for block in markdown::code_blocks(text) {
            let line = Some(block.line + line_offset);
            match block.info.as_deref() {
                None => {
                    self.problem(
                        chapter,
                        line,
                        "indented code block: rustdoc tests it as Rust while mdBook shows it untagged; use a fenced block with a tag (```rust, ```text …)",
                    );
                    continue;
                }
                Some("") => {
                    self.problem(
                        chapter,
                        line,
                        format!("code fence without a language: tag it: {TAG_HINT} (an untagged fence is Rust to rustdoc and plain text to mdBook)"),
                    );
                    continue;
                }
                Some(_) => {}
            }
            if block.is_rust() {
                if in_admonish {
                    self.problem(
                        chapter,
                        line,
                        "Rust fence inside an admonish block is never tested (rustdoc does not look inside it); move the code out of the admonish block",
                    );
                }
                self.check_ignore_reason(chapter, &lines, &block, line_offset);
                self.check_rust_includes(chapter, dir, &block, line_offset);
            }
            if block.tokens().first() == Some(&"admonish") {
                self.check_blocks(
                    chapter,
                    dir,
                    &block.body,
                    line_offset + block.body_line - 1,
                    true,
                );
            }
        }
    }

    /// An `ignore` Rust fence needs `<!-- ignore: <reason> -->` just before it.
    fn check_ignore_reason(
        &mut self,
        chapter: &Path,
        lines: &[&str],
        block: &CodeBlock,
        line_offset: usize,
    ) {
        let ignored = block
            .tokens()
            .iter()
            .any(|t| *t == "ignore" || t.starts_with("ignore-"));
        if !ignored {
            return;
        }
        let previous = block
            .line
            .checked_sub(2)
            .and_then(|i| lines.get(i))
            .copied()
            .unwrap_or("");
        if ignore_reason(previous).is_none() {
            self.problem(
                chapter,
                Some(block.line + line_offset),
                "Rust fence marked `ignore` without a recorded reason: put `<!-- ignore: <why it cannot be tested> -->` on the line just before the fence, or make it testable (`no_run`, `compile_fail`, `should_panic`, hidden `# ` lines)",
            );
        }
    }

    /// A Rust fence including a file from listings/ or examples/ relies on
    /// that file's crate being built and tested.
    fn check_rust_includes(
        &mut self,
        chapter: &Path,
        dir: &Path,
        block: &CodeBlock,
        line_offset: usize,
    ) {
        let tested_elsewhere = [self.root.join("listings"), self.root.join("examples")];
        for directive in directives::find(&block.body) {
            let target = normalize(&dir.join(&directive.path));
            if !target.is_file() || !tested_elsewhere.iter().any(|d| target.starts_with(d)) {
                continue;
            }
            let line = Some(block.line + line_offset);
            let rel_target = self.rel(&target);
            match owning_crate(&self.root, &target) {
                None => self.problem(
                    chapter,
                    line,
                    format!(
                        "Rust fence includes {rel_target}, which is not inside any crate, so nothing compiles or tests it; move it into a listing crate (listings/chNN-slug/listing-NN-MM/) that is a workspace member"
                    ),
                ),
                Some(krate) if !self.members.contains(&krate) => {
                    let rel_crate = self.rel(&krate);
                    self.problem(
                        chapter,
                        line,
                        format!(
                            "Rust fence includes {rel_target}, but {rel_crate} is not a workspace member, so nothing compiles or tests it; add \"{rel_crate}\" to [workspace] members in Cargo.toml (\"listings/*/*\" covers every listing)"
                        ),
                    );
                }
                Some(_) => {}
            }
        }
    }

    /// SUMMARY.md links must exist, and every chapter must be linked (or be a
    /// fragment some chapter includes).
    fn check_summary(&mut self, chapters: &[PathBuf]) {
        let summary = self.src.join("SUMMARY.md");
        let Ok(text) = fs::read_to_string(&summary) else {
            self.problem(
                &summary,
                None,
                "missing: mdBook builds the book from book/src/SUMMARY.md; create it and list every chapter",
            );
            return;
        };
        let mut referenced = BTreeSet::new();
        for link in markdown::links(&text) {
            let dest = link.dest.split(['#', '?']).next().unwrap_or("");
            if dest.is_empty() || dest.contains("://") || dest.starts_with("mailto:") {
                continue;
            }
            let target = normalize(&self.src.join(dest));
            if !target.is_file() {
                self.problem(
                    &summary,
                    Some(link.line),
                    format!(
                        "links to `{}`, which does not exist (looked for {}); create the chapter or fix the link",
                        link.dest,
                        self.rel(&target)
                    ),
                );
            }
            referenced.insert(target);
        }
        for chapter in chapters {
            if *chapter == summary
                || referenced.contains(chapter)
                || self.included.contains(chapter)
            {
                continue;
            }
            let path = relative(&self.src, chapter).display().to_string();
            self.problem(
                chapter,
                None,
                format!(
                    "chapter not listed in book/src/SUMMARY.md, so mdBook never shows it; add `- [Title]({path})` to SUMMARY.md or delete the file"
                ),
            );
        }
    }

    /// Checks the listing tree; returns the listing directories that are crates.
    fn check_listings(&mut self) -> Vec<PathBuf> {
        let listings_dir = self.root.join("listings");
        let mut listings = Vec::new();
        for chapter_dir in subdirectories(&listings_dir) {
            let chapter_name = file_name(&chapter_dir);
            let Some(chapter_number) = chapter_dir_number(&chapter_name) else {
                self.problem(
                    &chapter_dir,
                    None,
                    format!(
                        "`{chapter_name}` is not a listing chapter directory: name it chNN-slug (two-digit chapter number, lowercase words joined by `-`), e.g. ch01-getting-started"
                    ),
                );
                continue;
            };
            for listing in subdirectories(&chapter_dir) {
                let name = file_name(&listing);
                match listing_numbers(&name) {
                    None => self.problem(
                        &listing,
                        None,
                        format!(
                            "`{name}` is not a listing name: name it listing-NN-MM (NN = chapter number, MM = listing number in the chapter), e.g. listing-{chapter_number:02}-01"
                        ),
                    ),
                    Some((chapter, number)) if chapter != chapter_number => self.problem(
                        &listing,
                        None,
                        format!(
                            "`{name}` is under {chapter_name}, so its first number must be the chapter's: rename it listing-{chapter_number:02}-{number:02} (and update the chapter's include)"
                        ),
                    ),
                    Some(_) => {}
                }
                if !listing.join("Cargo.toml").is_file() {
                    self.problem(
                        &listing,
                        None,
                        "listing has no Cargo.toml: every listing is a crate that cargo builds and tests (`cargo new --vcs none <dir>`)",
                    );
                    continue;
                }
                if !self.members.contains(&listing) {
                    let rel = self.rel(&listing);
                    self.problem(
                        &listing,
                        None,
                        format!(
                            "listing is not a workspace member, so cargo never builds or tests it; add \"{rel}\" to [workspace] members in the root Cargo.toml (\"listings/*/*\" covers every listing)"
                        ),
                    );
                }
                if !self.included.iter().any(|file| file.starts_with(&listing)) {
                    self.problem(
                        &listing,
                        None,
                        "orphaned listing: no chapter includes it; show it in a chapter with a ```rust fence containing `{{#rustdoc_include ../../listings/<chapter>/<listing>/src/main.rs:<anchor>}}`, or delete it",
                    );
                }
                listings.push(listing);
            }
        }
        listings
    }

    /// `output.txt` must be exactly what the listing prints today.
    fn check_output(&mut self, listing: &Path, cargo_env: &[(OsString, OsString)]) {
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

/// The reason in `<!-- ignore: <reason> -->`, if `line` is such a comment.
pub fn ignore_reason(line: &str) -> Option<&str> {
    let inner = line
        .trim()
        .strip_prefix("<!--")?
        .strip_suffix("-->")?
        .trim();
    let reason = inner.strip_prefix("ignore:")?.trim();
    (!reason.is_empty()).then_some(reason)
}

/// The crate directory (nearest `Cargo.toml` below `root`) owning `file`.
fn owning_crate(root: &Path, file: &Path) -> Option<PathBuf> {
    let mut dir = file.parent();
    while let Some(d) = dir {
        if d == root || !d.starts_with(root) {
            return None;
        }
        if d.join("Cargo.toml").is_file() {
            return Some(d.to_path_buf());
        }
        dir = d.parent();
    }
    None
}

/// `NN` of a `chNN-slug` directory name.
pub fn chapter_dir_number(name: &str) -> Option<u32> {
    let rest = name.strip_prefix("ch")?;
    let (digits, slug) = (rest.get(..2)?, rest.get(2..)?);
    let slug = slug.strip_prefix('-')?;
    let slug_ok = !slug.is_empty()
        && slug.split('-').all(|word| {
            !word.is_empty()
                && word
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        });
    (digits.bytes().all(|b| b.is_ascii_digit()) && slug_ok).then(|| digits.parse().ok())?
}

/// `(NN, MM)` of a `listing-NN-MM` directory name.
pub fn listing_numbers(name: &str) -> Option<(u32, u32)> {
    let rest = name.strip_prefix("listing-")?;
    let (chapter, number) = rest.split_once('-')?;
    let two_digits = |s: &str| s.len() == 2 && s.bytes().all(|b| b.is_ascii_digit());
    (two_digits(chapter) && two_digits(number))
        .then(|| Some((chapter.parse().ok()?, number.parse().ok()?)))?
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

/// What [`regenerate_outputs`] did to one listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Regenerated {
    /// The listing's `output.txt`, relative to the root.
    pub path: PathBuf,
    /// `Ok(true)` if the file changed, `Ok(false)` if it was already right,
    /// `Err` if the listing could not be run.
    pub outcome: Result<bool, String>,
}

/// Rewrites `output.txt` from a real run for the given listing (or example)
/// directories, or, when `listings` is empty, for every listing and example
/// that has one.
pub fn regenerate_outputs(
    root: &Path,
    listings: &[PathBuf],
    cargo_env: &[(OsString, OsString)],
) -> Vec<Regenerated> {
    let root = absolute_root(root);
    let dirs: Vec<PathBuf> = if listings.is_empty() {
        let listing_dirs = subdirectories(&root.join("listings"))
            .iter()
            .flat_map(|chapter| subdirectories(chapter))
            .collect::<Vec<_>>();
        with_output(listing_dirs.into_iter().chain(example_crates(&root)))
    } else {
        listings
            .iter()
            .map(|dir| normalize(&absolute_root(dir)))
            .collect()
    };
    dirs.into_iter()
        .map(|dir| {
            let output_file = dir.join("output.txt");
            let outcome = workspace::package_name(&dir.join("Cargo.toml"))
                .and_then(|package| run_listing(&root, &package, cargo_env))
                .and_then(|actual| {
                    let old = fs::read_to_string(&output_file).ok();
                    if old.as_deref() == Some(actual.as_str()) {
                        return Ok(false);
                    }
                    fs::write(&output_file, actual)
                        .map(|()| true)
                        .map_err(|e| format!("cannot write {}: {e}", output_file.display()))
                });
            Regenerated {
                path: relative(&root, &output_file),
                outcome,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(chapter_dir_number("ch01-getting-started"), Some(1));
        assert_eq!(chapter_dir_number("ch12-x2"), Some(12));
        for bad in [
            "ch1-x",
            "ch01",
            "ch01-",
            "ch01-Getting",
            "ch01_x",
            "chap01-x",
            "ch01--x",
        ] {
            assert_eq!(chapter_dir_number(bad), None, "{bad}");
        }
        assert_eq!(listing_numbers("listing-01-02"), Some((1, 2)));
        for bad in [
            "listing-1-02",
            "listing-01-2",
            "listing-01",
            "listing-01-02-x",
            "Listing-01-02",
            "no-listing-01-02",
        ] {
            assert_eq!(listing_numbers(bad), None, "{bad}");
        }
    }

    #[test]
    fn ignore_reasons() {
        assert_eq!(
            ignore_reason("<!-- ignore: needs a live Kafka broker -->"),
            Some("needs a live Kafka broker")
        );
        assert_eq!(ignore_reason("  <!--ignore:x-->  "), Some("x"));
        assert_eq!(ignore_reason("<!-- ignore: -->"), None);
        assert_eq!(ignore_reason("<!-- note: x -->"), None);
        assert_eq!(ignore_reason(""), None);
    }

    #[test]
    fn normalizes() {
        assert_eq!(normalize(Path::new("/a/b/../c/./d")), Path::new("/a/c/d"));
    }
}
