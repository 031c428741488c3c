//! `book-checker commands`: runs every command the reference chapters show.
//!
//! [`follow()`](crate::follow()) runs the build-along chapters as a reader
//! would, in a scratch home. The other chapters (the reference chapters, the
//! appendices) show commands too, run from the framework's checkout:
//! `cargo test -p listing-05-01`, `cargo bench ...`, `redis-cli ...`. A
//! command the book shows but CI never runs goes stale unnoticed (a renamed
//! package, a removed flag), so [`run_commands`] runs them all, verbatim, in
//! `SUMMARY.md` order, and fails at the chapter:line of the first command
//! that fails.
//!
//! # Conventions
//!
//! - Every `$ ` line of a ```` ```console ```` fence outside an `admonish`
//!   block is a command (a line ending in `\` continues on the next), as in
//!   build-along chapters. It runs with `bash -c` in the current directory,
//!   which starts at the repository root for each chapter; a bare `cd DIR`
//!   changes it for the commands after it.
//! - A command ending in a single `&` is started in the background, as a
//!   reader would start a server in one terminal and use it from another;
//!   it (and everything it started) is stopped when the chapter's commands
//!   are done. A command that uses the server must wait for it by itself
//!   (e.g. `curl --retry-connrefused`), as it must for a reader.
//! - Commands run with the checker's environment (`DATABASE_URL`,
//!   `REDIS_URL`, ...) plus `COMPOSABLE_BENCH_SMOKE=1`: the framework's
//!   benchmarks then run each measurement briefly and say that their figures
//!   are not measurements. They are also built without optimisation
//!   (`CARGO_PROFILE_BENCH_OPT_LEVEL=0`, and `..._RELEASE_...` for the
//!   `cargo test --release` of a benchmark run as a test), which takes a
//!   fraction of an optimised build's time. The command is verbatim; only how it is built
//!   and how long it measures change, so CI proves every benchmark the book
//!   shows builds and runs without spending many minutes on it. Figures
//!   come only from full, optimised runs.
//! - Output is not compared (listings with an `output.txt` are compared by
//!   `book-checker check`).

use std::ffi::OsString;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use crate::Problem;
use crate::files::{absolute_root, normalize, relative};
use crate::follow::chapter::{self, Step};
use crate::follow::shell::{Background, background_part, kill_group, tail};
use crate::markdown;

/// The variable that puts the framework's benchmarks in smoke mode.
pub const BENCH_SMOKE_VAR: &str = "COMPOSABLE_BENCH_SMOKE";

/// Cargo's setting for the `bench` profile's optimisation level; a smoke run
/// builds unoptimised.
pub const BENCH_OPT_LEVEL_VAR: &str = "CARGO_PROFILE_BENCH_OPT_LEVEL";

/// Cargo's setting for the `release` profile's optimisation level, set like
/// [`BENCH_OPT_LEVEL_VAR`]: the two profiles then have the same settings,
/// so a `cargo bench` and a `cargo test --release` share every compiled
/// dependency in `target/release` instead of building it twice.
pub const RELEASE_OPT_LEVEL_VAR: &str = "CARGO_PROFILE_RELEASE_OPT_LEVEL";

/// What to run and how.
#[derive(Debug, Clone)]
pub struct CommandsOptions {
    /// The repository root.
    pub root: PathBuf,
    /// Run only this chapter (a path to its Markdown file, relative to the
    /// root or to `book/src`, or absolute); `None` runs every chapter.
    pub only: Option<PathBuf>,
    /// Extra environment variables for every command.
    pub env: Vec<(OsString, OsString)>,
    /// How long one foreground command may run.
    pub command_timeout: Duration,
    /// Print each command as it runs.
    pub progress: bool,
}

impl CommandsOptions {
    /// Runs every reference chapter's commands of the repository at `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self {
            root: root.into(),
            only: None,
            env: Vec::new(),
            command_timeout: crate::follow::DEFAULT_COMMAND_TIMEOUT,
            progress: false,
        }
    }
}

/// One chapter whose commands ran.
#[derive(Debug, Clone)]
pub struct ChapterRun {
    /// The chapter, relative to the root.
    pub path: PathBuf,
    /// Commands run (foreground and background).
    pub commands: usize,
    /// Wall time.
    pub elapsed: Duration,
}

/// The result of [`run_commands`].
#[derive(Debug, Clone, Default)]
pub struct CommandsReport {
    /// The chapters with commands, in order (the last one failed if there is
    /// a problem).
    pub chapters: Vec<ChapterRun>,
    /// The first failing command, if any.
    pub problems: Vec<Problem>,
}

