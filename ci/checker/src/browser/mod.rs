//! `book-checker browser`: the built book, tested as the web page it is.
//!
//! The hosted book is HTML that a browser finishes: mermaid turns diagram
//! sources into SVG in the page, mdbook-admonish's stylesheet makes an
//! admonition a box, mdBook's search runs on an index loaded by script. A
//! build that forgets an asset (or ships a diagram mermaid cannot parse, or
//! a script that throws) still passes `mdbook build` and the link checker.
//! [`check_browser`] opens every page of the built book (`target/book/html`,
//! except the API docs under `api/`) in headless Chromium, served over HTTP
//! on `127.0.0.1`, and checks that
//!
//! - every mermaid diagram (`pre.mermaid`) rendered to an SVG, which is not
//!   mermaid's syntax-error picture, and no ```` ```mermaid ```` fence was
//!   left unprocessed;
//! - every admonition (`.admonition`) is styled: its computed left border is
//!   wider than 0 and its title has a background, as mdbook-admonish's CSS
//!   makes them (an unstyled `div` has neither), and no ```` ```admonish ````
//!   fence was left unprocessed;
//! - the page logged no console error, uncaught exception or failed request;
//! - mdBook's search (opened as `index.html?search=TERM`) finds, for every
//!   part of `SUMMARY.md`, its term in [`SEARCH_TERMS`] with a result that
//!   links to a chapter of that part.
//!
//! Chromium is driven through the DevTools protocol over a pipe (see
//! [`cdp`]); several tabs of one browser check pages at once.

pub mod cdp;
pub mod server;

use std::collections::{BTreeSet, VecDeque};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

pub use cdp::{Browser, CHROMIUM_VAR, find_chromium};
pub use server::StaticServer;

use crate::Problem;
use crate::files::{absolute_root, relative};
use crate::markdown;

/// One search term per part of `SUMMARY.md` (by the part's title): the
/// search for the term must return a result linking to a chapter of that
/// part. A term is a word that part is about and the other parts mention
/// less, so that the part's chapters rank among the first results. A part
/// without a term here is reported, so a new part gets one.
pub const SEARCH_TERMS: &[(&str, &str)] = &[
    ("Getting started", "installation"),
    ("Event sourcing", "upcasting"),
    ("Projections", "runbook"),
    ("Sagas, the event bus and consistency", "compensation"),
    ("Performance", "hot aggregates"),
    ("Developer tools", "derive"),
    ("Cookbook", "recipes"),
    ("Guides", "flamegraph"),
    ("Running in Production", "bulkhead"),
    ("Building a Real Service", "storefront"),
    ("Appendices", "troubleshooting"),
];

const PROBE: &str = include_str!("probe.js");
const SEARCH: &str = include_str!("search.js");

/// What to check and how.
#[derive(Debug, Clone)]
pub struct BrowserOptions {
    /// The repository root (holds `book/src/SUMMARY.md`).
    pub root: PathBuf,
    /// The built HTML book; relative paths are below `root`
    /// (default `target/book/html`).
    pub html: PathBuf,
    /// The browser binary (default: [`find_chromium`]).
    pub chromium: Option<PathBuf>,
    /// Pages checked at once, each in a tab of the one browser.
    pub jobs: usize,
    /// How long a page's diagrams may take to render (and a search to
    /// answer).
    pub render_timeout: Duration,
    /// Search terms by part title (default [`SEARCH_TERMS`]).
    pub search_terms: Vec<(String, String)>,
    /// Print each page as it is checked.
    pub progress: bool,
    /// Only these pages (relative to `html`, e.g. `print.html`), and no
    /// searches; empty means every page and every part's search.
    pub only: Vec<String>,
}

impl BrowserOptions {
    /// Checks the book built under `root` with the defaults.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self {
            root: root.into(),
            html: PathBuf::from("target/book/html"),
            chromium: None,
            jobs: 3,
            render_timeout: Duration::from_secs(20),
            search_terms: SEARCH_TERMS
                .iter()
                .map(|(part, term)| ((*part).to_owned(), (*term).to_owned()))
                .collect(),
            progress: false,
            only: Vec::new(),
        }
    }
}

/// The result of [`check_browser`].
#[derive(Debug, Clone, Default)]
pub struct BrowserReport {
    /// Everything found wrong: the chapter's source file when the page has
    /// one (else the HTML file), and what is wrong.
    pub problems: Vec<Problem>,
    /// Pages opened.
    pub pages: usize,
    /// Mermaid diagrams found (rendered or not).
    pub diagrams: usize,
    /// Admonitions found (styled or not).
    pub admonitions: usize,
    /// Searches run (one per part).
    pub searches: usize,
    /// The browser's version, once it answered.
    pub browser: Option<String>,
}

