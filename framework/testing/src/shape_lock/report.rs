//! [`ShapeLockReport`]: what a check of the lock found.

use std::fmt::{self, Write as _};
use std::path::PathBuf;

use super::{ENV_VAR, RECORD};

/// What [`EventShapeLock::verify`](super::EventShapeLock::verify) found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShapeLockReport {
    pub(super) enum_name: String,
    pub(super) folder: PathBuf,
    pub(super) recording: bool,
    pub(super) problems: Vec<String>,
    pub(super) recorded: Vec<PathBuf>,
}

impl ShapeLockReport {
    /// Every problem, each a sentence that says what to do.
    pub fn problems(&self) -> &[String] {
        &self.problems
    }

    /// The files written (only when recording).
    pub fn recorded(&self) -> &[PathBuf] {
        &self.recorded
    }

    /// Whether the lock holds.
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }

    pub(super) fn problem(&mut self, problem: String) {
        self.problems.push(problem);
    }
}

impl fmt::Display for ShapeLockReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut text = format!(
            "the event-shape lock of {} ({}) found {} problem(s):",
            self.enum_name,
            self.folder.display(),
            self.problems.len()
        );
        for problem in &self.problems {
            let _ = write!(text, "\n- {problem}");
        }
        if !self.recording && std::env::var(ENV_VAR).is_ok_and(|v| v == RECORD) {
            text.push_str("\n(EVENT_SHAPES=record is ignored because CI is set: recordings are never written on CI)");
        }
        f.write_str(&text)
    }
}
