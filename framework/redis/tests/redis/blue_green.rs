//! `RedisBlueGreen` against a real Redis: a rebuild into a new version
//! while the live one serves, a failing projection, a switch refused
//! because the live version changed, the grace period of `drop_retired`
//! (and what it must never delete), and invalid base prefixes. The book's
//! "Rebuilding a Redis read model" section includes parts of this file.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use composable_rust_core::projection::blue_green::LoadOptions;
use composable_rust_core::projection::{ProjectionStore, ProjectionTx};
use composable_rust_core::{
    Clock, CodedError, EventStore, ExpectedVersion, InMemoryEventStore, NewEvent, Projection,
    ProjectionError, StoredEvent, StreamId, TestClock,
};
use composable_rust_redis::blue_green::VersionState;
use composable_rust_redis::redis as redis_rs;
use composable_rust_redis::{RedisBlueGreen, RedisProjectionStore, RedisTx};
use composable_rust_testing::fixtures::TestKeyPrefix;
use serde_json::json;
use tokio::sync::Notify;

/// A projection paused inside its first `apply` until the test lets it go.
#[derive(Debug, Default)]
struct Gate {
    entered: Notify,
    release: Notify,
    passed: AtomicBool,
}

// ANCHOR: projection
/// The amount of each order under `order:<id>`: version 1 of the code
/// stores euros, version 2 cents (a change to what is already written).
#[derive(Debug, Default)]
struct Amounts {
    cents: bool,
    /// Refuse events whose payload has `"poison": true`.
    strict: bool,
    gate: Option<Arc<Gate>>,
}

#[async_trait]
impl Projection for Amounts {
    type Store = RedisProjectionStore;

    fn name(&self) -> &str {
        "amounts"
    }

    async fn apply(&self, event: &StoredEvent, tx: &mut RedisTx) -> Result<(), ProjectionError> {
        if self.strict && event.payload["poison"] == json!(true) {
            return Err(ProjectionError::apply("cannot handle poison"));
        }
        if let Some(gate) = &self.gate
            && !gate.passed.swap(true, Ordering::SeqCst)
        {
            gate.entered.notify_one();
            gate.release.notified().await;
        }
        let euros = event.payload["amount"].as_i64().unwrap_or(0);
        let amount = if self.cents { euros * 100 } else { euros };
        let key = format!("order:{}", event.stream_id);
        tx.save(&key, amount.to_string().as_bytes()).await
    }

    async fn reset(&self, tx: &mut RedisTx) -> Result<(), ProjectionError> {
        tx.delete_prefix("order:").await.map(|_| ())
    }
}
// ANCHOR_END: projection

/// A base prefix of the test's own. The fixture deletes `{<base>}:*` (the
/// registry); the versions' keys (`{<base>.v<n>}:...`) and the hostile
/// neighbour's (`{<base>x}:...`) are deleted by `Leftovers`.
struct Base {
    prefix: TestKeyPrefix,
    _leftovers: Leftovers,
}

impl Base {
    fn new() -> Self {
        let prefix = TestKeyPrefix::new();
        let leftovers = Leftovers {
            url: prefix.url().to_owned(),
            pattern: format!("{{{}*", prefix.as_str()),
        };
        Self {
            prefix,
            _leftovers: leftovers,
        }
    }

    fn as_str(&self) -> &str {
        self.prefix.as_str()
    }

    fn url(&self) -> &str {
        self.prefix.url()
    }
}

/// Deletes every key matching `pattern` when dropped, even after a panic.
struct Leftovers {
    url: String,
    pattern: String,
}

impl Drop for Leftovers {
    fn drop(&mut self) {
        use redis_rs::Commands;
        let Ok(mut connection) =
            redis_rs::Client::open(self.url.as_str()).and_then(|client| client.get_connection())
        else {
            return;
        };
        let keys: Vec<String> = match connection.scan_match::<_, String>(&self.pattern) {
            Ok(keys) => keys.filter_map(Result::ok).collect(),
            Err(_) => return,
        };
        if !keys.is_empty() {
            let _: Result<u64, _> = connection.del(&keys);
        }
    }
}

