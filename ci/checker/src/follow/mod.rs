//! `book-checker follow`: follows the book's build-along (tutorial) chapters
//! exactly as a new reader would, and fails at the chapter line where the
//! reader's result first differs from the book's.
//!
//! Compiling listings proves the code is right, not that a reader can get
//! there: a step that forgets a `cargo add`, a block that silently relies on
//! a hidden line, a file the chapter never shows. [`follow`] types what the
//! chapter shows, and nothing else, into a scratch directory.
//!
//! # Conventions a build-along chapter follows
//!
//! 1. **Marker.** A chapter is build-along when it has the line
//!    `<!-- build-along -->` (on a line of its own, outside code blocks).
//!    Build-along chapters are followed in `SUMMARY.md` order, all in one
//!    scratch directory (a fresh temporary directory standing for the
//!    reader's home, where their projects live; `~` in a bare `cd` means
//!    it), each chapter starting from the state the previous one left. The
//!    time each chapter took is reported.
//! 2. **Commands.** Every ```` ```console ```` fence is run (fences nested in
//!    an `admonish` block are asides and are not). Each line starting with
//!    `$ ` is a command, run verbatim with `bash -c` in the current
//!    directory, with the checker's environment (`DATABASE_URL`,
//!    `REDIS_URL`, `PATH`, ...); a line ending in `\` continues on the
//!    next. Other lines are output and are not checked. A command that
//!    exits non-zero (or runs longer than the timeout, 30 minutes by
//!    default) stops the follow with the chapter:line, the command and the
//!    end of its output. A bare `cd DIR` (alone on its line) changes the
//!    current directory for the commands after it; `cd DIR && cmd` runs in
//!    bash and changes nothing afterwards. A command ending in a single
//!    `&` (not `&&`) starts in the background, as a reader starts a server
//!    and goes on typing (with `&`, or in a second terminal): it runs in a
//!    process group of its own, the next command runs at once, and a
//!    command that uses it must wait for it by itself, as it must for a
//!    reader (e.g. `curl --retry-connrefused --retry 60 --retry-delay 1`).
//!    It prints nothing where it is shown (its output goes to a log in the
//!    scratch home, shown when a later command fails), and it and
//!    everything it started are stopped when the chapter's steps are done,
//!    or when the follow stops there; so every chapter may listen on the
//!    same port. Five things differ from a reader's terminal, and only
//!    these:
//!    - `git clone` of [`FRAMEWORK_REPOSITORY`] clones the local checkout
//!      (the repository root, its committed `HEAD`) instead, into the same
//!      directory name the URL gives (`composable-rust`), because CI has no
//!      network;
//!    - every command runs with `CARGO_TARGET_DIR` set to the workspace's
//!      own `target` so builds reuse the dependencies the workspace's
//!      build compiled (those with the same features): it changes where
//!      artifacts go, not what is built;
//!    - a `cargo install` builds its release profile unoptimised
//!      (`CARGO_PROFILE_RELEASE_OPT_LEVEL=0`), as the benchmarks of
//!      `book-checker commands` are: what is installed behaves the same,
//!      it is only slower, and the build takes a fraction of the time;
//!    - right after a command starting with `cargo new`, `cargo init` or
//!      `composable new NAME` succeeds, the workspace's `Cargo.lock` is
//!      copied into the new project, so it resolves the dependency
//!      versions the workspace tested (offline-safe). The first resolution
//!      prunes it to what the project uses then, so add dependencies
//!      before the first build; `cargo add` may still consult the
//!      crates.io index;
//!    - `cargo install` installs into the scratch home, not the machine's
//!      `~/.cargo`: `CARGO_INSTALL_ROOT` is `<scratch>/.cargo`, and its
//!      `bin` comes first on `PATH`, so what the reader installs is what
//!      the following commands run.
//! 3. **Files.** A fence immediately preceded (blank lines allowed) by the
//!    caption `<span class="filename">Filename: PATH</span>` is the
//!    complete content of `PATH`, relative to the current directory; it is
//!    written there (directories created). The content is what the reader
//!    sees: mdBook's `{{#include …}}` / `{{#rustdoc_include …}}` directives
//!    are expanded, and must include whole files (an anchor or a line range
//!    is an error, as is a playground directive). A Rust fence with a caption
//!    may not have hidden lines (`# ` or a lone `#`, also from an included
//!    file). Fences without a caption are explanations and are not written.
//! 4. **Checkpoints.** `<!-- checkpoint: listings/chNN-slug/listing-NN-MM -->`
//!    (path relative to the repository root) says that the reader's project,
//!    the current directory, must now equal that listing crate: every file of
//!    the listing but `Cargo.toml`, `Cargo.lock` and `output.txt`
//!    byte-identical, no extra file in the reader's `src/`, `tests/` (or any
//!    other directory the listing has, e.g. `migrations/`), and the same
//!    `[dependencies]` and `[dev-dependencies]` by name and written
//!    `features` (versions, `path`/`workspace` sources, the package name and
//!    every other key are ignored; a `workspace = true` entry counts only
//!    the features it writes itself). The first difference is reported at
//!    the checkpoint's line, with the file and a diff.
//! 5. **Nothing hidden.** No Rust fence of a build-along chapter has hidden
//!    lines, and no `rustdoc_include` of part of a file (it hides the rest;
//!    use `{{#include file:anchor}}` for an excerpt). A captioned block may
//!    not name a listing crate (`listing_04_01::`, `listing-04-01`): the
//!    reader's crate is not called that.
//!
//! 6. **Checked output.** A console fence right after the line
//!    `<!-- output: checked -->` (blank lines allowed) must show exactly
//!    what its commands print: after each `$ ` command, its output (stdout
//!    and stderr together) must equal the lines the fence shows up to the
//!    next command, or the follow fails at the command's line with both,
//!    as a diff. Both sides are normalised first: blank lines dropped,
//!    runs of spaces made one, and values that change from run to run
//!    (UUIDs, also inside a word as in JSON, positions `1045/17`, dates,
//!    times, durations `3s`) replaced by placeholders; a shown line `...`
//!    stands for any number of lines, a shown line ending in `...` for any
//!    line that starts with the rest
//!    (see `output.rs`). A background command (`cmd &`) prints nothing
//!    there, so a checked fence shows no output after it. Fences without
//!    the marker show output that is not checked.
//!
//! Problems of conventions 3 to 6 (and malformed captions and checkpoints)
//! are found before anything runs; `book-checker check` reports them too.

