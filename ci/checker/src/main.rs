//! The `book-checker` command.
//!
//! ```text
//! book-checker check [--root DIR] [--no-run]
//! book-checker follow [--root DIR] [--from PATH] [--chapter PATH] [--keep]
//! book-checker commands [--root DIR] [--chapter PATH]
//! book-checker regenerate-output [--root DIR] [LISTING_DIR...]
//! book-checker links [--root DIR] [--html DIR]
//! book-checker browser [--root DIR] [--html DIR] [--jobs N] [--quiet] [--page PATH]...
//! ```
//!
//! `check` exits with 1 and prints `file:line: message` for every problem;
//! `--no-run` skips running listings to compare their `output.txt` (fast
//! enough for an editor hook). `follow` follows the build-along chapters as a
//! reader would (see `book_checker::follow` for the conventions), printing
//! each step and the time each chapter took; it exits with 1 at the first
//! divergence, named by chapter:line, and keeps the reader's scratch
//! directory to look at. `commands` runs every command of the other
//! (reference) chapters from the repository root, verbatim, and exits with 1
//! at the first that fails (see `book_checker::commands`). `regenerate-output` rewrites `output.txt` of the
//! given listings, or of every listing that has one, from a real `cargo run
//! -q -p <listing>`. `links` checks every link of the built book, into its
//! API docs (`api/`) too (see `book_checker::links`); `browser` opens every page
//! of the built book in headless Chromium (see `book_checker::browser`).
//! Exit code 2 means a usage error.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use book_checker::{
    BrowserOptions, CommandsOptions, FollowOptions, FollowReport, Options, check, check_browser,
    check_links, follow, regenerate_outputs, run_commands,
};

const USAGE: &str = "\
usage: book-checker check [--root DIR] [--no-run]
       book-checker follow [--root DIR] [--from PATH] [--chapter PATH] [--keep]
       book-checker commands [--root DIR] [--chapter PATH]
       book-checker regenerate-output [--root DIR] [LISTING_DIR...]
       book-checker links [--root DIR] [--html DIR]
       book-checker browser [--root DIR] [--html DIR] [--jobs N] [--quiet] [--page PATH]...

check              find untagged fences, unexplained `ignore`s, broken includes and
                   anchors, untested or orphaned listings, chapters missing from
                   SUMMARY.md, and stale output.txt files
  --root DIR       the repository root (default: the current directory)
  --no-run         do not run listings to compare their output.txt
follow             follow the build-along chapters (<!-- build-along -->) in
                   SUMMARY.md order as a new reader would, in a scratch
                   directory: run their console commands, write their captioned
                   files, compare the project with each checkpoint's listing;
                   fail at the chapter:line of the first divergence
  --from PATH      start at this chapter (its .md file), after the first
                   build-along chapter (Installation: it clones the framework);
                   for working on a later part without following all before it
  --chapter PATH   stop after this chapter (its .md file)
  --keep           keep the scratch directory (always kept on a divergence)
commands           run every console command of the chapters that are not
                   build-along, verbatim, from the repository root (benchmarks
                   in smoke mode); fail at the chapter:line of the first failure
  --chapter PATH   only this chapter (its .md file)
regenerate-output  rewrite output.txt from a real run, for the listings given
                   or for every listing that has one
links              check that every relative link of the built book, those into
                   its API docs (api/, copied from target/doc) included, names
                   an existing file and id
  --html DIR       the built HTML book (default: target/book/html)
browser            open every page of the built book in headless Chromium:
                   mermaid diagrams rendered, admonitions styled, no console
                   errors, and search finds each part's term (Chromium from
                   BOOK_CHECKER_CHROMIUM or PATH; ci/install-packages installs it)
  --html DIR       the built HTML book (default: target/book/html)
  --jobs N         pages checked at once (default: 3)
  --quiet          do not list the pages as they are checked
  --page PATH      only this page (e.g. print.html; repeatable), no searches";

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let Some(command) = args.next() else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    let mut root = PathBuf::from(".");
    let mut run = true;
    let mut listings = Vec::new();
    let mut until = None;
    let mut from = None;
    let mut keep = false;
    let mut html = None;
    let mut jobs = None;
    let mut quiet = false;
    let mut only = Vec::new();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--root" => match args.next() {
                Some(dir) => root = PathBuf::from(dir),
                None => return usage_error("--root needs a directory"),
            },
            "--no-run" if command == "check" => run = false,
            "--chapter" if command == "follow" || command == "commands" => match args.next() {
                Some(path) => until = Some(PathBuf::from(path)),
                None => return usage_error("--chapter needs the path of a chapter's .md file"),
            },
            "--from" if command == "follow" => match args.next() {
                Some(path) => from = Some(PathBuf::from(path)),
                None => return usage_error("--from needs the path of a chapter's .md file"),
            },
            "--keep" if command == "follow" => keep = true,
            "--html" if command == "links" || command == "browser" => match args.next() {
                Some(dir) => html = Some(PathBuf::from(dir)),
                None => return usage_error("--html needs the directory of the built HTML book"),
            },
            "--jobs" if command == "browser" => {
                match args.next().and_then(|n| n.parse::<usize>().ok()) {
                    Some(n) if n > 0 => jobs = Some(n),
                    _ => return usage_error("--jobs needs a number above 0"),
                }
            }
            "--quiet" if command == "browser" => quiet = true,
            "--page" if command == "browser" => match args.next() {
                Some(page) => only.push(page),
                None => {
                    return usage_error("--page needs a page of the built book, e.g. print.html");
                }
            },
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
        "follow" => run_follow(FollowOptions {
            until,
            from,
            keep_scratch: keep,
            progress: true,
            ..FollowOptions::new(root)
        }),
        "commands" => run_commands_step(CommandsOptions {
            only: until,
            progress: true,
            ..CommandsOptions::new(root)
        }),
        "regenerate-output" => run_regenerate(&root, &listings),
        "links" => run_links(
            &root,
            &html.unwrap_or_else(|| PathBuf::from("target/book/html")),
        ),
        "browser" => {
            let mut options = BrowserOptions::new(root);
            if let Some(html) = html {
                options.html = html;
            }
            if let Some(jobs) = jobs {
                options.jobs = jobs;
            }
            options.progress = !quiet;
            options.only = only;
            run_browser(&options)
        }
        "-h" | "--help" | "help" => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        other => usage_error(&format!("unknown command `{other}`")),
    }
}

