//! Reading a build-along chapter: the steps a reader takes (commands to
//! run, files to write, checkpoints to reach), in the order the chapter
//! shows them, and what in the chapter a reader could not follow.
//!
//! Nothing here touches the reader's directory: a chapter is parsed (and its
//! problems found) before anything runs, so a hidden line in the last
//! chapter is reported at once rather than after every build before it.

use std::fs;
use std::path::{Path, PathBuf};

use crate::directives::{self, Kind, Selection, Token};
use crate::files::normalize;
use crate::markdown::{self, CodeBlock};

/// The marker that makes a chapter build-along: an HTML comment on a line
/// of its own (outside code blocks).
pub const BUILD_ALONG: &str = "<!-- build-along -->";

/// The caption that names the file a block is the complete content of:
/// `<span class="filename">Filename: PATH</span>`.
const CAPTION_START: &str = "<span class=\"filename\">Filename:";
const CAPTION_END: &str = "</span>";

/// mdBook stops expanding nested includes at this depth.
const MAX_INCLUDE_DEPTH: usize = 10;

/// One thing a reader does, at a 1-based line of the chapter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Step {
    /// Run `command` (a `$ ` line of a `console` fence) in the current
    /// directory; in a fence opted in with `<!-- output: checked -->`,
    /// `expected` holds the output lines the fence shows after it.
    Command {
        line: usize,
        command: String,
        expected: Option<Vec<String>>,
    },
    /// Write `content` to `path` (relative to the current directory).
    File {
        line: usize,
        path: PathBuf,
        content: String,
    },
    /// The reader's project must now equal the listing crate `listing`
    /// (absolute path); `shown` is the path as the chapter writes it.
    Checkpoint {
        line: usize,
        listing: PathBuf,
        shown: String,
    },
}

/// Something in a chapter that a reader could not follow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Issue {
    /// 1-based line in the chapter.
    pub line: usize,
    /// What is wrong and how to fix it.
    pub message: String,
    /// True for an include that cannot be read, which the include rule of
    /// `check` already reports.
    pub include_rule: bool,
}

/// The steps of a chapter and what is wrong with it.
#[derive(Debug, Clone, Default)]
pub(crate) struct Parsed {
    pub steps: Vec<Step>,
    pub issues: Vec<Issue>,
}

/// Whether `text` has the build-along marker on a line of its own, outside
/// code blocks.
pub(crate) fn is_build_along(text: &str) -> bool {
    let blocks = markdown::code_blocks(text);
    text.lines()
        .enumerate()
        .any(|(i, line)| line.trim() == BUILD_ALONG && !inside_block(&blocks, i + 1))
}

fn inside_block(blocks: &[CodeBlock], line: usize) -> bool {
    blocks.iter().any(|b| b.line <= line && line <= b.end_line)
}

/// The path in a caption line, if `line` is one.
fn caption(line: &str) -> Option<&str> {
    let inner = line
        .trim()
        .strip_prefix(CAPTION_START)?
        .strip_suffix(CAPTION_END)?;
    Some(inner.trim())
}

/// The listing path in `<!-- checkpoint: listings/... -->`; `Some(Err)` for
/// a comment that starts like a checkpoint but is not one.
fn checkpoint(line: &str) -> Option<Result<&str, ()>> {
    let trimmed = line.trim();
    let inner = trimmed.strip_prefix("<!--")?.trim_start();
    let rest = inner.strip_prefix("checkpoint")?;
    let Some(path) = rest
        .trim_start()
        .strip_prefix(':')
        .and_then(|r| r.trim_end().strip_suffix("-->"))
        .map(str::trim)
    else {
        return Some(Err(()));
    };
    if path.is_empty() || path.contains(char::is_whitespace) {
        return Some(Err(()));
    }
    Some(Ok(path))
}

/// Whether rustdoc hides `line` of a Rust fence (`# ` prefix or a lone `#`,
/// after leading whitespace; `##` is an escaped `#` and is shown).
pub(crate) fn is_hidden(line: &str) -> bool {
    let trimmed = line.trim();
    !trimmed.starts_with("##") && (trimmed.starts_with("# ") || trimmed == "#")
}

