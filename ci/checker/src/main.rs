//! The `book-checker` command.
//!
//! ```text
//! book-checker check [--root DIR] [--no-run]
//! book-checker regenerate-output [--root DIR] [LISTING_DIR...]
//! ```
//!
//! `check` exits with 1 and prints `file:line: message` for every problem;
//! `--no-run` skips running listings to compare their `output.txt` (fast
//! enough for an editor hook). `regenerate-output` rewrites `output.txt` of
//! the given listings, or of every listing that has one, from a real
//! `cargo run -q -p <listing>`. Exit code 2 means a usage error.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use book_checker::{Options, check, regenerate_outputs};

const USAGE: &str = "\
usage: book-checker check [--root DIR] [--no-run]
       book-checker regenerate-output [--root DIR] [LISTING_DIR...]

check              find untagged fences, unexplained `ignore`s, broken includes and
                   anchors, untested or orphaned listings, chapters missing from
                   SUMMARY.md, and stale output.txt files
  --root DIR       the repository root (default: the current directory)
  --no-run         do not run listings to compare their output.txt
regenerate-output  rewrite output.txt from a real run, for the listings given
                   or for every listing that has one";

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let Some(command) = args.next() else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    let mut root = PathBuf::from(".");
    let mut run = true;
    let mut listings = Vec::new();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--root" => match args.next() {
                Some(dir) => root = PathBuf::from(dir),
                None => return usage_error("--root needs a directory"),
            },
            "--no-run" if command == "check" => run = false,
            "-h" | "--help" => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            other if command == "regenerate-output" && !other.starts_with('-') => {
                listings.push(PathBuf::from(other))
            }
            other => return usage_error(&format!("unexpected argument `{other}`")),
        }
    }
    match command.as_str() {
        "check" => run_check(root, run),
        "regenerate-output" => run_regenerate(&root, &listings),
        "-h" | "--help" | "help" => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        other => usage_error(&format!("unknown command `{other}`")),
    }
}

fn usage_error(message: &str) -> ExitCode {
    eprintln!("book-checker: {message}\n\n{USAGE}");
    ExitCode::from(2)
}

fn run_check(root: PathBuf, run: bool) -> ExitCode {
    let started = Instant::now();
    let options = Options {
        run_outputs: run,
        ..Options::new(root)
    };
    let report = check(&options);
    for problem in &report.problems {
        eprintln!("error: {problem}");
    }
    let outputs = if run {
        format!("{} output.txt compared", report.outputs_checked)
    } else {
        "output.txt not compared (--no-run)".to_owned()
    };
    let summary = format!(
        "{} chapter file(s), {} listing(s), {outputs}, {:.1}s",
        report.chapters,
        report.listings,
        started.elapsed().as_secs_f64()
    );
    if report.is_ok() {
        println!("book-checker: the book is consistent ({summary})");
        ExitCode::SUCCESS
    } else {
        eprintln!(
            "book-checker: {} problem(s) ({summary})",
            report.problems.len()
        );
        ExitCode::FAILURE
    }
}

fn run_regenerate(root: &Path, listings: &[PathBuf]) -> ExitCode {
    let results = regenerate_outputs(root, listings, &[]);
    if results.is_empty() {
        println!(
            "book-checker: no listing has an output.txt; pass listing directories to create one"
        );
    }
    let mut failed = false;
    for result in &results {
        match &result.outcome {
            Ok(true) => println!("updated    {}", result.path.display()),
            Ok(false) => println!("up to date {}", result.path.display()),
            Err(e) => {
                failed = true;
                eprintln!("error: {}: {e}", result.path.display());
            }
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