/// Every key matching `pattern` (`SCAN`).
async fn keys(store_like: &RedisProjectionStore, pattern: &str) -> Vec<String> {
    let mut connection = store_like.connection();
    let mut keys = Vec::new();
    let mut cursor: u64 = 0;
    loop {
        let (next, batch): (u64, Vec<String>) = redis_rs::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(pattern)
            .arg("COUNT")
            .arg(1000)
            .query_async(&mut connection)
            .await
            .expect("SCAN");
        keys.extend(batch);
        if next == 0 {
            return keys;
        }
        cursor = next;
    }
}

/// Three orders of 10, 20 and 30 euros.
async fn orders() -> InMemoryEventStore {
    let events = InMemoryEventStore::new();
    for (order, amount) in [("1", 10), ("2", 20), ("3", 30)] {
        append(&events, order, json!({ "amount": amount })).await;
    }
    events
}

async fn append(events: &InMemoryEventStore, order: &str, payload: serde_json::Value) {
    let stream = StreamId::new(order).expect("a valid stream id");
    events
        .append(
            &stream,
            ExpectedVersion::Any,
            vec![NewEvent::new("Placed", payload)],
        )
        .await
        .expect("append");
}

async fn read(store: &RedisProjectionStore, key: &str) -> Option<String> {
    store
        .get(key)
        .await
        .expect("GET")
        .map(|bytes| String::from_utf8(bytes).expect("UTF-8"))
}

async fn versions(base: &Base, clock: &TestClock) -> RedisBlueGreen {
    RedisBlueGreen::connect(base.url(), base.as_str())
        .await
        .expect("connect")
        .with_clock(Arc::new(clock.clone()))
        .with_grace_period(Duration::from_secs(60))
        .with_load_options(LoadOptions {
            batch_size: 2,
            prefetch: 1,
        })
}

type TestResult = Result<(), Box<dyn std::error::Error>>;

#[tokio::test]
async fn a_rebuild_loads_a_new_version_while_the_live_one_serves_then_switches_readers()
-> TestResult {
    let base = Base::new();
    let clock = TestClock::new();
    let events = Arc::new(orders().await);
    // ANCHOR: rebuild
    let versions = RedisBlueGreen::connect(base.url(), base.as_str())
        .await?
        .with_grace_period(Duration::from_secs(60))
        .with_clock(Arc::new(clock.clone()));
    // The first rebuild creates version 1 and makes it live.
    let first = versions
        .rebuild(&Amounts::default(), events.clone())
        .await?;
    assert_eq!((first.from, first.to), (None, 1));
    let reader = versions.live_store().await?; // what a reader resolves
    assert_eq!(read(&reader, "order:1").await.as_deref(), Some("10"));

    // Version 2 of the code stores cents: rebuild beside the live version.
    let gate = Arc::new(Gate::default());
    let cents = Amounts {
        cents: true,
        gate: Some(gate.clone()),
        ..Amounts::default()
    };
    let while_loading = async {
        gate.entered.notified().await; // the load is under way
        let live = versions.live_store().await?;
        assert_eq!(live.prefix(), reader.prefix(), "still version 1");
        assert_eq!(read(&live, "order:1").await.as_deref(), Some("10"));
        gate.release.notify_one();
        Ok::<_, Box<dyn std::error::Error>>(())
    };
    let (switched, checked) = tokio::join!(versions.rebuild(&cents, events.clone()), while_loading);
    checked?;
    let switched = switched?;
    assert_eq!((switched.from, switched.to), (Some(1), 2));

    // Readers that resolve again see version 2; one still holding version
    // 1 keeps reading it until the grace period is over.
    let live = versions.live_store().await?;
    assert_eq!(read(&live, "order:1").await.as_deref(), Some("1000"));
    assert_eq!(read(&reader, "order:1").await.as_deref(), Some("10"));
    // ANCHOR_END: rebuild

    let progress = *versions.progress().borrow();
    assert!(progress.done);
    assert_eq!(progress.events_applied, 3);
    let states: Vec<_> = versions
        .versions()
        .await?
        .into_iter()
        .map(|v| (v.number, v.state, v.retired_at))
        .collect();
    assert_eq!(
        states,
        [
            (1, VersionState::Retired, Some(clock.now())),
            (2, VersionState::Live, None)
        ]
    );
    assert_eq!(
        versions.live().await?.map(|v| v.prefix),
        Some(format!("{}.v2", base.as_str()))
    );
    Ok(())
}