/// A listing crate named in code: `listing_04_01` or `listing-04-01`.
fn names_listing_crate(content: &str) -> Option<&str> {
    let bytes = content.as_bytes();
    let mut from = 0;
    while let Some(pos) = content[from..].find("listing") {
        let at = from + pos;
        from = at + "listing".len();
        if at > 0 && (bytes[at - 1].is_ascii_alphanumeric() || bytes[at - 1] == b'_') {
            continue;
        }
        let rest = &bytes[from..];
        let Some(&sep) = rest.first() else {
            continue;
        };
        if sep != b'_' && sep != b'-' {
            continue;
        }
        let first = rest[1..].iter().take_while(|b| b.is_ascii_digit()).count();
        if first == 0 || rest.get(1 + first) != Some(&sep) {
            continue;
        }
        let second = rest[2 + first..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count();
        if second == 0 {
            continue;
        }
        return Some(&content[at..from + 2 + first + second]);
    }
    None
}

/// Reads the steps of the chapter at `chapter` (absolute) with text `text`;
/// listings named by checkpoints are resolved against `root`.
pub(crate) fn parse(root: &Path, chapter: &Path, text: &str) -> Parsed {
    let dir = chapter.parent().unwrap_or(root);
    let lines: Vec<&str> = text.lines().collect();
    let blocks = markdown::code_blocks(text);
    let mut parsed = Parsed::default();
    let issue = |parsed: &mut Parsed, line: usize, message: String| {
        parsed.issues.push(Issue {
            line,
            message,
            include_rule: false,
        });
    };

    // Captions and checkpoints are lines outside code blocks.
    let mut captions: Vec<(usize, &str)> = Vec::new();
    let mut checked_output: Vec<usize> = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let number = i + 1;
        if inside_block(&blocks, number) {
            continue;
        }
        if let Some(path) = caption(line) {
            captions.push((number, path));
        }
        if line.trim() == super::output::MARKER {
            checked_output.push(number);
        }
        match checkpoint(line) {
            None => {}
            Some(Err(())) => issue(
                &mut parsed,
                number,
                "malformed checkpoint: write `<!-- checkpoint: listings/chNN-slug/listing-NN-MM -->` on a line of its own".to_owned(),
            ),
            Some(Ok(shown)) => {
                let listing = normalize(&root.join(shown));
                if !listing.join("Cargo.toml").is_file() {
                    issue(
                        &mut parsed,
                        number,
                        format!("checkpoint names {shown}, which is not a listing crate (no {shown}/Cargo.toml); the path is relative to the repository root, e.g. listings/ch02-installation/listing-02-01"),
                    );
                }
                parsed.steps.push(Step::Checkpoint {
                    line: number,
                    listing,
                    shown: shown.to_owned(),
                });
            }
        }
    }

    for block in &blocks {
        // The caption: the nearest non-blank line above the fence.
        let above = (1..block.line)
            .rev()
            .find(|&n| !lines[n - 1].trim().is_empty());
        let captioned = above.and_then(|n| {
            let index = captions.iter().position(|&(line, _)| line == n)?;
            Some(captions.remove(index).1)
        });
        let checked = above.is_some_and(|n| {
            let index = checked_output.iter().position(|&line| line == n);
            index.map(|index| checked_output.remove(index)).is_some()
        });
        let rust = block.is_rust();

        if let Some(path) = captioned {
            if path.is_empty() || Path::new(path).is_absolute() {
                issue(
                    &mut parsed,
                    block.line,
                    format!(
                        "caption `Filename: {path}` must name a path relative to the reader's current directory (e.g. src/main.rs)"
                    ),
                );
                continue;
            }
            let Some(content) = whole_content(block, dir, rust, &mut parsed) else {
                continue;
            };
            if let Some(name) = names_listing_crate(&content) {
                issue(
                    &mut parsed,
                    block.line,
                    format!(
                        "the reader's code names a listing crate (`{name}`): a reader's project is not called that; name the reader's crate (e.g. give the listing `[lib] name = \"...\"` matching the reader's package) and show that"
                    ),
                );
            }
            parsed.steps.push(Step::File {
                line: block.line,
                path: PathBuf::from(path),
                content,
            });
            continue;
        }

        if rust {
            check_uncaptioned_rust(block, &mut parsed);
        } else if block.tokens().first() == Some(&"console") {
            for (line, command, output) in commands(block) {
                parsed.steps.push(Step::Command {
                    line,
                    command,
                    expected: checked.then_some(output),
                });
            }
            continue;
        }
        if checked {
            issue(
                &mut parsed,
                block.line,
                format!(
                    "`{}` must be followed by a console fence",
                    super::output::MARKER
                ),
            );
        }
    }

    for line in checked_output {
        issue(
            &mut parsed,
            line,
            format!(
                "`{}` is not followed by a code block: put the console fence whose output is checked right after it",
                super::output::MARKER
            ),
        );
    }

    for (line, path) in captions {
        issue(
            &mut parsed,
            line,
            format!(
                "caption `Filename: {path}` is not followed by a code block: put the block with the file's complete content right after it"
            ),
        );
    }

    parsed.steps.sort_by_key(|step| match step {
        Step::Command { line, .. } | Step::File { line, .. } | Step::Checkpoint { line, .. } => {
            *line
        }
    });
    parsed.issues.sort_by_key(|issue| issue.line);
    parsed
}

