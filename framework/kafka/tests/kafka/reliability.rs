//! At-least-once on a real broker: resume after a restart, a rebalance
//! with a joining and a leaving member, a broker killed during traffic.
//! Every topic is created explicitly (by the bus, before use); names are
//! unique per test.

use std::collections::{HashMap, HashSet};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use chrono::Utc;
use composable_rust_core::event_bus::{
    BusMessage, EventBus, SubscribeOptions, Subscription, Topic,
};
use composable_rust_core::{Position, StoredEvent, StreamId};
use composable_rust_kafka::KafkaEventBus;
use serde_json::json;
use uuid::Uuid;

use super::support::{bus, options};

fn event(n: u64) -> StoredEvent {
    StoredEvent::builder("Deposited", json!({ "n": n }))
        .with_stream(StreamId::new(format!("account-{}", n % 20)).unwrap(), n)
        .with_position(Position::new(n, n))
        .with_recorded_at(Utc::now())
        .build()
}

fn events(range: std::ops::RangeInclusive<u64>) -> Vec<StoredEvent> {
    range.map(event).collect()
}

fn n_of(message: &BusMessage) -> u64 {
    message.event.payload["n"].as_u64().unwrap()
}

async fn subscribe(bus: &KafkaEventBus, topic: &Topic, consumer: &str) -> Box<dyn Subscription> {
    bus.subscribe(
        SubscribeOptions::new(topic.clone(), "workers", consumer)
            .unwrap()
            .with_visibility_timeout(Duration::from_secs(60)),
    )
    .await
    .unwrap()
}

