//! `book-checker links`: every link of the built book resolves.
//!
//! The check reads the built HTML (`target/book/html`), not the Markdown
//! sources: what a reader clicks is what is checked, after mdBook has
//! rewritten `chapter.md#x` into `chapter.html#x`. For every page, every
//! relative `href` must name a file inside the built book (a link with a
//! `../` too many leaves it), and its `#fragment`, if any, an `id` in that
//! file (mdBook gives every heading one; a link to `#x` on the same page is
//! checked against the page itself). Links with a scheme (`https:`,
//! `mailto:`) are not followed: the build machines are offline.
//!
//! Links into the API docs get their own advice. CI builds them
//! (`cargo doc --workspace --no-deps --all-features`, into `target/doc`:
//! with all features, so that feature-gated items such as
//! `fixtures::TestSchema` have pages too) and copies them into the built
//! book at `target/book/html/api/`, so a chapter links an item as
//! `../api/composable_rust/struct.Store.html` (relative, like any link
//! between pages); rustdoc gives every method, field and variant an id
//! (`#method.send`).
//!
//! This replaces mdbook-linkcheck (one tool less to build in CI, and it
//! could not see `api/`, which is copied in after `mdbook build`).

use std::collections::{HashMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};

use crate::Problem;
use crate::browser::book_pages;
use crate::files::{absolute_root, normalize, relative};

/// The result of [`check_links`].
#[derive(Debug, Clone, Default)]
pub struct LinksReport {
    /// Broken links, at the chapter's source (and line, when the link is
    /// found there) or at the HTML page.
    pub problems: Vec<Problem>,
    /// Pages read.
    pub pages: usize,
    /// Relative links found (and checked), those into `api/` included.
    pub links: usize,
    /// Of [`links`](Self::links), the links into `api/`.
    pub api_links: usize,
}

impl LinksReport {
    /// True when nothing is wrong.
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// True if `href` is a relative link into the API docs: its path, once its
/// `.` and `..` steps are resolved, starts with `api/` after any leading
/// `../` (`../api/x.html`, and `guides/../api/x.html` as mdBook writes the
/// same link in print.html).
pub fn is_api_link(href: &str) -> bool {
    if href.contains(':') || href.starts_with('/') || href.starts_with('#') {
        return false;
    }
    let path = href.split(['#', '?']).next().unwrap_or("");
    let mut segments: Vec<&str> = Vec::new();
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." if segments.last().is_some_and(|last| *last != "..") => {
                segments.pop();
            }
            other => segments.push(other),
        }
    }
    let mut rest = segments.iter().skip_while(|segment| **segment == "..");
    rest.next() == Some(&"api") && rest.next().is_some()
}