impl BrowserReport {
    /// True when nothing is wrong.
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// A part of `SUMMARY.md`: a `# Title` after the book's title, and the
/// chapters linked below it (as the `.html` paths mdBook writes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    /// The part's title.
    pub title: String,
    /// 1-based line of its heading in `SUMMARY.md`.
    pub line: usize,
    /// Its chapters' pages, relative to the book's root (`cookbook/index.html`).
    pub pages: Vec<String>,
}

/// The parts of a `SUMMARY.md`. A first `# ` heading before any chapter is
/// the book's title (mdBook's convention), not a part; chapters before the
/// first part belong to none.
pub fn summary_parts(summary: &str) -> Vec<Part> {
    let mut headings = Vec::new();
    let mut in_fence = false;
    for (i, line) in summary.lines().enumerate() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("```") || trimmed.starts_with("~~~") {
            in_fence = !in_fence;
        }
        if !in_fence && let Some(title) = line.strip_prefix("# ") {
            headings.push((i + 1, title.trim().to_owned()));
        }
    }
    let links = markdown::links(summary);
    let first_link = links.first().map_or(usize::MAX, |link| link.line);
    if headings.first().is_some_and(|(line, _)| *line < first_link) {
        headings.remove(0);
    }
    let mut parts: Vec<Part> = headings
        .into_iter()
        .map(|(line, title)| Part {
            title,
            line,
            pages: Vec::new(),
        })
        .collect();
    for link in links {
        let dest = link.dest.split(['#', '?']).next().unwrap_or("");
        if dest.is_empty() || dest.contains("://") {
            continue;
        }
        if let Some(part) = parts.iter_mut().rev().find(|part| part.line < link.line) {
            let page = dest.trim_start_matches("./");
            let page = page.strip_suffix(".md").unwrap_or(page);
            part.pages.push(format!("{page}.html"));
        }
    }
    parts
}

/// The pages of the built book: every `.html` file under `html`, relative
/// to it, except the API docs (`api/`), sorted.
pub fn book_pages(html: &Path) -> Vec<String> {
    fn walk(dir: &Path, html: &Path, found: &mut Vec<String>) {
        for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            let rel = relative(html, &path);
            if path.is_dir() {
                if rel != Path::new("api") {
                    walk(&path, html, found);
                }
            } else if path.extension().is_some_and(|ext| ext == "html") {
                found.push(rel.to_string_lossy().replace('\\', "/"));
            }
        }
    }
    let mut found = Vec::new();
    walk(html, html, &mut found);
    found.sort();
    found
}

enum Task {
    Page(String),
    Search { part: Part, term: String },
}