pub(crate) mod chapter;
mod checkpoint;
mod output;
pub(crate) mod shell;

use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::Problem;
use crate::files::{absolute_root, markdown_files, normalize, relative};
use crate::markdown;

pub use chapter::BUILD_ALONG;

/// The URL of the framework's repository as the chapters write it in
/// `git clone`; the follower clones the local checkout instead.
pub const FRAMEWORK_REPOSITORY: &str = "https://github.com/composable-rust/composable-rust.git";

/// How long one command may run by default.
pub const DEFAULT_COMMAND_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// What to follow and how.
#[derive(Debug, Clone)]
pub struct FollowOptions {
    /// The repository root (holds `Cargo.toml`, `Cargo.lock`, `book/src`,
    /// `listings/`).
    pub root: PathBuf,
    /// Follow the build-along chapters up to and including this one (a path
    /// to its Markdown file: absolute, or relative to the current directory,
    /// the root or `book/src`); `None` follows them all.
    pub until: Option<PathBuf>,
    /// Start at this build-along chapter (a path as for `until`), skipping
    /// the ones before it except the first: the first (Installation) sets up
    /// what every later chapter assumes (the framework's clone). `None`
    /// starts at the beginning. For working on a later part; CI follows all.
    pub from: Option<PathBuf>,
    /// `CARGO_TARGET_DIR` of every command; `None` means `<root>/target`, the
    /// workspace's own.
    pub target_dir: Option<PathBuf>,
    /// Extra environment variables for every command.
    pub env: Vec<(OsString, OsString)>,
    /// Keep the scratch directory even when the follow succeeds (it is
    /// always kept after a divergence, to look at).
    pub keep_scratch: bool,
    /// Print each step as it runs (to stdout).
    pub progress: bool,
    /// How long one command may run before it counts as failed.
    pub command_timeout: Duration,
}

impl FollowOptions {
    /// Follows every build-along chapter of the repository at `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self {
            root: root.into(),
            until: None,
            from: None,
            target_dir: None,
            env: Vec::new(),
            keep_scratch: false,
            progress: false,
            command_timeout: DEFAULT_COMMAND_TIMEOUT,
        }
    }
}

/// One build-along chapter a reader went through.
#[derive(Debug, Clone)]
pub struct FollowedChapter {
    /// The chapter, relative to the root.
    pub path: PathBuf,
    /// Wall time the reader spent in it.
    pub elapsed: Duration,
    /// Commands run.
    pub commands: usize,
    /// Files written.
    pub files: usize,
    /// Checkpoints passed.
    pub checkpoints: usize,
    /// False when the reader diverged in this chapter.
    pub completed: bool,
}

