//! Headless Chromium driven through the DevTools protocol, std only.
//!
//! Chromium is started with `--remote-debugging-pipe`: it reads protocol
//! messages (JSON, each ended by a NUL byte) from file descriptor 3 and
//! writes its replies and events to descriptor 4. A `sh -c 'exec ...'`
//! wrapper connects those descriptors to the child's stdin and stdout, so no
//! WebSocket client (and no unsafe `pre_exec`) is needed. One browser serves
//! many tabs at once: each [`Tab`] is a target attached in "flatten" mode,
//! its messages tagged with its session id on the same pipe.

use std::collections::{HashMap, VecDeque};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// The environment variable naming the Chromium (or Chrome) binary to use.
pub const CHROMIUM_VAR: &str = "BOOK_CHECKER_CHROMIUM";

/// The names looked up on `PATH` when [`CHROMIUM_VAR`] is not set.
const CHROMIUM_NAMES: &[&str] = &[
    "chromium",
    "chromium-browser",
    "google-chrome",
    "google-chrome-stable",
];

/// Flags for a quiet headless browser on an offline machine: without the
/// background-networking ones Chromium keeps trying (and failing) to reach
/// Google's services, which costs time and fills its log.
const FLAGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-dev-shm-usage",
    "--mute-audio",
    "--hide-scrollbars",
    "--window-size=1280,1000",
    // Several tabs work at once; none may be throttled as a background tab
    // (timers once a second, a low-priority renderer).
    "--disable-background-timer-throttling",
    "--disable-renderer-backgrounding",
    "--disable-backgrounding-occluded-windows",
    "--remote-debugging-pipe",
];

/// Runs in every page before its own scripts. mdBook's print.html calls
/// `window.print()` once loaded, and a check has nothing to print. Mermaid
/// replaces a diagram's source with its SVG, so the source is kept (at
/// DOMContentLoaded, before mermaid starts) for the page probe to name the
/// diagram and ask mermaid why it failed.
const ON_NEW_DOCUMENT: &str = "
window.print = () => {};
document.addEventListener('DOMContentLoaded', () => {
    for (const el of document.querySelectorAll('pre.mermaid, div.mermaid')) {
        el.dataset.bookCheckerSource = el.textContent;
    }
});
";

/// The browser binary: [`CHROMIUM_VAR`] if set, else the first of
/// `chromium`, `chromium-browser`, `google-chrome`, `google-chrome-stable`
/// on `PATH`.
pub fn find_chromium() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(CHROMIUM_VAR).filter(|path| !path.is_empty()) {
        return Some(PathBuf::from(path));
    }
    let path = std::env::var_os("PATH")?;
    CHROMIUM_NAMES.iter().find_map(|name| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(name))
            .find(|candidate| candidate.is_file())
    })
}

type Reply = Result<Value, String>;

#[derive(Default)]
struct Routes {
    /// Replies awaited, by message id.
    pending: HashMap<u64, Sender<Reply>>,
    /// Event channels of the attached tabs, by session id.
    sessions: HashMap<String, Sender<Value>>,
    /// Why the pipe closed, once it has.
    closed: Option<String>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A running headless Chromium.
pub struct Browser {
    child: Child,
    input: Mutex<ChildStdin>,
    next_id: AtomicU64,
    routes: Arc<Mutex<Routes>>,
    stderr: Arc<Mutex<VecDeque<String>>>,
    threads: Vec<JoinHandle<()>>,
    profile: PathBuf,
}

impl std::fmt::Debug for Browser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Browser")
            .field("pid", &self.child.id())
            .field("profile", &self.profile)
            .finish_non_exhaustive()
    }
}

