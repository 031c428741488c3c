//! The reader at the keyboard: runs a chapter's commands in the scratch
//! directory, keeps track of the current directory, and writes the files
//! the chapter shows.

use std::ffi::OsString;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use super::FRAMEWORK_REPOSITORY;
use crate::files::normalize;

/// Lines of a failed command's output shown in the report (the last ones).
const OUTPUT_LINES: usize = 120;

/// A reader following the book in the scratch directory.
pub(crate) struct Reader {
    /// The repository root: what `git clone` of the framework clones, and
    /// where the `Cargo.lock` for new projects comes from.
    root: PathBuf,
    /// The scratch directory, the reader's home.
    scratch: PathBuf,
    /// The reader's current directory.
    cwd: PathBuf,
    /// Variables set for every command (on top of the checker's own).
    env: Vec<(OsString, OsString)>,
    /// How long one command may run.
    timeout: Duration,
    /// The commands started with `&` in the current chapter.
    background: Background,
}

impl Reader {
    /// A reader in `scratch`.
    pub(crate) fn new(
        root: PathBuf,
        scratch: PathBuf,
        env: Vec<(OsString, OsString)>,
        timeout: Duration,
    ) -> Self {
        Self {
            root,
            cwd: scratch.clone(),
            scratch,
            env,
            timeout,
            background: Background::default(),
        }
    }

    /// The current directory as the reader would write it (`~` is the
    /// scratch directory).
    pub(crate) fn shown_cwd(&self) -> String {
        self.shown(&self.cwd)
    }

    /// The reader's current directory.
    pub(crate) fn cwd(&self) -> &Path {
        &self.cwd
    }

    fn shown(&self, path: &Path) -> String {
        match path.strip_prefix(&self.scratch) {
            Ok(rest) if rest.as_os_str().is_empty() => "~".to_owned(),
            Ok(rest) => format!("~/{}", rest.display()),
            Err(_) => path.display().to_string(),
        }
    }

    /// Runs one command the way the chapter shows it and returns what it
    /// printed (stdout and stderr, interleaved; nothing for a `cd`); `Err`
    /// says why it failed, with its output.
    pub(crate) fn run(&mut self, command: &str) -> Result<String, String> {
        if let Some(dir) = bare_cd(command) {
            return self.cd(&dir).map(|()| String::new());
        }
        let actual = self.substitute_clone(command);
        if let Some(foreground) = background_part(&actual) {
            let log = self.background_log();
            let cmd = self.bash(foreground);
            return self
                .background
                .start(command, cmd, Some(&log))
                .map(|()| String::new())
                .map_err(|e| format!("failed: it could not start in the background: {e}"));
        }
        let printed = match self.spawn(&actual) {
            Ok(printed) => printed,
            Err((failure, output)) => {
                let run_as = if actual == command {
                    String::new()
                } else {
                    format!(" (run as `{actual}`)")
                };
                return Err(format!(
                    "failed{run_as}: it {failure} in {}; its output:\n{}{}",
                    self.shown_cwd(),
                    tail(&output),
                    self.background.printed()
                ));
            }
        };
        if let Some(project) = new_project(command, &self.cwd) {
            self.copy_lock(&project)?;
        }
        Ok(printed)
    }

    /// Stops every command started with `&` (and everything each started):
    /// a chapter's servers end with the chapter, or when the follow fails.
    pub(crate) fn stop_background(&mut self) {
        self.background.stop();
    }

    /// A fresh file for the output of the next background command, outside
    /// the reader's projects (it is shown when a later command fails).
    fn background_log(&self) -> PathBuf {
        self.scratch
            .join(".book-follow")
            .join(format!("background-{}.log", self.background.started))
    }

