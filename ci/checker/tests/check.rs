//! Integration tests: small fixture repositories, each broken in one way,
//! prove that every rule of `book-checker check` fires, with the file and line
//! and a hint how to fix it, and that a clean tree passes.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use book_checker::{Options, Problem, Report, check, regenerate_outputs};

/// A throw-away repository under the system temp dir, removed on drop.
struct Fixture {
    root: PathBuf,
}

static NEXT: AtomicUsize = AtomicUsize::new(0);

const MAIN_RS: &str = r#"// ANCHOR: all
// ANCHOR: main
fn main() {
    println!("Hello, book!");
}
// ANCHOR_END: main
// ANCHOR_END: all
"#;

const INTRO: &str = r#"# Intro

```text
plain text
```

```rust
let x = 1;
assert_eq!(x, 1);
```

<!-- ignore: needs a running Redpanda broker -->
```rust,ignore
connect_to_broker().await;
```

```admonish note
Nested blocks are fine when they are not Rust:

~~~text
hello
~~~
```

```console
$ cargo run -q -p listing-01-01
{{#include ../../listings/ch01-intro/listing-01-01/output.txt}}
```
"#;

const FIRST: &str = r#"# First

```rust
{{#rustdoc_include ../../../listings/ch01-intro/listing-01-01/src/main.rs:main}}
```
"#;

