//! The event bus on Redis Streams: consumer groups, acknowledgements,
//! redelivery and dead letters, then a whole transfer carried by the bus.
//! Needs `REDIS_URL`. Each test works under a key prefix of its own and
//! deletes its keys at the end.

use std::time::Duration;

use bank::account::{Account, AccountCommand};
use bank::teller::Teller;
use bank::transfer::{TransferSaga, request_transfer};
use bank::worker::deliver;
use composable_rust::prelude::*;
use composable_rust::redis::{RedisProjectionStore, RedisStreamsEventBus};
use composable_rust::saga::{Handled, SagaOutcome};
use composable_rust::serde_json::json;
use composable_rust::testing::services;
use composable_rust::uuid::Uuid;
use composable_rust::{AggregateRepository, EventPublisher, InMemoryEventStore};
use composable_rust::{InMemoryProjectionStore, SagaRuntime, SubscribeOptions, Topic};

const NO_WAIT: Duration = Duration::ZERO;

/// A bus under a fresh key prefix, and the prefix (to delete it after).
async fn bus() -> (RedisStreamsEventBus, String) {
    // Fails with a message saying how to start Redis when REDIS_URL is unset.
    let url = services::redis_url();
    let prefix = format!("bank-test:{}", Uuid::new_v4().simple());
    let bus = RedisStreamsEventBus::connect(&url, &prefix).await.unwrap();
    (bus, prefix)
}

/// Deletes every key under `prefix`.
async fn clean_up(prefix: &str) {
    let store = RedisProjectionStore::connect(&services::redis_url(), prefix)
        .await
        .unwrap();
    store.clear().await.unwrap();
}

fn deposited(amount: u64) -> StoredEvent {
    StoredEvent::builder("Deposited", json!({ "amount": amount })).build()
}

#[tokio::test]
async fn every_group_gets_every_message_and_its_members_share_them() {
    let (bus, prefix) = bus().await;
    let topic = Topic::new("bank").unwrap();
    let subscribe = |group: &str, consumer: &str| {
        SubscribeOptions::new(topic.clone(), group, consumer).unwrap()
    };
    let mut billing_1 = bus
        .subscribe(subscribe("billing", "billing-1"))
        .await
        .unwrap();
    let mut billing_2 = bus
        .subscribe(subscribe("billing", "billing-2"))
        .await
        .unwrap();
    let mut audit = bus.subscribe(subscribe("audit", "audit-1")).await.unwrap();

    for amount in 1..=4 {
        bus.publish(&topic, &deposited(amount)).await.unwrap();
    }

    // Within a group, each message goes to one member...
    let first = billing_1.receive(2, NO_WAIT).await.unwrap();
    let second = billing_2.receive(10, NO_WAIT).await.unwrap();
    assert_eq!((first.len(), second.len()), (2, 2));
    assert!(first.iter().all(|m| second.iter().all(|n| n.id != m.id)));
    // ...and every group gets every message.
    assert_eq!(audit.receive(10, NO_WAIT).await.unwrap().len(), 4);

    // Acknowledged messages are done: nothing is pending in the group.
    billing_1.ack_many(&first).await.unwrap();
    billing_2.ack_many(&second).await.unwrap();
    assert!(bus.pending(&topic, "billing").await.unwrap().is_empty());
    clean_up(&prefix).await;
}

#[tokio::test]
async fn a_message_nobody_acknowledges_is_delivered_again() {
    let (bus, prefix) = bus().await;
    let topic = Topic::new("bank").unwrap();
    let options = |consumer: &str| {
        SubscribeOptions::new(topic.clone(), "transfers", consumer)
            .unwrap()
            .with_visibility_timeout(Duration::from_millis(100))
    };
    let mut crashed = bus.subscribe(options("transfers-1")).await.unwrap();
    let mut survivor = bus.subscribe(options("transfers-2")).await.unwrap();
    bus.publish(&topic, &deposited(10)).await.unwrap();

    // The first consumer receives it and dies before acknowledging it.
    let lost = crashed.receive(1, NO_WAIT).await.unwrap();
    assert_eq!(lost[0].deliveries, 1);
    drop(crashed);

    // After the visibility timeout, another member gets it, same event.
    tokio::time::sleep(Duration::from_millis(150)).await;
    let again = survivor.receive(1, NO_WAIT).await.unwrap();
    assert_eq!(again[0].event.event_id, lost[0].event.event_id);
    assert_eq!(again[0].deliveries, 2);
    survivor.ack(&again[0]).await.unwrap();
    clean_up(&prefix).await;
}