    /// `bash -c command` in the current directory, with the reader's
    /// environment, in a process group of its own (so that stopping it,
    /// or a timeout, ends everything it started).
    fn bash(&self, command: &str) -> Command {
        let mut cmd = Command::new("bash");
        cmd.arg("-c")
            .arg(command)
            .current_dir(&self.cwd)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null());
        #[cfg(unix)]
        {
            use std::os::unix::process::CommandExt;
            cmd.process_group(0);
        }
        cmd
    }

    /// `cd DIR`, tracked here since every command runs in a shell of its own.
    fn cd(&mut self, dir: &str) -> Result<(), String> {
        let target = if dir.is_empty() || dir == "~" {
            self.scratch.clone()
        } else if let Some(rest) = dir.strip_prefix("~/") {
            self.scratch.join(rest)
        } else {
            self.cwd.join(dir)
        };
        let target = normalize(&target);
        if !target.is_dir() {
            return Err(format!(
                "failed: no such directory {} (the reader is in {})",
                self.shown(&target),
                self.shown_cwd()
            ));
        }
        self.cwd = target;
        Ok(())
    }

    /// The one substitution: the framework's repository URL becomes the
    /// local checkout (CI has no network). The clone keeps the directory
    /// name the URL would give.
    fn substitute_clone(&self, command: &str) -> String {
        let trimmed = command.trim_start();
        let Some(at) = command.find(FRAMEWORK_REPOSITORY) else {
            return command.to_owned();
        };
        if !trimmed.starts_with("git clone ") {
            return command.to_owned();
        }
        let after = &command[at + FRAMEWORK_REPOSITORY.len()..];
        let next = after.trim_start();
        let dir_given = after.starts_with(char::is_whitespace)
            && !next.is_empty()
            && !next.starts_with(['&', ';', '|', '>', '<', ')', '-', '#']);
        let mut local = shell_quote(&self.root.display().to_string());
        if !dir_given {
            local.push(' ');
            local.push_str(&default_clone_dir());
        }
        format!("{}{local}{after}", &command[..at])
    }

    /// Runs `bash -c command` in the current directory and returns its
    /// output (stdout and stderr as they came); `Err((why, output))` on a
    /// non-zero exit or a timeout.
    fn spawn(&self, command: &str) -> Result<String, (String, String)> {
        let mut cmd = self.bash(command);
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().map_err(|e| {
            (
                format!("could not start (cannot run bash: {e})"),
                String::new(),
            )
        })?;
        let output = Arc::new(Mutex::new(Vec::new()));
        let (done_tx, done_rx) = mpsc::channel();
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
            let output = Arc::clone(&output);
            let done = done_tx.clone();
            thread::spawn(move || {
                let mut stream = stream;
                let mut buf = [0u8; 8192];
                while let Ok(n) = stream.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    if let Ok(mut out) = output.lock() {
                        out.extend_from_slice(&buf[..n]);
                    }
                }
                let _ = done.send(());
            });
        }
        let started = Instant::now();
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break Ok(status),
                Ok(None) if started.elapsed() > self.timeout => {
                    kill_group(&mut child);
                    let _ = child.wait();
                    break Err(format!(
                        "did not finish within {}s (a command the reader runs must end by itself) and was killed",
                        self.timeout.as_secs()
                    ));
                }
                Ok(None) => thread::sleep(Duration::from_millis(20)),
                Err(e) => break Err(format!("cannot wait for bash: {e}")),
            }
        };
        // A background process may keep the pipes open; do not wait for it.
        for _ in 0..readers {
            if done_rx.recv_timeout(Duration::from_secs(2)).is_err() {
                break;
            }
        }
        let text = output
            .lock()
            .map(|out| String::from_utf8_lossy(&out).into_owned())
            .unwrap_or_default();
        let failure = match status {
            Ok(status) if status.success() => return Ok(text),
            Ok(status) => match status.code() {
                Some(code) => format!("exited with status {code}"),
                None => format!("was killed ({status})"),
            },
            Err(message) => message,
        };
        Err((failure, text))
    }

    /// Copies the repository's `Cargo.lock` into a project `cargo new` or
    /// `cargo init` just created, so it resolves the workspace's versions.
    fn copy_lock(&self, project: &Path) -> Result<(), String> {
        let lock = self.root.join("Cargo.lock");
        let target = project.join("Cargo.lock");
        if !lock.is_file() || !project.join("Cargo.toml").is_file() || target.exists() {
            return Ok(());
        }
        fs::copy(&lock, &target)
            .map(|_| ())
            .map_err(|e| format!("cannot copy Cargo.lock into {}: {e}", self.shown(project)))
    }

    /// Writes a file the chapter shows (its complete content), relative to
    /// the current directory.
    pub(crate) fn write(&self, path: &Path, content: &str) -> Result<(), String> {
        let target = normalize(&self.cwd.join(path));
        if let Some(parent) = target.parent() {
            fs::create_dir_all(parent)
                .map_err(|e| format!("cannot create {}: {e}", self.shown(parent)))?;
        }
        fs::write(&target, content)
            .map_err(|e| format!("cannot write {}: {e}", self.shown(&target)))
    }
}