/// Opens the built book in headless Chromium and checks every page (see
/// the module documentation).
pub fn check_browser(options: &BrowserOptions) -> BrowserReport {
    let root = absolute_root(&options.root);
    let html = root.join(&options.html);
    let summary_path = root.join("book/src/SUMMARY.md");
    let mut report = BrowserReport::default();
    let problem =
        |path: &Path, line, message: String| Problem::new(relative(&root, path), line, message);

    if !html.join("index.html").is_file() {
        report.problems.push(problem(
            &html,
            None,
            "no built book here (no index.html); run `mdbook build` first".to_owned(),
        ));
        return report;
    }
    let mut pages = book_pages(&html);
    if !options.only.is_empty() {
        for page in options.only.iter().filter(|page| !pages.contains(page)) {
            report.problems.push(problem(
                &html.join(page),
                None,
                "no such page in the built book".to_owned(),
            ));
        }
        pages.retain(|page| options.only.contains(page));
    }
    // Largest first (print.html, every chapter in one, takes longest), so
    // that no big page starts last while the other tabs sit idle.
    pages.sort_by_key(|page| {
        std::cmp::Reverse(fs::metadata(html.join(page)).map_or(0, |meta| meta.len()))
    });
    let mut tasks: VecDeque<Task> = pages.into_iter().map(Task::Page).collect();
    report.pages = tasks.len();

    let summary = fs::read_to_string(&summary_path).unwrap_or_default();
    let parts = summary_parts(&summary);
    let titles: BTreeSet<&str> = parts.iter().map(|part| part.title.as_str()).collect();
    for part in parts.iter().filter(|_| options.only.is_empty()) {
        match options.search_terms.iter().find(|(title, _)| *title == part.title) {
            Some((_, term)) => tasks.push_back(Task::Search {
                part: part.clone(),
                term: term.clone(),
            }),
            None => report.problems.push(problem(
                &summary_path,
                Some(part.line),
                format!(
                    "part `{}` has no search term; add a word it is about to SEARCH_TERMS in ci/checker/src/browser/mod.rs",
                    part.title
                ),
            )),
        }
    }
    for (title, _) in options
        .search_terms
        .iter()
        .filter(|_| options.only.is_empty())
    {
        if !titles.contains(title.as_str()) {
            report.problems.push(problem(
                &summary_path,
                None,
                format!(
                    "SEARCH_TERMS (ci/checker/src/browser/mod.rs) names part `{title}`, which SUMMARY.md does not have; rename or remove its entry"
                ),
            ));
        }
    }
    report.searches = tasks
        .iter()
        .filter(|task| matches!(task, Task::Search { .. }))
        .count();

    let Some(chromium) = options.chromium.clone().or_else(find_chromium) else {
        report.problems.push(problem(
            &html,
            None,
            format!(
                "no Chromium found (chromium, chromium-browser, google-chrome on PATH); run ci/install-packages, or set {CHROMIUM_VAR} to a Chromium or Chrome binary"
            ),
        ));
        return report;
    };
    let server = match StaticServer::start(&html) {
        Ok(server) => server,
        Err(e) => {
            report.problems.push(problem(
                &html,
                None,
                format!("cannot serve the book on 127.0.0.1: {e}"),
            ));
            return report;
        }
    };
    let browser = match Browser::launch(&chromium) {
        Ok(browser) => browser,
        Err(e) => {
            report.problems.push(problem(&chromium, None, e));
            return report;
        }
    };
    report.browser = browser.version().ok();

    let base = server.base_url();
    let queue = Mutex::new(tasks);
    let found = Mutex::new(Vec::new());
    let counts = Mutex::new((0usize, 0usize));
    thread::scope(|scope| {
        for _ in 0..options.jobs.max(1) {
            scope.spawn(|| {
                let next = || queue.lock().ok().and_then(|mut queue| queue.pop_front());
                while let Some(task) = next() {
                    let started = Instant::now();
                    let (name, problems) = match task {
                        Task::Page(page) => {
                            let source = source_of(&root, &html, &page);
                            let outcome = check_page(&browser, &base, &page, options);
                            let problems = match outcome {
                                Ok(checked) => {
                                    if let Ok(mut counts) = counts.lock() {
                                        counts.0 += checked.diagrams;
                                        counts.1 += checked.admonitions;
                                    }
                                    checked.problems
                                }
                                Err(e) => vec![PageProblem::new(None, e)],
                            };
                            let fences = mermaid_fence_lines(&source);
                            let problems: Vec<Problem> = problems
                                .into_iter()
                                .map(|found| {
                                    let line = found.diagram.and_then(|i| fences.get(i).copied());
                                    problem(&source, line, found.message)
                                })
                                .collect();
                            (page, problems)
                        }
                        Task::Search { part, term } => {
                            let problems = check_search(&browser, &base, &part, &term, options)
                                .err()
                                .map(|message| problem(&summary_path, Some(part.line), message))
                                .into_iter()
                                .collect();
                            (format!("search `{term}`"), problems)
                        }
                    };
                    if options.progress {
                        let status = if problems.is_empty() { "ok" } else { "FAILED" };
                        println!(
                            "  {status:<6} {name} ({:.1}s)",
                            started.elapsed().as_secs_f64()
                        );
                    }
                    if let Ok(mut found) = found.lock() {
                        found.extend(problems);
                    }
                }
            });
        }
    });
    drop(browser);
    drop(server);
    let (diagrams, admonitions) = counts.into_inner().unwrap_or_default();
    report.diagrams = diagrams;
    report.admonitions = admonitions;
    report
        .problems
        .extend(found.into_inner().unwrap_or_default());
    report.problems.sort();
    report
}

/// The file a problem on `page` is reported at: the chapter's Markdown
/// source when there is one, else the HTML file.
fn source_of(root: &Path, html: &Path, page: &str) -> PathBuf {
    let markdown = root
        .join("book/src")
        .join(page.strip_suffix(".html").unwrap_or(page))
        .with_extension("md");
    if markdown.is_file() {
        markdown
    } else {
        html.join(page)
    }
}

