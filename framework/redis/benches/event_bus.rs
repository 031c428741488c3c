//! Benchmark: `RedisStreamsEventBus` throughput against raw redis-rs
//! stream commands doing the same work on the same Redis, in one run.
//!
//! ```console
//! $ REDIS_URL=redis://127.0.0.1:6379 cargo bench -p composable-rust-redis --bench event_bus
//! ```
//!
//! Sections, each in events per second, bus and raw interleaved in rounds
//! (bus, raw, bus, raw, ...) so drift in the machine's load affects both
//! alike; the ratio is bus / raw (target: at least 0.6):
//!
//! - `publish 1/call`: `EventBus::publish` of one event vs one raw
//!   `XADD key MAXLEN ~ n * event_id <id> ... payload <json>` with the same
//!   fields;
//! - `publish 100/call`: `EventBus::publish_batch` of 100 events vs a raw
//!   pipeline of 100 such `XADD`s;
//! - `consume+ack 100/call`: `Subscription::receive(100)` then `ack_many`
//!   vs raw `XREADGROUP ... COUNT 100 STREAMS key >` then `XACK key group
//!   id...`, each on a connection of its own, from streams filled
//!   beforehand.
//!
//! The raw side is the least work a client can do: it sends the same
//! fields, encoded once up front, and reads replies without decoding the
//! events. The bus encodes each `StoredEvent` on publish and decodes it on
//! receive (its payload is JSON), and keeps its claim and recovery
//! bookkeeping.
//!
//! Without `REDIS_URL` it prints how to set it and exits with status 0
//! (skipped), as every benchmark of the workspace does. Everything is
//! written under a prefix of its own (a `TestKeyPrefix` of
//! composable-rust-testing, `cr-test:<uuid>`), deleted at the end even if
//! the run panics.
//!
//! With `COMPOSABLE_BENCH_SMOKE=1` (what CI sets when it runs the book's
//! commands) it is a smoke run (`composable_rust_testing::bench`): a
//! hundredth of the events (rounds of 100), every section; the output says
//! its figures are not measurements, and judges no target.

use std::time::{Duration, Instant};

use chrono::Utc;
use composable_rust_core::event_bus::{EventBus, SubscribeOptions, Subscription, Topic};
use composable_rust_core::{Position, StoredEvent, StreamId};
use composable_rust_redis::RedisBusOptions;
use composable_rust_redis::redis::{self, aio::ConnectionManager};
use composable_rust_testing::fixtures::TestKeyPrefix;
use composable_rust_testing::{bench, services};
use serde_json::json;

/// Events per variant in the one-event-per-call section (this, [`MANY`]
/// and [`ROUND`] are a hundredth in a smoke run, rounds at least a
/// [`BATCH`]: [`Counts`]).
const SINGLE: usize = 5_000;
/// Events per variant in the batch and consume sections.
const MANY: usize = 50_000;
/// Events per call in the batch and consume sections.
const BATCH: usize = 100;
/// Events per round (per variant) before switching to the other variant.
const ROUND: usize = 1_000;
/// The topics' length bound (larger than anything written).
const MAX_LEN: u64 = 1_000_000;

/// The event counts of this run.
#[derive(Clone, Copy)]
struct Counts {
    single: usize,
    many: usize,
    round: usize,
}

impl Counts {
    fn new() -> Self {
        Self {
            single: bench::scaled(SINGLE),
            many: bench::scaled(MANY),
            round: bench::scaled(ROUND).max(BATCH),
        }
    }
}