impl Browser {
    /// Starts `binary` headless, with a fresh profile directory, and checks
    /// that it answers.
    pub fn launch(binary: &Path) -> Result<Self, String> {
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |since| since.as_nanos());
        let profile = std::env::temp_dir().join(format!(
            "book-checker-chromium-{}-{stamp}-{}",
            std::process::id(),
            unique()
        ));
        std::fs::create_dir_all(&profile)
            .map_err(|e| format!("cannot create {}: {e}", profile.display()))?;
        let mut child = Command::new("sh")
            .arg("-c")
            // fd 3 reads what we write to stdin, fd 4 writes to our stdout.
            .arg(r#"exec "$0" "$@" 3<&0 4>&1 0</dev/null 1>/dev/null"#)
            .arg(binary)
            .args(FLAGS)
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg("about:blank")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
        let input = child.stdin.take().ok_or("no stdin")?;
        let output = child.stdout.take().ok_or("no stdout")?;
        let errors = child.stderr.take().ok_or("no stderr")?;

        let routes = Arc::new(Mutex::new(Routes::default()));
        let stderr = Arc::new(Mutex::new(VecDeque::new()));
        let reader_routes = Arc::clone(&routes);
        let reader = thread::spawn(move || read_messages(output, &reader_routes));
        let stderr_tail = Arc::clone(&stderr);
        let drain = thread::spawn(move || {
            for line in BufReader::new(errors).lines() {
                let Ok(line) = line else { break };
                let mut tail = lock(&stderr_tail);
                if tail.len() == 20 {
                    tail.pop_front();
                }
                tail.push_back(line);
            }
        });
        let browser = Self {
            child,
            input: Mutex::new(input),
            next_id: AtomicU64::new(1),
            routes,
            stderr,
            threads: vec![reader, drain],
            profile,
        };
        browser
            .call(
                None,
                "Browser.getVersion",
                json!({}),
                Duration::from_secs(30),
            )
            .map_err(|e| {
                format!(
                    "{} did not answer on the DevTools pipe: {e}{}",
                    binary.display(),
                    browser.stderr_tail()
                )
            })?;
        Ok(browser)
    }

    /// The browser's product and version, e.g. `Chrome/130.0.6723.116`
    /// (headless Chromium calls itself Chrome).
    pub fn version(&self) -> Result<String, String> {
        let version = self.call(
            None,
            "Browser.getVersion",
            json!({}),
            Duration::from_secs(30),
        )?;
        Ok(version["product"].as_str().unwrap_or("unknown").to_owned())
    }

    /// The last lines Chromium wrote to stderr, for error messages.
    pub fn stderr_tail(&self) -> String {
        let tail = lock(&self.stderr);
        if tail.is_empty() {
            String::new()
        } else {
            let lines: Vec<&str> = tail.iter().map(String::as_str).collect();
            format!("\nchromium's stderr ends with:\n  {}", lines.join("\n  "))
        }
    }

    /// Sends one command (to a tab's session, or to the browser) and waits
    /// for its reply.
    fn call(
        &self,
        session: Option<&str>,
        method: &str,
        params: Value,
        timeout: Duration,
    ) -> Result<Value, String> {
        let id = self.next_id.fetch_add(1, Ordering::SeqCst);
        let (tx, rx) = mpsc::channel();
        {
            let mut routes = lock(&self.routes);
            if let Some(why) = &routes.closed {
                return Err(why.clone());
            }
            routes.pending.insert(id, tx);
        }
        let mut message = json!({ "id": id, "method": method, "params": params });
        if let Some(session) = session {
            message["sessionId"] = Value::from(session);
        }
        let mut bytes = message.to_string().into_bytes();
        bytes.push(0);
        {
            let mut input = lock(&self.input);
            if let Err(e) = input.write_all(&bytes).and_then(|()| input.flush()) {
                lock(&self.routes).pending.remove(&id);
                return Err(format!("cannot write to the browser: {e}"));
            }
        }
        match rx.recv_timeout(timeout) {
            Ok(reply) => reply,
            Err(RecvTimeoutError::Timeout) => {
                lock(&self.routes).pending.remove(&id);
                Err(format!(
                    "{method} got no reply within {}s",
                    timeout.as_secs()
                ))
            }
            Err(RecvTimeoutError::Disconnected) => Err("the browser went away".to_owned()),
        }
    }

    /// Opens a new tab on `about:blank`, with the page, runtime and log
    /// domains enabled so that its console errors are reported.
    pub fn new_tab(&self) -> Result<Tab<'_>, String> {
        let timeout = Duration::from_secs(30);
        let created = self.call(
            None,
            "Target.createTarget",
            json!({ "url": "about:blank" }),
            timeout,
        )?;
        let target = created["targetId"]
            .as_str()
            .ok_or("Target.createTarget returned no targetId")?
            .to_owned();
        let attached = self.call(
            None,
            "Target.attachToTarget",
            json!({ "targetId": target, "flatten": true }),
            timeout,
        )?;
        let session = attached["sessionId"]
            .as_str()
            .ok_or("Target.attachToTarget returned no sessionId")?
            .to_owned();
        let (tx, events) = mpsc::channel();
        lock(&self.routes).sessions.insert(session.clone(), tx);
        let tab = Tab {
            browser: self,
            target,
            session,
            events,
            errors: Vec::new(),
        };
        for domain in ["Page", "Runtime", "Log"] {
            tab.call(&format!("{domain}.enable"), json!({}), timeout)?;
        }
        tab.call(
            "Page.addScriptToEvaluateOnNewDocument",
            json!({ "source": ON_NEW_DOCUMENT }),
            timeout,
        )?;
        Ok(tab)
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.call(None, "Browser.close", json!({}), Duration::from_secs(5));
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                break;
            }
            thread::sleep(Duration::from_millis(50));
        }
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// A process-wide counter, so two browsers started in the same nanosecond
/// still get different profile directories.
fn unique() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::SeqCst)
}

