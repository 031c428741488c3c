//! Rule: every include directive in a chapter resolves.
//!
//! mdBook expands `{{#include …}}` and `{{#rustdoc_include …}}` when it
//! builds the book; a path that does not exist, or an anchor the file does
//! not define (or never ends), leaves the reader with an error message or
//! the wrong lines instead of the code the text talks about. This rule finds
//! every directive in a chapter (in code blocks or not) and checks that its
//! file exists and, for `:anchor` selections, that the file has both
//! `ANCHOR: name` and `ANCHOR_END: name`. It also records every included
//! file, for the [`summary`](super::summary) and
//! [`listings`](super::listings) rules.

use std::fs;
use std::path::Path;

use super::Checker;
use crate::directives::{self, AnchorState, Selection};
use crate::files::normalize;
use crate::markdown::LineIndex;

impl Checker {
    /// Include directives anywhere in the chapter: file and anchor must exist.
    pub(super) fn check_directives(&mut self, chapter: &Path, dir: &Path, text: &str) {
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
}