fn main() {
    bench::banner("the event_bus benchmark (Redis Streams)");
    let url = match services::try_redis_url() {
        Ok(url) => url,
        Err(missing) => {
            eprintln!("event_bus benchmark skipped: {missing}");
            return;
        }
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    runtime.block_on(run(&url));
}

/// One measured variant: events and the time they took.
#[derive(Default)]
struct Tally {
    events: usize,
    elapsed: Duration,
}

impl Tally {
    fn add(&mut self, events: usize, started: Instant) {
        self.events += events;
        self.elapsed += started.elapsed();
    }

    fn per_second(&self) -> f64 {
        self.events as f64 / self.elapsed.as_secs_f64().max(f64::EPSILON)
    }
}

struct Section {
    name: &'static str,
    bus: Tally,
    raw: Tally,
}

fn event(n: usize) -> StoredEvent {
    StoredEvent::builder(
        "OrderPlaced",
        json!({
            "order_id": n,
            "customer": format!("customer-{}", n % 97),
            "lines": [{ "sku": "SKU-1", "quantity": 2, "price_cents": 1999 },
                      { "sku": "SKU-2", "quantity": 1, "price_cents": 4999 }],
            "note": "leave at the door",
        }),
    )
    .with_stream(
        StreamId::new(format!("order-{}", n % 1_000)).expect("valid stream id"),
        n as u64 + 1,
    )
    .with_position(Position::new(n as u64 + 1, n as u64 + 1))
    .with_recorded_at(Utc::now())
    .build()
}

async fn run(url: &str) {
    let prefix = TestKeyPrefix::from_url(url);
    let bus = RedisBusOptions::new(prefix.as_str())
        .expect("valid prefix")
        .with_max_len(MAX_LEN)
        .connect(url)
        .await
        .unwrap_or_else(|error| panic!("{error}"));
    let client = redis::Client::open(url).expect("valid URL");
    let mut raw = ConnectionManager::new(client.clone())
        .await
        .expect("a raw connection");
    let Counts {
        single,
        many,
        round: round_len,
    } = Counts::new();
    let events: Vec<StoredEvent> = (0..many.max(single)).map(event).collect();
    let encoded: Vec<Fields> = events.iter().map(fields).collect();
    println!("RedisStreamsEventBus vs raw redis-rs stream commands, Redis at {url}");
    println!(
        "events of {} bytes in {} fields; rounds of {round_len} events per variant, \
         interleaved{}\n",
        encoded[0]
            .iter()
            .map(|(k, v)| k.len() + v.len())
            .sum::<usize>(),
        encoded[0].len(),
        bench::label()
    );

    let mut sections = Vec::new();

    // Warm-up: connections, stream creation, allocator.
    let warm = Topic::new("warm-up").expect("topic");
    bus.publish_batch(&warm, &events[..BATCH])
        .await
        .expect("warm-up");
    raw_publish(
        &mut raw,
        &format!("{{{prefix}}}:raw:warm-up"),
        &encoded[..BATCH],
    )
    .await;

    // publish 1/call
    let topic = Topic::new("single").expect("topic");
    let raw_key = format!("{{{prefix}}}:raw:single");
    let mut section = Section {
        name: "publish 1/call",
        bus: Tally::default(),
        raw: Tally::default(),
    };
    for round in (0..single).step_by(round_len) {
        let end = (round + round_len).min(single);
        let started = Instant::now();
        for event in &events[round..end] {
            bus.publish(&topic, event).await.expect("publish");
        }
        section.bus.add(end - round, started);
        let started = Instant::now();
        for one in &encoded[round..end] {
            raw_publish(&mut raw, &raw_key, std::slice::from_ref(one)).await;
        }
        section.raw.add(end - round, started);
    }
    sections.push(section);

    // publish 100/call; these streams are then consumed.
    let topic = Topic::new("batch").expect("topic");
    let raw_key = format!("{{{prefix}}}:raw:batch");
    let mut section = Section {
        name: "publish 100/call",
        bus: Tally::default(),
        raw: Tally::default(),
    };
    for round in (0..many).step_by(round_len) {
        let end = (round + round_len).min(many);
        let started = Instant::now();
        for batch in events[round..end].chunks(BATCH) {
            bus.publish_batch(&topic, batch).await.expect("publish");
        }
        section.bus.add(end - round, started);
        let started = Instant::now();
        for batch in encoded[round..end].chunks(BATCH) {
            raw_publish(&mut raw, &raw_key, batch).await;
        }
        section.raw.add(end - round, started);
    }
    sections.push(section);

    // consume+ack 100/call, from the streams just filled.
    let mut subscription = bus
        .subscribe(SubscribeOptions::new(topic.clone(), "bench", "bench-1").expect("options"))
        .await
        .expect("subscribe");
    let _: () = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(&raw_key)
        .arg("bench")
        .arg("0")
        .query_async(&mut raw)
        .await
        .expect("XGROUP CREATE");
    let mut reader = ConnectionManager::new(client.clone())
        .await
        .expect("a raw reader connection");
    let mut section = Section {
        name: "consume+ack 100/call",
        bus: Tally::default(),
        raw: Tally::default(),
    };
    while section.bus.events < many || section.raw.events < many {
        let started = Instant::now();
        let mut got = 0;
        while got < round_len && section.bus.events + got < many {
            got += bus_consume(&mut *subscription).await;
        }
        section.bus.add(got, started);
        let started = Instant::now();
        let mut got = 0;
        while got < round_len && section.raw.events + got < many {
            got += raw_consume(&mut reader, &mut raw, &raw_key).await;
        }
        section.raw.add(got, started);
    }
    sections.push(section);

    print_table(&sections);
    let removed = prefix.clear().await.expect("delete the benchmark keys");
    println!("\n(removed the {removed} benchmark streams under {prefix})");
}

/// An event as the stream fields the bus writes, encoded once up front.
type Fields = Vec<(&'static str, Vec<u8>)>;

fn fields(event: &StoredEvent) -> Fields {
    vec![
        ("event_id", event.event_id.to_string().into_bytes()),
        ("stream_id", event.stream_id.as_str().as_bytes().to_vec()),
        (
            "stream_version",
            event.stream_version.to_string().into_bytes(),
        ),
        ("position", event.position.to_string().into_bytes()),
        ("event_type", event.event_type.clone().into_bytes()),
        (
            "schema_version",
            event.schema_version.to_string().into_bytes(),
        ),
        (
            "recorded_at",
            event
                .recorded_at
                .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
                .into_bytes(),
        ),
        ("payload", serde_json::to_vec(&event.payload).expect("JSON")),
    ]
}

async fn raw_publish(raw: &mut ConnectionManager, key: &str, events: &[Fields]) {
    let mut pipeline = redis::pipe();
    for fields in events {
        pipeline
            .cmd("XADD")
            .arg(key)
            .arg("MAXLEN")
            .arg("~")
            .arg(MAX_LEN)
            .arg("*");
        for (field, value) in fields {
            pipeline.arg(*field).arg(value);
        }
    }
    let _: Vec<String> = pipeline.query_async(raw).await.expect("raw XADD");
}

async fn bus_consume(subscription: &mut dyn Subscription) -> usize {
    let messages = subscription
        .receive(BATCH, Duration::from_secs(1))
        .await
        .expect("receive");
    subscription.ack_many(&messages).await.expect("ack");
    messages.len()
}

/// `XREADGROUP` of up to 100 entries, then `XACK` of their ids; the
/// entries' fields are not decoded.
async fn raw_consume(
    reader: &mut ConnectionManager,
    raw: &mut ConnectionManager,
    key: &str,
) -> usize {
    type Reply = Option<Vec<(String, Vec<(String, redis::Value)>)>>;
    let reply: Reply = redis::cmd("XREADGROUP")
        .arg("GROUP")
        .arg("bench")
        .arg("raw-1")
        .arg("COUNT")
        .arg(BATCH)
        .arg("BLOCK")
        .arg(1_000)
        .arg("STREAMS")
        .arg(key)
        .arg(">")
        .query_async(reader)
        .await
        .expect("raw XREADGROUP");
    let ids: Vec<String> = reply
        .into_iter()
        .flatten()
        .flat_map(|(_, entries)| entries.into_iter().map(|(id, _)| id))
        .collect();
    if !ids.is_empty() {
        let _: u64 = redis::cmd("XACK")
            .arg(key)
            .arg("bench")
            .arg(&ids)
            .query_async(raw)
            .await
            .expect("raw XACK");
    }
    ids.len()
}

fn print_table(sections: &[Section]) {
    println!(
        "{:<22} {:>12} {:>12} {:>7}  target >= 0.6{}",
        "section",
        "bus ev/s",
        "raw ev/s",
        "ratio",
        bench::label()
    );
    for section in sections {
        let ratio = section.bus.per_second() / section.raw.per_second();
        println!(
            "{:<22} {:>12.0} {:>12.0} {:>7.2}  {}{}",
            section.name,
            section.bus.per_second(),
            section.raw.per_second(),
            ratio,
            bench::judged(if ratio >= 0.6 { "met" } else { "MISSED" }),
            bench::label()
        );
    }
}