/// The commands started in the background (`cmd &`): each leads a process
/// group of its own, and [`Background::stop`] (or dropping) ends every
/// group, so nothing they started outlives them.
#[derive(Default)]
pub(crate) struct Background {
    /// Each command as the chapter shows it, its process, and the file
    /// its output goes to (if any).
    running: Vec<(String, Child, Option<PathBuf>)>,
    /// How many were started, ever (names the log files).
    started: usize,
}

impl Background {
    /// Starts `cmd` (built to run `shown`, in a process group of its own)
    /// without waiting for it; its stdout and stderr go to `log` (created,
    /// with its directory), or nowhere.
    pub(crate) fn start(
        &mut self,
        shown: &str,
        mut cmd: Command,
        log: Option<&Path>,
    ) -> std::io::Result<()> {
        let (stdout, stderr) = match log {
            Some(path) => {
                if let Some(parent) = path.parent() {
                    fs::create_dir_all(parent)?;
                }
                let file = fs::File::create(path)?;
                (Stdio::from(file.try_clone()?), Stdio::from(file))
            }
            None => (Stdio::null(), Stdio::null()),
        };
        let child = cmd.stdout(stdout).stderr(stderr).spawn()?;
        self.started += 1;
        self.running
            .push((shown.to_owned(), child, log.map(Path::to_path_buf)));
        Ok(())
    }

    /// The output so far of each background command that has a log, for a
    /// failure report (empty when there is none): a server's error is
    /// often why the command that used it failed.
    pub(crate) fn printed(&self) -> String {
        let mut out = String::new();
        for (shown, child, log) in &self.running {
            let Some(log) = log else { continue };
            let text = fs::read_to_string(log).unwrap_or_default();
            out.push_str(&format!(
                "the background command `{shown}` (process {}) printed so far:\n{}",
                child.id(),
                tail(&text)
            ));
        }
        out
    }

    /// Ends every background command and everything it started.
    pub(crate) fn stop(&mut self) {
        for (_, mut child, _) in self.running.drain(..) {
            kill_group(&mut child);
            let _ = child.wait();
        }
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `cmd` for a command written `cmd &` (a single trailing `&`, not `&&`):
/// started in the background, as a reader starts a server and goes on.
pub(crate) fn background_part(command: &str) -> Option<&str> {
    let trimmed = command.trim_end();
    let rest = trimmed.strip_suffix('&')?;
    if rest.ends_with('&') || rest.trim().is_empty() {
        return None;
    }
    Some(rest.trim_end())
}

/// Ends the process group of `child` (which leads it).
pub(crate) fn kill_group(child: &mut std::process::Child) {
    #[cfg(unix)]
    {
        let group = format!("-{}", child.id());
        let killed = Command::new("kill")
            .args(["-KILL", "--", &group])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if killed {
            return;
        }
    }
    let _ = child.kill();
}

/// The last [`OUTPUT_LINES`] lines of `text`, indented.
pub(crate) fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let skip = lines.len().saturating_sub(OUTPUT_LINES);
    let mut out = String::new();
    if skip > 0 {
        out.push_str(&format!("    ... ({skip} earlier lines)\n"));
    }
    if lines.is_empty() {
        out.push_str("    (no output)\n");
    }
    for line in &lines[skip..] {
        out.push_str("    ");
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// The directory `git clone` makes from the framework's URL.
pub(crate) fn default_clone_dir() -> String {
    let last = FRAMEWORK_REPOSITORY
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or("");
    last.strip_suffix(".git").unwrap_or(last).to_owned()
}

/// `text` quoted for bash.
fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// Splits a simple command into words (whitespace-separated, `'...'` and
/// `"..."` quoting); `None` if it uses anything else of the shell.
fn simple_words(command: &str) -> Option<Vec<String>> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = command.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' | '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some(d) if d == c => break,
                        Some('\\') if c == '"' => word.push(chars.next()?),
                        Some(d) => word.push(d),
                        None => return None,
                    }
                }
            }
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            '&' | ';' | '|' | '<' | '>' | '$' | '`' | '(' | ')' | '\\' | '*' | '?' | '{' | '}' => {
                return None;
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    Some(words)
}

/// The directory of a bare `cd DIR` (empty for a bare `cd`).
pub(crate) fn bare_cd(command: &str) -> Option<String> {
    let words = simple_words(command)?;
    match words.as_slice() {
        [cd] if cd == "cd" => Some(String::new()),
        [cd, dir] if cd == "cd" => Some(dir.clone()),
        _ => None,
    }
}

