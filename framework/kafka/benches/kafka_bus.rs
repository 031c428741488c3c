//! Benchmark: `KafkaEventBus` throughput against a raw rdkafka producer
//! and consumer doing the same work on the same broker, in one run.
//!
//! ```console
//! $ KAFKA_BOOTSTRAP=127.0.0.1:9092 cargo bench -p composable-rust-kafka --bench kafka_bus
//! ```
//!
//! Sections, each in events per second; the ratio is bus / raw (target: at
//! least 0.8):
//!
//! - `publish 100/call`: `EventBus::publish_batch` of 100 events vs 100 raw
//!   `FutureProducer::send_result` of records with the same key, value and
//!   headers (encoded once up front), awaiting the 100 deliveries; bus and
//!   raw alternate in rounds, so drift in the machine's load affects both
//!   alike; both producers are idempotent with `acks=all`;
//! - `consume+commit 500/call`: `Subscription::receive(500)` then
//!   `ack_many` (which commits the group's offsets, synchronously) vs a raw
//!   `StreamConsumer` receiving 500 records and committing its position
//!   synchronously, each from a topic of its own filled beforehand.
//!
//! The raw side does the least a client can do: no decoding, no in-flight
//! bookkeeping, no delivery metadata in its commits.
//!
//! On tansu 0.6.0 (the CI broker) both consumers depend on an index the
//! broker's SQLite schema lacks: without it each fetched record scans
//! every record header the broker ever stored, and consume+commit fell to
//! 14 ev/s (bus) and 16 ev/s (raw) with 480 000 headers stored, so the
//! section never finished. `ci/start-services` creates the index (see
//! ADR-023); with it, the same run measured 1 309 and 1 529 ev/s in smoke
//! mode and the full section completes in seconds.
//!
//! Without `KAFKA_BOOTSTRAP` it prints how to set it and exits with status
//! 0 (skipped), as every benchmark of the workspace does. Its topics live
//! under a prefix of its own (`cr-bench-<uuid>.`) and are kept (see
//! `KafkaEventBus::delete_prefixed_topics` for why nothing deletes topics
//! on a shared broker). With `COMPOSABLE_BENCH_SMOKE=1` it is a smoke run
//! (`composable_rust_testing::bench`): a hundredth of the events, every
//! section, no verdict.

use std::time::{Duration, Instant};

use chrono::Utc;
use composable_rust_core::event_bus::{EventBus, SubscribeOptions, Topic};
use composable_rust_core::{Position, StoredEvent, StreamId};
use composable_rust_kafka::{KafkaBusOptions, KafkaEventBus};
use composable_rust_testing::{bench, services};
use rdkafka::ClientConfig;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde_json::json;
use uuid::Uuid;

/// Events per variant (a hundredth in a smoke run).
const EVENTS: usize = 20_000;
/// Events per publish call.
const BATCH: usize = 100;
/// Events per round of the publish section, per variant.
const ROUND: usize = 2_000;
/// Events per receive in the consume section.
const RECEIVE: usize = 500;

fn event(n: usize) -> StoredEvent {
    let n = n as u64;
    StoredEvent::builder("Deposited", json!({ "account": n % 100, "amount": n }))
        .with_stream(StreamId::new(format!("account-{}", n % 100)).unwrap(), n)
        .with_position(Position::new(n, n))
        .with_recorded_at(Utc::now())
        .build()
}

/// The same record the bus writes, encoded once: key, value, headers.
struct RawRecord {
    key: String,
    value: Vec<u8>,
    headers: OwnedHeaders,
}

fn raw_record(event: &StoredEvent) -> RawRecord {
    let mut headers = OwnedHeaders::new();
    for (key, value) in [
        ("event-id", event.event_id.to_string()),
        ("event-type", event.event_type.clone()),
        ("schema-version", event.schema_version.to_string()),
        ("stream-version", event.stream_version.to_string()),
        ("position", event.position.to_string()),
        ("recorded-at", event.recorded_at.to_rfc3339()),
    ] {
        headers = headers.insert(Header {
            key,
            value: Some(value.as_bytes()),
        });
    }
    RawRecord {
        key: event.stream_id.as_str().to_owned(),
        value: serde_json::to_vec(&event.payload).unwrap(),
        headers,
    }
}

async fn raw_publish(producer: &FutureProducer, topic: &str, records: &[RawRecord]) {
    let mut deliveries = Vec::with_capacity(records.len());
    for record in records {
        let future = producer
            .send_result(
                FutureRecord::to(topic)
                    .key(record.key.as_str())
                    .payload(record.value.as_slice())
                    .headers(record.headers.clone()),
            )
            .map_err(|(error, _)| error)
            .expect("enqueue");
        deliveries.push(future);
    }
    for delivery in deliveries {
        delivery.await.expect("delivered").expect("delivered");
    }
}