/// Asserts that in `handled` (in handling order) each stream's events
/// come in order, counting first copies only.
fn assert_per_stream_order(handled: &[u64]) {
    let mut last: HashMap<u64, u64> = HashMap::new();
    let mut seen = HashSet::new();
    for &n in handled {
        if !seen.insert(n) {
            continue;
        }
        if let Some(&before) = last.get(&(n % 20)) {
            assert!(before < n, "account-{}: {n} handled after {before}", n % 20);
        }
        last.insert(n % 20, n);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_resumes_after_its_last_acknowledgement() {
    let bus = bus(3).await;
    let topic = Topic::new("resume").unwrap();
    bus.publish_batch(&topic, &events(1..=200)).await.unwrap();

    // The first run acknowledges 120 messages, holds 30 more, then stops.
    let mut first = subscribe(&bus, &topic, "worker-1").await;
    let mut acked = HashSet::new();
    let mut handled = Vec::new();
    while acked.len() < 120 {
        let batch = first
            .receive(40.min(120 - acked.len()), Duration::from_secs(10))
            .await
            .unwrap();
        handled.extend(batch.iter().map(n_of));
        first.ack_many(&batch).await.unwrap();
        acked.extend(batch.iter().map(n_of));
    }
    let held = first.receive(30, Duration::from_secs(10)).await.unwrap();
    assert!(!held.is_empty());
    handled.extend(held.iter().map(n_of));
    drop(first);

    // The second run gets everything not acknowledged, and nothing that was.
    let mut second = subscribe(&bus, &topic, "worker-1").await;
    let mut rest = Vec::new();
    while acked.len() + rest.len() < 200 {
        let batch = second.receive(50, Duration::from_secs(15)).await.unwrap();
        assert!(!batch.is_empty(), "only {} of 80 came back", rest.len());
        second.ack_many(&batch).await.unwrap();
        rest.extend(batch.iter().map(n_of));
    }
    assert!(
        rest.iter().all(|n| !acked.contains(n)),
        "an acknowledged message came back"
    );
    let all: HashSet<u64> = acked.iter().copied().chain(rest.iter().copied()).collect();
    assert_eq!(all.len(), 200, "every message handled");
    assert_eq!(rest.len(), 80, "each unacknowledged message exactly once");
    handled.extend(&rest);
    assert_per_stream_order(&handled);
    assert!(
        second
            .receive(10, Duration::from_millis(300))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(second.backlog().await.unwrap(), Some(0));
    assert!(bus.pending(&topic, "workers").await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_consumers_rebalance_without_losing_a_message() {
    let bus = bus(4).await;
    let topic = Topic::new("rebalance").unwrap();
    bus.create_topic(&topic).await.unwrap();
    let total = 400_u64;
    let publisher = {
        let bus = bus.clone();
        let topic = topic.clone();
        tokio::spawn(async move {
            for start in (1..=total).step_by(20) {
                bus.publish_batch(&topic, &events(start..=start + 19))
                    .await
                    .unwrap();
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
    };
    let mut a = Some(subscribe(&bus, &topic, "worker-a").await);
    let mut b = None;
    let mut handled_by = HashMap::<&str, Vec<u64>>::new();
    let mut acked = HashSet::new();
    let mut rounds = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    while acked.len() < total as usize {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} of {total} acknowledged",
            acked.len()
        );
        rounds += 1;
        if rounds == 5 {
            b = Some(subscribe(&bus, &topic, "worker-b").await); // b joins
        }
        if acked.len() > 250 && a.is_some() && handled_by.contains_key("worker-b") {
            a = None; // a leaves the group; b takes over its partitions
        }
        for (name, member) in [("worker-a", &mut a), ("worker-b", &mut b)] {
            let Some(member) = member else { continue };
            let batch = member
                .receive(25, Duration::from_millis(200))
                .await
                .unwrap();
            handled_by
                .entry(name)
                .or_default()
                .extend(batch.iter().map(n_of));
            member.ack_many(&batch).await.unwrap();
            acked.extend(batch.iter().map(n_of));
        }
    }
    publisher.await.unwrap();
    assert!(
        !handled_by["worker-a"].is_empty() && !handled_by["worker-b"].is_empty(),
        "both worked"
    );
    for handled in handled_by.values() {
        assert_per_stream_order(handled);
    }
    assert_eq!(
        acked,
        (1..=total).collect::<HashSet<_>>(),
        "no message lost"
    );
    let b = b.as_mut().unwrap();
    assert!(
        b.receive(10, Duration::from_millis(500))
            .await
            .unwrap()
            .is_empty()
    );
}

/// A tansu broker of the test's own, on a free port, in a temporary
/// directory, so the test can kill it.
struct OwnBroker {
    dir: std::path::PathBuf,
    port: u16,
    child: Option<Child>,
}

impl OwnBroker {
    fn start(dir: &Path, port: u16) -> Child {
        let url = format!("tcp://127.0.0.1:{port}");
        Command::new("tansu")
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
            ])
            .args(["--storage-engine", "sqlite://tansu.db"])
            .env_remove("CLUSTER_ID")
            .env_remove("LISTENER_URL")
            .env_remove("ADVERTISED_LISTENER_URL")
            .env_remove("STORAGE_ENGINE")
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start `tansu broker` (install it with ci/install-kafka-broker)")
    }

    fn new() -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = std::env::temp_dir().join(format!("cr-kafka-{}", Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let child = Self::start(&dir, port);
        let broker = Self {
            dir,
            port,
            child: Some(child),
        };
        broker.wait_ready();
        broker
    }

    fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn wait_ready(&self) {
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("tansu did not listen on {}", self.port);
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap(); // SIGKILL
            child.wait().unwrap();
        }
    }

    fn restart(&mut self) {
        self.kill();
        self.child = Some(Self::start(&self.dir, self.port));
        self.wait_ready();
    }
}

impl Drop for OwnBroker {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_killed_during_traffic_loses_no_acknowledged_event() {
    let mut broker = OwnBroker::new();
    let bus = options(&broker.bootstrap(), 3)
        .with_timeout(Duration::from_secs(30))
        .connect()
        .await
        .unwrap();
    let topic = Topic::new("kill").unwrap();
    bus.create_topic(&topic).await.unwrap();
    let publisher = {
        let bus = bus.clone();
        let topic = topic.clone();
        tokio::spawn(async move {
            // Publish 1500 events in batches of 25; a batch that fails is
            // retried (a duplicate is allowed, a loss is not). The ids of
            // batches whose publish returned Ok are acknowledged.
            let mut acknowledged = HashSet::new();
            let mut failures = 0;
            for start in (1..=1500).step_by(25) {
                let batch = events(start..=start + 24);
                loop {
                    match bus.publish_batch(&topic, &batch).await {
                        Ok(_) => break,
                        Err(error) => {
                            assert!(error.is_transient(), "{error}");
                            failures += 1;
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                    }
                }
                acknowledged.extend(batch.iter().map(|e| e.event_id));
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            (acknowledged, failures)
        })
    };
    // Kill the broker mid-traffic, keep it dead for a while, restart it on
    // the same database file.
    tokio::time::sleep(Duration::from_millis(700)).await;
    broker.kill();
    tokio::time::sleep(Duration::from_secs(2)).await;
    broker.restart();
    let (acknowledged, _failures) = publisher.await.unwrap();
    assert_eq!(acknowledged.len(), 1500);

    // A fresh group reads everything back.
    let mut reader = bus
        .subscribe(SubscribeOptions::new(topic.clone(), "audit", "audit-1").unwrap())
        .await
        .unwrap();
    let mut seen = HashSet::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !acknowledged.is_subset(&seen) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} of 1500 acknowledged events found",
            acknowledged.intersection(&seen).count()
        );
        let batch = reader.receive(500, Duration::from_secs(2)).await.unwrap();
        reader.ack_many(&batch).await.unwrap();
        seen.extend(batch.iter().map(|m| m.event.event_id));
    }
    assert_eq!(seen.len(), 1500, "only published events");
}