#[tokio::test]
async fn a_second_rebuild_of_the_same_base_is_refused_while_one_runs() -> TestResult {
    let base = Base::new();
    let clock = TestClock::new();
    let events: Arc<InMemoryEventStore> = Arc::new(orders().await);
    let versions = versions(&base, &clock).await;
    let gate = Arc::new(Gate::default());
    let paused = Amounts {
        gate: Some(gate.clone()),
        ..Amounts::default()
    };
    let other = async {
        gate.entered.notified().await;
        let refused = versions
            .rebuild(&Amounts::default(), events.clone())
            .await
            .expect_err("the first rebuild holds the lock");
        gate.release.notify_one();
        refused
    };
    let (first, refused) = tokio::join!(versions.rebuild(&paused, events.clone()), other);
    assert_eq!(refused.code().as_str(), "CR-E0211", "{refused}");
    assert_eq!(first?.to, 1, "the refused rebuild created no version");
    assert_eq!(versions.versions().await?.len(), 1);
    Ok(())
}

#[tokio::test]
async fn a_failing_projection_leaves_the_live_version_untouched_and_its_version_failed()
-> TestResult {
    let base = Base::new();
    let clock = TestClock::new();
    let events = orders().await;
    let versions = versions(&base, &clock).await;
    versions
        .rebuild(&Amounts::default(), Arc::new(events.clone()))
        .await?;
    let live_keys = keys(
        &versions.live_store().await?,
        &format!("{{{}.v1}}:*", base.as_str()),
    )
    .await;

    append(&events, "4", json!({ "amount": 40, "poison": true })).await;
    let poison = events
        .read_all(composable_rust_core::Position::START, 10)
        .await?
        .pop()
        .expect("the poison event");
    let strict = Amounts {
        cents: true,
        strict: true,
        ..Amounts::default()
    };
    let error = versions
        .rebuild(&strict, Arc::new(events.clone()))
        .await
        .expect_err("the poison event stops the rebuild");
    assert_eq!(error.code().as_str(), "CR-E0209", "{error}");
    let text = error.to_string();
    assert!(text.contains(&poison.event_id.to_string()), "{text}");
    assert!(text.contains("the live version still serves"), "{text}");

    // Readers never left version 1, whose keys are as they were.
    let live = versions.live_store().await?;
    assert_eq!(live.prefix().as_str(), format!("{}.v1", base.as_str()));
    assert_eq!(read(&live, "order:1").await.as_deref(), Some("10"));
    let mut after = keys(&live, &format!("{{{}.v1}}:*", base.as_str())).await;
    let mut before = live_keys;
    after.sort();
    before.sort();
    assert_eq!(after, before);
    // Version 2 is marked failed, and its keys are gone.
    let failed = versions.versions().await?.pop().expect("version 2");
    assert_eq!((failed.number, failed.state), (2, VersionState::Failed));
    assert_eq!(failed.failed_at, Some(clock.now()));
    // Its registry entry goes after the grace period; version 1 stays.
    clock.advance(Duration::from_secs(60));
    let dropped = versions.drop_retired().await?;
    assert_eq!(dropped.iter().map(|v| v.number).collect::<Vec<_>>(), [2]);
    let left: Vec<_> = versions
        .versions()
        .await?
        .into_iter()
        .map(|v| (v.number, v.state))
        .collect();
    assert_eq!(left, [(1, VersionState::Live)]);
    assert!(
        keys(&live, &format!("{{{}.v2}}:*", base.as_str()))
            .await
            .is_empty()
    );
    Ok(())
}

