//! `book-checker api-links`: the book's links into its API docs resolve.
//!
//! CI builds the API docs (`cargo doc --workspace --no-deps
//! --all-features`, into `target/doc`: with all features, so that
//! feature-gated items such as `fixtures::TestSchema` have pages too) and
//! copies them into the built book at `target/book/html/api/`, so a chapter
//! links an item as
//! `../api/composable_rust/struct.Store.html` (relative, like any link
//! between pages). mdbook-linkcheck checks links against the Markdown
//! sources and cannot see `api/` (book.toml tells it to skip links into
//! it), so this check reads the built HTML instead: every relative link
//! whose path starts with `api/` after its `../` steps must resolve to a
//! file under `api/` (a link with a `../` too many or too few misses it),
//! and its `#fragment`, if any, to an `id` in that file (rustdoc gives every
//! method, field and variant one: `#method.send`).

use std::collections::{HashMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};

use crate::Problem;
use crate::browser::book_pages;
use crate::files::{absolute_root, normalize, relative};

/// The result of [`check_api_links`].
#[derive(Debug, Clone, Default)]
pub struct ApiLinksReport {
    /// Broken links, at the chapter's source (and line, when the link is
    /// found there) or at the HTML page.
    pub problems: Vec<Problem>,
    /// Pages read.
    pub pages: usize,
    /// Links into `api/` found (and checked).
    pub links: usize,
}

impl ApiLinksReport {
    /// True when nothing is wrong.
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// True if `href` is a relative link into the API docs: its path, once its
/// `.` and `..` steps are resolved, starts with `api/` after any leading
/// `../` (`../api/x.html`, and `guides/../api/x.html` as mdBook writes the
/// same link in print.html). book.toml's linkcheck `exclude` skips these
/// links in the chapters' sources.
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

/// Checks every link into `api/` of the book built at `html` (relative to
/// `root` unless absolute).
pub fn check_api_links(root: &Path, html: &Path) -> ApiLinksReport {
    let root = absolute_root(root);
    let html = root.join(html);
    let api = html.join("api");
    let mut report = ApiLinksReport::default();
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
            if !is_api_link(&href) {
                continue;
            }
            report.links += 1;
            let (file, fragment) = match href.split_once('#') {
                Some((file, fragment)) => (file, Some(fragment)),
                None => (href.as_str(), None),
            };
            let file = file.split('?').next().unwrap_or(file);
            let target = normalize(&dir.join(file));
            let message = if !target.starts_with(&api) {
                Some(format!(
                    "link `{href}` resolves to {}, outside the API docs (api/ is at the book's root: from {page} it is `{}api/...`)",
                    relative(&root, &target).display(),
                    "../".repeat(page.matches('/').count())
                ))
            } else if !api.is_dir() {
                Some(format!(
                    "link `{href}`: the book has no API docs ({} is missing); build them with `cargo doc --workspace --no-deps --all-features` and copy target/doc there (ci/test and ci/serve-book do)",
                    relative(&root, &api).display()
                ))
            } else {
                let content = targets
                    .entry(target.clone())
                    .or_insert_with(|| fs::read_to_string(&target).ok());
                match (content, fragment) {
                    (None, _) => Some(format!(
                        "link `{href}`: no such file {} in the API docs (renamed or moved item? a re-export rustdoc does not inline? look in target/doc)",
                        relative(&root, &target).display()
                    )),
                    (Some(content), Some(fragment))
                        if !fragment.is_empty() && !has_id(content, fragment) =>
                    {
                        Some(format!(
                            "link `{href}`: {} has no `#{fragment}` (rustdoc ids look like `#method.name`, `#structfield.name`, `#variant.Name`)",
                            relative(&root, &target).display()
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

/// The `href` attribute values of `html`, with `&amp;` decoded.
fn hrefs(html: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = html;
    while let Some(at) = rest.find("href=") {
        rest = &rest[at + 5..];
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
        let report = check_api_links(&root, Path::new("target/book/html"));
        assert_eq!(report.links, 7);
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
        assert!(check_api_links(&root, Path::new("target/book/html")).is_ok());
        write(
            &html.join("next.html"),
            r#"<a href="api/composable_rust/index.html">API</a>"#,
        );
        let report = check_api_links(&root, Path::new("target/book/html"));
        assert_eq!(report.problems.len(), 1);
        assert!(
            report.problems[0]
                .message
                .contains("the book has no API docs")
        );
    }
}
