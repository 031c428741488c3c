//! Integration tests of `book-checker follow`: a tiny book whose two
//! build-along chapters make a cargo project (`cargo new --lib`, no
//! dependencies, so nothing needs the network), write captioned files, run
//! `cargo test`, and reach checkpoints; each test breaks it in one way and
//! checks that the follower names the chapter line.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use book_checker::follow::FRAMEWORK_REPOSITORY;
use book_checker::{FollowOptions, FollowReport, Options, check, follow};

static NEXT: AtomicUsize = AtomicUsize::new(0);

const LIB_RS: &str = "pub fn add(a: i32, b: i32) -> i32 {\n    a + b\n}\n";

const TEST_RS: &str = "use bank::add;\n\n#[test]\nfn adds() {\n    assert_eq!(add(2, 3), 5);\n}\n";

/// Chapter one: create the project, write src/lib.rs from the listing.
const START: &str = r#"# Start a bank

<!-- build-along -->

Create a library:

```console
$ cargo new --lib bank
    Creating library `bank` package
$ cd bank
$ grep -q "fixture lock" Cargo.lock
```

Replace the generated code:

<span class="filename">Filename: src/lib.rs</span>

```rust
{{#include ../../../listings/ch01-bank/listing-01-01/src/lib.rs}}
```

```console
$ cargo test -q
```

<!-- checkpoint: listings/ch01-bank/listing-01-01 -->
"#;

/// Chapter three (second in SUMMARY.md order, before `start.md`
/// alphabetically): add an integration test, typed inline.
const MORE: &str = r#"# Test the bank

<!-- build-along -->

We are still in `bank`.

<span class="filename">Filename: tests/add.rs</span>

```rust
use bank::add;

#[test]
fn adds() {
    assert_eq!(add(2, 3), 5);
}
```

```console
$ cargo test -q --test add
running 1 test
.
```

<!-- checkpoint: listings/ch01-bank/listing-01-02 -->
"#;

/// A throw-away book under the system temp dir, removed on drop.
struct Fixture {
    root: PathBuf,
}