/// Reads NUL-separated messages until the pipe closes, routing replies to
/// their callers and events to their tabs.
fn read_messages(output: impl Read, routes: &Mutex<Routes>) {
    let mut reader = BufReader::new(output);
    let mut buffer = Vec::new();
    loop {
        buffer.clear();
        match reader.read_until(0, &mut buffer) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        if buffer.last() == Some(&0) {
            buffer.pop();
        }
        let Ok(message) = serde_json::from_slice::<Value>(&buffer) else {
            continue;
        };
        let mut routes = lock(routes);
        if let Some(id) = message.get("id").and_then(Value::as_u64) {
            if let Some(tx) = routes.pending.remove(&id) {
                let reply = match message.get("error") {
                    Some(error) => Err(format!(
                        "DevTools error: {}",
                        error["message"].as_str().unwrap_or("unknown")
                    )),
                    None => Ok(message.get("result").cloned().unwrap_or(Value::Null)),
                };
                let _ = tx.send(reply);
            }
        } else if let Some(session) = message.get("sessionId").and_then(Value::as_str)
            && let Some(tx) = routes.sessions.get(session)
        {
            let _ = tx.send(message);
        }
    }
    let mut routes = lock(routes);
    routes.closed = Some("the browser closed its DevTools pipe (did it crash?)".to_owned());
    for (_, tx) in routes.pending.drain() {
        let _ = tx.send(Err("the browser closed its DevTools pipe".to_owned()));
    }
    routes.sessions.clear();
}

/// One tab of a [`Browser`]; closed when dropped.
pub struct Tab<'a> {
    browser: &'a Browser,
    target: String,
    session: String,
    events: Receiver<Value>,
    errors: Vec<String>,
}

impl std::fmt::Debug for Tab<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tab")
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

impl Tab<'_> {
    fn call(&self, method: &str, params: Value, timeout: Duration) -> Result<Value, String> {
        self.browser
            .call(Some(&self.session), method, params, timeout)
    }

    /// Loads `url` and waits for its `load` event (scripts and stylesheets
    /// loaded, `onload` handlers run).
    pub fn navigate(&mut self, url: &str, timeout: Duration) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        let navigated = self.call("Page.navigate", json!({ "url": url }), timeout)?;
        if let Some(error) = navigated["errorText"].as_str().filter(|e| !e.is_empty()) {
            return Err(format!("cannot load {url}: {error}"));
        }
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.events.recv_timeout(left) {
                Ok(event) if event["method"] == "Page.loadEventFired" => return Ok(()),
                Ok(event) => self.note(&event),
                Err(_) => {
                    return Err(format!(
                        "{url} did not finish loading within {}s",
                        timeout.as_secs()
                    ));
                }
            }
        }
    }

    /// Evaluates a JavaScript expression in the page, awaiting it if it is a
    /// promise, and returns its value (as JSON).
    pub fn evaluate(&mut self, expression: &str, timeout: Duration) -> Result<Value, String> {
        let reply = self.call(
            "Runtime.evaluate",
            json!({
                "expression": expression,
                "awaitPromise": true,
                "returnByValue": true,
            }),
            timeout,
        )?;
        if let Some(details) = reply.get("exceptionDetails") {
            return Err(format!(
                "the check script failed: {}",
                describe_exception(details)
            ));
        }
        Ok(reply["result"]["value"].clone())
    }

    /// The console errors, uncaught exceptions and error log entries (a
    /// failed request, a blocked script) the page produced so far, waiting
    /// `grace` for late ones.
    pub fn console_errors(&mut self, grace: Duration) -> Vec<String> {
        let deadline = Instant::now() + grace;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.events.recv_timeout(left) {
                Ok(event) => self.note(&event),
                Err(_) => break,
            }
        }
        std::mem::take(&mut self.errors)
    }

    /// Records `event` if it reports an error.
    fn note(&mut self, event: &Value) {
        if let Some(error) = console_error(event) {
            self.errors.push(error);
        }
    }
}

