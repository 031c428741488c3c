//! Compile-fail tests for "Compile Errors Explained"
//! (`book/src/guides/compile-errors.md`): each file in `tests/compile-fail/`
//! is a mistake readers make with the framework, and its `.stderr` the
//! compiler's message, checked in. The chapter includes both files, so it
//! cannot show a stale message: when a new rustc or a framework change
//! alters one, this test fails. Regenerate with
//! `TRYBUILD=overwrite cargo test -p listing-34-01 --test compile_errors`,
//! review the diff, and check that the chapter's explanation still fits.
//!
//! The cases live in this small crate rather than in the book's, because
//! trybuild compiles the crate's dependencies once more in a directory of
//! its own: here that is the facade with `testing`, not every backend.
//! The crate depends on `composable-rust` without its `postgres` feature,
//! so `missing_postgres_feature.rs` shows what the compiler says when code
//! asks for the PostgreSQL event store anyway.

#[test]
fn compile_errors() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("tests/compile-fail/*.rs");
}