impl CommandsReport {
    /// True when every command succeeded.
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Runs the commands of every chapter that is not build-along, in
/// `SUMMARY.md` order.
pub fn run_commands(options: &CommandsOptions) -> CommandsReport {
    let root = absolute_root(&options.root);
    let src = root.join("book").join("src");
    let mut report = CommandsReport::default();
    let only = options.only.as_ref().map(|path| resolve(&root, path));
    for path in summary_chapters(&src) {
        if only.as_ref().is_some_and(|only| only != &path) {
            continue;
        }
        let Ok(text) = fs::read_to_string(&path) else {
            continue;
        };
        if chapter::is_build_along(&text) {
            continue;
        }
        let commands: Vec<(usize, String)> = chapter::parse(&root, &path, &text)
            .steps
            .into_iter()
            .filter_map(|step| match step {
                Step::Command { line, command, .. } => Some((line, command)),
                _ => None,
            })
            .collect();
        if commands.is_empty() {
            continue;
        }
        let shown = relative(&root, &path);
        let started = Instant::now();
        let mut runner = Runner::new(&root, options);
        let mut failure = None;
        for (line, command) in &commands {
            if options.progress {
                println!("{}:{line}: $ {command}", shown.display());
            }
            if let Err(message) = runner.run(command) {
                failure = Some(Problem::new(
                    shown.clone(),
                    Some(*line),
                    format!("`{command}` {message}"),
                ));
                break;
            }
        }
        runner.stop_background();
        report.chapters.push(ChapterRun {
            path: shown,
            commands: commands.len(),
            elapsed: started.elapsed(),
        });
        if let Some(problem) = failure {
            report.problems.push(problem);
            break;
        }
    }
    report
}

/// The chapters `SUMMARY.md` lists, in order, as absolute paths.
fn summary_chapters(src: &Path) -> Vec<PathBuf> {
    let Ok(summary) = fs::read_to_string(src.join("SUMMARY.md")) else {
        return Vec::new();
    };
    let mut chapters = Vec::new();
    for link in markdown::links(&summary) {
        let dest = link.dest.split(['#', '?']).next().unwrap_or("");
        if dest.is_empty() || dest.contains("://") {
            continue;
        }
        let path = normalize(&src.join(dest));
        if !chapters.contains(&path) {
            chapters.push(path);
        }
    }
    chapters
}

fn resolve(root: &Path, path: &Path) -> PathBuf {
    if path.is_absolute() {
        return normalize(path);
    }
    let candidates = [root.join(path), root.join("book").join("src").join(path)];
    candidates
        .iter()
        .find(|candidate| candidate.is_file())
        .map_or_else(|| normalize(&root.join(path)), |found| normalize(found))
}

/// Runs one chapter's commands from the repository root.
struct Runner<'a> {
    root: &'a Path,
    cwd: PathBuf,
    options: &'a CommandsOptions,
    background: Background,
}

impl<'a> Runner<'a> {
    fn new(root: &'a Path, options: &'a CommandsOptions) -> Self {
        Self {
            root,
            cwd: root.to_path_buf(),
            options,
            background: Background::default(),
        }
    }

    fn run(&mut self, command: &str) -> Result<(), String> {
        if let Some(dir) = crate::follow::shell::bare_cd(command) {
            let target = if dir.is_empty() {
                self.root.to_path_buf()
            } else {
                normalize(&self.cwd.join(dir))
            };
            if !target.is_dir() {
                return Err(format!("failed: no such directory {}", target.display()));
            }
            self.cwd = target;
            return Ok(());
        }
        match background_part(command) {
            Some(foreground) => self.start_background(foreground),
            None => self.run_foreground(command),
        }
    }

    fn command(&self, command: &str) -> Command {
        let mut cmd = Command::new("bash");
        cmd.arg("-c")
            .arg(command)
            .current_dir(&self.cwd)
            .env(BENCH_SMOKE_VAR, "1")
            .env(BENCH_OPT_LEVEL_VAR, "0")
            .env(RELEASE_OPT_LEVEL_VAR, "0")
            .envs(self.options.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null());
        #[cfg(unix)]
        {
            use std::os::unix::process::CommandExt;
            // Its own process group, so stopping it ends everything it started.
            cmd.process_group(0);
        }
        cmd
    }

    fn start_background(&mut self, command: &str) -> Result<(), String> {
        let cmd = self.command(command);
        self.background
            .start(command, cmd, None)
            .map_err(|e| format!("could not start in the background: {e}"))
    }

    fn run_foreground(&mut self, command: &str) -> Result<(), String> {
        let mut child = self
            .command(command)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("could not start (cannot run bash: {e})"))?;
        let (tx, rx) = mpsc::channel::<Vec<u8>>();
        let mut readers = 0;
        for stream in [
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn Read + Send>),
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn Read + Send>),
        ]
        .into_iter()
        .flatten()
        {
            readers += 1;
            let tx = tx.clone();
            thread::spawn(move || {
                let mut stream = stream;
                let mut buf = [0u8; 8192];
                while let Ok(n) = stream.read(&mut buf) {
                    if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                        break;
                    }
                }
            });
        }
        drop(tx);
        let started = Instant::now();
        let mut output = Vec::new();
        let status = loop {
            while let Ok(chunk) = rx.try_recv() {
                output.extend_from_slice(&chunk);
            }
            match child.try_wait() {
                Ok(Some(status)) => break Ok(status),
                Ok(None) if started.elapsed() > self.options.command_timeout => {
                    kill_group(&mut child);
                    let _ = child.wait();
                    break Err(format!(
                        "did not finish within {}s and was killed (a command that serves forever ends in `&`)",
                        self.options.command_timeout.as_secs()
                    ));
                }
                Ok(None) => thread::sleep(Duration::from_millis(20)),
                Err(e) => break Err(format!("cannot wait for bash: {e}")),
            }
        };
        // Drain what is left; a background grandchild may hold the pipes, so
        // do not wait long.
        let deadline = Instant::now() + Duration::from_secs(2);
        while readers > 0 && Instant::now() < deadline {
            match rx.recv_timeout(Duration::from_millis(100)) {
                Ok(chunk) => output.extend_from_slice(&chunk),
                Err(mpsc::RecvTimeoutError::Disconnected) => readers = 0,
                Err(mpsc::RecvTimeoutError::Timeout) => {}
            }
        }
        let failure = match status {
            Ok(status) if status.success() => return Ok(()),
            Ok(status) => match status.code() {
                Some(code) => format!("exited with status {code}"),
                None => format!("was killed ({status})"),
            },
            Err(message) => message,
        };
        Err(format!(
            "failed: it {failure} in {}; its output:\n{}",
            relative(self.root, &self.cwd).display(),
            tail(&String::from_utf8_lossy(&output))
        ))
    }

    fn stop_background(&mut self) {
        self.background.stop();
    }
}
