//! Rule: chapters are named by their titles, and listings carry their
//! chapter's number.
//!
//! mdBook numbers the chapters from their order in `SUMMARY.md`, so adding
//! one renumbers every chapter after it. Prose that says "chapter 4" is
//! silently wrong after that (the book once said "chapter 4" where the
//! sidebar showed 3), while a link with the chapter's title stays right, and
//! the link checker checks it. Listing directories are numbered too
//! (`listings/chNN-slug/listing-NN-MM`, and "Listing NN-MM" in captions), and
//! a reader looks for listing 15-2 in chapter 15. This rule reports:
//!
//! - "chapter N", "Chapter N" or "chapters N ..." in prose (outside code
//!   blocks and inline code, link texts included), naming the chapter's
//!   title and a link to write instead;
//! - a chapter that includes a file of `listings/chNN-slug/` when `NN` is not
//!   the sidebar number of any chapter including that directory, naming the
//!   number it should have.
//!
//! Sidebar numbers follow mdBook: the chapters before the first list item of
//! `SUMMARY.md` (and after the last) are unnumbered; each top-level list
//! item is the next number; part titles (`# ...`) do not count.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use pulldown_cmark::{Event, Options, Parser, Tag, TagEnd};

use super::Checker;
use crate::directives;
use crate::files::{normalize, relative};
use crate::markdown::LineIndex;
use crate::rules::listings::chapter_dir_number;

/// A numbered chapter of the sidebar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SidebarChapter {
    /// Its number in the sidebar (1, 2, ...).
    pub number: u32,
    /// Its title as `SUMMARY.md` writes it.
    pub title: String,
    /// Its Markdown file, absolute and normalised.
    pub path: PathBuf,
}

/// The numbered chapters of `SUMMARY.md` (whose text is `summary`, in the
/// directory `src`), in order.
pub(crate) fn sidebar_chapters(src: &Path, summary: &str) -> Vec<SidebarChapter> {
    let mut chapters = Vec::new();
    let mut number = 0;
    for line in summary.lines() {
        // Only top-level list items are numbered; nested items are N.M.
        let Some(item) = line
            .strip_prefix("- ")
            .or_else(|| line.strip_prefix("* "))
            .or_else(|| numbered_item(line))
        else {
            continue;
        };
        let Some((title, dest)) = link(item.trim()) else {
            continue;
        };
        number += 1;
        if dest.is_empty() {
            continue; // a draft chapter: numbered, but no file
        }
        chapters.push(SidebarChapter {
            number,
            title: title.to_owned(),
            path: normalize(&src.join(dest)),
        });
    }
    chapters
}

/// `rest` of a `1. rest` list item.
fn numbered_item(line: &str) -> Option<&str> {
    let digits = line.bytes().take_while(u8::is_ascii_digit).count();
    (digits > 0)
        .then(|| line[digits..].strip_prefix(". "))
        .flatten()
}

/// `(title, destination)` of `[title](destination)`.
fn link(item: &str) -> Option<(&str, &str)> {
    let rest = item.strip_prefix('[')?;
    let (title, rest) = rest.split_once("](")?;
    let dest = rest.split(')').next()?;
    let dest = dest.split(['#', '?']).next().unwrap_or("");
    Some((title, dest))
}

/// Every "chapter N" in the prose of `text`: `(line, words as written, N)`.
pub(crate) fn chapter_mentions(text: &str) -> Vec<(usize, String, u32)> {
    let index = LineIndex::new(text);
    let mut found = Vec::new();
    let mut in_code_block = 0usize;
    let options =
        Options::ENABLE_TABLES | Options::ENABLE_FOOTNOTES | Options::ENABLE_STRIKETHROUGH;
    for (event, range) in Parser::new_ext(text, options).into_offset_iter() {
        match event {
            Event::Start(Tag::CodeBlock(_)) => in_code_block += 1,
            Event::End(TagEnd::CodeBlock) => in_code_block = in_code_block.saturating_sub(1),
            Event::Text(prose) if in_code_block == 0 => {
                let line = index.line(range.start);
                for (words, number) in mentions_in(&prose) {
                    found.push((line, words, number));
                }
            }
            _ => {}
        }
    }
    found
}