impl Fixture {
    /// A clean repository: one workspace with one listing, two chapters.
    fn clean(name: &str) -> Self {
        let root = std::env::temp_dir().join(format!(
            "book-checker-test-{name}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&root);
        let fixture = Self { root };
        fixture.write(
            "Cargo.toml",
            "[workspace]\nresolver = \"2\"\nmembers = [\n    \"listings/*/*\", # every listing\n]\n",
        );
        fixture.write(
            "book/src/SUMMARY.md",
            "# Summary\n\n[Intro](intro.md)\n\n- [First](ch01/first.md)\n",
        );
        fixture.write("book/src/intro.md", INTRO);
        fixture.write("book/src/ch01/first.md", FIRST);
        fixture.listing("ch01-intro/listing-01-01");
        fixture.write(
            "listings/ch01-intro/listing-01-01/output.txt",
            "Hello, book!\n",
        );
        fixture
    }

    fn listing(&self, dir: &str) {
        let name = dir.rsplit('/').next().unwrap();
        self.write(
            &format!("listings/{dir}/Cargo.toml"),
            &format!("[package]\nname = \"{name}\"\nversion = \"0.1.0\"\nedition = \"2021\"\n"),
        );
        self.write(&format!("listings/{dir}/src/main.rs"), MAIN_RS);
    }

    fn write(&self, path: &str, content: &str) {
        let path = self.root.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }

    fn append(&self, path: &str, content: &str) {
        let old = std::fs::read_to_string(self.root.join(path)).unwrap();
        self.write(path, &format!("{old}{content}"));
    }

    fn line_count(&self, path: &str) -> usize {
        std::fs::read_to_string(self.root.join(path))
            .unwrap()
            .lines()
            .count()
    }

    fn options(&self, run: bool) -> Options {
        Options {
            run_outputs: run,
            // Not the workspace's target dir: `cargo test` holds its lock.
            cargo_env: vec![(
                "CARGO_TARGET_DIR".into(),
                self.root.join("target").into_os_string(),
            )],
            ..Options::new(&self.root)
        }
    }

    fn check(&self) -> Report {
        check(&self.options(false))
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// Asserts that exactly the expected problems were found: each given as
/// (path, line, words the message must contain).
#[track_caller]
fn assert_problems(report: &Report, expected: &[(&str, Option<usize>, &[&str])]) {
    let shown: Vec<String> = report.problems.iter().map(Problem::to_string).collect();
    assert_eq!(
        report.problems.len(),
        expected.len(),
        "expected {} problem(s), got:\n{}",
        expected.len(),
        shown.join("\n")
    );
    for (path, line, words) in expected {
        let found = report.problems.iter().any(|p| {
            p.path == Path::new(path)
                && p.line == *line
                && words.iter().all(|w| p.message.contains(w))
        });
        assert!(
            found,
            "no problem at {path}:{line:?} containing {words:?}; got:\n{}",
            shown.join("\n")
        );
    }
}

#[test]
fn clean_tree_passes() {
    let fixture = Fixture::clean("clean");
    let report = fixture.check();
    assert_problems(&report, &[]);
    assert_eq!((report.chapters, report.listings), (3, 1));
}

#[test]
fn untagged_fence() {
    let fixture = Fixture::clean("untagged");
    let line = fixture.line_count("book/src/intro.md") + 2;
    fixture.append("book/src/intro.md", "\n```\nlet y = 2;\n```\n");
    assert_problems(
        &fixture.check(),
        &[(
            "book/src/intro.md",
            Some(line),
            &[
                "without a language",
                "tag it: rust, text, console, toml, sql, mermaid",
            ],
        )],
    );
}

#[test]
fn indented_code_block() {
    let fixture = Fixture::clean("indented");
    let line = fixture.line_count("book/src/intro.md") + 2;
    fixture.append("book/src/intro.md", "\n    let y = 2;\n");
    assert_problems(
        &fixture.check(),
        &[(
            "book/src/intro.md",
            Some(line),
            &["indented code block", "fenced block"],
        )],
    );
}

#[test]
fn ignore_needs_a_reason() {
    let fixture = Fixture::clean("ignore");
    let line = fixture.line_count("book/src/intro.md") + 2;
    fixture.append(
        "book/src/intro.md",
        "\n```rust,ignore\nlet y = 2;\n```\n\n<!-- ignore: -->\n```ignore\nlet z = 3;\n```\n\n<!-- ignore: a reason -->\n```text,ignore\nnot Rust, so no reason needed\n```\n",
    );
    assert_problems(
        &fixture.check(),
        &[
            (
                "book/src/intro.md",
                Some(line),
                &["`ignore` without a recorded reason", "<!-- ignore: "],
            ),
            (
                "book/src/intro.md",
                Some(line + 5),
                &["`ignore` without a recorded reason"],
            ),
        ],
    );
}

#[test]
fn missing_include_file() {
    let fixture = Fixture::clean("missing-file");
    fixture.write(
        "book/src/ch01/first.md",
        &FIRST.replace("src/main.rs:main", "src/nope.rs:main"),
    );
    assert_problems(
        &fixture.check(),
        &[(
            "book/src/ch01/first.md",
            Some(4),
            &[
                "listings/ch01-intro/listing-01-01/src/nope.rs does not exist",
                "fix the path",
            ],
        )],
    );
}

#[test]
fn missing_and_unterminated_anchor() {
    let fixture = Fixture::clean("anchor");
    fixture.append(
        "book/src/ch01/first.md",
        "\n```rust\n{{#rustdoc_include ../../../listings/ch01-intro/listing-01-01/src/main.rs:setup}}\n```\n",
    );
    fixture.append(
        "listings/ch01-intro/listing-01-01/src/main.rs",
        "// ANCHOR: tail\n",
    );
    fixture.append(
        "book/src/intro.md",
        "\n```text\n{{#include ../../listings/ch01-intro/listing-01-01/src/main.rs:tail}}\n```\n",
    );
    let intro_line = fixture.line_count("book/src/intro.md") - 1;
    assert_problems(
        &fixture.check(),
        &[
            (
                "book/src/ch01/first.md",
                Some(8),
                &[
                    "anchor `setup` not found",
                    "// ANCHOR: setup",
                    "// ANCHOR_END: setup",
                ],
            ),
            (
                "book/src/intro.md",
                Some(intro_line),
                &["anchor `tail`", "has no `ANCHOR_END: tail`"],
            ),
        ],
    );
}

#[test]
fn rust_fence_including_a_file_no_crate_tests() {
    let fixture = Fixture::clean("not-member");
    // The listing exists but the workspace does not list it.
    fixture.write(
        "Cargo.toml",
        "[workspace]\nresolver = \"2\"\nmembers = []\n",
    );
    // And a loose file under examples/ that belongs to no crate at all.
    fixture.write("examples/loose/snippet.rs", "fn main() {}\n");
    fixture.append(
        "book/src/intro.md",
        "\n```rust\n{{#include ../../examples/loose/snippet.rs}}\n```\n",
    );
    let intro_line = fixture.line_count("book/src/intro.md") - 2;
    assert_problems(
        &fixture.check(),
        &[
            (
                "book/src/ch01/first.md",
                Some(3),
                &[
                    "listings/ch01-intro/listing-01-01 is not a workspace member",
                    "nothing compiles or tests it",
                    "[workspace] members",
                ],
            ),
            (
                "book/src/intro.md",
                Some(intro_line),
                &["examples/loose/snippet.rs, which is not inside any crate"],
            ),
            (
                "listings/ch01-intro/listing-01-01",
                None,
                &["not a workspace member", "listings/*/*"],
            ),
        ],
    );
}

#[test]
fn orphaned_listing() {
    let fixture = Fixture::clean("orphan");
    fixture.listing("ch01-intro/listing-01-02");
    assert_problems(
        &fixture.check(),
        &[(
            "listings/ch01-intro/listing-01-02",
            None,
            &["orphaned listing", "rustdoc_include"],
        )],
    );
}

#[test]
fn listing_names() {
    let fixture = Fixture::clean("names");
    // Members are listed explicitly so that only the names are wrong.
    fixture.write(
        "Cargo.toml",
        "[workspace]\nmembers = [\"listings/*/*\", \"listings/chapter-one/listing-01-01\"]\n",
    );
    fixture.listing("ch01-intro/listing-1-2");
    fixture.listing("ch01-intro/listing-02-01");
    fixture.listing("chapter-one/listing-01-01");
    for listing in ["listing-1-2", "listing-02-01"] {
        fixture.append(
            "book/src/ch01/first.md",
            &format!("\n```rust\n{{{{#rustdoc_include ../../../listings/ch01-intro/{listing}/src/main.rs:main}}}}\n```\n"),
        );
    }
    assert_problems(
        &fixture.check(),
        &[
            (
                "listings/ch01-intro/listing-1-2",
                None,
                &["not a listing name", "listing-NN-MM", "listing-01-01"],
            ),
            (
                "listings/ch01-intro/listing-02-01",
                None,
                &["first number must be the chapter's", "listing-01-01"],
            ),
            (
                "listings/chapter-one",
                None,
                &["chNN-slug", "ch01-getting-started"],
            ),
        ],
    );
}

#[test]
fn summary_and_chapters_agree() {
    let fixture = Fixture::clean("summary");
    fixture.write("book/src/ch01/extra.md", "# Extra\n");
    // A fragment that a chapter includes needs no SUMMARY entry.
    fixture.write("book/src/ch01/fragment.md", "Shared text.\n");
    fixture.append("book/src/ch01/first.md", "\n{{#include fragment.md}}\n");
    fixture.append("book/src/SUMMARY.md", "- [Gone](ch02/gone.md)\n");
    assert_problems(
        &fixture.check(),
        &[
            (
                "book/src/SUMMARY.md",
                Some(6),
                &["links to `ch02/gone.md`, which does not exist"],
            ),
            (
                "book/src/ch01/extra.md",
                None,
                &[
                    "not listed in book/src/SUMMARY.md",
                    "- [Title](ch01/extra.md)",
                ],
            ),
        ],
    );
}

#[test]
fn missing_summary() {
    let fixture = Fixture::clean("no-summary");
    std::fs::remove_file(fixture.root.join("book/src/SUMMARY.md")).unwrap();
    assert_problems(
        &fixture.check(),
        &[(
            "book/src/SUMMARY.md",
            None,
            &["missing", "list every chapter"],
        )],
    );
}

#[test]
fn chapters_are_named_by_title_not_number() {
    let fixture = Fixture::clean("chapter-numbers");
    let line = fixture.line_count("book/src/intro.md") + 2;
    fixture.append(
        "book/src/intro.md",
        "\nAs chapter 1 shows, and [Chapter 7](nowhere.md) does not.\n\n`chapter 1` in code, and this chapter covers 3 things, are fine.\n",
    );
    assert_problems(
        &fixture.check(),
        &[
            (
                "book/src/intro.md",
                Some(line),
                &[
                    "says \"chapter 1\"",
                    "refer to a chapter by a link with its title",
                    "\"First\" in the sidebar today: write [First](ch01/first.md) instead",
                ],
            ),
            (
                "book/src/intro.md",
                Some(line),
                &[
                    "says \"Chapter 7\"",
                    "there is no chapter 7 in the sidebar (it numbers chapters 1 to 1)",
                ],
            ),
        ],
    );
}

#[test]
fn a_listing_directory_has_its_chapters_sidebar_number() {
    let fixture = Fixture::clean("listing-numbers");
    // A new chapter before First makes First chapter 2; its listings still
    // say 01.
    fixture.write(
        "book/src/SUMMARY.md",
        "# Summary\n\n[Intro](intro.md)\n\n- [Zero](ch00/zero.md)\n- [First](ch01/first.md)\n",
    );
    fixture.write("book/src/ch00/zero.md", "# Zero\n");
    assert_problems(
        &fixture.check(),
        &[(
            "book/src/ch01/first.md",
            Some(4),
            &[
                "includes listings/ch01-intro, numbered 01, but this chapter is number 2 in the sidebar",
                "rename the directory to listings/ch02-intro and its listings to listing-02-MM",
            ],
        )],
    );
}

#[test]
fn rust_inside_admonish_is_not_tested() {
    let fixture = Fixture::clean("admonish");
    let line = fixture.line_count("book/src/intro.md") + 5;
    fixture.append(
        "book/src/intro.md",
        "\n````admonish tip\nText.\n\n```rust\nlet hidden = 1;\n```\n````\n",
    );
    assert_problems(
        &fixture.check(),
        &[(
            "book/src/intro.md",
            Some(line),
            &["inside an admonish block is never tested"],
        )],
    );
}

#[test]
fn stale_output_is_detected_and_regenerated() {
    let fixture = Fixture::clean("output");
    let report = check(&fixture.options(true));
    assert_problems(&report, &[]);
    assert_eq!(report.outputs_checked, 1);

    let output = "listings/ch01-intro/listing-01-01/output.txt";
    fixture.write(output, "Hello, old book!\n");
    assert_problems(
        &check(&fixture.options(true)),
        &[(
            output,
            None,
            &[
                "stale output",
                "cargo run -q -p listing-01-01",
                "run ci/regenerate-output",
                "-Hello, old book!",
                "+Hello, book!",
            ],
        )],
    );
    // --no-run skips the comparison.
    assert_problems(&fixture.check(), &[]);

    let results = regenerate_outputs(&fixture.root, &[], &fixture.options(true).cargo_env);
    assert_eq!(results.len(), 1);
    assert_eq!(results[0].outcome, Ok(true));
    assert_eq!(
        std::fs::read_to_string(fixture.root.join(output)).unwrap(),
        "Hello, book!\n"
    );
    assert_problems(&check(&fixture.options(true)), &[]);
}

#[test]
fn binary_exit_codes_and_messages() {
    let fixture = Fixture::clean("binary");
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_book-checker"))
            .args(args)
            .arg("--root")
            .arg(&fixture.root)
            .output()
            .unwrap()
    };
    let ok = run(&["check", "--no-run"]);
    assert_eq!(ok.status.code(), Some(0), "{ok:?}");

    fixture.append("book/src/intro.md", "\n```\nuntagged\n```\n");
    let bad = run(&["check", "--no-run"]);
    assert_eq!(bad.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(
        stderr.contains("error: book/src/intro.md:") && stderr.contains("tag it:"),
        "{stderr}"
    );
    assert!(stderr.contains("1 problem(s)"), "{stderr}");

    let usage = run(&["frobnicate"]);
    assert_eq!(usage.status.code(), Some(2));
}