#[tokio::test]
async fn a_message_that_keeps_failing_ends_in_the_dead_letter_topic() {
    let (bus, prefix) = bus().await;
    let topic = Topic::new("bank").unwrap();
    let options = SubscribeOptions::new(topic.clone(), "transfers", "transfers-1")
        .unwrap()
        .with_visibility_timeout(Duration::from_millis(50))
        .with_max_deliveries(2);
    let mut consumer = bus.subscribe(options).await.unwrap();
    bus.publish(&topic, &deposited(10)).await.unwrap();

    // Delivered twice, never acknowledged (handling it fails every time).
    for delivery in 1..=2 {
        let received = consumer.receive(1, NO_WAIT).await.unwrap();
        assert_eq!(received[0].deliveries, delivery);
        tokio::time::sleep(Duration::from_millis(80)).await;
    }

    // The third time, the bus sets it aside instead of delivering it.
    assert!(consumer.receive(1, NO_WAIT).await.unwrap().is_empty());
    let dead = bus.read(&topic.dead_letter(), None, 10).await.unwrap();
    assert_eq!(dead.len(), 1);
    let info = dead[0].dead_letter.as_ref().unwrap();
    assert_eq!((info.group.as_str(), info.deliveries), ("transfers", 2));
    clean_up(&prefix).await;
}

#[tokio::test]
async fn a_transfer_carried_by_the_bus() {
    let (bus, prefix) = bus().await;
    let topic = Topic::new("bank").unwrap();
    let events = InMemoryEventStore::new();
    let accounts = AggregateRepository::<Account, _>::new(events.clone(), ());
    for (id, owner, amount) in [(1, "Ada", 100), (2, "Grace", 0)] {
        let stream = accounts.stream_id(id).unwrap();
        let open = AccountCommand::Open {
            owner: owner.into(),
        };
        accounts.execute(&stream, open).await.unwrap();
        if amount > 0 {
            let deposit = AccountCommand::Deposit { amount };
            accounts.execute(&stream, deposit).await.unwrap();
        }
    }

    let checkpoints = std::sync::Arc::new(InMemoryProjectionStore::new());
    let publisher = EventPublisher::new(
        "bus-publisher",
        events.clone(),
        bus.clone(),
        checkpoints,
        topic.clone(),
    );
    let saga = TransferSaga {
        deadline: Duration::from_secs(30),
    };
    let runtime = SagaRuntime::new(saga, events.clone(), Teller::new(events.clone()));
    let options = SubscribeOptions::new(topic, "transfers", "transfers-1").unwrap();
    let mut transfers = bus.subscribe(options).await.unwrap();

    let id = request_transfer(&events, 1, 2, 30).await.unwrap();
    let mut outcome = None;
    for _round in 0..50 {
        publisher.publish_pending().await.unwrap();
        let wait = Duration::from_millis(100);
        for handled in deliver(&runtime, transfers.as_mut(), wait).await.unwrap() {
            if let Handled::Stepped {
                saga_id,
                outcome: done,
            } = handled
                && saga_id == id
            {
                outcome = done;
            }
        }
        if outcome.is_some() {
            break;
        }
    }
    assert_eq!(outcome, Some(SagaOutcome::Completed));
    let grace = accounts.stream_id(2).unwrap();
    assert_eq!(accounts.load(&grace).await.unwrap().state.balance, 30);
    runtime.shutdown().await;
    clean_up(&prefix).await;
}