/// The `$ ` lines of a console fence, with their lines and the output
/// lines shown after each (up to the next command); a line ending in
/// ` \` continues on the next.
fn commands(block: &CodeBlock) -> Vec<(usize, String, Vec<String>)> {
    let mut found: Vec<(usize, String, Vec<String>)> = Vec::new();
    let mut body = block.body.lines().enumerate();
    while let Some((i, line)) = body.next() {
        let Some(command) = line.strip_prefix("$ ") else {
            if let Some((_, _, output)) = found.last_mut() {
                output.push(line.to_owned());
            }
            continue;
        };
        let mut command = command.to_owned();
        // bash reads `\` + newline as a continuation, so both are kept.
        while command.ends_with('\\') {
            match body.next() {
                Some((_, next)) => {
                    command.push('\n');
                    command.push_str(next);
                }
                None => break,
            }
        }
        let command = command.trim().to_owned();
        if !command.is_empty() {
            found.push((block.body_line + i, command, Vec::new()));
        }
    }
    found
}

/// An uncaptioned Rust fence (an explanation, not written anywhere) may
/// still not hide lines: neither `# ` lines nor a `rustdoc_include` of part
/// of a file (which hides the rest).
fn check_uncaptioned_rust(block: &CodeBlock, parsed: &mut Parsed) {
    for (i, line) in block.body.lines().enumerate() {
        if is_hidden(line) {
            parsed.issues.push(Issue {
                line: block.body_line + i,
                message: hidden_line_message(),
                include_rule: false,
            });
        }
    }
    for directive in directives::find(&block.body) {
        let whole = matches!(
            directive.selection,
            Selection::Lines {
                start: None,
                end: None
            }
        );
        if directive.kind == Kind::RustdocInclude && !whole {
            parsed.issues.push(Issue {
                line: block.body_line + line_of(&block.body, directive.start),
                message: format!(
                    "`rustdoc_include` of part of {} hides the rest of the file behind `# ` lines; in a build-along chapter the reader sees the whole truth: show an excerpt with `{{{{#include ...}}}}` (nothing hidden), or the whole file in a captioned block",
                    directive.path.display()
                ),
                include_rule: false,
            });
        }
    }
}

fn hidden_line_message() -> String {
    "hidden line (`# ` or a lone `#`) in a Rust fence of a build-along chapter: the reader types only what they see, so show the line (or drop it)".to_owned()
}