fn rate(events: usize, elapsed: Duration) -> f64 {
    events as f64 / elapsed.as_secs_f64()
}

fn report(section: &str, bus: f64, raw: f64) -> f64 {
    let ratio = bus / raw;
    println!(
        "{section:<26} bus {bus:>9.0} ev/s   raw {raw:>9.0} ev/s   ratio {ratio:.2} (target >= 0.80) {}{}",
        bench::judged(if ratio >= 0.8 { "met" } else { "MISSED" }),
        bench::label(),
    );
    ratio
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let bootstrap = match services::try_kafka_bootstrap() {
        Ok(bootstrap) => bootstrap,
        Err(missing) => {
            println!("kafka_bus: skipped: {missing}");
            return;
        }
    };
    bench::banner("kafka_bus");
    let events = bench::scaled(EVENTS).max(2 * BATCH);
    let round = bench::scaled(ROUND).max(BATCH);
    let prefix = format!("cr-bench-{}.", &Uuid::new_v4().simple().to_string()[..12]);
    let bus = KafkaBusOptions::new(bootstrap.clone())
        .with_prefix(prefix.clone())
        .with_partitions(3)
        .with_fetch_wait(Duration::from_millis(20))
        .with_timeout(Duration::from_secs(30))
        .connect()
        .await
        .expect("connect to KAFKA_BOOTSTRAP");
    run(bus, bootstrap, prefix, events, round).await;
}

async fn run(bus: KafkaEventBus, bootstrap: String, prefix: String, events: usize, round: usize) {
    println!("{events} events per variant, {BATCH} per publish, {RECEIVE} per receive");
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "5")
        .create()
        .expect("raw producer");

    // publish: bus and raw alternate, round by round.
    let bus_topic = Topic::new("publish-bus").unwrap();
    let raw_topic = Topic::new("publish-raw").unwrap();
    bus.create_topic(&bus_topic).await.unwrap();
    bus.create_topic(&raw_topic).await.unwrap();
    let raw_name = bus.kafka_topic(&raw_topic).unwrap();
    let all: Vec<StoredEvent> = (1..=events).map(event).collect();
    let raw_records: Vec<RawRecord> = all.iter().map(raw_record).collect();
    let (mut bus_time, mut raw_time) = (Duration::ZERO, Duration::ZERO);
    for start in (0..events).step_by(round) {
        let end = (start + round).min(events);
        let started = Instant::now();
        for chunk in all[start..end].chunks(BATCH) {
            bus.publish_batch(&bus_topic, chunk).await.unwrap();
        }
        bus_time += started.elapsed();
        let started = Instant::now();
        for chunk in raw_records[start..end].chunks(BATCH) {
            raw_publish(&producer, &raw_name, chunk).await;
        }
        raw_time += started.elapsed();
    }
    report(
        "publish 100/call",
        rate(events, bus_time),
        rate(events, raw_time),
    );

    // consume+commit: each from the topic the publish section filled.
    let mut subscription = bus
        .subscribe(SubscribeOptions::new(bus_topic.clone(), "bench", "bench-1").unwrap())
        .await
        .unwrap();
    let mut consumed = 0;
    let started = Instant::now();
    while consumed < events {
        let batch = subscription
            .receive(RECEIVE, Duration::from_secs(10))
            .await
            .unwrap();
        assert!(
            !batch.is_empty(),
            "the bus delivered {consumed} of {events}"
        );
        subscription.ack_many(&batch).await.unwrap();
        consumed += batch.len();
    }
    let bus_rate = rate(consumed, started.elapsed());
    assert_eq!(consumed, events, "every event once");
    drop(subscription);

    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set("group.id", format!("{prefix}raw"))
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("fetch.wait.max.ms", "20")
        .create()
        .expect("raw consumer");
    consumer.subscribe(&[raw_name.as_str()]).unwrap();
    let mut consumed = 0;
    let started = Instant::now();
    while consumed < events {
        let mut in_batch = 0;
        let first = tokio::time::timeout(Duration::from_secs(10), consumer.recv())
            .await
            .expect("the raw consumer got a record")
            .unwrap();
        drop(first);
        in_batch += 1;
        while in_batch < RECEIVE && consumed + in_batch < events {
            match tokio::time::timeout(Duration::ZERO, consumer.recv()).await {
                Ok(record) => {
                    record.unwrap();
                    in_batch += 1;
                }
                Err(_) => break,
            }
        }
        let consumer_ref = &consumer;
        tokio::task::block_in_place(|| consumer_ref.commit_consumer_state(CommitMode::Sync)).ok();
        consumed += in_batch;
    }
    let raw_rate = rate(consumed, started.elapsed());
    report("consume+commit 500/call", bus_rate, raw_rate);
}