/// The lines of the ```` ```mermaid ```` fences of a chapter's Markdown
/// source, in order (none for an HTML file), so that a problem with the
/// page's n-th diagram names the line of its n-th fence.
fn mermaid_fence_lines(source: &Path) -> Vec<usize> {
    if source.extension().is_none_or(|ext| ext != "md") {
        return Vec::new();
    }
    let text = fs::read_to_string(source).unwrap_or_default();
    markdown::code_blocks(&text)
        .into_iter()
        .filter(|block| block.tokens().first() == Some(&"mermaid"))
        .map(|block| block.line)
        .collect()
}

/// What one page's check found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PageCheck {
    /// Mermaid diagrams on the page.
    pub diagrams: usize,
    /// Admonitions on the page.
    pub admonitions: usize,
    /// What is wrong with it.
    pub problems: Vec<PageProblem>,
}

/// One thing wrong with a page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageProblem {
    /// The 0-based index of the mermaid diagram it is about, if it is about
    /// one (to find its fence in the chapter's source).
    pub diagram: Option<usize>,
    /// What is wrong.
    pub message: String,
}

impl PageProblem {
    fn new(diagram: Option<usize>, message: String) -> Self {
        Self { diagram, message }
    }
}

fn check_page(
    browser: &Browser,
    base: &str,
    page: &str,
    options: &BrowserOptions,
) -> Result<PageCheck, String> {
    let mut tab = browser.new_tab()?;
    tab.navigate(&format!("{base}{page}"), Duration::from_secs(120))?;
    let timeout = options.render_timeout;
    let probe = tab.evaluate(
        &format!("({PROBE})({})", timeout.as_millis()),
        timeout + Duration::from_secs(10),
    )?;
    let errors = tab.console_errors(Duration::from_millis(100));
    Ok(judge_page(&probe, &errors, timeout))
}

/// Turns the page probe's findings (`probe.js`) and the console errors
/// into problems.
pub fn judge_page(probe: &Value, console_errors: &[String], timeout: Duration) -> PageCheck {
    let mut problems = Vec::new();
    let at = |item: &Value| {
        item["at"]
            .as_str()
            .filter(|at| !at.is_empty())
            .map_or_else(String::new, |at| format!(" (at {at})"))
    };
    let diagrams = probe["mermaid"].as_array().cloned().unwrap_or_default();
    for (i, diagram) in diagrams.iter().enumerate() {
        let n = i + 1;
        let where_ = at(diagram);
        if !diagram["svg"].as_bool().unwrap_or(false) {
            let why = if probe["mermaidLoaded"].as_bool().unwrap_or(false) {
                format!("within {}s", timeout.as_secs())
            } else {
                "because mermaid.js is not loaded (is it in book.toml's additional-js and in the build?)".to_owned()
            };
            problems.push(PageProblem::new(
                Some(i),
                format!(
                    "mermaid diagram {n}{where_} did not render to SVG {why}; its source starts `{}`",
                    diagram["source"].as_str().unwrap_or("")
                ),
            ));
        } else if diagram["error"].as_bool().unwrap_or(false) {
            let why = match diagram["parseError"].as_str().filter(|e| !e.is_empty()) {
                Some(error) => format!("mermaid says: {error}"),
                None => "paste its source into https://mermaid.live to see why".to_owned(),
            };
            problems.push(PageProblem::new(
                Some(i),
                format!(
                    "mermaid diagram {n}{where_} failed to render (mermaid drew its syntax-error picture instead); {why}"
                ),
            ));
        } else if diagram["empty"].as_bool().unwrap_or(false) {
            problems.push(PageProblem::new(
                Some(i),
                format!("mermaid diagram {n}{where_} rendered to an empty SVG"),
            ));
        }
    }
    for fence in probe["rawMermaid"].as_array().into_iter().flatten() {
        problems.push(PageProblem::new(
            None,
            format!(
                "a ```mermaid fence{} was left as code, not a diagram (is [preprocessor.mermaid] in book.toml?): `{}`",
                at(fence),
                fence["source"].as_str().unwrap_or("")
            ),
        ));
    }
    let admonitions = probe["admonitions"].as_array().cloned().unwrap_or_default();
    for admonition in &admonitions {
        if !admonition["styled"].as_bool().unwrap_or(false) {
            problems.push(PageProblem::new(
                None,
                format!(
                    "admonition{} ({}) is not styled (left border {}px, title background `{}`); is mdbook-admonish.css in book.toml's additional-css and in the build?",
                    at(admonition),
                    admonition["kind"].as_str().unwrap_or("?"),
                    admonition["border"].as_f64().unwrap_or(0.0),
                    admonition["titleBackground"].as_str().unwrap_or("")
                ),
            ));
        }
    }
    for fence in probe["rawAdmonish"].as_array().into_iter().flatten() {
        problems.push(PageProblem::new(
            None,
            format!(
                "an ```admonish fence{} was left as code, not an admonition (is [preprocessor.admonish] in book.toml?): `{}`",
                at(fence),
                fence["source"].as_str().unwrap_or("")
            ),
        ));
    }
    for error in console_errors
        .iter()
        .filter(|error| !is_automatic_favicon(error))
    {
        problems.push(PageProblem::new(
            None,
            format!("the page logged an error: {error}"),
        ));
    }
    PageCheck {
        diagrams: diagrams.len(),
        admonitions: admonitions.len(),
        problems,
    }
}