/// 0-based line of byte `offset` in `text`.
fn line_of(text: &str, offset: usize) -> usize {
    text[..offset].matches('\n').count()
}

/// What the reader sees in a captioned block: its body with every include
/// directive expanded the way mdBook does, which must be whole files. `None`
/// (with issues recorded) when it cannot be.
fn whole_content(block: &CodeBlock, dir: &Path, rust: bool, parsed: &mut Parsed) -> Option<String> {
    let before = parsed.issues.len();
    if rust {
        for (i, line) in block.body.lines().enumerate() {
            if is_hidden(line) {
                parsed.issues.push(Issue {
                    line: block.body_line + i,
                    message: hidden_line_message(),
                    include_rule: false,
                });
            }
        }
    }
    let content = expand(&block.body, dir, 0, block, parsed);
    if rust
        && parsed.issues.len() == before
        && let Some(hidden) = content.lines().find(|line| is_hidden(line))
    {
        parsed.issues.push(Issue {
            line: block.line,
            message: format!(
                "an included file has a hidden line (`{}`): the reader types only what they see; {}",
                hidden.trim(),
                hidden_line_message()
            ),
            include_rule: false,
        });
    }
    (parsed.issues.len() == before).then_some(content)
}

/// mdBook's expansion of `text` (relative to `dir`), restricted to whole
/// files; problems are recorded at the block's lines.
fn expand(text: &str, dir: &Path, depth: usize, block: &CodeBlock, parsed: &mut Parsed) -> String {
    let mut out = String::with_capacity(text.len());
    let mut previous = 0;
    for token in directives::scan(text) {
        let (start, end) = match &token {
            Token::Escaped { start, end } | Token::Title { start, end } => (*start, *end),
            Token::Directive(directive) => (directive.start, directive.end),
        };
        out.push_str(&text[previous..start]);
        previous = end;
        let directive = match token {
            Token::Escaped { .. } => {
                out.push_str(&text[start + 1..end]);
                continue;
            }
            Token::Title { .. } => continue,
            Token::Directive(directive) => directive,
        };
        // Lines of a nested include are reported at the block's first line.
        let line = if depth == 0 {
            block.body_line + line_of(text, start)
        } else {
            block.line
        };
        let shown = &text[start..end];
        let mut refuse = |message: String| {
            parsed.issues.push(Issue {
                line,
                message,
                include_rule: false,
            });
        };
        match (&directive.kind, &directive.selection) {
            (Kind::Playground { .. }, _) => {
                refuse(format!(
                    "`{shown}` in a captioned block: a playground renders a code block of its own; use `{{{{#include ...}}}}` of the whole file"
                ));
                continue;
            }
            (_, Selection::Anchor(anchor)) => {
                refuse(format!(
                    "`{shown}` shows only anchor `{anchor}`, but a captioned block is the complete file the reader writes: include the whole file (no `:anchor`), or drop the caption"
                ));
                continue;
            }
            (
                _,
                Selection::Lines { start: Some(_), .. } | Selection::Lines { end: Some(_), .. },
            ) => {
                refuse(format!(
                    "`{shown}` shows a line range, but a captioned block is the complete file the reader writes: include the whole file (no `:N:M`), or drop the caption"
                ));
                continue;
            }
            _ => {}
        }
        let target = normalize(&dir.join(&directive.path));
        match fs::read_to_string(&target) {
            Ok(content) => {
                // mdBook joins the lines with `\n`: the file's last newline is
                // the one after the directive.
                let content = content.lines().collect::<Vec<_>>().join("\n");
                if depth < MAX_INCLUDE_DEPTH {
                    let base = target.parent().unwrap_or(dir).to_path_buf();
                    out.push_str(&expand(&content, &base, depth + 1, block, parsed));
                } else {
                    refuse(format!(
                        "`{shown}`: includes nested deeper than {MAX_INCLUDE_DEPTH}; check for cyclic includes"
                    ));
                }
            }
            Err(e) => parsed.issues.push(Issue {
                line,
                message: format!("`{shown}`: cannot read {}: {e}", target.display()),
                include_rule: true,
            }),
        }
    }
    out.push_str(&text[previous..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers() {
        assert!(is_build_along("# T\n\n<!-- build-along -->\n"));
        assert!(!is_build_along(
            "# T\n\n```text\n<!-- build-along -->\n```\n"
        ));
        assert!(!is_build_along("# T <!-- build-along -->\n"));
        assert_eq!(
            caption(r#"<span class="filename">Filename: src/lib.rs</span>"#),
            Some("src/lib.rs")
        );
        assert_eq!(
            checkpoint("<!-- checkpoint: listings/ch01-a/listing-01-01 -->"),
            Some(Ok("listings/ch01-a/listing-01-01"))
        );
        assert_eq!(checkpoint("<!-- checkpoint listings/x -->"), Some(Err(())));
        assert_eq!(checkpoint("<!-- build-along -->"), None);
    }

    #[test]
    fn hidden_lines() {
        for hidden in ["# use x;", "    # fn main() {}", "#"] {
            assert!(is_hidden(hidden), "{hidden:?}");
        }
        for shown in [
            "#[derive(Debug)]",
            "#![allow(x)]",
            "## not hidden",
            "let x = 1; # no",
        ] {
            assert!(!is_hidden(shown), "{shown:?}");
        }
    }

    #[test]
    fn listing_crate_names() {
        assert_eq!(
            names_listing_crate("use listing_04_01::Account;"),
            Some("listing_04_01")
        );
        assert_eq!(
            names_listing_crate("listing-02-01 = { path = \"x\" }"),
            Some("listing-02-01")
        );
        assert_eq!(names_listing_crate("// Listing 4-1: an account"), None);
        assert_eq!(names_listing_crate("my_listing_04_01 listing_4"), None);
    }

    #[test]
    fn steps_in_order() {
        let text = "# T\n\n<!-- build-along -->\n\n```console\n$ cargo new --lib bank\n    Creating bank\n$ cd bank\n$ echo a \\\n  b\n```\n\n<span class=\"filename\">Filename: src/lib.rs</span>\n\n```rust\npub fn f() {}\n```\n\n```rust\nlet explanation = 1;\n```\n";
        let parsed = parse(Path::new("/r"), Path::new("/r/book/src/c.md"), text);
        assert_eq!(parsed.issues, vec![]);
        assert_eq!(
            parsed.steps,
            vec![
                Step::Command {
                    line: 6,
                    command: "cargo new --lib bank".into(),
                    expected: None,
                },
                Step::Command {
                    line: 8,
                    command: "cd bank".into(),
                    expected: None,
                },
                Step::Command {
                    line: 9,
                    command: "echo a \\\n  b".into(),
                    expected: None,
                },
                Step::File {
                    line: 15,
                    path: "src/lib.rs".into(),
                    content: "pub fn f() {}\n".into()
                },
            ]
        );
    }

    #[test]
    fn checked_fences_carry_the_output_they_show() {
        let text = "<!-- build-along -->\n\n<!-- output: checked -->\n\n```console\n$ echo a\na\n$ true\n```\n\n```console\n$ echo b\nnot checked\n```\n\n<!-- output: checked -->\ntext\n";
        let parsed = parse(Path::new("/r"), Path::new("/r/book/src/c.md"), text);
        assert_eq!(
            parsed.steps,
            vec![
                Step::Command {
                    line: 6,
                    command: "echo a".into(),
                    expected: Some(vec!["a".into()]),
                },
                Step::Command {
                    line: 8,
                    command: "true".into(),
                    expected: Some(vec![]),
                },
                Step::Command {
                    line: 12,
                    command: "echo b".into(),
                    expected: None,
                },
            ]
        );
        assert_eq!(parsed.issues.len(), 1, "{:?}", parsed.issues);
        assert_eq!(parsed.issues[0].line, 16);
    }
}
