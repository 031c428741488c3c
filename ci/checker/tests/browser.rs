//! Integration tests of `book-checker browser`: small fixture books, served
//! and opened in headless Chromium with the book's real mermaid.js and
//! mdbook-admonish.css, prove that a clean page passes and that each defect
//! the check exists for (an unrendered diagram, a diagram mermaid cannot
//! parse, an unstyled admonition, a console error, a failed request, a
//! search that misses its part) fails it.
//!
//! Without Chromium these tests say so and pass, unless
//! `BOOK_CHECKER_REQUIRE_BROWSER` is set (ci/test sets it, after
//! ci/install-packages), so that CI can never skip them silently.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use book_checker::browser::find_chromium;
use book_checker::{BrowserOptions, BrowserReport, check_browser};

static NEXT: AtomicUsize = AtomicUsize::new(0);

/// A throw-away book under the system temp dir, removed on drop.
struct Fixture {
    root: PathBuf,
}

impl Fixture {
    fn new() -> Self {
        let root = std::env::temp_dir().join(format!(
            "book-checker-browser-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = fs::remove_dir_all(&root);
        let assets = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../book/assets");
        let html = root.join("target/book/html");
        fs::create_dir_all(&html).unwrap();
        for asset in ["mermaid.min.js", "mdbook-admonish.css"] {
            fs::copy(assets.join(asset), html.join(asset)).unwrap();
        }
        fs::write(html.join("search.js"), FAKE_SEARCH).unwrap();
        let fixture = Self { root };
        fixture.write(
            "book/src/SUMMARY.md",
            "# Summary\n\n[Intro](index.md)\n\n# Part A\n\n- [A](a.md)\n\n# Part B\n\n- [B](b.md)\n",
        );
        fixture
    }

    fn write(&self, path: &str, text: &str) {
        let path = self.root.join(path);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }

    /// A book page: `head` goes in <head>, `body` in <main>.
    fn page(&self, name: &str, head: &str, body: &str) {
        self.write(
            &format!("target/book/html/{name}"),
            &format!(
                "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{name}</title>\
                 <link rel=\"icon\" href=\"data:,\">{head}</head>\n<body><main>\n{body}\n\
                 <div id=\"searchresults-header\"></div><ul id=\"searchresults\"></ul>\n\
                 <script src=\"search.js\"></script>\n</main></body></html>\n"
            ),
        );
    }

    fn check(&self, terms: &[(&str, &str)]) -> Option<BrowserReport> {
        let chromium = chromium()?;
        let mut options = BrowserOptions::new(&self.root);
        options.chromium = Some(chromium);
        options.render_timeout = Duration::from_secs(15);
        options.search_terms = terms
            .iter()
            .map(|(part, term)| ((*part).to_owned(), (*term).to_owned()))
            .collect();
        Some(check_browser(&options))
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.root);
    }
}

fn chromium() -> Option<PathBuf> {
    let found = find_chromium();
    if found.is_none() {
        assert!(
            std::env::var_os("BOOK_CHECKER_REQUIRE_BROWSER").is_none(),
            "BOOK_CHECKER_REQUIRE_BROWSER is set but no Chromium was found; run ci/install-packages"
        );
        eprintln!("skipped: no Chromium on PATH (run ci/install-packages to run this test)");
    }
    found
}

/// mdBook's search, faked: `?search=TERM` fills the results header and
/// links from a fixed table, as mdBook's searcher does from its index.
const FAKE_SEARCH: &str = r#"
const term = new URLSearchParams(location.search).get('search');
if (term) {
    setTimeout(() => {
        const hits = { alpha: ['a.html#alpha'], bravo: ['b.html#bravo'], beta: ['a.html#beta'] }[term] || [];
        document.getElementById('searchresults-header').textContent =
            hits.length + ' search results for \'' + term + '\':';
        for (const hit of hits) {
            const item = document.createElement('li');
            const link = document.createElement('a');
            link.href = hit;
            item.appendChild(link);
            document.getElementById('searchresults').appendChild(item);
        }
    }, 100);
}
"#;

const STYLED: &str = r#"<link rel="stylesheet" href="mdbook-admonish.css">"#;
const MERMAID: &str = r#"<script src="mermaid.min.js"></script><script>mermaid.initialize({ startOnLoad: true });</script>"#;

const DIAGRAM: &str = "<pre class=\"mermaid\">graph TD\n    A[Command] --> B[Event]</pre>";

const ADMONITION: &str = r#"<div id="admonition-note" class="admonition admonish-note" role="note"><div class="admonition-title"><p>Note</p></div><div><p>Styled by mdbook-admonish.css.</p></div></div>"#;

fn clean_page(fixture: &Fixture, name: &str) {
    fixture.page(
        name,
        STYLED,
        &format!("<h1 id=\"top\">Clean</h1>\n{DIAGRAM}\n{ADMONITION}\n{MERMAID}"),
    );
}

fn messages(report: &BrowserReport) -> String {
    report
        .problems
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn a_clean_book_passes() {
    let fixture = Fixture::new();
    for page in ["index.html", "a.html", "b.html"] {
        clean_page(&fixture, page);
    }
    let Some(report) = fixture.check(&[("Part A", "alpha"), ("Part B", "bravo")]) else {
        return;
    };
    assert!(report.is_ok(), "{}", messages(&report));
    assert_eq!(
        (
            report.pages,
            report.diagrams,
            report.admonitions,
            report.searches
        ),
        (3, 3, 3, 2)
    );
}

#[test]
fn every_defect_fails_the_check_on_its_page() {
    let fixture = Fixture::new();
    clean_page(&fixture, "index.html");
    clean_page(&fixture, "a.html");
    // A diagram on a page that does not load mermaid.js.
    fixture.page(
        "b.html",
        STYLED,
        &format!("<h2 id=\"flow\">Flow</h2>\n{DIAGRAM}"),
    );
    // A diagram mermaid cannot parse.
    fixture.page(
        "syntax.html",
        STYLED,
        &format!(
            "<h2 id=\"broken\">Broken</h2>\n<pre class=\"mermaid\">graph TD\n    A --> </pre>\n{MERMAID}"
        ),
    );
    // An admonition without mdbook-admonish.css.
    fixture.page(
        "unstyled.html",
        "",
        &format!("<h2 id=\"aside\">Aside</h2>\n{ADMONITION}"),
    );
    // A console error, an uncaught exception and a missing image.
    fixture.page(
        "console.html",
        STYLED,
        "<h1 id=\"noisy\">Noisy</h1>\n<img src=\"missing.png\" alt=\"\">\n\
         <script>console.error('boom');</script>\n\
         <script>undefinedFunction();</script>",
    );
    // A fence the preprocessors never saw.
    fixture.page(
        "raw.html",
        STYLED,
        "<pre><code class=\"language-mermaid\">sequenceDiagram\n</code></pre>\n\
         <pre><code class=\"language-admonish\">warning\n</code></pre>",
    );
    // Part B's term finds only a page of part A.
    let Some(report) = fixture.check(&[("Part A", "alpha"), ("Part B", "beta")]) else {
        return;
    };
    let all = messages(&report);
    let expected = [
        "target/book/html/b.html: mermaid diagram 1 (at #flow) did not render to SVG because mermaid.js is not loaded",
        "target/book/html/syntax.html: mermaid diagram 1 (at #broken) failed to render (mermaid drew its syntax-error picture instead); mermaid says: Parse error on line 3:",
        "target/book/html/unstyled.html: admonition (at #admonition-note) (admonish-note) is not styled (left border 0px",
        "target/book/html/console.html: the page logged an error: console.error: boom",
        "target/book/html/console.html: the page logged an error: uncaught exception: ReferenceError: undefinedFunction is not defined",
        "target/book/html/console.html: the page logged an error: network error: Failed to load resource: the server responded with a status of 404 (Not Found) (at http://127.0.0.1:",
        "target/book/html/raw.html: a ```mermaid fence was left as code, not a diagram",
        "target/book/html/raw.html: an ```admonish fence was left as code, not an admonition",
        "book/src/SUMMARY.md:9: searching the book for `beta` (the term of part `Part B`) found no chapter of that part: 1 search results for 'beta': -> a.html",
    ];
    for message in expected {
        assert!(
            report
                .problems
                .iter()
                .any(|p| p.to_string().starts_with(message)),
            "missing `{message}` in:\n{all}"
        );
    }
    for clean in ["index.html", "a.html"] {
        assert!(
            !all.contains(&format!("html/{clean}:")),
            "{clean} is clean, but:\n{all}"
        );
    }
    assert_eq!(report.pages, 7);
}

#[test]
fn no_built_book_is_a_problem_not_a_pass() {
    let fixture = Fixture::new();
    let report = check_browser(&BrowserOptions::new(&fixture.root));
    assert!(!report.is_ok());
    assert!(
        report.problems[0]
            .message
            .contains("no built book here (no index.html); run `mdbook build` first"),
        "{}",
        messages(&report)
    );
}
