//! Compile-fail tests: each file in `tests/ui/` is a mistake the derives
//! must refuse, and its `.stderr` the compiler's message, checked in. The
//! messages are part of the user interface: they point at the offending
//! span and say how to fix it. After an intended change to a message,
//! regenerate with `TRYBUILD=overwrite cargo test -p composable-rust-macros
//! --test ui` and review the diff.

#[test]
fn ui() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("tests/ui/*.rs");
}
