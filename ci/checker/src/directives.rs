//! mdBook's include directives: finding them in a text and resolving their
//! anchors.
//!
//! The matching rules mirror mdBook 0.4's link preprocessor (the regex
//! `\\\{\{\#.*\}\}|\{\{\s*\#([a-zA-Z0-9_]+)\s+([^}]+)\}\}` and
//! `parse_range_or_anchor`), so the checker complains about exactly the
//! directives mdBook would expand. It is the one parser of these directives
//! in the repository: `book/build.rs` uses it (as a build dependency) to
//! expand chapters for the doctests.

use std::path::PathBuf;

/// Which lines of the included file a directive selects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection {
    /// The whole file or a line range (`path`, `path:N`, `path:N:M`,
    /// `path::M`): zero-based `start`, exclusive `end`, `None` = unbounded.
    Lines {
        /// The first line, zero-based.
        start: Option<usize>,
        /// One past the last line.
        end: Option<usize>,
    },
    /// The lines between `ANCHOR: name` and `ANCHOR_END: name`.
    Anchor(String),
}

/// The kind of a directive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// `{{#include …}}`
    Include,
    /// `{{#rustdoc_include …}}`
    RustdocInclude,
    /// `{{#playground …}}` (or its old name `playpen`), with its attributes
    /// (`editable`, ...)
    Playground {
        /// The words after the path.
        attrs: Vec<String>,
    },
}

/// One include-like directive found in a text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directive {
    /// Byte offset of `{{` in the text.
    pub start: usize,
    /// Byte offset just after `}}`.
    pub end: usize,
    /// The kind of directive.
    pub kind: Kind,
    /// The path as written, relative to the file containing the directive.
    pub path: PathBuf,
    /// The lines it selects.
    pub selection: Selection,
}

/// Everything mdBook's link preprocessor acts on in a text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Token {
    /// `\{{#...}}`: shown literally, without the backslash.
    Escaped {
        /// Byte offset of the backslash.
        start: usize,
        /// Byte offset just after `}}`.
        end: usize,
    },
    /// `{{#title ...}}`: sets the page title, renders as nothing.
    Title {
        /// Byte offset of `{{`.
        start: usize,
        /// Byte offset just after `}}`.
        end: usize,
    },
    /// An include-like directive.
    Directive(Directive),
}

/// Finds the include-like directives in `s`, skipping escaped ones
/// (`\{{#include …}}`) and kinds that include nothing (`title`, unknown).
pub fn find(s: &str) -> Vec<Directive> {
    scan(s)
        .into_iter()
        .filter_map(|token| match token {
            Token::Directive(directive) => Some(directive),
            Token::Escaped { .. } | Token::Title { .. } => None,
        })
        .collect()
}

/// Every [`Token`] in `s`, in order (unknown directive kinds are left as
/// text, like mdBook does).
pub fn scan(s: &str) -> Vec<Token> {
    let bytes = s.as_bytes();
    let mut found = Vec::new();
    let mut p = 0;
    while p < bytes.len() {
        if s[p..].starts_with("\\{{#") {
            let line_end = s[p..].find('\n').map_or(s.len(), |i| p + i);
            if let Some(close) = s[p + 4..line_end].rfind("}}") {
                let end = p + 4 + close + 2;
                found.push(Token::Escaped { start: p, end });
                p = end;
                continue;
            }
        }
        if s[p..].starts_with("{{")
            && let Some((end, typ, rest)) = match_link(s, p)
        {
            if typ == "title" {
                found.push(Token::Title { start: p, end });
            } else if let Some(directive) = directive(p, end, typ, rest) {
                found.push(Token::Directive(directive));
            }
            p = end;
            continue;
        }
        p += s[p..].chars().next().map_or(1, char::len_utf8);
    }
    found
}

/// Matches `\{\{\s*\#([a-zA-Z0-9_]+)\s+([^}]+)\}\}` at byte `p`; returns the
/// end offset, the type and the rest.
fn match_link(s: &str, p: usize) -> Option<(usize, &str, &str)> {
    let bytes = s.as_bytes();
    let mut i = p + 2;
    while i < bytes.len() && bytes[i].is_ascii_whitespace() {
        i += 1;
    }
    if bytes.get(i) != Some(&b'#') {
        return None;
    }
    i += 1;
    let type_start = i;
    while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
        i += 1;
    }
    if i == type_start {
        return None;
    }
    let typ = &s[type_start..i];
    let ws_start = i;
    while i < bytes.len() && bytes[i].is_ascii_whitespace() {
        i += 1;
    }
    let ws_len = i - ws_start;
    if ws_len == 0 {
        return None;
    }
    let mut rest_start = i;
    while i < bytes.len() && bytes[i] != b'}' {
        i += 1;
    }
    if i == rest_start {
        if ws_len < 2 {
            return None;
        }
        rest_start -= 1;
    }
    s[i..]
        .starts_with("}}")
        .then(|| (i + 2, typ, &s[rest_start..i]))
}

/// Builds a directive from a match, like mdBook's `Link::from_capture`.
fn directive(start: usize, end: usize, typ: &str, rest: &str) -> Option<Directive> {
    let mut words = rest.split_whitespace();
    let arg = words.next()?;
    let kind = match typ {
        "include" => Kind::Include,
        "rustdoc_include" => Kind::RustdocInclude,
        "playground" | "playpen" => Kind::Playground {
            attrs: words.map(str::to_owned).collect(),
        },
        _ => return None,
    };
    let (path, selection) = if matches!(kind, Kind::Playground { .. }) {
        (
            arg.into(),
            Selection::Lines {
                start: None,
                end: None,
            },
        )
    } else {
        let mut parts = arg.splitn(2, ':');
        let path = parts.next().unwrap_or_default().into();
        (path, selection(parts.next()))
    };
    Some(Directive {
        start,
        end,
        kind,
        path,
        selection,
    })
}