/// "chapter N" / "Chapter N" / "chapters N" in one run of prose.
fn mentions_in(prose: &str) -> Vec<(String, u32)> {
    let mut found = Vec::new();
    for (at, _) in prose.match_indices("hapter") {
        let Some(start) = at.checked_sub(1) else {
            continue;
        };
        if !matches!(prose.as_bytes()[start], b'c' | b'C') {
            continue;
        }
        let before = prose[..start].chars().next_back();
        if before.is_some_and(char::is_alphanumeric) {
            continue;
        }
        let mut rest = &prose[at + "hapter".len()..];
        rest = rest.strip_prefix('s').unwrap_or(rest);
        let spaces = rest.len() - rest.trim_start().len();
        if spaces == 0 {
            continue;
        }
        let digits = rest[spaces..]
            .bytes()
            .take_while(u8::is_ascii_digit)
            .count();
        if digits == 0 {
            continue;
        }
        let after = rest[spaces + digits..].chars().next();
        if after.is_some_and(char::is_alphanumeric) {
            continue;
        }
        let end = prose.len() - rest.len() + spaces + digits;
        if let Ok(number) = rest[spaces..spaces + digits].parse() {
            found.push((prose[start..end].to_owned(), number));
        }
    }
    found
}

/// The path of `target` relative to the directory of `from` (both under
/// the same root), with `/` separators, as a Markdown link writes it.
fn link_path(from: &Path, target: &Path) -> String {
    let from_dir = from.parent().unwrap_or(from);
    let from_parts: Vec<_> = from_dir.components().collect();
    let target_parts: Vec<_> = target.components().collect();
    let common = from_parts
        .iter()
        .zip(&target_parts)
        .take_while(|(a, b)| a == b)
        .count();
    let mut parts: Vec<String> = vec!["..".to_owned(); from_parts.len() - common];
    parts.extend(
        target_parts[common..]
            .iter()
            .map(|c| c.as_os_str().to_string_lossy().into_owned()),
    );
    parts.join("/")
}