/// Checks every relative link of the book built at `html` (relative to
/// `root` unless absolute).
pub fn check_links(root: &Path, html: &Path) -> LinksReport {
    let root = absolute_root(root);
    let html = root.join(html);
    let api = html.join("api");
    let mut report = LinksReport::default();
    let mut targets: HashMap<PathBuf, Option<String>> = HashMap::new();
    if !html.join("index.html").is_file() {
        report.problems.push(Problem::new(
            relative(&root, &html),
            None,
            "no built book here (no index.html); run `mdbook build` first",
        ));
        return report;
    }
    let mut pages = book_pages(&html);
    report.pages = pages.len();
    // print.html repeats every chapter's links: check it last and report
    // only the broken links no chapter has already reported.
    pages.sort_by_key(|page| page == "print.html");
    let mut reported = HashSet::new();
    for page in &pages {
        let path = html.join(page);
        let Ok(text) = fs::read_to_string(&path) else {
            continue;
        };
        let dir = path.parent().unwrap_or(&html).to_path_buf();
        for href in hrefs(&text) {
            // A scheme (`https:`, `mailto:`) is not followed (offline), and a
            // root-absolute path depends on where the book is hosted (mdBook
            // writes one, from `site-url`, on 404.html).
            if href.contains(':') || href.starts_with('/') {
                continue;
            }
            report.links += 1;
            let (file, fragment) = match href.split_once('#') {
                Some((file, fragment)) => (file, Some(fragment)),
                None => (href.as_str(), None),
            };
            let file = file.split('?').next().unwrap_or(file);
            let target = if file.is_empty() {
                path.clone()
            } else {
                normalize(&dir.join(file))
            };
            let message = if is_api_link(&href) {
                report.api_links += 1;
                api_problem(&root, &api, page, &href, &target, fragment, &mut targets)
            } else if !target.starts_with(&html) {
                Some(format!(
                    "link `{href}` resolves to {}, outside the built book (a `../` too many? from {page} the book's root is `{}`)",
                    relative(&root, &target).display(),
                    if page.contains('/') {
                        "../".repeat(page.matches('/').count())
                    } else {
                        "./".to_owned()
                    }
                ))
            } else {
                let file_target = if target.is_dir() {
                    target.join("index.html")
                } else {
                    target.clone()
                };
                let content = targets
                    .entry(file_target.clone())
                    .or_insert_with(|| fs::read_to_string(&file_target).ok());
                match (content, fragment) {
                    (None, _) => Some(format!(
                        "link `{href}`: no such file {} in the built book (a chapter renamed or moved? link the chapter's .md file, relative to this chapter)",
                        relative(&root, &file_target).display()
                    )),
                    (Some(content), Some(fragment))
                        if !fragment.is_empty() && !has_id(content, fragment) =>
                    {
                        Some(format!(
                            "link `{href}`: {} has no `#{fragment}` (mdBook makes a heading's id from its text: lower case, spaces to `-`, punctuation dropped)",
                            relative(&root, &file_target).display()
                        ))
                    }
                    _ => None,
                }
            };
            if let Some(message) = message {
                let key = (target.clone(), fragment.map(str::to_owned));
                if !reported.insert(key) && page == "print.html" {
                    continue;
                }
                let (source, line) = locate(&root, &html, page, &href);
                report.problems.push(Problem::new(source, line, message));
            }
        }
    }
    report.problems.sort();
    report.problems.dedup();
    report
}

/// The problem with a link into the API docs, if any.
fn api_problem(
    root: &Path,
    api: &Path,
    page: &str,
    href: &str,
    target: &Path,
    fragment: Option<&str>,
    targets: &mut HashMap<PathBuf, Option<String>>,
) -> Option<String> {
    if !target.starts_with(api) {
        return Some(format!(
            "link `{href}` resolves to {}, outside the API docs (api/ is at the book's root: from {page} it is `{}api/...`)",
            relative(root, target).display(),
            "../".repeat(page.matches('/').count())
        ));
    }
    if !api.is_dir() {
        return Some(format!(
            "link `{href}`: the book has no API docs ({} is missing); build them with `cargo doc --workspace --no-deps --all-features` and copy target/doc there (ci/test and ci/serve-book do)",
            relative(root, api).display()
        ));
    }
    let content = targets
        .entry(target.to_path_buf())
        .or_insert_with(|| fs::read_to_string(target).ok());
    match (content, fragment) {
        (None, _) => Some(format!(
            "link `{href}`: no such file {} in the API docs (renamed or moved item? a re-export rustdoc does not inline? look in target/doc)",
            relative(root, target).display()
        )),
        (Some(content), Some(fragment)) if !fragment.is_empty() && !has_id(content, fragment) => {
            Some(format!(
                "link `{href}`: {} has no `#{fragment}` (rustdoc ids look like `#method.name`, `#structfield.name`, `#variant.Name`)",
                relative(root, target).display()
            ))
        }
        _ => None,
    }
}