/// True for the failed request of `/favicon.ico`, which Chromium makes by
/// itself for a page that declares no icon (mdBook's `toc.html`, the
/// sidebar for readers without JavaScript, declares none); it is not the
/// page's error.
fn is_automatic_favicon(error: &str) -> bool {
    error.starts_with("network error: ") && error.ends_with("/favicon.ico)")
}

fn check_search(
    browser: &Browser,
    base: &str,
    part: &Part,
    term: &str,
    options: &BrowserOptions,
) -> Result<(), String> {
    let mut tab = browser.new_tab()?;
    let url = format!("{base}index.html?search={}", url_encode(term));
    tab.navigate(&url, Duration::from_secs(30))?;
    let timeout = options.render_timeout;
    let results = tab.evaluate(
        &format!("({SEARCH})({})", timeout.as_millis()),
        timeout + Duration::from_secs(10),
    )?;
    let errors = tab.console_errors(Duration::from_millis(100));
    let mut problems = Vec::new();
    if let Err(e) = judge_search(&results, base, part, term) {
        problems.push(e);
    }
    for error in errors.iter().filter(|error| !is_automatic_favicon(error)) {
        problems.push(format!("{url} logged an error: {error}"));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}

/// Checks the search probe's results (`search.js`): some result must link
/// to a page of `part`.
pub fn judge_search(results: &Value, base: &str, part: &Part, term: &str) -> Result<(), String> {
    let links: Vec<String> = results["links"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(|link| {
            let path = link.strip_prefix(base).unwrap_or(link);
            path.split(['#', '?']).next().unwrap_or("").to_owned()
        })
        .collect();
    if links.iter().any(|link| part.pages.contains(link)) {
        return Ok(());
    }
    let header = results["header"].as_str().unwrap_or("no results header");
    let mut shown: Vec<&str> = links.iter().map(String::as_str).collect();
    shown.dedup();
    shown.truncate(8);
    Err(format!(
        "searching the book for `{term}` (the term of part `{}`) found no chapter of that part: {header}{}{}; pick another term in SEARCH_TERMS (ci/checker/src/browser/mod.rs) or check that search works",
        part.title,
        if shown.is_empty() { "" } else { " -> " },
        shown.join(", ")
    ))
}

/// Percent-encodes `text` for a URL query value.
fn url_encode(text: &str) -> String {
    text.bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                char::from(byte).to_string()
            }
            _ => format!("%{byte:02X}"),
        })
        .collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use serde_json::json;

    /// A test's scratch directory, removed when dropped.
    pub(crate) struct Scratch(PathBuf);

    impl std::ops::Deref for Scratch {
        type Target = Path;

        fn deref(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    /// A fresh scratch directory for a test.
    pub(crate) fn scratch(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("book-checker-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    #[test]
    fn parts_of_a_summary_with_their_pages() {
        let summary = "# Summary\n\n[Introduction](introduction.md)\n\n# Getting started\n\n- [Install](getting-started/installation.md)\n  - [Nested](./getting-started/nested.md#x)\n\n# Guides\n\n- [CRUD](guides/from-crud.md)\n\n---\n\n- [Next](whats-next.md)\n";
        let parts = summary_parts(summary);
        assert_eq!(
            parts,
            vec![
                Part {
                    title: "Getting started".into(),
                    line: 5,
                    pages: vec![
                        "getting-started/installation.html".into(),
                        "getting-started/nested.html".into()
                    ],
                },
                Part {
                    title: "Guides".into(),
                    line: 10,
                    pages: vec!["guides/from-crud.html".into(), "whats-next.html".into()],
                },
            ]
        );
    }

    #[test]
    fn pages_exclude_the_api_docs() {
        let dir = scratch("pages");
        for file in [
            "index.html",
            "a/b.html",
            "a/c.css",
            "api/x/index.html",
            "apis.html",
        ] {
            let path = dir.join(file);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, "").unwrap();
        }
        assert_eq!(book_pages(&dir), ["a/b.html", "apis.html", "index.html"]);
    }

    #[test]
    fn a_page_with_an_unrendered_or_broken_diagram_or_an_unstyled_admonition_has_problems() {
        let probe = json!({
            "mermaidLoaded": true,
            "mermaid": [
                {"at": "#ok", "svg": true, "error": false, "empty": false},
                {"at": "#slow", "svg": false, "source": "graph TD"},
                {"at": "", "svg": true, "error": true, "empty": false, "parseError": "Parse error on line 3: | Expecting 'SOLID_ARROW'"},
                {"at": "#blank", "svg": true, "error": false, "empty": true},
            ],
            "admonitions": [
                {"at": "#admonition-note", "kind": "admonish-note", "border": 6.4, "titleBackground": "rgba(68, 138, 255, 0.1)", "styled": true},
                {"at": "#admonition-tip", "kind": "admonish-tip", "border": 0, "titleBackground": "rgba(0, 0, 0, 0)", "styled": false},
            ],
            "rawMermaid": [{"at": "#raw", "source": "sequenceDiagram"}],
            "rawAdmonish": [],
        });
        let checked = judge_page(
            &probe,
            &["console.error: boom".to_owned()],
            Duration::from_secs(5),
        );
        assert_eq!((checked.diagrams, checked.admonitions), (4, 2));
        let problems: Vec<String> = checked.problems.iter().map(|p| p.message.clone()).collect();
        assert_eq!(
            checked
                .problems
                .iter()
                .map(|p| p.diagram)
                .collect::<Vec<_>>(),
            [Some(1), Some(2), Some(3), None, None, None]
        );
        let problems = problems.join("\n");
        assert_eq!(checked.problems.len(), 6, "{problems}");
        assert!(problems.contains("mermaid diagram 2 (at #slow) did not render to SVG within 5s; its source starts `graph TD`"), "{problems}");
        assert!(
            problems.contains("mermaid diagram 3 failed to render (mermaid drew its syntax-error picture instead); mermaid says: Parse error on line 3: | Expecting 'SOLID_ARROW'"),
            "{problems}"
        );
        assert!(
            problems.contains("mermaid diagram 4 (at #blank) rendered to an empty SVG"),
            "{problems}"
        );
        assert!(
            problems.contains("a ```mermaid fence (at #raw) was left as code"),
            "{problems}"
        );
        assert!(
            problems.contains("admonition (at #admonition-tip) (admonish-tip) is not styled"),
            "{problems}"
        );
        assert!(
            problems.contains("the page logged an error: console.error: boom"),
            "{problems}"
        );

        let fine = json!({"mermaidLoaded": false, "mermaid": [], "admonitions": [], "rawMermaid": [], "rawAdmonish": []});
        assert!(
            judge_page(&fine, &[], Duration::from_secs(5))
                .problems
                .is_empty()
        );
    }

    #[test]
    fn a_search_passes_only_with_a_result_in_the_part() {
        let part = Part {
            title: "Guides".into(),
            line: 3,
            pages: vec!["guides/from-crud.html".into()],
        };
        let base = "http://127.0.0.1:1/";
        let hit = json!({"header": "2 search results for 'crud':", "links": [
            "http://127.0.0.1:1/cookbook/index.html#crud",
            "http://127.0.0.1:1/guides/from-crud.html#import",
        ]});
        assert_eq!(judge_search(&hit, base, &part, "crud"), Ok(()));
        let miss = json!({"header": "1 search results for 'crud':", "links": [
            "http://127.0.0.1:1/cookbook/index.html#crud",
        ]});
        let error = judge_search(&miss, base, &part, "crud").unwrap_err();
        assert!(
            error.contains(
                "found no chapter of that part: 1 search results for 'crud': -> cookbook/index.html"
            ),
            "{error}"
        );
        let none = json!({"header": null, "links": []});
        assert!(
            judge_search(&none, base, &part, "crud")
                .unwrap_err()
                .contains("no results header")
        );
    }

    #[test]
    fn url_encoding() {
        assert_eq!(url_encode("hot aggregates/é"), "hot%20aggregates%2F%C3%A9");
    }
}
