//! Integration tests of `book-checker commands`: a tiny book whose reference
//! chapter runs commands from the repository root, one of them a server in
//! the background; build-along chapters are left to `follow`.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use book_checker::{CommandsOptions, run_commands};

static NEXT: AtomicUsize = AtomicUsize::new(0);

/// A repository root with `book/src/SUMMARY.md` listing `chapters`
/// (file name, content), in that order.
fn book(chapters: &[(&str, &str)]) -> PathBuf {
    let root = std::env::temp_dir().join(format!(
        "book-checker-commands-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::SeqCst)
    ));
    let src = root.join("book").join("src");
    std::fs::create_dir_all(&src).unwrap();
    let mut summary = String::from("# Summary\n\n");
    for (name, text) in chapters {
        summary.push_str(&format!("- [{name}]({name})\n"));
        std::fs::write(src.join(name), text).unwrap();
    }
    std::fs::write(src.join("SUMMARY.md"), summary).unwrap();
    root
}

fn options(root: &Path) -> CommandsOptions {
    CommandsOptions {
        command_timeout: Duration::from_secs(30),
        ..CommandsOptions::new(root)
    }
}

const REFERENCE: &str = "# Reference\n\nFrom the checkout:\n\n```console\n$ echo \"$COMPOSABLE_BENCH_SMOKE $CARGO_PROFILE_BENCH_OPT_LEVEL\" > smoke.txt\n$ mkdir -p sub\n$ cd sub\n$ pwd > ../where.txt\n```\n\nServe and ask:\n\n```console\n$ sleep 300 &\n$ touch ../served.txt\n```\n\n````admonish note\n```console\n$ false\n```\n````\n";

#[test]
fn runs_every_command_from_the_root_in_order_with_background_servers() {
    let build_along =
        "# Tutorial\n\n<!-- build-along -->\n\n```console\n$ touch tutorial-ran.txt\n```\n";
    let root = book(&[("tutorial.md", build_along), ("reference.md", REFERENCE)]);
    let report = run_commands(&options(&root));
    assert!(report.is_ok(), "{:?}", report.problems);
    assert_eq!(report.chapters.len(), 1, "only the reference chapter runs");
    assert_eq!(report.chapters[0].commands, 6);
    assert_eq!(
        std::fs::read_to_string(root.join("smoke.txt")).unwrap(),
        "1 0\n",
        "benchmarks run in smoke mode, built unoptimised"
    );
    let cwd = std::fs::read_to_string(root.join("where.txt")).unwrap();
    assert!(cwd.trim_end().ends_with("/sub"), "a bare cd moves: {cwd}");
    assert!(root.join("served.txt").exists());
    assert!(
        !root.join("tutorial-ran.txt").exists(),
        "build-along chapters are follow's"
    );
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn a_failing_command_is_reported_at_its_line_with_its_output() {
    let chapter = "# Broken\n\n```console\n$ echo fine\n$ echo 'no such package' >&2 && exit 3\n$ touch never.txt\n```\n";
    let root = book(&[("broken.md", chapter)]);
    let report = run_commands(&options(&root));
    assert_eq!(report.problems.len(), 1);
    let problem = &report.problems[0];
    assert_eq!(problem.path, Path::new("book/src/broken.md"));
    assert_eq!(problem.line, Some(5));
    assert!(
        problem.message.contains("exited with status 3"),
        "{}",
        problem.message
    );
    assert!(
        problem.message.contains("no such package"),
        "{}",
        problem.message
    );
    assert!(
        !root.join("never.txt").exists(),
        "it stops at the first failure"
    );
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn a_command_that_never_ends_is_killed_and_reported() {
    let chapter = "# Server\n\n```console\n$ sleep 300\n```\n";
    let root = book(&[("server.md", chapter)]);
    let report = run_commands(&CommandsOptions {
        command_timeout: Duration::from_secs(1),
        ..CommandsOptions::new(&root)
    });
    assert_eq!(report.problems.len(), 1);
    assert!(
        report.problems[0].message.contains("ends in `&`"),
        "{}",
        report.problems[0].message
    );
    std::fs::remove_dir_all(&root).unwrap();
}