impl Drop for Tab<'_> {
    fn drop(&mut self) {
        let _ = self.browser.call(
            None,
            "Target.closeTarget",
            json!({ "targetId": self.target }),
            Duration::from_secs(10),
        );
        lock(&self.browser.routes).sessions.remove(&self.session);
    }
}

/// The error an event reports, if it reports one: an uncaught exception, a
/// `console.error` (or failed `console.assert`), or a log entry of level
/// `error` (e.g. "Failed to load resource: 404").
pub(crate) fn console_error(event: &Value) -> Option<String> {
    let params = &event["params"];
    match event["method"].as_str()? {
        "Runtime.exceptionThrown" => Some(format!(
            "uncaught exception: {}",
            describe_exception(&params["exceptionDetails"])
        )),
        "Runtime.consoleAPICalled" => {
            let kind = params["type"].as_str()?;
            if kind != "error" && kind != "assert" {
                return None;
            }
            let args: Vec<String> = params["args"]
                .as_array()
                .map(|args| args.iter().map(remote_object_text).collect())
                .unwrap_or_default();
            let frame = &params["stackTrace"]["callFrames"][0];
            Some(format!(
                "console.{kind}: {}{}",
                args.join(" "),
                location(&frame["url"], &frame["lineNumber"])
            ))
        }
        "Log.entryAdded" => {
            let entry = &params["entry"];
            if entry["level"].as_str()? != "error" {
                return None;
            }
            Some(format!(
                "{} error: {}{}",
                entry["source"].as_str().unwrap_or("browser"),
                entry["text"].as_str().unwrap_or(""),
                location(&entry["url"], &entry["lineNumber"])
            ))
        }
        _ => None,
    }
}

fn describe_exception(details: &Value) -> String {
    let text = details["exception"]["description"]
        .as_str()
        .or_else(|| details["text"].as_str())
        .unwrap_or("unknown exception");
    // A stack trace's first line is enough to find it.
    let first = text.lines().next().unwrap_or(text);
    format!(
        "{first}{}",
        location(&details["url"], &details["lineNumber"])
    )
}

fn remote_object_text(object: &Value) -> String {
    match &object["value"] {
        Value::String(text) => text.clone(),
        Value::Null => object["description"]
            .as_str()
            .unwrap_or("undefined")
            .to_owned(),
        other => other.to_string(),
    }
}

/// ` (at URL:LINE)`, or nothing when the URL is unknown. Line numbers in
/// the protocol count from 0.
fn location(url: &Value, line: &Value) -> String {
    match (url.as_str().filter(|url| !url.is_empty()), line.as_u64()) {
        (Some(url), Some(line)) => format!(" (at {url}:{})", line + 1),
        (Some(url), None) => format!(" (at {url})"),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn console_errors_exceptions_and_error_log_entries_are_errors_and_nothing_else_is() {
        let console = json!({"method": "Runtime.consoleAPICalled", "params": {
            "type": "error",
            "args": [{"type": "string", "value": "boom"}, {"type": "number", "value": 42}],
            "stackTrace": {"callFrames": [{"url": "http://x/a.js", "lineNumber": 9}]}
        }});
        assert_eq!(
            console_error(&console).as_deref(),
            Some("console.error: boom 42 (at http://x/a.js:10)")
        );
        let log = json!({"method": "Runtime.consoleAPICalled", "params": {
            "type": "log", "args": [{"type": "string", "value": "fine"}]
        }});
        assert_eq!(console_error(&log), None);
        let thrown = json!({"method": "Runtime.exceptionThrown", "params": {"exceptionDetails": {
            "text": "Uncaught",
            "exception": {"description": "TypeError: x is undefined\n    at f (a.js:1)"},
            "url": "http://x/a.js", "lineNumber": 0
        }}});
        assert_eq!(
            console_error(&thrown).as_deref(),
            Some("uncaught exception: TypeError: x is undefined (at http://x/a.js:1)")
        );
        let failed = json!({"method": "Log.entryAdded", "params": {"entry": {
            "level": "error", "source": "network",
            "text": "Failed to load resource: the server responded with a status of 404 (Not Found)",
            "url": "http://x/missing.css"
        }}});
        assert_eq!(
            console_error(&failed).as_deref(),
            Some(
                "network error: Failed to load resource: the server responded with a status of 404 (Not Found) (at http://x/missing.css)"
            )
        );
        let warning = json!({"method": "Log.entryAdded", "params": {"entry": {
            "level": "warning", "source": "other", "text": "deprecated"
        }}});
        assert_eq!(console_error(&warning), None);
        assert_eq!(
            console_error(&json!({"method": "Page.loadEventFired", "params": {}})),
            None
        );
    }
}
