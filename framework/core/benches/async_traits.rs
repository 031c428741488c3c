//! What `#[async_trait]` costs: one boxed future per call.
//!
//! The framework's storage traits use `#[async_trait]` because some of them
//! must be usable as trait objects (`Arc<dyn EventSource>`,
//! `Box<dyn Subscription>`), which native `async fn` in traits does not
//! allow yet. This benchmark measures the price of the box, so ADR-016 can
//! weigh it against the work behind such a call:
//!
//! - `native`: a native `async fn` in a trait, called through a generic;
//! - `async_trait/generic`: the same method through `#[async_trait]`,
//!   called through a generic (the box is still allocated);
//! - `async_trait/dyn`: the same, through `&dyn Trait`.
//!
//! Each is run in interleaved rounds on one current-thread runtime; the
//! output is nanoseconds per call (median of the rounds) and the ratio to
//! `native`, measured in the same run.
//!
//! Run: `cargo bench -p composable-rust-core --bench async_traits`
//!
//! With `COMPOSABLE_BENCH_SMOKE=1` (what CI sets when it runs the book's
//! commands) it is a smoke run: a hundredth of the calls, and output that
//! says its figures are not measurements.

use std::hint::black_box;
use std::time::Instant;

use async_trait::async_trait;

// The workspace's smoke-mode helper (composable-rust-testing's `bench`
// module, which uses only std), included by path: this crate cannot depend
// on composable-rust-testing, which depends on it.
#[allow(dead_code, unreachable_pub, unused_imports)] // not all of it is used here
#[path = "../../testing/src/bench.rs"]
mod bench;

/// Calls per round (a hundredth in a smoke run).
const CALLS: u64 = 2_000_000;
const ROUNDS: usize = 7;

/// A store-like lookup, through `#[async_trait]`.
#[async_trait]
trait BoxedLookup: Send + Sync {
    async fn get(&self, key: u64) -> u64;
}

/// The same lookup, as a native `async fn` in a trait.
trait NativeLookup: Send + Sync {
    fn get(&self, key: u64) -> impl Future<Output = u64> + Send;
}

struct Table {
    values: Vec<u64>,
}

#[async_trait]
impl BoxedLookup for Table {
    async fn get(&self, key: u64) -> u64 {
        self.values[(key % self.values.len() as u64) as usize]
    }
}

impl NativeLookup for Table {
    async fn get(&self, key: u64) -> u64 {
        self.values[(key % self.values.len() as u64) as usize]
    }
}

async fn native<T: NativeLookup>(table: &T, calls: u64) -> u64 {
    let mut sum = 0u64;
    for key in 0..calls {
        sum = sum.wrapping_add(black_box(table).get(black_box(key)).await);
    }
    sum
}

async fn boxed_generic<T: BoxedLookup>(table: &T, calls: u64) -> u64 {
    let mut sum = 0u64;
    for key in 0..calls {
        sum = sum.wrapping_add(black_box(table).get(black_box(key)).await);
    }
    sum
}

async fn boxed_dyn(table: &dyn BoxedLookup, calls: u64) -> u64 {
    let mut sum = 0u64;
    for key in 0..calls {
        sum = sum.wrapping_add(black_box(table).get(black_box(key)).await);
    }
    sum
}

fn nanos_per_call(started: Instant, calls: u64) -> f64 {
    started.elapsed().as_nanos() as f64 / calls as f64
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    bench::banner("the async_traits benchmark");
    let calls = bench::scaled(CALLS as usize) as u64;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime");
    let table = Table {
        values: (0..1024).collect(),
    };
    let (mut native_ns, mut generic_ns, mut dyn_ns) = (Vec::new(), Vec::new(), Vec::new());
    runtime.block_on(async {
        for _ in 0..ROUNDS {
            let started = Instant::now();
            black_box(native(&table, calls).await);
            native_ns.push(nanos_per_call(started, calls));

            let started = Instant::now();
            black_box(boxed_generic(&table, calls).await);
            generic_ns.push(nanos_per_call(started, calls));

            let started = Instant::now();
            black_box(boxed_dyn(&table, calls).await);
            dyn_ns.push(nanos_per_call(started, calls));
        }
    });
    let (native_ns, generic_ns, dyn_ns) = (median(native_ns), median(generic_ns), median(dyn_ns));
    let label = bench::label();
    println!("async trait dispatch, {calls} calls x {ROUNDS} rounds (median ns per call){label}");
    println!("  native async fn (generic)   {native_ns:>8.2} ns   1.00x{label}");
    println!(
        "  #[async_trait] (generic)    {generic_ns:>8.2} ns   {:.2}x{label}",
        generic_ns / native_ns
    );
    println!(
        "  #[async_trait] (dyn)        {dyn_ns:>8.2} ns   {:.2}x{label}",
        dyn_ns / native_ns
    );
    println!(
        "  cost of the box per call    {:>8.2} ns{label}",
        dyn_ns - native_ns
    );
}
