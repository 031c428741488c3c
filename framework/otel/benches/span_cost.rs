//! What the framework's spans cost on a command's path.
//!
//! One unit of work is a command sent to a `Store` whose effect appends one
//! event to the in-memory event store (the cheapest backend, so the spans'
//! share is as large as it gets). It runs three ways, interleaved in rounds
//! on one current-thread runtime:
//!
//! - `off`: no subscriber: every span is a disabled callsite (the
//!   baseline, what a service without tracing pays);
//! - `otel, INFO`: the OpenTelemetry layer installed with an INFO filter,
//!   which drops the framework's DEBUG spans;
//! - `otel, DEBUG`: the layer recording every framework span, with the W3C
//!   propagator writing a `traceparent` into each event.
//!
//! The exporter points at a closed port, so batches are dropped after the
//! spans were built and recorded: what is measured is the request path,
//! not the network. Output: microseconds per command (median of the rounds)
//! and the ratio to `off`, measured in the same run.
//!
//! Run: `cargo bench -p composable-rust-otel --bench span_cost`
//! (`COMPOSABLE_BENCH_SMOKE=1`: a hundredth of the work, figures marked as
//! not measurements).

use std::hint::black_box;
use std::time::Instant;

use composable_rust_core::{
    Effect, Effects, EventStore, ExpectedVersion, InMemoryEventStore, NewEvent, Reducer, Store,
    StreamId,
};
use composable_rust_otel::{OtelConfig, W3cPropagator};
use composable_rust_testing::bench;
use tracing::Dispatch;
use tracing::level_filters::LevelFilter;
use tracing_subscriber::layer::SubscriberExt;

/// Commands per round (a hundredth in a smoke run).
const COMMANDS: usize = 20_000;
const ROUNDS: usize = 5;

/// A command that appends one event in an effect.
struct Deposits;

impl Reducer for Deposits {
    type State = ();
    type Action = u64;
    type Environment = InMemoryEventStore;

    fn reduce(&self, _: &mut (), n: u64, events: &InMemoryEventStore) -> Effects<u64> {
        let events = events.clone();
        vec![Effect::future(async move {
            let stream = StreamId::for_aggregate("account", n % 100).expect("a stream id");
            let event = NewEvent::new("Deposited", serde_json::json!({ "amount": n }));
            black_box(
                events
                    .append(&stream, ExpectedVersion::Any, vec![event])
                    .await
                    .expect("append"),
            );
            None
        })]
    }
}

/// Microseconds per command for `commands` commands under `dispatch`.
fn run(runtime: &tokio::runtime::Runtime, dispatch: &Dispatch, commands: usize) -> f64 {
    tracing::dispatcher::with_default(dispatch, || {
        runtime.block_on(async {
            let store = Store::new((), Deposits, InMemoryEventStore::new());
            let started = Instant::now();
            for n in 0..commands as u64 {
                store.send(n).await.expect("sent");
            }
            started.elapsed().as_secs_f64() * 1e6 / commands as f64
        })
    })
}

fn otel(runtime: &tokio::runtime::Runtime, level: LevelFilter) -> Dispatch {
    let config = OtelConfig::new("span-cost")
        .with_endpoint("http://127.0.0.1:9")
        .with_level(level);
    let (layer, guard) = runtime
        .block_on(async { composable_rust_otel::layer(&config) })
        .expect("the layer");
    // Kept for the whole run: the exporter lives as long as the guard's
    // provider, and the bench ends with the process.
    std::mem::forget(guard);
    Dispatch::new(tracing_subscriber::registry().with(layer))
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    bench::banner("the span_cost benchmark");
    let commands = bench::scaled(COMMANDS);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    W3cPropagator::new().install().expect("the propagator");
    let variants = [
        ("off (no subscriber)", Dispatch::none()),
        ("otel, INFO filter", otel(&runtime, LevelFilter::INFO)),
        ("otel, DEBUG (recorded)", otel(&runtime, LevelFilter::DEBUG)),
    ];
    let mut times = vec![Vec::new(); variants.len()];
    for _ in 0..ROUNDS {
        for (i, (_, dispatch)) in variants.iter().enumerate() {
            times[i].push(run(&runtime, dispatch, commands));
        }
    }
    let label = bench::label();
    println!(
        "a command appending one event (in memory), {commands} commands x {ROUNDS} rounds, median{label}"
    );
    let baseline = median(times[0].clone());
    for ((name, _), times) in variants.iter().zip(times) {
        let us = median(times);
        println!("  {name:<24} {us:>8.2} us   {:.2}x{label}", us / baseline);
    }
}
