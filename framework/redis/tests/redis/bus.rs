//! What is particular to the Redis Streams bus: keys under the prefix,
//! blocking reads on their own connection, foreign entries, trimmed
//! pending entries, and coded errors.

use std::time::{Duration, Instant};

use composable_rust_core::CodedError;
use composable_rust_core::event_bus::{EventBus, EventBusError, SubscribeOptions, Topic};
use composable_rust_redis::redis as redis_rs;
use composable_rust_redis::{RedisBusOptions, RedisStoreError, RedisStreamsEventBus};
use composable_rust_testing::event_bus_conformance::stored_event;

use super::bus_support::{VISIBILITY_TIMEOUT, fresh_bus};

fn options(topic: &Topic, group: &str, consumer: &str) -> SubscribeOptions {
    SubscribeOptions::new(topic.clone(), group, consumer)
        .unwrap()
        .with_visibility_timeout(VISIBILITY_TIMEOUT)
}

#[tokio::test]
async fn topics_are_streams_under_the_prefix() {
    let (bus, guard) = fresh_bus(1_000).await;
    let orders = Topic::new("orders").unwrap();
    bus.publish(&orders, &stored_event(1)).await.unwrap();
    let _consumer = bus.subscribe(options(&orders, "g", "c")).await.unwrap();
    let key = bus.stream_key(&orders);
    assert_eq!(key, format!("{{{}}}:bus:orders", guard.as_str()));
    assert_eq!(guard.keys().unwrap(), std::slice::from_ref(&key));

    let mut connection = bus.connection();
    let kind: String = redis_rs::cmd("TYPE")
        .arg(&key)
        .query_async(&mut connection)
        .await
        .unwrap();
    assert_eq!(kind, "stream");
    // The event id is a field of its own, readable without parsing JSON.
    let entries: redis_rs::Value = redis_rs::cmd("XRANGE")
        .arg(&key)
        .arg("-")
        .arg("+")
        .query_async(&mut connection)
        .await
        .unwrap();
    assert!(format!("{entries:?}").contains("event_id"), "{entries:?}");
}

#[tokio::test]
async fn a_blocked_reader_does_not_hold_up_publishing_or_acknowledging() {
    let (bus, _guard) = fresh_bus(1_000).await;
    let idle = Topic::new("idle").unwrap();
    let busy = Topic::new("busy").unwrap();
    let mut waiting = bus.subscribe(options(&idle, "g", "waiter")).await.unwrap();
    let mut worker = bus.subscribe(options(&busy, "g", "worker")).await.unwrap();
    let blocked = tokio::spawn(async move { waiting.receive(10, Duration::from_secs(3)).await });
    tokio::time::sleep(Duration::from_millis(100)).await;

    let started = Instant::now();
    for n in 1..=20 {
        bus.publish(&busy, &stored_event(n)).await.unwrap();
        let got = worker.receive(1, Duration::from_secs(1)).await.unwrap();
        worker.ack_many(&got).await.unwrap();
    }
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "20 publish/receive/ack rounds took {:?} while another subscription was blocked",
        started.elapsed()
    );
    assert!(
        !blocked.is_finished(),
        "the blocked reader is still waiting"
    );
    assert!(blocked.await.unwrap().unwrap().is_empty());
}

