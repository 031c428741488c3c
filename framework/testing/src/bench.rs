//! Smoke mode for the framework's benchmarks.
//!
//! CI runs every command the book shows, `cargo bench ...` included, with
//! `COMPOSABLE_BENCH_SMOKE=1` set ([`SMOKE_VAR`]): that proves each
//! benchmark still builds and runs (setup, every section, every
//! correctness check, the cleanup) without spending minutes timing it. A
//! benchmark asks this module how long and how much to measure:
//!
//! - [`smoke`]: whether this is a smoke run;
//! - [`scaled`]: an amount of work (events, commands, queries), a hundredth
//!   of it in a smoke run;
//! - [`per_side`] and [`burst`]: how long an interleaved section runs each
//!   side, and how long one side runs before the other takes over (8 s per
//!   side become 200 ms, bursts of 100 ms become 10 ms);
//! - [`banner`], [`label`] and [`judged`]: what the output says, so that
//!   nobody mistakes a smoke run's figures for measurements: a banner at the
//!   top, a label next to the figures, and no verdict on a performance
//!   target (a smoke run never fails on one; it still fails on a broken
//!   correctness check).
//!
//! Without the variable every function returns its argument unchanged and
//! prints nothing, so a full run is exactly what it was.
//!
//! ```
//! use std::time::Duration;
//! use composable_rust_testing::bench;
//!
//! const EVENTS: usize = 100_000;
//! const PER_SIDE: Duration = Duration::from_secs(8);
//!
//! bench::banner("my_benchmark");
//! let events = bench::scaled(EVENTS);
//! let per_side = bench::per_side(PER_SIDE);
//! let ratio = 0.93;
//! println!(
//!     "{events} events, {per_side:?} per side: ratio {ratio:.2} (target >= 0.90) {}{}",
//!     bench::judged(if ratio >= 0.9 { "met" } else { "MISSED" }),
//!     bench::label(),
//! );
//! ```
//!
//! This file uses nothing but `std`: the benchmarks that cannot depend on
//! this crate (`composable-rust-core`'s, which this crate depends on, and
//! the separate `framework/bench-peers` workspace) include it with
//! `#[path = ".../testing/src/bench.rs"] mod bench;`, so there is one copy
//! of it.

use std::ffi::OsStr;
use std::time::Duration;

/// The environment variable that turns smoke mode on: set to anything but
/// an empty string or `0` (CI sets `COMPOSABLE_BENCH_SMOKE=1`).
pub const SMOKE_VAR: &str = "COMPOSABLE_BENCH_SMOKE";

/// A smoke run does this fraction of each amount of work ([`scaled`]).
const WORK_DIVISOR: usize = 100;
/// A smoke run measures each side this fraction of the time ([`per_side`]).
const PER_SIDE_DIVISOR: u32 = 40;
/// A smoke run's bursts are this fraction of the full run's ([`burst`]).
const BURST_DIVISOR: u32 = 10;

/// Whether this is a smoke run: [`SMOKE_VAR`] is set, to something other
/// than an empty string or `0`.
pub fn smoke() -> bool {
    is_on(std::env::var_os(SMOKE_VAR).as_deref())
}

/// `n` units of work (events, commands, queries) in a full run; a
/// hundredth of it, rounded up (so never 0 for a positive `n`), in a smoke
/// run. A benchmark whose structure needs more (a query that expects 10
/// hits, a batch that must fit) raises the result with `.max(...)`.
pub fn scaled(n: usize) -> usize {
    scaled_if(smoke(), n)
}

/// How long each side of an interleaved section runs: `full` in a full
/// run, a fortieth of it in a smoke run (8 s become 200 ms).
pub fn per_side(full: Duration) -> Duration {
    per_side_if(smoke(), full)
}

/// How long one side runs before the other takes over: `full` in a full
/// run, a tenth of it in a smoke run (100 ms become 10 ms), so a short
/// section still alternates several times.
pub fn burst(full: Duration) -> Duration {
    burst_if(smoke(), full)
}

/// In a smoke run, prints a banner (to stdout) saying that `benchmark` is
/// running in smoke mode and its figures are not measurements; prints
/// nothing otherwise. Call it first.
pub fn banner(benchmark: &str) {
    if let Some(text) = banner_if(smoke(), benchmark) {
        println!("{text}");
    }
}

