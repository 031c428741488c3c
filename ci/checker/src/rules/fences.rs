//! Rule: every code fence is tagged, and every Rust fence is tested or says
//! why it is not.
//!
//! The book promises that the Rust a reader sees compiles and runs. rustdoc
//! (through the `composable-rust-book` doctest crate) tests fences it takes
//! for Rust, and mdBook shows them, but the two disagree at the edges, so
//! this rule rejects:
//!
//! - a fence without a language tag, or an indented code block (Rust to
//!   rustdoc, plain text to mdBook);
//! - a Rust fence inside an `admonish` block (rustdoc never looks inside);
//! - a Rust fence marked `ignore` without `<!-- ignore: <reason> -->` on
//!   the line just before it;
//! - a Rust fence that includes a file from `listings/` or `examples/` that
//!   no workspace member crate owns (so nothing compiles or tests it).

use std::path::{Path, PathBuf};

use super::Checker;
use crate::directives;
use crate::files::normalize;
use crate::markdown::{self, CodeBlock};

/// The fence tags a reader will meet, for messages.
const TAG_HINT: &str = "rust, text, console, toml, sql, mermaid …";

impl Checker {
    /// Code-block rules. `line_offset` and `in_admonish` describe text nested
    /// in an admonish block.
    pub(super) fn check_blocks(
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
