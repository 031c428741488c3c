//! The codes of the scaffolding commands, `CR-E0351` to `CR-E0399` (the
//! operations commands own `CR-E0301` to `CR-E0349`). Each is explained in
//! the book's troubleshooting appendix.

composable_rust_core::error_codes! {
    /// A project, aggregate, projection or saga name was rejected.
    INVALID_NAME = ("CR-E0351", "invalid name for a project or a module");
    /// `composable new` was asked to write into a directory that has files.
    TARGET_NOT_EMPTY = ("CR-E0352", "the new project's directory exists and is not empty");
    /// A file the command would create exists already.
    FILE_EXISTS = ("CR-E0353", "a file to create exists already (nothing is overwritten)");
    /// No `Cargo.toml` with a `[package]` was found from the directory up.
    NOT_IN_A_PROJECT = ("CR-E0354", "not inside a Cargo project");
    /// The project lacks a place where the template registers modules.
    NOT_FROM_TEMPLATE = ("CR-E0355", "the project was not generated from the template");
    /// `--framework-path` does not point at a clone of the framework.
    INVALID_FRAMEWORK_PATH = ("CR-E0356", "--framework-path is not a clone of composable-rust");
    /// The embedded template did not render.
    TEMPLATE = ("CR-E0357", "the project template failed to render");
    /// Reading or writing a file failed.
    IO = ("CR-E0358", "a file could not be read or written");
}
