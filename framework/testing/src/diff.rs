//! Readable expected/actual diffs for failure messages.

use std::fmt::Debug;

/// A line diff of the pretty `Debug` output of `expected` and `actual`,
/// with a legend saying which side is which.
pub(crate) fn diff<T: Debug + ?Sized>(expected: &T, actual: &T) -> String {
    format!(
        "(- expected, + actual)\n{}",
        pretty_assertions::Comparison::new(expected, actual)
    )
}
