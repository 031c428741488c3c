//! Rule: a build-along chapter can be followed as written.
//!
//! A chapter marked `<!-- build-along -->` is followed by `book-checker
//! follow` (see [`crate::follow`]): its commands run and its captioned blocks
//! are written into a reader's project. Following it takes minutes, but
//! most ways a chapter cannot be followed are visible in its text: a hidden
//! line the reader never types, a captioned block that includes only part of
//! a file, a block that names a listing crate, a caption with no block, a
//! checkpoint naming no listing. This rule reports those in the fast
//! `check` pass too (include files that cannot be read are left to the
//! include rule).

use std::path::Path;

use super::Checker;
use crate::follow::chapter;

impl Checker {
    /// The static part of following a build-along chapter.
    pub(super) fn check_build_along(&mut self, path: &Path, text: &str) {
        if !chapter::is_build_along(text) {
            return;
        }
        let parsed = chapter::parse(&self.root, path, text);
        for issue in parsed.issues {
            if !issue.include_rule {
                self.problem(path, Some(issue.line), issue.message);
            }
        }
    }
}
