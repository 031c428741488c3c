//! Reliability on real Redis: a consumer killed before acknowledging has
//! its events redelivered to another member, and they take effect once
//! (idempotency and effect in one Redis script). What holds on any bus (a
//! publisher killed at random moments, a projection fed by the bus) is
//! checked by the conformance suite (`bus_conformance`).

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use composable_rust_core::StoredEvent;
use composable_rust_core::event_bus::{
    BusMessage, EventBus, SubscribeOptions, Subscription, Topic,
};
use composable_rust_redis::redis as redis_rs;

use super::bus_support::{VISIBILITY_TIMEOUT, fresh_bus};

fn orders() -> Topic {
    Topic::new("orders").unwrap()
}

/// Handles `message` the way a real consumer would: `SET NX` of an
/// idempotency key per event id and, only the first time, the effect (a
/// counter per event id), atomically (one script: a consumer killed
/// between the two would leave the event marked handled without its
/// effect). Then acknowledges.
async fn handle(
    connection: &mut redis_rs::aio::ConnectionManager,
    prefix: &str,
    message: &BusMessage,
) {
    let id = message.event.event_id;
    let _: i64 = redis_rs::cmd("EVAL")
        .arg(
            "if redis.call('SET', KEYS[1], 1, 'NX') then \
                 return redis.call('HINCRBY', KEYS[2], ARGV[1], 1) \
             end \
             return 0",
        )
        .arg(2)
        .arg(format!("{{{prefix}}}:handled:{id}"))
        .arg(format!("{{{prefix}}}:effects"))
        .arg(id.to_string())
        .query_async(connection)
        .await
        .unwrap();
}

async fn worker(
    mut subscription: Box<dyn Subscription>,
    mut connection: redis_rs::aio::ConnectionManager,
    prefix: String,
    slow: bool,
) {
    loop {
        let batch = subscription
            .receive(5, Duration::from_millis(200))
            .await
            .unwrap();
        for message in &batch {
            handle(&mut connection, &prefix, message).await;
            if slow {
                // Killed somewhere in here: handled, not acknowledged.
                tokio::time::sleep(Duration::from_millis(3)).await;
            }
            subscription.ack(message).await.unwrap();
        }
    }
}

#[tokio::test]
async fn a_consumer_killed_before_acknowledging_has_its_events_handled_once_by_another() {
    let (bus, guard) = fresh_bus(100_000).await;
    let topic = orders();
    let options = |name: &str| {
        SubscribeOptions::new(topic.clone(), "payments", name)
            .unwrap()
            .with_visibility_timeout(VISIBILITY_TIMEOUT)
    };
    let doomed = bus.subscribe(options("payments-a")).await.unwrap();
    let survivor = bus.subscribe(options("payments-b")).await.unwrap();
    let sent: Vec<StoredEvent> = (1..=200)
        .map(composable_rust_testing::event_bus_conformance::stored_event)
        .collect();
    for chunk in sent.chunks(20) {
        bus.publish_batch(&topic, chunk).await.unwrap();
    }

    let killed = tokio::spawn(worker(
        doomed,
        bus.connection(),
        guard.as_str().to_owned(),
        true,
    ));
    tokio::time::sleep(Duration::from_millis(60)).await;
    killed.abort();
    let _ = killed.await;
    let held = bus.pending(&topic, "payments").await.unwrap();
    assert!(
        held.iter().any(|p| p.consumer == "payments-a"),
        "the killed consumer held unacknowledged messages: {held:?}"
    );

    let survivor = tokio::spawn(worker(
        survivor,
        bus.connection(),
        guard.as_str().to_owned(),
        false,
    ));
    let mut connection = bus.connection();
    let effects_key = format!("{{{}}}:effects", guard.as_str());
    let done = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            let effects: HashMap<String, i64> = redis_rs::cmd("HGETALL")
                .arg(&effects_key)
                .query_async(&mut connection)
                .await
                .unwrap();
            let pending = bus.pending(&topic, "payments").await.unwrap();
            if effects.len() == sent.len() && pending.is_empty() {
                return effects;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("every event handled and acknowledged");
    survivor.abort();
    let _ = survivor.await;
    assert!(
        done.values().all(|&n| n == 1),
        "each event took effect once: {:?}",
        done.iter().filter(|(_, n)| **n != 1).collect::<Vec<_>>()
    );
    let ids: HashSet<String> = sent.iter().map(|e| e.event_id.to_string()).collect();
    assert_eq!(done.keys().cloned().collect::<HashSet<_>>(), ids);
}