#[tokio::test]
async fn a_switch_is_refused_when_the_live_version_changed_during_the_rebuild() -> TestResult {
    let base = Base::new();
    let clock = TestClock::new();
    let events = Arc::new(orders().await);
    let versions = versions(&base, &clock).await;
    versions
        .rebuild(&Amounts::default(), events.clone())
        .await?;
    versions
        .rebuild(&Amounts::default(), events.clone())
        .await?;

    let gate = Arc::new(Gate::default());
    let cents = Amounts {
        cents: true,
        gate: Some(gate.clone()),
        ..Amounts::default()
    };
    let switch_back = async {
        gate.entered.notified().await;
        // An operator switches readers back to version 1 by hand.
        let mut connection = versions.live_store().await.expect("live").connection();
        let at = "2026-01-01T00:00:00.000Z";
        let _: () = redis_rs::cmd("HSET")
            .arg(versions.registry_key())
            .arg(&[
                "live",
                "1",
                "v1:state",
                "live",
                "v2:state",
                "retired",
                "v2:retired_at",
                at,
            ])
            .query_async(&mut connection)
            .await
            .expect("HSET");
        gate.release.notify_one();
    };
    let (refused, ()) = tokio::join!(versions.rebuild(&cents, events.clone()), switch_back);
    let error = refused.expect_err("the live version changed");
    assert_eq!(error.code().as_str(), "CR-E0210", "{error}");
    assert!(error.to_string().contains("it is 1, not 2"), "{error}");

    let live = versions.live_store().await?;
    assert_eq!(live.prefix().as_str(), format!("{}.v1", base.as_str()));
    assert_eq!(read(&live, "order:1").await.as_deref(), Some("10"));
    let third = versions.versions().await?.pop().expect("version 3");
    assert_eq!((third.number, third.state), (3, VersionState::Failed));
    assert!(
        keys(&live, &format!("{{{}.v3}}:*", base.as_str()))
            .await
            .is_empty()
    );
    Ok(())
}

#[tokio::test]
async fn drop_retired_waits_for_the_grace_period_and_spares_the_live_version_and_neighbours()
-> TestResult {
    let base = Base::new();
    let clock = TestClock::new();
    let events = Arc::new(orders().await);
    let versions = versions(&base, &clock).await;
    // Hostile neighbours: a plain store under `<base>x` and one under the
    // base itself (its read model, not the registry).
    let neighbour =
        RedisProjectionStore::connect(base.url(), &format!("{}x", base.as_str())).await?;
    let same_base = RedisProjectionStore::connect(base.url(), base.as_str()).await?;
    for store in [&neighbour, &same_base] {
        let mut tx = store.begin().await?;
        tx.save("order:1", b"mine").await?;
        store.commit(tx).await?;
    }

    versions
        .rebuild(&Amounts::default(), events.clone())
        .await?;
    // ANCHOR: drop
    versions
        .rebuild(
            &Amounts {
                cents: true,
                ..Amounts::default()
            },
            events.clone(),
        )
        .await?;
    let retired = versions.version_store(1);
    clock.advance(Duration::from_secs(59));
    assert!(
        versions.drop_retired().await?.is_empty(),
        "within the grace period"
    );
    assert_eq!(read(&retired, "order:1").await.as_deref(), Some("10"));

    clock.advance(Duration::from_secs(1));
    let dropped = versions.drop_retired().await?;
    assert_eq!(dropped.iter().map(|v| v.number).collect::<Vec<_>>(), [1]);
    assert_eq!(read(&retired, "order:1").await, None);
    // ANCHOR_END: drop

    let live = versions.live_store().await?;
    assert_eq!(read(&live, "order:1").await.as_deref(), Some("1000"));
    assert_eq!(read(&neighbour, "order:1").await.as_deref(), Some("mine"));
    assert_eq!(read(&same_base, "order:1").await.as_deref(), Some("mine"));
    let left: Vec<_> = versions
        .versions()
        .await?
        .into_iter()
        .map(|v| v.number)
        .collect();
    assert_eq!(left, [2]);
    assert!(
        keys(&live, &format!("{{{}.v1}}:*", base.as_str()))
            .await
            .is_empty()
    );
    assert!(
        !keys(&live, &format!("{{{}x}}:*", base.as_str()))
            .await
            .is_empty()
    );

    // Much later, still nothing of the live version goes.
    clock.advance(Duration::from_secs(3600));
    assert!(versions.drop_retired().await?.is_empty());
    assert_eq!(read(&live, "order:1").await.as_deref(), Some("1000"));
    Ok(())
}

#[tokio::test]
async fn an_invalid_base_prefix_is_a_typed_error() {
    let url = composable_rust_testing::services::redis_url();
    for base in ["", "orders.v1", "my orders", "{orders}", "orders*"] {
        let error = RedisBlueGreen::connect(&url, base)
            .await
            .expect_err("rejected");
        assert_eq!(error.code().as_str(), "CR-E0208", "{base:?}: {error}");
        assert!(error.to_string().contains("myapp:orders"), "{error}");
    }
    let store = RedisProjectionStore::connect(&url, "cr-test:any")
        .await
        .expect("connect");
    let error = RedisBlueGreen::new(store.connection(), "a.b").expect_err("rejected");
    assert_eq!(error.code().as_str(), "CR-E0208", "{error}");
}