fn run_commands_step(options: CommandsOptions) -> ExitCode {
    let started = Instant::now();
    let report = run_commands(&options);
    for problem in &report.problems {
        eprintln!("error: {problem}");
    }
    let times: Vec<String> = report
        .chapters
        .iter()
        .map(|chapter| {
            format!(
                "{} ({} commands) {:.1}s",
                chapter.path.display(),
                chapter.commands,
                chapter.elapsed.as_secs_f64()
            )
        })
        .collect();
    let summary = format!(
        "{} chapter(s) in {:.1}s: {}",
        report.chapters.len(),
        started.elapsed().as_secs_f64(),
        times.join(", ")
    );
    if report.is_ok() {
        println!("book-checker commands: every command ran ({summary})");
        ExitCode::SUCCESS
    } else {
        eprintln!("book-checker commands: a command failed ({summary})");
        ExitCode::FAILURE
    }
}

fn run_links(root: &Path, html: &Path) -> ExitCode {
    let report = check_links(root, html);
    for problem in &report.problems {
        eprintln!("error: {problem}");
    }
    let summary = format!(
        "{} link(s), {} of them into api/, on {} page(s)",
        report.links, report.api_links, report.pages
    );
    if report.is_ok() {
        println!("book-checker links: every link resolves ({summary})");
        ExitCode::SUCCESS
    } else {
        eprintln!(
            "book-checker links: {} broken link(s) ({summary})",
            report.problems.len()
        );
        ExitCode::FAILURE
    }
}

fn run_browser(options: &BrowserOptions) -> ExitCode {
    let started = Instant::now();
    let report = check_browser(options);
    for problem in &report.problems {
        eprintln!("error: {problem}");
    }
    let summary = format!(
        "{} page(s), {} diagram(s), {} admonition(s), {} search(es), {}, {:.1}s",
        report.pages,
        report.diagrams,
        report.admonitions,
        report.searches,
        report.browser.as_deref().unwrap_or("no browser"),
        started.elapsed().as_secs_f64()
    );
    if report.is_ok() {
        let search = if report.searches > 0 {
            " and search finds every part"
        } else {
            ""
        };
        println!("book-checker browser: every page rendered cleanly{search} ({summary})");
        ExitCode::SUCCESS
    } else {
        eprintln!(
            "book-checker browser: {} problem(s) ({summary})",
            report.problems.len()
        );
        ExitCode::FAILURE
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

fn run_follow(options: FollowOptions) -> ExitCode {
    let started = Instant::now();
    let report = follow(&options);
    if report.chapters.is_empty() && report.is_ok() {
        println!(
            "book-checker follow: no build-along chapters (a tutorial chapter opts in with a `<!-- build-along -->` line)"
        );
        return ExitCode::SUCCESS;
    }
    for problem in &report.problems {
        eprintln!("error: {problem}");
    }
    let summary = follow_summary(&report, started.elapsed().as_secs_f64());
    if report.is_ok() {
        println!(
            "book-checker follow: a reader following the book verbatim got every checkpoint's listing ({summary})"
        );
        ExitCode::SUCCESS
    } else {
        if let Some(scratch) = &report.scratch {
            eprintln!(
                "book-checker follow: the reader's directory is kept at {}",
                scratch.display()
            );
        }
        let what = if report.chapters.is_empty() {
            format!(
                "{} problem(s) found before running anything",
                report.problems.len()
            )
        } else {
            "the reader diverged from the book".to_owned()
        };
        eprintln!("book-checker follow: {what} ({summary})");
        ExitCode::FAILURE
    }
}

/// `2 chapter(s) in 81.2s: getting-started/installation.md 73.1s, ...`
fn follow_summary(report: &FollowReport, total: f64) -> String {
    let times: Vec<String> = report
        .chapters
        .iter()
        .map(|chapter| {
            let name = chapter
                .path
                .strip_prefix("book/src")
                .unwrap_or(&chapter.path)
                .display();
            let status = if chapter.completed { "" } else { " (diverged)" };
            format!("{name} {:.1}s{status}", chapter.elapsed.as_secs_f64())
        })
        .collect();
    if times.is_empty() {
        format!("{total:.1}s")
    } else {
        format!(
            "{} chapter(s) in {total:.1}s: {}",
            times.len(),
            times.join(", ")
        )
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