/// The `href` attribute values of the `<a>` elements of `html`, with
/// `&amp;` decoded. `<link>` elements are mdBook's theme (stylesheets,
/// icons), not links a reader follows.
fn hrefs(html: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = html;
    while let Some(at) = rest.find("href=") {
        let tag = rest[..at].rfind('<').map_or("", |start| &rest[start..at]);
        let is_anchor = tag.starts_with("<a ") || tag.starts_with("<a\n");
        rest = &rest[at + 5..];
        if !is_anchor {
            continue;
        }
        let Some(quote) = rest.chars().next().filter(|c| *c == '"' || *c == '\'') else {
            continue;
        };
        let value = &rest[1..];
        if let Some(end) = value.find(quote) {
            found.push(value[..end].replace("&amp;", "&"));
            rest = &value[end..];
        }
    }
    found
}

fn has_id(html: &str, id: &str) -> bool {
    html.contains(&format!("id=\"{id}\"")) || html.contains(&format!("name=\"{id}\""))
}

/// Where to report a broken link on `page`: the chapter's source and the
/// line that has the link, when there is one.
fn locate(root: &Path, html: &Path, page: &str, href: &str) -> (PathBuf, Option<usize>) {
    let source = root
        .join("book/src")
        .join(page.strip_suffix(".html").unwrap_or(page))
        .with_extension("md");
    match fs::read_to_string(&source) {
        Ok(text) => {
            let line = text
                .lines()
                .position(|line| line.contains(href))
                .map(|i| i + 1);
            (relative(root, &source), line)
        }
        Err(_) => (relative(root, &html.join(page)), None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(path: &Path, text: &str) {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }

    #[test]
    fn api_links_are_relative_links_whose_path_starts_with_api() {
        for href in [
            "api/composable_rust/index.html",
            "../api/composable_rust/struct.Store.html#method.send",
            "./../../api/x.html",
            "guides/../api/composable_rust/index.html",
            "../api/composable_rust/",
        ] {
            assert!(is_api_link(href), "{href}");
        }
        for href in [
            "apis.html",
            "cookbook/api/x.html",
            "/api/x.html",
            "https://docs.rs/api/x",
            "#api",
            "../guides/api-guide.html",
            "../api",
            "api/../guides/x.html",
            "mailto:api/x",
        ] {
            assert!(!is_api_link(href), "{href}");
        }
    }

    #[test]
    fn finds_missing_files_missing_fragments_and_wrong_depths() {
        let root = crate::browser::tests::scratch("api-links");
        let html = root.join("target/book/html");
        write(
            &html.join("api/composable_rust/struct.Store.html"),
            r#"<section id="method.send"></section>"#,
        );
        write(&html.join("index.html"), "");
        write(&html.join("guides/api-guide.html"), "");
        write(
            &root.join("book/src/cookbook/x.md"),
            "# X\n\nSee [`Store`](../api/composable_rust/struct.Store.html#method.nope).\n",
        );
        write(
            &html.join("cookbook/x.html"),
            concat!(
                r#"<a href="../api/composable_rust/struct.Store.html">ok</a>"#,
                r#"<a href="../api/composable_rust/struct.Store.html#method.send">ok</a>"#,
                r#"<a href="../api/composable_rust/struct.Store.html#method.nope">bad id</a>"#,
                r#"<a href="../api/composable_rust/struct.Gone.html">missing</a>"#,
                r#"<a href="api/composable_rust/struct.Store.html">too shallow</a>"#,
                r#"<a href="../guides/api-guide.html">not api</a>"#,
            ),
        );
        // print.html repeats the chapters' links, rewritten from its place.
        write(
            &html.join("print.html"),
            concat!(
                r#"<a href="cookbook/../api/composable_rust/struct.Gone.html">again</a>"#,
                r#"<a href="cookbook/../api/composable_rust/struct.Other.html">new</a>"#,
            ),
        );
        let report = check_links(&root, Path::new("target/book/html"));
        assert_eq!(report.links, 8);
        assert_eq!(report.api_links, 7);
        let problems: Vec<String> = report.problems.iter().map(ToString::to_string).collect();
        assert_eq!(problems.len(), 4, "{problems:#?}");
        assert!(problems.iter().any(|p| p.starts_with("target/book/html/print.html: link `cookbook/../api/composable_rust/struct.Other.html`: no such file")), "{problems:#?}");
        assert!(problems.iter().any(|p| p.starts_with("book/src/cookbook/x.md:3: link `../api/composable_rust/struct.Store.html#method.nope`: target/book/html/api/composable_rust/struct.Store.html has no `#method.nope`")), "{problems:#?}");
        assert!(problems.iter().any(|p| p.contains("link `../api/composable_rust/struct.Gone.html`: no such file target/book/html/api/composable_rust/struct.Gone.html")), "{problems:#?}");
        assert!(problems.iter().any(|p| p.contains("link `api/composable_rust/struct.Store.html` resolves to target/book/html/cookbook/api/composable_rust/struct.Store.html, outside the API docs (api/ is at the book's root: from cookbook/x.html it is `../api/...`)")), "{problems:#?}");
    }

    #[test]
    fn a_book_without_api_docs_fails_only_if_it_links_to_them() {
        let root = crate::browser::tests::scratch("api-links-none");
        let html = root.join("target/book/html");
        write(&html.join("index.html"), r#"<a href="intro.html">x</a>"#);
        write(&html.join("intro.html"), "");
        assert!(check_links(&root, Path::new("target/book/html")).is_ok());
        write(
            &html.join("next.html"),
            r#"<a href="api/composable_rust/index.html">API</a>"#,
        );
        let report = check_links(&root, Path::new("target/book/html"));
        assert_eq!(report.problems.len(), 1);
        assert!(
            report.problems[0]
                .message
                .contains("the book has no API docs")
        );
    }

    #[test]
    fn finds_broken_links_between_pages_and_fragments() {
        let root = crate::browser::tests::scratch("links-pages");
        let html = root.join("target/book/html");
        write(
            &html.join("index.html"),
            r##"<h2 id="top">Top</h2><a href="#top">ok</a><a href="#nowhere">bad</a>"##,
        );
        write(
            &html.join("sagas/event-bus.html"),
            r#"<h2 id="kafka-and-redpanda">K</h2>"#,
        );
        write(
            &html.join("guides/x.html"),
            concat!(
                r#"<a href="../sagas/event-bus.html#kafka-and-redpanda">ok</a>"#,
                r#"<a href="../sagas/event-bus.html#kafka">bad id</a>"#,
                r#"<a href="../sagas/gone.html">missing</a>"#,
                r#"<a href="../../README.md">outside</a>"#,
                r#"<a href="https://example.com/x.html">web</a>"#,
                r#"<a href="../sagas/">dir</a>"#,
            ),
        );
        write(&html.join("sagas/index.html"), "");
        let report = check_links(&root, Path::new("target/book/html"));
        let problems: Vec<String> = report.problems.iter().map(ToString::to_string).collect();
        assert_eq!(report.links, 7, "{problems:#?}");
        assert_eq!(report.api_links, 0);
        assert_eq!(problems.len(), 4, "{problems:#?}");
        assert!(
            problems
                .iter()
                .any(|p| p
                    .contains("link `#nowhere`: target/book/html/index.html has no `#nowhere`")),
            "{problems:#?}"
        );
        assert!(problems.iter().any(|p| p.contains("link `../sagas/event-bus.html#kafka`: target/book/html/sagas/event-bus.html has no `#kafka`")), "{problems:#?}");
        assert!(
            problems.iter().any(|p| p.contains(
                "link `../sagas/gone.html`: no such file target/book/html/sagas/gone.html"
            )),
            "{problems:#?}"
        );
        assert!(
            problems.iter().any(|p| p.contains(
                "link `../../README.md` resolves to target/book/README.md, outside the built book"
            )),
            "{problems:#?}"
        );
    }
}
