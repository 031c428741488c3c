//! The rules [`check`](crate::check) enforces, one module each, and the
//! [`Checker`] state they share.
//!
//! | module       | rule                                                        |
//! |--------------|-------------------------------------------------------------|
//! | [`fences`]   | every fence is tagged; every Rust fence is tested, or says why not |
//! | [`includes`] | every include directive resolves: file and anchor exist     |
//! | [`summary`]  | `SUMMARY.md` links resolve, and every chapter is linked     |
//! | [`listings`] | every listing is a named, numbered, included member crate   |
//! | [`output`]   | every `output.txt` is what its program prints today         |
//! | [`build_along`] | a build-along chapter hides nothing and names whole files (the static part of `follow`) |
//! | [`cross_refs`] | prose names chapters by title, not "chapter N"; a listing directory's `chNN` is its chapter's sidebar number |
//!
//! Order matters in one way: [`includes`] records which files the chapters
//! include, and [`summary`] and [`listings`] read that record, so every
//! chapter is checked before them. [`cross_refs`] reads `SUMMARY.md` and the
//! chapters itself, after them.

pub(crate) mod build_along;
pub(crate) mod cross_refs;
pub(crate) mod fences;
pub(crate) mod includes;
pub(crate) mod listings;
pub(crate) mod output;
pub(crate) mod summary;

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use crate::Problem;
use crate::files::relative;
use crate::workspace;

/// State shared by the rules: where the book is, what the workspace builds,
/// what the chapters include, and the problems found so far.
pub(crate) struct Checker {
    root: PathBuf,
    src: PathBuf,
    members: BTreeSet<PathBuf>,
    /// Every file some chapter includes (normalised absolute paths).
    included: BTreeSet<PathBuf>,
    problems: Vec<Problem>,
}

impl Checker {
    /// A checker of the repository at `root` (absolute and normalised), with
    /// the workspace members read from its `Cargo.toml` (a problem if they
    /// cannot be).
    pub(crate) fn new(root: PathBuf) -> Self {
        let mut checker = Self {
            src: root.join("book").join("src"),
            root,
            members: BTreeSet::new(),
            included: BTreeSet::new(),
            problems: Vec::new(),
        };
        match workspace::members(&checker.root) {
            Ok(members) => checker.members = members,
            Err(e) => {
                let manifest = checker.root.join("Cargo.toml");
                checker.problem(
                    manifest,
                    None,
                    format!("{e}; the checker reads the workspace members from it (run from the repository root or pass --root DIR)"),
                );
            }
        }
        checker
    }

    /// The book's source directory, `book/src`.
    pub(crate) fn src(&self) -> &Path {
        &self.src
    }

    /// Records a problem at `path` (made relative to the root).
    pub(crate) fn problem(
        &mut self,
        path: impl AsRef<Path>,
        line: Option<usize>,
        message: impl Into<String>,
    ) {
        let path = relative(&self.root, path.as_ref());
        self.problems.push(Problem::new(path, line, message));
    }

    /// `path` relative to the root, for messages.
    fn rel(&self, path: &Path) -> String {
        relative(&self.root, path).display().to_string()
    }

    /// The rules that read a chapter: its include directives
    /// ([`includes`]), its code blocks ([`fences`]) and, in a build-along
    /// chapter, what a reader following it would meet ([`build_along`]).
    pub(crate) fn check_chapter(&mut self, chapter: &Path) {
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
        self.check_build_along(chapter, &text);
    }

    /// Everything found wrong, sorted by file and line.
    pub(crate) fn into_problems(mut self) -> Vec<Problem> {
        self.problems.sort();
        self.problems
    }
}