impl Checker {
    /// "chapter N" in prose, and listing directories numbered unlike the
    /// chapters that include them.
    pub(crate) fn check_cross_references(&mut self, chapters: &[PathBuf]) {
        let Ok(summary) = fs::read_to_string(self.src.join("SUMMARY.md")) else {
            return; // the summary rule reports it
        };
        let sidebar = sidebar_chapters(&self.src, &summary);
        let by_number: BTreeMap<u32, &SidebarChapter> =
            sidebar.iter().map(|c| (c.number, c)).collect();
        let number_of: BTreeMap<&Path, u32> = sidebar
            .iter()
            .map(|c| (c.path.as_path(), c.number))
            .collect();
        let last = sidebar.last().map_or(0, |c| c.number);
        let listings = normalize(&self.root.join("listings"));

        // Listing directory -> the numbered chapters including it, and where
        // each first does.
        let mut includers: BTreeMap<PathBuf, Vec<(PathBuf, usize, u32)>> = BTreeMap::new();
        let mut mentions = Vec::new();
        for chapter in chapters {
            if chapter.file_name().is_some_and(|name| name == "SUMMARY.md") {
                continue;
            }
            let Ok(text) = fs::read_to_string(chapter) else {
                continue; // the chapter rules report it
            };
            for (line, words, number) in chapter_mentions(&text) {
                mentions.push((chapter.clone(), line, words, number));
            }
            let Some(&number) = number_of.get(chapter.as_path()) else {
                continue; // unnumbered chapters may show any listing
            };
            let dir = chapter.parent().unwrap_or(&self.src).to_path_buf();
            let index = LineIndex::new(&text);
            let mut seen = BTreeSet::new();
            for directive in directives::find(&text) {
                let target = normalize(&dir.join(&directive.path));
                let Ok(rest) = target.strip_prefix(&listings) else {
                    continue;
                };
                let Some(first) = rest.components().next() else {
                    continue;
                };
                let listing_dir = listings.join(first.as_os_str());
                if seen.insert(listing_dir.clone()) {
                    includers.entry(listing_dir).or_default().push((
                        chapter.clone(),
                        index.line(directive.start),
                        number,
                    ));
                }
            }
        }

        for (chapter, line, words, number) in mentions {
            let hint = match by_number.get(&number) {
                Some(target) => format!(
                    "chapter {number} is \"{}\" in the sidebar today: write [{}]({}) instead",
                    target.title,
                    target.title,
                    link_path(&chapter, &target.path)
                ),
                None => format!(
                    "there is no chapter {number} in the sidebar (it numbers chapters 1 to {last}): link the chapter you mean by its title"
                ),
            };
            self.problem(
                &chapter,
                Some(line),
                format!(
                    "says \"{words}\": chapter numbers change whenever a chapter is added or moved, so refer to a chapter by a link with its title; {hint}"
                ),
            );
        }

        for (listing_dir, including) in includers {
            let name = listing_dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let Some(dir_number) = chapter_dir_number(&name) else {
                continue; // the listings rule reports the name
            };
            if including.iter().any(|&(_, _, number)| number == dir_number) {
                continue;
            }
            let (chapter, line, number) = &including[0];
            let slug = name.get(5..).unwrap_or("");
            let rel = relative(&self.root, &listing_dir);
            self.problem(
                chapter,
                Some(*line),
                format!(
                    "includes {}, numbered {dir_number:02}, but this chapter is number {number} in the sidebar (SUMMARY.md): rename the directory to listings/ch{number:02}-{slug} and its listings to listing-{number:02}-MM (crate names, includes, `listing_{number:02}_MM::` paths and \"Listing {number}-M\" captions too)",
                    rel.display()
                ),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sidebar_numbers_follow_mdbook() {
        let summary = "# Summary\n\n[Introduction](intro.md)\n\n# Part one\n\n- [One](a/one.md)\n    - [Nested](a/nested.md)\n- [Draft]()\n\n# Part two\n\n- [Three](b/three.md)\n\n---\n\n[Epilogue](end.md)\n";
        let chapters = sidebar_chapters(Path::new("/src"), summary);
        let numbered: Vec<(u32, &str)> = chapters
            .iter()
            .map(|c| (c.number, c.title.as_str()))
            .collect();
        assert_eq!(numbered, vec![(1, "One"), (3, "Three")]);
        assert_eq!(chapters[1].path, PathBuf::from("/src/b/three.md"));
    }

    #[test]
    fn mentions() {
        let found = |text: &str| -> Vec<(String, u32)> {
            chapter_mentions(text)
                .into_iter()
                .map(|(_, words, n)| (words, n))
                .collect()
        };
        assert_eq!(
            found("See chapter 4, and Chapter 12.\n\nchapters 6 and 7 too."),
            vec![
                ("chapter 4".into(), 4),
                ("Chapter 12".into(), 12),
                ("chapters 6".into(), 6)
            ]
        );
        assert_eq!(
            found("[chapter 8](failures.md)"),
            vec![("chapter 8".into(), 8)]
        );
        for fine in [
            "`chapter 4` in code",
            "```text\nchapter 4\n```\n",
            "this chapter covers 4 things",
            "subchapter 4",
            "chapter4",
            "<!-- chapter 4 -->\n",
        ] {
            assert_eq!(found(fine), vec![], "{fine:?}");
        }
    }

    #[test]
    fn link_paths() {
        assert_eq!(
            link_path(
                Path::new("/s/projections/rebuilds.md"),
                Path::new("/s/projections/failures.md")
            ),
            "failures.md"
        );
        assert_eq!(
            link_path(
                Path::new("/s/sagas/first-saga.md"),
                Path::new("/s/getting-started/installation.md")
            ),
            "../getting-started/installation.md"
        );
    }
}
