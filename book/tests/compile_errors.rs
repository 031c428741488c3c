//! Compile-fail tests for "Compile Errors Explained"
//! (`book/src/guides/compile-errors.md`): each file in
//! `tests/compile-errors/` is a mistake readers make with the framework, and
//! its `.stderr` the compiler's message, checked in. The chapter includes
//! both files, so it cannot show a stale message: when a new rustc or a
//! framework change alters one, this test fails. Regenerate with
//! `TRYBUILD=overwrite cargo test -p composable-rust-book --test compile_errors`,
//! review the diff, and check that the chapter's explanation still fits.

#[test]
fn compile_errors() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("tests/compile-errors/*.rs");
}