/// Text to print next to figures: `"  [smoke run: not a measurement]"`
/// in a smoke run, `""` otherwise.
pub fn label() -> &'static str {
    label_if(smoke())
}

/// The verdict on a performance target: `verdict` itself (e.g. `"met"` or
/// `"MISSED"`) in a full run; `"not judged (smoke run)"` in a smoke run,
/// whose figures say nothing about the target.
pub fn judged(verdict: &'static str) -> &'static str {
    judged_if(smoke(), verdict)
}

fn is_on(value: Option<&OsStr>) -> bool {
    value.is_some_and(|value| !value.is_empty() && value != "0")
}

fn scaled_if(smoke: bool, n: usize) -> usize {
    if smoke { n.div_ceil(WORK_DIVISOR) } else { n }
}

fn per_side_if(smoke: bool, full: Duration) -> Duration {
    if smoke { full / PER_SIDE_DIVISOR } else { full }
}

fn burst_if(smoke: bool, full: Duration) -> Duration {
    if smoke { full / BURST_DIVISOR } else { full }
}

fn banner_if(smoke: bool, benchmark: &str) -> Option<String> {
    smoke.then(|| {
        let rule = "=".repeat(78);
        format!(
            "{rule}\n\
             SMOKE RUN of {benchmark} ({SMOKE_VAR} is set)\n\
             Every section runs briefly, on a hundredth of the work, only to prove that\n\
             the benchmark builds and runs. Its figures are NOT measurements, and no\n\
             performance target is judged. Unset {SMOKE_VAR} to measure.\n\
             {rule}"
        )
    })
}

fn label_if(smoke: bool) -> &'static str {
    if smoke {
        "  [smoke run: not a measurement]"
    } else {
        ""
    }
}

fn judged_if(smoke: bool, verdict: &'static str) -> &'static str {
    if smoke {
        "not judged (smoke run)"
    } else {
        verdict
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_variable_is_on_unless_unset_empty_or_zero() {
        assert!(!is_on(None));
        assert!(!is_on(Some(OsStr::new(""))));
        assert!(!is_on(Some(OsStr::new("0"))));
        assert!(is_on(Some(OsStr::new("1"))));
        assert!(is_on(Some(OsStr::new("yes"))));
    }

    #[test]
    fn a_full_run_changes_nothing() {
        assert_eq!(scaled_if(false, 100_000), 100_000);
        assert_eq!(scaled_if(false, 0), 0);
        let eight = Duration::from_secs(8);
        assert_eq!(per_side_if(false, eight), eight);
        assert_eq!(burst_if(false, eight), eight);
        assert_eq!(banner_if(false, "event_store"), None);
        assert_eq!(label_if(false), "");
        assert_eq!(judged_if(false, "MISSED"), "MISSED");
    }

    #[test]
    fn a_smoke_run_does_a_hundredth_of_the_work_never_none() {
        assert_eq!(scaled_if(true, 100_000), 1_000);
        assert_eq!(scaled_if(true, 5_000), 50);
        assert_eq!(scaled_if(true, 150), 2);
        assert_eq!(scaled_if(true, 50), 1);
        assert_eq!(scaled_if(true, 1), 1);
        assert_eq!(scaled_if(true, 0), 0);
    }

    #[test]
    fn a_smoke_run_measures_briefly() {
        assert_eq!(
            per_side_if(true, Duration::from_secs(8)),
            Duration::from_millis(200)
        );
        assert_eq!(
            burst_if(true, Duration::from_millis(100)),
            Duration::from_millis(10)
        );
    }

    #[test]
    fn a_smoke_run_says_so_and_judges_no_target() {
        let banner = banner_if(true, "event_store").expect("a banner");
        assert!(banner.contains("SMOKE RUN of event_store"), "{banner}");
        assert!(banner.contains("figures are NOT measurements"), "{banner}");
        assert!(banner.contains(SMOKE_VAR), "{banner}");
        assert!(label_if(true).contains("not a measurement"));
        assert_eq!(judged_if(true, "MISSED"), "not judged (smoke run)");
    }
}
