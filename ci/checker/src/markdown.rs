//! Code blocks and links in Markdown, with line numbers, parsed with
//! pulldown-cmark (the parser both rustdoc and mdBook use).

use pulldown_cmark::{CodeBlockKind, Event, Options, Parser, Tag, TagEnd};

/// A code block as the Markdown parser sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeBlock {
    /// 1-based line of the opening fence (or first line of an indented block).
    pub line: usize,
    /// The info string of a fenced block; `None` for an indented block.
    pub info: Option<String>,
    /// The block's content, without the fences and container indentation.
    pub body: String,
    /// 1-based line of the first content line.
    pub body_line: usize,
    /// 1-based line of the block's last line (the closing fence, if any).
    pub end_line: usize,
}

impl CodeBlock {
    /// Whether rustdoc would compile this block as Rust.
    pub fn is_rust(&self) -> bool {
        self.info.as_deref().is_none_or(is_rust_info)
    }

    /// The info string's tokens (split at commas and whitespace).
    pub fn tokens(&self) -> Vec<&str> {
        self.info.as_deref().map(tokens).unwrap_or_default()
    }
}

/// Splits an info string into tokens, the way rustdoc does.
pub fn tokens(info: &str) -> Vec<&str> {
    info.split(|c: char| c == ',' || c.is_whitespace())
        .filter(|t| !t.is_empty())
        .collect()
}

/// Whether rustdoc treats a fence with this info string as Rust. Mirrors
/// rustdoc's `LangString::parse`, order dependence included (`ignore,text`
/// is Rust, `text,ignore` is not).
pub fn is_rust_info(info: &str) -> bool {
    let mut seen_rust_tags = false;
    let mut seen_other_tags = false;
    for token in tokens(info) {
        match token {
            "rust" => seen_rust_tags = true,
            "should_panic" | "no_run" | "ignore" | "standalone_crate" => {
                seen_rust_tags = !seen_other_tags
            }
            t if t.starts_with("ignore-") => seen_rust_tags = !seen_other_tags,
            "test_harness" | "compile_fail" => seen_rust_tags = !seen_other_tags || seen_rust_tags,
            t if t.starts_with("edition") => {}
            t if t.len() == 5
                && t.starts_with('E')
                && t[1..].bytes().all(|b| b.is_ascii_digit()) =>
            {
                seen_rust_tags = !seen_other_tags || seen_rust_tags;
            }
            _ => seen_other_tags = true,
        }
    }
    !seen_other_tags || seen_rust_tags
}

/// Maps byte offsets to 1-based line numbers.
#[derive(Debug)]
pub struct LineIndex {
    starts: Vec<usize>,
}

impl LineIndex {
    /// Indexes `text`.
    pub fn new(text: &str) -> Self {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        Self { starts }
    }

    /// The 1-based line containing byte `offset`.
    pub fn line(&self, offset: usize) -> usize {
        self.starts.partition_point(|&start| start <= offset)
    }
}

fn parser(text: &str) -> Parser<'_> {
    Parser::new_ext(
        text,
        Options::ENABLE_TABLES | Options::ENABLE_FOOTNOTES | Options::ENABLE_STRIKETHROUGH,
    )
}

/// All code blocks of `text` (not those nested inside other code blocks).
pub fn code_blocks(text: &str) -> Vec<CodeBlock> {
    let index = LineIndex::new(text);
    let mut blocks = Vec::new();
    let mut current: Option<CodeBlock> = None;
    for (event, range) in parser(text).into_offset_iter() {
        match event {
            Event::Start(Tag::CodeBlock(kind)) => {
                let line = index.line(range.start);
                current = Some(CodeBlock {
                    line,
                    info: match kind {
                        CodeBlockKind::Fenced(info) => Some(info.trim().to_owned()),
                        CodeBlockKind::Indented => None,
                    },
                    body: String::new(),
                    body_line: 0,
                    end_line: index.line(range.end.saturating_sub(1).max(range.start)),
                });
            }
            Event::Text(text) => {
                if let Some(block) = current.as_mut() {
                    if block.body_line == 0 {
                        block.body_line = index.line(range.start);
                    }
                    block.body.push_str(&text);
                }
            }
            Event::End(TagEnd::CodeBlock) => {
                if let Some(mut block) = current.take() {
                    if block.body_line == 0 {
                        block.body_line = block.line + 1;
                    }
                    blocks.push(block);
                }
            }
            _ => {}
        }
    }
    blocks
}

/// A link destination with its line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// 1-based line of the link.
    pub line: usize,
    /// The destination as written.
    pub dest: String,
}

/// All link destinations in `text` (inline, reference and autolinks).
pub fn links(text: &str) -> Vec<Link> {
    let index = LineIndex::new(text);
    parser(text)
        .into_offset_iter()
        .filter_map(|(event, range)| match event {
            Event::Start(Tag::Link { dest_url, .. }) => Some(Link {
                line: index.line(range.start),
                dest: dest_url.to_string(),
            }),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rustdoc_languages() {
        for info in [
            "",
            "rust",
            "rust,ignore",
            "ignore",
            "should_panic",
            "compile_fail,E0308",
            "rust,editable",
            "ignore,text",
            "edition2021",
        ] {
            assert!(is_rust_info(info), "{info:?} is Rust");
        }
        for info in [
            "text",
            "console",
            "toml",
            "mermaid",
            "admonish note",
            "text,ignore",
            "sh",
        ] {
            assert!(!is_rust_info(info), "{info:?} is not Rust");
        }
    }

    #[test]
    fn blocks_with_lines() {
        let text =
            "# T\n\n```rust\nlet x = 1;\n```\n\n    indented\n\n- item\n\n  ~~~text\n  hi\n  ~~~\n";
        let blocks = code_blocks(text);
        assert_eq!(blocks.len(), 3);
        assert_eq!(
            (
                blocks[0].line,
                blocks[0].info.as_deref(),
                blocks[0].body.as_str(),
                blocks[0].body_line
            ),
            (3, Some("rust"), "let x = 1;\n", 4)
        );
        assert_eq!((blocks[1].line, blocks[1].info.as_deref()), (7, None));
        assert_eq!(
            blocks.iter().map(|b| b.end_line).collect::<Vec<_>>(),
            [5, 7, 13]
        );
        assert_eq!(
            (
                blocks[2].line,
                blocks[2].info.as_deref(),
                blocks[2].body.as_str()
            ),
            (11, Some("text"), "hi\n")
        );
    }

    #[test]
    fn line_index() {
        let index = LineIndex::new("a\nbc\n\nd");
        assert_eq!(
            [0, 1, 2, 4, 5, 6].map(|o| index.line(o)),
            [1, 1, 2, 2, 3, 4]
        );
    }
}
