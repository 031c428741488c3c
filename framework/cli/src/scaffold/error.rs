//! What can go wrong when scaffolding: [`ScaffoldError`], one variant per
//! code of [`codes`](super::codes). Nothing is written when a command
//! fails before its first write (every check runs first).

use std::path::PathBuf;
use std::sync::Arc;

use composable_rust_core::ErrorClass;
use composable_rust_core::error::coded_error;

use super::codes;

/// An error of `composable new` or `composable add`. Its `Display` starts
/// with the code, says what happened and what to do.
#[coded_error]
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum ScaffoldError {
    /// A name was rejected (`CR-E0351`).
    #[code(codes::INVALID_NAME, permanent)]
    #[error("`{name}` is not a valid {what} name: {reason}; {expected}")]
    InvalidName {
        /// The rejected name.
        name: String,
        /// What it names: "project", "aggregate", "projection", "saga".
        what: &'static str,
        /// Why it was rejected.
        reason: String,
        /// What a valid name looks like.
        expected: &'static str,
    },
    /// The target directory has files (`CR-E0352`).
    #[code(codes::TARGET_NOT_EMPTY, permanent)]
    #[error(
        "{} exists and is not empty; choose another name, or remove or empty the directory first",
        directory.display()
    )]
    TargetNotEmpty {
        /// The directory.
        directory: PathBuf,
    },
    /// A file to create exists (`CR-E0353`).
    #[code(codes::FILE_EXISTS, permanent)]
    #[error(
        "{} exists already and would be overwritten; nothing was written. Choose another name, \
         or move the file away if you mean to generate it again",
        path.display()
    )]
    FileExists {
        /// The file.
        path: PathBuf,
    },
    /// No Cargo project around (`CR-E0354`).
    #[code(codes::NOT_IN_A_PROJECT, configuration)]
    #[error(
        "no Cargo.toml with a [package] in {} or any directory above it; run `composable add` \
         inside a project made by `composable new` (or pass its directory with --project)",
        start.display()
    )]
    NotInAProject {
        /// Where the search started.
        start: PathBuf,
    },
    /// Not a project from the template (`CR-E0355`).
    #[code(codes::NOT_FROM_TEMPLATE, configuration)]
    #[error(
        "{} does not look like a project generated from the template: {missing}; `composable add` \
         registers new modules there. Generate the project with `composable new`, or add the \
         missing piece as the template has it",
        root.display()
    )]
    NotFromTemplate {
        /// The project's root.
        root: PathBuf,
        /// What is missing.
        missing: String,
    },
    /// `--framework-path` is wrong (`CR-E0356`).
    #[code(codes::INVALID_FRAMEWORK_PATH, configuration)]
    #[error(
        "--framework-path {}: {reason}; pass the directory of a clone of \
         https://github.com/composable-rust/composable-rust (the one holding \
         framework/composable-rust), or leave the option out to depend on the git repository",
        path.display()
    )]
    InvalidFrameworkPath {
        /// The path given.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The template did not render (`CR-E0357`).
    #[code(codes::TEMPLATE, permanent)]
    #[error(
        "the template file {file} did not render: {message}; this is a bug in the template, \
         please report it"
    )]
    Template {
        /// The template file.
        file: String,
        /// What liquid reported.
        message: String,
    },
    /// Reading or writing failed (`CR-E0358`); a failed write is undone
    /// (see `Plan::apply`). Retrying helps only if the operating system
    /// says so ([`ErrorClass::of_io`]).
    #[code(codes::IO, class = ErrorClass::of_io(source))]
    #[error("cannot {operation} {}: {source}; check the path and its permissions", path.display())]
    Io {
        /// What was being done: "read", "write", "create".
        operation: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The operating system's error.
        source: Arc<std::io::Error>,
    },
}

impl ScaffoldError {
    /// An I/O failure on `path`.
    pub(crate) fn io(
        operation: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        Self::Io {
            operation,
            path: path.into(),
            source: Arc::new(source),
        }
    }
}
