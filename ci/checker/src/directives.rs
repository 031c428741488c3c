//! mdBook's include directives: finding them in a text and resolving their
//! anchors.
//!
//! The matching rules mirror mdBook 0.4's link preprocessor (the regex
//! `\\\{\{\#.*\}\}|\{\{\s*\#([a-zA-Z0-9_]+)\s+([^}]+)\}\}` and
//! `parse_range_or_anchor`), like `book/build.rs` does, so the checker
//! complains about exactly the directives mdBook would expand.

use std::path::PathBuf;

/// Which lines of the included file a directive selects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection {
    /// The whole file or a line range (`path`, `path:N`, `path:N:M`, `path::M`).
    Lines,
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
    /// `{{#playground …}}` (or its old name `playpen`)
    Playground,
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

/// Finds the include-like directives in `s`, skipping escaped ones
/// (`\{{#include …}}`) and kinds that include nothing (`title`, unknown).
pub fn find(s: &str) -> Vec<Directive> {
    let bytes = s.as_bytes();
    let mut found = Vec::new();
    let mut p = 0;
    while p < bytes.len() {
        if s[p..].starts_with("\\{{#") {
            let line_end = s[p..].find('\n').map_or(s.len(), |i| p + i);
            if let Some(close) = s[p + 4..line_end].rfind("}}") {
                p += 4 + close + 2;
                continue;
            }
        }
        if s[p..].starts_with("{{")
            && let Some((end, typ, rest)) = match_link(s, p)
        {
            if let Some(directive) = directive(p, end, typ, rest) {
                found.push(directive);
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
    let kind = match typ {
        "include" => Kind::Include,
        "rustdoc_include" => Kind::RustdocInclude,
        "playground" | "playpen" => Kind::Playground,
        _ => return None,
    };
    let arg = rest.split_whitespace().next()?;
    let (path, selection) = if kind == Kind::Playground {
        (arg.into(), Selection::Lines)
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

/// mdBook's `parse_range_or_anchor`, reduced to "lines" or "anchor".
fn selection(spec: Option<&str>) -> Selection {
    let first = spec.unwrap_or("").split(':').next().unwrap_or("");
    if first.is_empty() || first.parse::<usize>().is_ok() {
        Selection::Lines
    } else {
        Selection::Anchor(first.to_owned())
    }
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
                (Kind::Include, "x.rs".into(), Selection::Lines),
                (
                    Kind::RustdocInclude,
                    "../y.rs".into(),
                    Selection::Anchor("main".into())
                ),
                (Kind::Include, "z.rs".into(), Selection::Lines),
                (Kind::Playground, "p.rs".into(), Selection::Lines),
            ]
        );
        assert_eq!(&text[found[0].start..found[0].end], "{{#include x.rs}}");
    }

    #[test]
    fn ranges_are_not_anchors() {
        for spec in ["x.rs:2", "x.rs:2:4", "x.rs::4", "x.rs:2:"] {
            let d = &find(&format!("{{{{#include {spec}}}}}"))[0];
            assert_eq!(d.selection, Selection::Lines, "{spec}");
        }
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