#[tokio::test]
async fn an_entry_the_bus_did_not_write_goes_to_the_dead_letter_topic_at_once() {
    let (bus, _guard) = fresh_bus(1_000).await;
    let topic = Topic::new("foreign").unwrap();
    let mut consumer = bus.subscribe(options(&topic, "g", "c")).await.unwrap();
    let mut connection = bus.connection();
    let _: String = redis_rs::cmd("XADD")
        .arg(bus.stream_key(&topic))
        .arg("*")
        .arg("hello")
        .arg("world")
        .query_async(&mut connection)
        .await
        .unwrap();
    bus.publish(&topic, &stored_event(2)).await.unwrap();

    let got = consumer.receive(10, Duration::from_secs(2)).await.unwrap();
    assert_eq!(got.len(), 1, "only the real message is delivered");
    assert_eq!(got[0].event.position.sequence, 2);
    assert_eq!(bus.pending(&topic, "g").await.unwrap().len(), 1);

    let error = bus.read(&topic, None, 10).await.unwrap_err();
    assert_eq!(error.code().as_str(), "CR-E0016");
    assert!(error.to_string().contains("no `event_id` field"), "{error}");
    let dead = bus.topic_len(&topic.dead_letter()).await.unwrap();
    assert_eq!(dead, 1);
    let raw: redis_rs::Value = redis_rs::cmd("XRANGE")
        .arg(bus.stream_key(&topic.dead_letter()))
        .arg("-")
        .arg("+")
        .query_async(&mut connection)
        .await
        .unwrap();
    let raw = format!("{raw:?}");
    assert!(raw.contains("hello") && raw.contains("CR-E0016"), "{raw}");
}

#[tokio::test]
async fn pending_entries_trimmed_away_leave_the_pending_list_quietly() {
    let (bus, _guard) = fresh_bus(10).await;
    let topic = Topic::new("trimmed").unwrap();
    let mut first = bus.subscribe(options(&topic, "g", "first")).await.unwrap();
    bus.publish(&topic, &stored_event(1)).await.unwrap();
    let held = first.receive(1, Duration::from_secs(2)).await.unwrap();
    assert_eq!(held.len(), 1);
    drop(first);
    // Enough publishes for MAXLEN ~ 10 to drop the held entry's node.
    for chunk in (2..=400).collect::<Vec<u64>>().chunks(50) {
        let events: Vec<_> = chunk.iter().copied().map(stored_event).collect();
        bus.publish_batch(&topic, &events).await.unwrap();
    }
    assert!(bus.topic_len(&topic).await.unwrap() < 300);

    tokio::time::sleep(VISIBILITY_TIMEOUT * 2).await;
    let mut again = bus.subscribe(options(&topic, "g", "again")).await.unwrap();
    let got = again.receive(500, Duration::from_secs(2)).await.unwrap();
    assert!(
        got.iter().all(|m| m.event.position.sequence != 1),
        "the trimmed entry is not delivered"
    );
    again.ack_many(&got).await.unwrap();
    let pending = bus.pending(&topic, "g").await.unwrap();
    assert!(
        pending.iter().all(|p| p.id != held[0].id),
        "the trimmed entry left the pending list: {pending:?}"
    );
}

#[tokio::test]
async fn an_unreachable_server_gives_coded_errors() {
    let started = Instant::now();
    let error = RedisBusOptions::new("cr-test:closed")
        .unwrap()
        .connect("redis://127.0.0.1:1")
        .await
        .unwrap_err();
    assert!(
        matches!(error, RedisStoreError::Unreachable { .. }),
        "{error:?}"
    );
    assert!(error.to_string().starts_with("[CR-E0203] "), "{error}");
    assert!(started.elapsed() < Duration::from_secs(10));
    let as_bus = EventBusError::from(error);
    assert!(as_bus.is_transient());
    assert_eq!(as_bus.code().as_str(), "CR-E0203");

    let error = RedisStreamsEventBus::connect("redis://127.0.0.1:6379", "a b")
        .await
        .unwrap_err();
    assert_eq!(error.code().as_str(), "CR-E0201");
}

#[test]
fn an_old_server_is_refused_with_a_coded_error() {
    let error = RedisStoreError::UnsupportedServer {
        address: "127.0.0.1:6379".into(),
        version: "6.0".into(),
    };
    let text = error.to_string();
    assert!(text.starts_with("[CR-E0207] "), "{text}");
    assert!(
        text.contains("6.2 or later") && text.contains("6.0"),
        "{text}"
    );
}