impl Fixture {
    fn new(name: &str) -> Self {
        let root = std::env::temp_dir().join(format!(
            "book-follow-test-{name}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&root);
        let fixture = Self { root };
        fixture.write("Cargo.lock", "# fixture lock\nversion = 4\n");
        fixture.write(
            "book/src/SUMMARY.md",
            "# Summary\n\n- [Start](ch01/start.md)\n- [Aside](ch01/aside.md)\n- [More](ch01/more.md)\n",
        );
        fixture.write("book/src/ch01/start.md", START);
        fixture.write(
            "book/src/ch01/aside.md",
            "# Aside\n\nNot build-along: never run.\n\n```console\n$ false\n```\n",
        );
        fixture.write("book/src/ch01/more.md", MORE);
        fixture.listing("listing-01-01", &[("src/lib.rs", LIB_RS)]);
        fixture.listing(
            "listing-01-02",
            &[("src/lib.rs", LIB_RS), ("tests/add.rs", TEST_RS)],
        );
        fixture
    }

    fn listing(&self, name: &str, files: &[(&str, &str)]) {
        self.write(
            &format!("listings/ch01-bank/{name}/Cargo.toml"),
            &format!("[package]\nname = \"{name}\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[lib]\nname = \"bank\"\n\n[dependencies]\n"),
        );
        for (path, content) in files {
            self.write(&format!("listings/ch01-bank/{name}/{path}"), content);
        }
    }

    fn write(&self, path: &str, content: &str) {
        let path = self.root.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }

    fn edit(&self, path: &str, from: &str, to: &str) {
        let old = std::fs::read_to_string(self.root.join(path)).unwrap();
        assert!(old.contains(from), "{path} does not contain {from:?}");
        self.write(path, &old.replacen(from, to, 1));
    }

    /// The 1-based line of the first line of `path` containing `needle`.
    fn line(&self, path: &str, needle: &str) -> usize {
        let text = std::fs::read_to_string(self.root.join(path)).unwrap();
        text.lines()
            .position(|line| line.contains(needle))
            .unwrap_or_else(|| panic!("{path} has no line with {needle:?}"))
            + 1
    }

    fn options(&self) -> FollowOptions {
        FollowOptions {
            // One target dir for every fixture: the projects have no
            // dependencies, so each build takes about a second.
            target_dir: Some(Path::new(env!("CARGO_TARGET_TMPDIR")).join("follow-target")),
            ..FollowOptions::new(&self.root)
        }
    }

    fn follow(&self) -> FollowReport {
        let started = Instant::now();
        let report = follow(&self.options());
        eprintln!(
            "follow took {:.1}s: {:?}",
            started.elapsed().as_secs_f64(),
            report
                .chapters
                .iter()
                .map(|c| format!("{} {:.1}s", c.path.display(), c.elapsed.as_secs_f64()))
                .collect::<Vec<_>>()
        );
        report
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// Removes a scratch directory a failed follow kept.
fn discard(report: &FollowReport) {
    if let Some(scratch) = &report.scratch {
        let _ = std::fs::remove_dir_all(scratch);
    }
}

/// Asserts exactly one problem, at `path:line`, containing every word.
#[track_caller]
fn assert_one_problem(report: &FollowReport, path: &str, line: usize, words: &[&str]) {
    let shown: Vec<String> = report.problems.iter().map(ToString::to_string).collect();
    assert_eq!(report.problems.len(), 1, "got:\n{}", shown.join("\n"));
    let problem = &report.problems[0];
    assert_eq!(
        (problem.path.as_path(), problem.line),
        (Path::new(path), Some(line)),
        "{}",
        shown[0]
    );
    for word in words {
        assert!(
            problem.message.contains(word),
            "no {word:?} in:\n{}",
            shown[0]
        );
    }
}

#[test]
fn follows_and_passes() {
    let fixture = Fixture::new("passes");
    let report = fixture.follow();
    assert!(report.is_ok(), "{:#?}", report.problems);
    let followed: Vec<_> = report
        .chapters
        .iter()
        .map(|c| {
            (
                c.path.display().to_string(),
                c.commands,
                c.files,
                c.checkpoints,
                c.completed,
            )
        })
        .collect();
    // SUMMARY.md order, the aside skipped; `cd bank` carries over.
    assert_eq!(
        followed,
        [
            ("book/src/ch01/start.md".to_owned(), 4, 1, 1, true),
            ("book/src/ch01/more.md".to_owned(), 1, 1, 1, true),
        ]
    );
    assert_eq!(report.scratch, None, "the scratch directory is removed");
}

#[test]
fn captioned_block_that_differs_from_the_listing() {
    let fixture = Fixture::new("differs");
    fixture.edit("book/src/ch01/more.md", "add(2, 3), 5", "add(3, 2), 5");
    let report = fixture.follow();
    let checkpoint = fixture.line("book/src/ch01/more.md", "<!-- checkpoint:");
    assert_one_problem(
        &report,
        "book/src/ch01/more.md",
        checkpoint,
        &[
            "checkpoint listings/ch01-bank/listing-01-02",
            "the reader's tests/add.rs differs",
            "-    assert_eq!(add(2, 3), 5);",
            "+    assert_eq!(add(3, 2), 5);",
        ],
    );
    assert_eq!(
        report
            .chapters
            .iter()
            .map(|c| c.completed)
            .collect::<Vec<_>>(),
        [true, false]
    );
    let scratch = report.scratch.clone().expect("kept after a divergence");
    assert!(scratch.join("bank/tests/add.rs").is_file());
    discard(&report);
}

#[test]
fn dependencies_that_differ_from_the_listing() {
    let fixture = Fixture::new("deps");
    fixture.edit(
        "listings/ch01-bank/listing-01-01/Cargo.toml",
        "[dependencies]\n",
        "[dependencies]\nserde = { workspace = true, features = [\"derive\"] }\n",
    );
    let report = fixture.follow();
    let checkpoint = fixture.line("book/src/ch01/start.md", "<!-- checkpoint:");
    assert_one_problem(
        &report,
        "book/src/ch01/start.md",
        checkpoint,
        &[
            "Cargo.toml declares other dependencies",
            "-serde features = [\"derive\"]",
        ],
    );
    discard(&report);
}

#[test]
fn file_missing_from_the_reader() {
    let fixture = Fixture::new("missing");
    fixture.listing(
        "listing-01-01",
        &[("src/lib.rs", LIB_RS), ("src/extra.rs", "// extra\n")],
    );
    let report = fixture.follow();
    let checkpoint = fixture.line("book/src/ch01/start.md", "<!-- checkpoint:");
    assert_one_problem(
        &report,
        "book/src/ch01/start.md",
        checkpoint,
        &["src/extra.rs is missing from the reader's project"],
    );
    discard(&report);
}

#[test]
fn command_that_fails() {
    let fixture = Fixture::new("fails");
    fixture.edit("book/src/ch01/more.md", "use bank::add;", "use bank::sub;");
    let report = fixture.follow();
    let command = fixture.line("book/src/ch01/more.md", "$ cargo test");
    assert_one_problem(
        &report,
        "book/src/ch01/more.md",
        command,
        &[
            "`$ cargo test -q --test add` failed",
            "exited with status 101 in ~/bank",
            "bank::sub",
        ],
    );
    discard(&report);
}

#[test]
fn hidden_line_in_a_captioned_block() {
    let fixture = Fixture::new("hidden");
    fixture.edit(
        "book/src/ch01/more.md",
        "use bank::add;\n",
        "# use bank::add;\n",
    );
    let report = fixture.follow();
    let hidden = fixture.line("book/src/ch01/more.md", "# use bank::add;");
    assert_one_problem(
        &report,
        "book/src/ch01/more.md",
        hidden,
        &["hidden line", "the reader types only what they see"],
    );
    assert!(report.chapters.is_empty(), "found before running anything");
    // The fast `check` pass reports it too.
    let checked = check(&Options {
        run_outputs: false,
        ..Options::new(&fixture.root)
    });
    assert!(
        checked.problems.iter().any(|p| p.line == Some(hidden)
            && p.path == Path::new("book/src/ch01/more.md")
            && p.message.contains("hidden line")),
        "{:#?}",
        checked.problems
    );
}

#[test]
fn anchored_include_in_a_captioned_block() {
    let fixture = Fixture::new("anchor");
    fixture.write(
        "listings/ch01-bank/listing-01-01/src/lib.rs",
        &format!("// ANCHOR: add\n{LIB_RS}// ANCHOR_END: add\n"),
    );
    fixture.edit("book/src/ch01/start.md", "src/lib.rs}}", "src/lib.rs:add}}");
    let report = fixture.follow();
    let include = fixture.line("book/src/ch01/start.md", "{{#include");
    assert_one_problem(
        &report,
        "book/src/ch01/start.md",
        include,
        &[
            "shows only anchor `add`",
            "complete file",
            "include the whole file",
        ],
    );
    assert!(report.chapters.is_empty());
}

#[test]
fn captioned_block_naming_a_listing_crate() {
    let fixture = Fixture::new("names");
    fixture.edit(
        "book/src/ch01/more.md",
        "use bank::add;",
        "use listing_01_02::add;",
    );
    let report = fixture.follow();
    let block = fixture.line("book/src/ch01/more.md", "```rust");
    assert_one_problem(
        &report,
        "book/src/ch01/more.md",
        block,
        &["the reader's code names a listing crate (`listing_01_02`)"],
    );
}

#[test]
fn chapter_option_stops_after_that_chapter() {
    let fixture = Fixture::new("until");
    // Broken later chapters do not matter.
    fixture.edit(
        "book/src/ch01/more.md",
        "use bank::add;",
        "# use bank::add;",
    );
    let report = follow(&FollowOptions {
        until: Some(fixture.root.join("book/src/ch01/start.md")),
        ..fixture.options()
    });
    assert!(report.is_ok(), "{:#?}", report.problems);
    assert_eq!(report.chapters.len(), 1);

    let report = follow(&FollowOptions {
        until: Some("ch01/aside.md".into()),
        ..fixture.options()
    });
    assert!(
        report.problems[0]
            .message
            .contains("not a build-along chapter"),
        "{:#?}",
        report.problems
    );
}

#[test]
fn from_option_skips_to_that_chapter_after_the_first() {
    let fixture = Fixture::new("from");
    // A build-along chapter between the first and the one to start at:
    // `--from` skips it, so its failing command never runs.
    fixture.write(
        "book/src/SUMMARY.md",
        "# Summary\n\n- [Start](ch01/start.md)\n- [Middle](ch01/middle.md)\n- [More](ch01/more.md)\n",
    );
    fixture.write(
        "book/src/ch01/middle.md",
        "# Middle\n\n<!-- build-along -->\n\n```console\n$ false\n```\n",
    );
    let report = follow(&FollowOptions {
        from: Some("ch01/more.md".into()),
        ..fixture.options()
    });
    assert!(report.is_ok(), "{:#?}", report.problems);
    let followed: Vec<_> = report.chapters.iter().map(|c| c.path.clone()).collect();
    assert_eq!(
        followed,
        [
            PathBuf::from("book/src/ch01/start.md"),
            PathBuf::from("book/src/ch01/more.md")
        ]
    );

    // Without `--from`, the reader goes through the middle chapter and fails there.
    let report = follow(&fixture.options());
    assert!(!report.is_ok());
    assert_eq!(report.chapters.len(), 2, "{:#?}", report.chapters);
}

#[test]
fn clone_of_the_framework_uses_the_local_checkout() {
    let fixture = Fixture::new("clone");
    let git = |args: &[&str]| {
        let status = Command::new("git")
            .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
            .args(args)
            .current_dir(&fixture.root)
            .output()
            .unwrap();
        assert!(status.status.success(), "{status:?}");
    };
    git(&["init", "-q"]);
    git(&["add", "."]);
    git(&["commit", "-q", "-m", "fixture"]);
    fixture.write(
        "book/src/ch01/start.md",
        &format!(
            "# Clone\n\n<!-- build-along -->\n\n```console\n$ git clone {FRAMEWORK_REPOSITORY}\n$ cd composable-rust\n$ test -f book/src/ch01/more.md\n```\n"
        ),
    );
    fixture.write("book/src/ch01/more.md", "# More\n");
    let report = fixture.follow();
    assert!(report.is_ok(), "{:#?}", report.problems);
    assert_eq!(report.chapters[0].commands, 3);
}

#[test]
fn binary_follow() {
    let fixture = Fixture::new("binary");
    let run = || {
        Command::new(env!("CARGO_BIN_EXE_book-checker"))
            .args(["follow", "--root"])
            .arg(&fixture.root)
            .output()
            .unwrap()
    };
    fixture.write("book/src/ch01/start.md", "# Start\n");
    fixture.write("book/src/ch01/more.md", "# More\n");
    let none = run();
    assert_eq!(none.status.code(), Some(0), "{none:?}");
    assert!(
        String::from_utf8_lossy(&none.stdout).contains("no build-along chapters"),
        "{none:?}"
    );

    fixture.write(
        "book/src/ch01/more.md",
        "# More\n\n<!-- build-along -->\n\n<span class=\"filename\">Filename: src/x.rs</span>\n\nNo block.\n",
    );
    let bad = run();
    assert_eq!(bad.status.code(), Some(1), "{bad:?}");
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(
        stderr.contains("error: book/src/ch01/more.md:5: caption `Filename: src/x.rs` is not followed by a code block"),
        "{stderr}"
    );
}

/// A port nothing listens on, below Linux's range of ephemeral ports (so no
/// outgoing connection takes it meanwhile), and not given to another test
/// of this process.
fn free_port() -> u16 {
    static NEXT_PORT: AtomicUsize = AtomicUsize::new(0);
    let base = 20_000 + (std::process::id() as usize % 1_000) * 10;
    loop {
        let port = u16::try_from(base + NEXT_PORT.fetch_add(1, Ordering::Relaxed) % 12_000)
            .expect("below 32 000");
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// Whether something accepts connections on `port`.
fn listening(port: u16) -> bool {
    std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
}

/// A chapter that makes a tiny HTTP server on `port` (plain std, no
/// dependencies), starts it with `&`, and asks it for its answer with
/// `curl --retry-connrefused`, its output checked; then `then`. (The
/// package is named after the port: the fixtures share a target directory,
/// where a binary is named after its package.)
fn server_chapter(port: u16, then: &str) -> String {
    format!(
        r#"# Serve

<!-- build-along -->

```console
$ cargo new --vcs none server-{port}
$ cd server-{port}
```

<span class="filename">Filename: src/main.rs</span>

```rust
use std::io::{{Read, Write}};
use std::net::TcpListener;

fn main() {{
    let listener = TcpListener::bind("127.0.0.1:{port}").unwrap();
    println!("listening on {port}");
    for stream in listener.incoming() {{
        let mut stream = stream.unwrap();
        let mut request = [0; 1024];
        let _ = stream.read(&mut request);
        let _ = stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 6\r\nconnection: close\r\n\r\nhello\n");
    }}
}}
```

```console
$ cargo run -q &
```

<!-- output: checked -->

```console
$ curl -s --retry-connrefused --retry 60 --retry-delay 1 http://127.0.0.1:{port}/
hello
{then}```
"#
    )
}

#[test]
fn background_server_serves_the_next_command_and_stops_with_the_chapter() {
    let fixture = Fixture::new("background");
    let port = free_port();
    fixture.write(
        "book/src/SUMMARY.md",
        "# Summary\n\n- [Serve](ch01/start.md)\n- [Again](ch01/more.md)\n",
    );
    fixture.write("book/src/ch01/start.md", &server_chapter(port, ""));
    // The next chapter finds the port free (curl's "connection refused"
    // fails it, so `!` passes), then starts its own server on it.
    fixture.write(
        "book/src/ch01/more.md",
        &format!(
            "# Again\n\n<!-- build-along -->\n\n```console\n$ ! curl -s http://127.0.0.1:{port}/\n$ cargo run -q &\n$ curl -s --retry-connrefused --retry 60 --retry-delay 1 http://127.0.0.1:{port}/\n```\n"
        ),
    );
    let report = fixture.follow();
    assert!(report.is_ok(), "{:#?}", report.problems);
    let commands: Vec<usize> = report.chapters.iter().map(|c| c.commands).collect();
    assert_eq!(commands, [4, 3]);
    assert!(
        !listening(port),
        "the last chapter's server is stopped when the follow ends"
    );
}

#[test]
fn background_server_is_stopped_when_the_follow_fails() {
    let fixture = Fixture::new("background-fails");
    let port = free_port();
    fixture.write(
        "book/src/SUMMARY.md",
        "# Summary\n\n- [Serve](ch01/start.md)\n",
    );
    fixture.write("book/src/ch01/more.md", "# Not in the book\n");
    fixture.write(
        "book/src/ch01/start.md",
        &server_chapter(port, "$ echo 'it broke' && false\n"),
    );
    let report = fixture.follow();
    let failing = fixture.line("book/src/ch01/start.md", "$ echo 'it broke'");
    assert_one_problem(
        &report,
        "book/src/ch01/start.md",
        failing,
        &[
            "exited with status 1",
            "it broke",
            // What the server printed helps to see why a request failed.
            "the background command `cargo run -q &`",
            &format!("listening on {port}"),
        ],
    );
    assert!(!listening(port), "the server is stopped on a failure too");
    discard(&report);
}
