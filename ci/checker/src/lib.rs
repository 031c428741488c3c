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
//! - a build-along chapter with a hidden line, a partial include in a
//!   captioned block, or a captioned block naming a listing crate (the
//!   static part of [`follow()`]);
//! - "chapter N" in prose (chapters are referred to by a link with their
//!   title, since numbers change when a chapter is added), and a listing
//!   directory `chNN-slug` included by a chapter whose sidebar number is not
//!   `NN`.
//!
//! [`run_commands`] runs every command the other chapters show, from the
//! repository root (see [`mod@commands`]).
//!
//! [`check_browser`] opens the built book in headless Chromium and checks
//! it as a web page: diagrams rendered, admonitions styled, search working,
//! no console errors (see [`mod@browser`]). [`check_links`] checks every
//! link of the built book, those into the API docs built alongside it
//! included (see [`mod@links`]).
//!
//! [`regenerate_outputs`] rewrites those `output.txt` files from real runs.
//! [`follow()`] follows the build-along (tutorial) chapters as a reader
//! would: it runs their commands and writes their files in a scratch
//! directory, and checks the result against their listings; its module,
//! [`mod@follow`], documents the conventions those chapters use.
//!
//! Each rule lives in a module of its own under `rules/` (with a comment
//! saying why the rule exists); this module holds the public entry points
//! and what they return.

#![deny(missing_docs)]

pub mod browser;
pub mod commands;
pub mod diff;
pub mod directives;
mod files;
pub mod follow;
pub mod links;
pub mod markdown;
mod rules;
pub mod workspace;

use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};

pub use browser::{BrowserOptions, BrowserReport, check_browser};
pub use commands::{CommandsOptions, CommandsReport, run_commands};
pub use files::normalize;
pub use follow::{FollowOptions, FollowReport, FollowedChapter, follow};
pub use links::{LinksReport, check_links};
pub use rules::fences::ignore_reason;
pub use rules::listings::{chapter_dir_number, listing_numbers};

use files::{absolute_root, markdown_files, relative, subdirectories};
use rules::Checker;
use rules::output::{example_crates, with_output};

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
    /// A problem at `path` (relative to the root), at `line` if known.
    pub(crate) fn new(
        path: impl Into<PathBuf>,
        line: Option<usize>,
        message: impl Into<String>,
    ) -> Self {
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

/// Runs every check on the repository described by `options`.
pub fn check(options: &Options) -> Report {
    let root = absolute_root(&options.root);
    let mut checker = Checker::new(root.clone());
    let mut report = Report::default();

    // Chapters first: the include rule records what they include, which the
    // summary and listing rules read.
    let src = checker.src().to_path_buf();
    if src.is_dir() {
        let chapters = markdown_files(&src);
        report.chapters = chapters.len();
        for chapter in &chapters {
            checker.check_chapter(chapter);
        }
        checker.check_summary(&chapters);
        checker.check_cross_references(&chapters);
    } else {
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

    report.problems = checker.into_problems();
    report
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
        .map(|dir| Regenerated {
            path: relative(&root, &dir.join("output.txt")),
            outcome: rules::output::rewrite(&root, &dir, cargo_env),
        })
        .collect()
}