/// The project directory a command starting with `cargo new` / `cargo init`
/// / `composable new NAME` creates (relative to `cwd`).
pub(crate) fn new_project(command: &str, cwd: &Path) -> Option<PathBuf> {
    let first = command.split(['&', ';', '|']).next().unwrap_or(command);
    let words = simple_words(first)?;
    let (cargo, rest) = words.split_first()?;
    let (sub, args) = rest.split_first()?;
    if cargo == "composable" && sub == "new" {
        // `composable new NAME [--framework-path DIR] [--dry-run]`: NAME is
        // the first word that is neither an option nor its value.
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            if arg == "--framework-path" {
                args.next();
            } else if arg == "--dry-run" {
                return None;
            } else if !arg.starts_with('-') {
                return Some(normalize(&cwd.join(arg)));
            }
        }
        return None;
    }
    if cargo != "cargo" || (sub != "new" && sub != "init") {
        return None;
    }
    const TAKES_VALUE: [&str; 6] = [
        "--name",
        "--vcs",
        "--edition",
        "--registry",
        "--config",
        "-Z",
    ];
    let mut args = args.iter();
    let mut path = None;
    while let Some(arg) = args.next() {
        if TAKES_VALUE.contains(&arg.as_str()) {
            args.next();
        } else if !arg.starts_with('-') {
            path = Some(arg.clone());
            break;
        }
    }
    match (sub.as_str(), path) {
        (_, Some(path)) => Some(normalize(&cwd.join(path))),
        ("init", None) => Some(cwd.to_path_buf()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_single_trailing_ampersand_means_background() {
        assert_eq!(
            background_part("cargo run -p x -- --serve 127.0.0.1:1 &"),
            Some("cargo run -p x -- --serve 127.0.0.1:1")
        );
        assert_eq!(background_part("cargo run -q &"), Some("cargo run -q"));
        assert_eq!(background_part("a && b"), None);
        assert_eq!(background_part("a &&"), None);
        assert_eq!(background_part("&"), None);
        assert_eq!(background_part("cargo test"), None);
    }

    #[test]
    fn cd_is_tracked_only_alone() {
        assert_eq!(bare_cd("cd bank"), Some("bank".into()));
        assert_eq!(bare_cd("cd 'my bank'"), Some("my bank".into()));
        assert_eq!(bare_cd("cd"), Some(String::new()));
        assert_eq!(bare_cd("cd bank && cargo test"), None);
        assert_eq!(bare_cd("cd $HOME"), None);
        assert_eq!(bare_cd("cargo test"), None);
    }

    #[test]
    fn new_projects() {
        let cwd = Path::new("/home/reader");
        assert_eq!(
            new_project("cargo new --lib bank", cwd),
            Some(PathBuf::from("/home/reader/bank"))
        );
        assert_eq!(
            new_project("cargo new --vcs none --name b projects/bank && cd x", cwd),
            Some(PathBuf::from("/home/reader/projects/bank"))
        );
        assert_eq!(new_project("cargo init", cwd), Some(cwd.to_path_buf()));
        assert_eq!(new_project("cargo new", cwd), None);
        assert_eq!(new_project("cargo add tokio", cwd), None);
        assert_eq!(
            new_project("composable new shop --framework-path composable-rust", cwd),
            Some(PathBuf::from("/home/reader/shop"))
        );
        assert_eq!(
            new_project("composable new --framework-path fw shop", cwd),
            Some(PathBuf::from("/home/reader/shop"))
        );
        assert_eq!(new_project("composable new --dry-run shop", cwd), None);
        assert_eq!(new_project("composable add aggregate Account", cwd), None);
    }

    #[test]
    fn clone_of_the_framework_is_local() {
        let reader = Reader::new(
            PathBuf::from("/work/repo"),
            PathBuf::from("/tmp/s"),
            Vec::new(),
            Duration::from_secs(1),
        );
        let url = FRAMEWORK_REPOSITORY;
        assert_eq!(
            reader.substitute_clone(&format!("git clone {url}")),
            "git clone '/work/repo' composable-rust"
        );
        assert_eq!(
            reader.substitute_clone(&format!("git clone {url} fw && cd fw")),
            "git clone '/work/repo' fw && cd fw"
        );
        assert_eq!(
            reader.substitute_clone(&format!("git clone {url} && ls")),
            "git clone '/work/repo' composable-rust && ls"
        );
        assert_eq!(
            reader.substitute_clone(&format!("echo {url}")),
            format!("echo {url}")
        );
        assert_eq!(
            reader.substitute_clone("git clone https://example.com/other.git"),
            "git clone https://example.com/other.git"
        );
    }
}
