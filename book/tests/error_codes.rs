//! Every error code the framework can report is explained in the book's
//! troubleshooting appendix, under a heading that starts with the code.

use composable_rust::ErrorCode;
use composable_rust::core::error::codes;

const TROUBLESHOOTING: &str = include_str!("../src/appendix/troubleshooting.md");

#[test]
fn every_error_code_has_a_troubleshooting_entry() {
    let all: Vec<&ErrorCode> = codes::ALL
        .iter()
        .chain(composable_rust::postgres::codes::ALL)
        .chain(composable_rust::redis::codes::ALL)
        .collect();
    for code in all {
        let heading = format!("### {}: ", code.as_str());
        assert!(
            TROUBLESHOOTING.contains(&heading),
            "{code} ({}) is not explained in book/src/appendix/troubleshooting.md; \
             add a section starting with `{heading}`",
            code.summary()
        );
    }
}
