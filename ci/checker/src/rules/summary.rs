//! Rule: `SUMMARY.md` and the chapter files agree.
//!
//! mdBook builds the book from `book/src/SUMMARY.md` alone: a link there to
//! a file that does not exist breaks the build, and a chapter file it does
//! not link is silently left out of the book (and its fences out of the
//! reader's sight, though still tested). This rule checks that every local
//! link in `SUMMARY.md` resolves, and that every Markdown file under
//! `book/src` is linked from it or included by some chapter (a fragment).

use std::collections::BTreeSet;
use std::fs;
use std::path::PathBuf;

use super::Checker;
use crate::files::{normalize, relative};
use crate::markdown;

impl Checker {
    /// SUMMARY.md links must exist, and every chapter must be linked (or be a
    /// fragment some chapter includes).
    pub(crate) fn check_summary(&mut self, chapters: &[PathBuf]) {
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
}