/// mdBook's `parse_range_or_anchor`: `N`, `N:M`, `N:`, `:M`, or an anchor
/// name (line numbers as written are one-based and inclusive).
fn selection(spec: Option<&str>) -> Selection {
    let mut parts = spec.unwrap_or("").splitn(3, ':').fuse();
    let next = parts.next();
    let start = match next {
        Some(value) if value.parse::<usize>().is_ok() => {
            value.parse::<usize>().ok().map(|n| n.saturating_sub(1))
        }
        Some("") | None => None,
        Some(anchor) => return Selection::Anchor(anchor.to_owned()),
    };
    let end = parts.next().map(str::parse::<usize>);
    let (start, end) = match (start, end) {
        (Some(start), Some(Ok(end))) => (Some(start), Some(end)),
        (Some(start), Some(Err(_))) => (Some(start), None),
        (Some(start), None) => (Some(start), Some(start + 1)),
        (None, Some(Ok(end))) => (None, Some(end)),
        (None, None | Some(Err(_))) => (None, None),
    };
    Selection::Lines { start, end }
}

/// The anchor name that `marker` (`ANCHOR:` or `ANCHOR_END:`) introduces on
/// `line`, like mdBook's `ANCHOR:\s*([\w_-]+)`.
pub fn anchor_name<'a>(line: &'a str, marker: &str) -> Option<&'a str> {
    let mut from = 0;
    while let Some(pos) = line[from..].find(marker) {
        let after = line[from + pos + marker.len()..].trim_start();
        let len = after
            .char_indices()
            .find(|&(_, c)| !(c.is_alphanumeric() || c == '_' || c == '-'))
            .map_or(after.len(), |(i, _)| i);
        if len > 0 {
            return Some(&after[..len]);
        }
        from += pos + marker.len();
    }
    None
}

/// What a file says about an anchor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnchorState {
    /// `ANCHOR: name` and a later `ANCHOR_END: name` exist.
    Complete,
    /// `ANCHOR: name` exists but no `ANCHOR_END: name` follows it.
    Unterminated,
    /// There is no `ANCHOR: name`.
    Missing,
}

/// Looks for `ANCHOR: name` … `ANCHOR_END: name` in `content`.
pub fn anchor_state(content: &str, name: &str) -> AnchorState {
    let mut started = false;
    for line in content.lines() {
        if started {
            if anchor_name(line, "ANCHOR_END:") == Some(name) {
                return AnchorState::Complete;
            }
        } else if anchor_name(line, "ANCHOR:") == Some(name) {
            started = true;
        }
    }
    if started {
        AnchorState::Unterminated
    } else {
        AnchorState::Missing
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_all_forms() {
        let text = "a {{#include x.rs}} b {{#rustdoc_include ../y.rs:main}}\n\
                    {{ #include z.rs:3:5 }} {{#title T}} {{#playground p.rs editable}}\n\
                    \\{{#include escaped.rs}} and, like mdBook, up to the last braces: {{#include no.rs}}";
        let found = find(text);
        let summary: Vec<_> = found
            .iter()
            .map(|d| {
                (
                    d.kind.clone(),
                    d.path.display().to_string(),
                    d.selection.clone(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            vec![
                (Kind::Include, "x.rs".into(), ALL),
                (
                    Kind::RustdocInclude,
                    "../y.rs".into(),
                    Selection::Anchor("main".into())
                ),
                (
                    Kind::Include,
                    "z.rs".into(),
                    Selection::Lines {
                        start: Some(2),
                        end: Some(5)
                    }
                ),
                (
                    Kind::Playground {
                        attrs: vec!["editable".into()]
                    },
                    "p.rs".into(),
                    ALL
                ),
            ]
        );
        assert_eq!(&text[found[0].start..found[0].end], "{{#include x.rs}}");
    }

    const ALL: Selection = Selection::Lines {
        start: None,
        end: None,
    };

    #[test]
    fn ranges_follow_mdbook() {
        let lines = |start, end| Selection::Lines { start, end };
        for (spec, expected) in [
            ("x.rs:2", lines(Some(1), Some(2))),
            ("x.rs:2:4", lines(Some(1), Some(4))),
            ("x.rs::4", lines(None, Some(4))),
            ("x.rs:2:", lines(Some(1), None)),
            ("x.rs", ALL),
        ] {
            let d = &find(&format!("{{{{#include {spec}}}}}"))[0];
            assert_eq!(d.selection, expected, "{spec}");
        }
    }

    #[test]
    fn scan_reports_escapes_and_titles() {
        let text = "\\{{#include a.rs}}\n{{#title T}} {{#include b.rs}} {{#unknown c}}";
        let tokens = scan(text);
        assert!(matches!(tokens[0], Token::Escaped { start: 0, .. }));
        assert!(matches!(tokens[1], Token::Title { .. }));
        assert!(
            matches!(&tokens[2], Token::Directive(d) if d.path == std::path::Path::new("b.rs"))
        );
        assert_eq!(tokens.len(), 3);
    }

    #[test]
    fn anchors() {
        let content = "// ANCHOR: a\nx\n// ANCHOR_END: a\n// ANCHOR: b\n";
        assert_eq!(anchor_state(content, "a"), AnchorState::Complete);
        assert_eq!(anchor_state(content, "b"), AnchorState::Unterminated);
        assert_eq!(anchor_state(content, "c"), AnchorState::Missing);
        assert_eq!(
            anchor_name("    // ANCHOR:   my-anchor_1 tail", "ANCHOR:"),
            Some("my-anchor_1")
        );
        assert_eq!(anchor_name("// ANCHOR_END: a", "ANCHOR:"), None);
    }
}
