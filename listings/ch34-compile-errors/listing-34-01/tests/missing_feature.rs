//! This listing depends on `composable-rust` without its `postgres` feature;
//! `tests/compile-fail/missing_postgres_feature.rs` uses the PostgreSQL
//! event store anyway, and its `.stderr` is the compiler's message, which
//! "Compile Errors Explained" shows. Regenerate with
//! `TRYBUILD=overwrite cargo test -p listing-34-01 --test missing_feature`.

#[test]
fn missing_feature() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("tests/compile-fail/*.rs");
}