/// The result of [`follow`].
#[derive(Debug, Clone, Default)]
pub struct FollowReport {
    /// The chapters followed, in order (the last one is where the reader
    /// diverged, if they did).
    pub chapters: Vec<FollowedChapter>,
    /// What a reader could not follow: every problem found before running,
    /// or the first divergence.
    pub problems: Vec<Problem>,
    /// The scratch directory, when it was kept.
    pub scratch: Option<PathBuf>,
}

impl FollowReport {
    /// True when the reader got what the book promised.
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// The build-along chapters of the book at `root`, in `SUMMARY.md` order
/// (absolute paths), and a problem for each one `SUMMARY.md` does not list.
pub fn build_along_chapters(root: &Path) -> (Vec<PathBuf>, Vec<Problem>) {
    let root = absolute_root(root);
    let src = root.join("book").join("src");
    let marked: Vec<PathBuf> = markdown_files(&src)
        .into_iter()
        .filter(|path| fs::read_to_string(path).is_ok_and(|text| chapter::is_build_along(&text)))
        .collect();
    let mut ordered = Vec::new();
    if let Ok(summary) = fs::read_to_string(src.join("SUMMARY.md")) {
        for link in markdown::links(&summary) {
            let dest = link.dest.split(['#', '?']).next().unwrap_or("");
            if dest.is_empty() || dest.contains("://") {
                continue;
            }
            let path = normalize(&src.join(dest));
            if marked.contains(&path) && !ordered.contains(&path) {
                ordered.push(path);
            }
        }
    }
    let problems = marked
        .iter()
        .filter(|path| !ordered.contains(path))
        .map(|path| {
            Problem::new(
                relative(&root, path),
                None,
                "build-along chapter not listed in book/src/SUMMARY.md: readers follow the tutorial in SUMMARY.md order, so it must be there",
            )
        })
        .collect();
    (ordered, problems)
}

/// Follows the build-along chapters described by `options` as a reader
/// would, and reports where the reader's result first differs from the
/// book's.
pub fn follow(options: &FollowOptions) -> FollowReport {
    let root = absolute_root(&options.root);
    let mut report = FollowReport::default();
    let (mut chapters, problems) = build_along_chapters(&root);
    report.problems = problems;

    if let Some(until) = &options.until {
        match find_chapter(&root, until, &chapters) {
            Some(index) => chapters.truncate(index + 1),
            None => {
                report.problems.push(Problem::new(
                    until.clone(),
                    None,
                    "not a build-along chapter listed in SUMMARY.md (it needs a `<!-- build-along -->` line); `--chapter` takes the path of its Markdown file",
                ));
                return report;
            }
        }
    }

    if let Some(from) = &options.from {
        match find_chapter(&root, from, &chapters) {
            Some(index) => {
                chapters.drain(1..index.max(1));
            }
            None => {
                report.problems.push(Problem::new(
                    from.clone(),
                    None,
                    "not a build-along chapter listed in SUMMARY.md (it needs a `<!-- build-along -->` line); `--from` takes the path of its Markdown file",
                ));
                return report;
            }
        }
    }

    // Read every chapter first: what cannot be followed is reported at once.
    let mut parsed = Vec::new();
    for path in &chapters {
        let rel = relative(&root, path);
        match fs::read_to_string(path) {
            Ok(text) => {
                let chapter = chapter::parse(&root, path, &text);
                for issue in &chapter.issues {
                    report
                        .problems
                        .push(Problem::new(&rel, Some(issue.line), &issue.message));
                }
                parsed.push((rel, chapter));
            }
            Err(e) => report
                .problems
                .push(Problem::new(&rel, None, format!("cannot read: {e}"))),
        }
    }
    if !report.problems.is_empty() || parsed.is_empty() {
        report.problems.sort();
        return report;
    }

    let scratch = match scratch_dir() {
        Ok(dir) => dir,
        Err(e) => {
            report.problems.push(Problem::new(
                std::env::temp_dir(),
                None,
                format!("cannot create the scratch directory: {e}"),
            ));
            return report;
        }
    };
    let target_dir = options
        .target_dir
        .clone()
        .unwrap_or_else(|| root.join("target"));
    let mut env = options.env.clone();
    env.push(("CARGO_TARGET_DIR".into(), target_dir.into_os_string()));
    env.push((crate::commands::RELEASE_OPT_LEVEL_VAR.into(), "0".into()));
    env.extend(install_env(&scratch));
    let mut reader =
        shell::Reader::new(root.clone(), scratch.clone(), env, options.command_timeout);
    if options.progress {
        println!(
            "book-checker follow: the reader's home is {}",
            scratch.display()
        );
    }

    for (rel, chapter) in parsed {
        let started = Instant::now();
        let mut done = FollowedChapter {
            path: rel.clone(),
            elapsed: Duration::ZERO,
            commands: 0,
            files: 0,
            checkpoints: 0,
            completed: false,
        };
        if options.progress {
            println!("{}", rel.display());
        }
        let mut failure = None;
        for step in &chapter.steps {
            let (line, outcome) = match step {
                chapter::Step::Command {
                    line,
                    command,
                    expected,
                } => {
                    if options.progress {
                        println!("  {}:{line}: {}$ {command}", rel.display(), prompt(&reader));
                    }
                    done.commands += 1;
                    let outcome = reader.run(command).and_then(|printed| match expected {
                        Some(shown) => output::compare(shown, &printed),
                        None => Ok(()),
                    });
                    let outcome = outcome.map_err(|e| format!("`$ {command}` {e}"));
                    (line, outcome)
                }
                chapter::Step::File {
                    line,
                    path,
                    content,
                } => {
                    if options.progress {
                        println!(
                            "  {}:{line}: write {}",
                            rel.display(),
                            in_dir(&reader, path)
                        );
                    }
                    done.files += 1;
                    (line, reader.write(path, content))
                }
                chapter::Step::Checkpoint {
                    line,
                    listing,
                    shown,
                } => {
                    if options.progress {
                        println!(
                            "  {}:{line}: checkpoint: {} equals {shown}",
                            rel.display(),
                            reader.shown_cwd()
                        );
                    }
                    done.checkpoints += 1;
                    (line, checkpoint::compare(listing, shown, reader.cwd()))
                }
            };
            if let Err(message) = outcome {
                failure = Some(Problem::new(&rel, Some(*line), message));
                break;
            }
        }
        // The chapter's servers end with it, whether it passed or not: the
        // next chapter may listen on the same port.
        reader.stop_background();
        done.elapsed = started.elapsed();
        done.completed = failure.is_none();
        if options.progress {
            println!("  {:.1}s for {}", done.elapsed.as_secs_f64(), rel.display());
        }
        report.chapters.push(done);
        if let Some(problem) = failure {
            report.problems.push(problem);
            break;
        }
    }

    if report.is_ok() && !options.keep_scratch {
        let _ = fs::remove_dir_all(&scratch);
    } else {
        report.scratch = Some(scratch);
    }
    report
}

/// `cargo install` into the reader's (scratch) home: `CARGO_INSTALL_ROOT`
/// and a `PATH` that starts with its `bin`.
fn install_env(scratch: &Path) -> Vec<(OsString, OsString)> {
    let root = scratch.join(".cargo");
    let mut paths = vec![root.join("bin")];
    if let Some(path) = std::env::var_os("PATH") {
        paths.extend(std::env::split_paths(&path));
    }
    let path = std::env::join_paths(paths).unwrap_or_default();
    vec![
        ("CARGO_INSTALL_ROOT".into(), root.into_os_string()),
        ("PATH".into(), path),
    ]
}

/// `~/project $ ` style prompt for progress lines.
fn prompt(reader: &shell::Reader) -> String {
    format!("{} ", reader.shown_cwd())
}

fn in_dir(reader: &shell::Reader, path: &Path) -> String {
    format!("{}/{}", reader.shown_cwd(), path.display())
}

/// The index in `chapters` of the chapter `given` names.
fn find_chapter(root: &Path, given: &Path, chapters: &[PathBuf]) -> Option<usize> {
    let cwd = std::env::current_dir().unwrap_or_else(|_| root.to_path_buf());
    let candidates = [
        cwd.join(given),
        root.join(given),
        root.join("book").join("src").join(given),
    ];
    candidates
        .iter()
        .map(|candidate| normalize(candidate))
        .find_map(|candidate| chapters.iter().position(|c| *c == candidate))
}

/// A fresh, empty directory under the system's temporary directory.
fn scratch_dir() -> std::io::Result<PathBuf> {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    for attempt in 0..100u32 {
        let dir = std::env::temp_dir().join(format!(
            "book-follow-{}-{nanos}-{attempt}",
            std::process::id()
        ));
        match fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(std::io::Error::other(
        "no free name for a scratch directory",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cargo_install_goes_into_the_scratch_home() {
        let scratch = Path::new("/tmp/reader-home");
        let env = install_env(scratch);
        let root = env
            .iter()
            .find(|(key, _)| key == "CARGO_INSTALL_ROOT")
            .map(|(_, value)| PathBuf::from(value));
        assert_eq!(root, Some(scratch.join(".cargo")));
        let path = env
            .iter()
            .find(|(key, _)| key == "PATH")
            .map(|(_, value)| value.clone())
            .expect("PATH is set");
        let first = std::env::split_paths(&path).next();
        assert_eq!(first, Some(scratch.join(".cargo").join("bin")));
    }
}
