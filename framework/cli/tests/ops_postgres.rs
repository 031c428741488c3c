//! The operations commands on a real PostgreSQL deployment: events and
//! projection store in a schema of their own, seeded through the
//! framework's stores and a real projection manager, inspected and
//! operated through the `composable` binary.

mod ops_support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use composable_rust_core::projection::{ProjectionManager, ProjectionStoreExt};
use composable_rust_core::{EventStore, ExpectedVersion, NewEvent, StreamId};
use composable_rust_postgres::{PostgresEventStore, PostgresProjectionStore};
use composable_rust_testing::fixtures::TestSchema;
use composable_rust_testing::services;
use ops_support::{Tally, config, failure, json, normalise, success};
use serde_json::json;

type Manager = ProjectionManager<Tally<PostgresProjectionStore>>;

/// A seeded deployment: three streams (one with a poison event), a
/// migrated projection store, and the tally manager after a catch-up,
/// which dead-lettered the poison event.
struct Deployment {
    schema: TestSchema,
    url: String,
    events: PostgresEventStore,
    store: Arc<PostgresProjectionStore>,
    fixed: Arc<AtomicBool>,
    manager: Manager,
}

impl Deployment {
    async fn new() -> Self {
        let url = services::database_url();
        let schema = TestSchema::new();
        let events = PostgresEventStore::connect(&url)
            .await
            .unwrap()
            .with_schema(schema.name())
            .unwrap();
        events.migrate().await.unwrap();
        let store = PostgresProjectionStore::new(events.pool().clone())
            .with_schema(schema.name())
            .unwrap();
        store.migrate().await.unwrap();
        let store = Arc::new(store);
        for (stream, types) in [
            ("order-1", vec!["placed", "paid", "shipped"]),
            ("order-2", vec!["placed", "poison"]),
            ("user-7", vec!["registered"]),
        ] {
            let new = types
                .into_iter()
                .map(|kind| NewEvent::new(kind, json!({ "kind": kind })))
                .collect();
            events
                .append(&StreamId::new(stream).unwrap(), ExpectedVersion::Any, new)
                .await
                .unwrap();
        }
        let fixed = Arc::new(AtomicBool::new(false));
        let manager = ProjectionManager::builder(
            Tally::new(Arc::clone(&fixed)),
            Arc::clone(&store),
            events.clone(),
        )
        .with_config(config())
        .build();
        assert_eq!(manager.catch_up().await.unwrap(), 6);
        assert_eq!(manager.dead_letters().await.unwrap().len(), 1);
        Self {
            schema,
            url,
            events,
            store,
            fixed,
            manager,
        }
    }

    /// `args` followed by the connection options of this deployment.
    fn args<'a>(&'a self, args: &[&'a str]) -> Vec<&'a str> {
        let mut all = args.to_vec();
        all.extend(["--database-url", &self.url, "--schema", self.schema.name()]);
        all
    }

    async fn tally(&self, stream: &str) -> Option<u64> {
        self.store
            .get_json(&format!("tally:{stream}"))
            .await
            .unwrap()
    }

    async fn poison_id(&self) -> String {
        self.manager.dead_letters().await.unwrap()[0]
            .event
            .event_id
            .to_string()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn events_lists_streams_shows_one_and_tails_the_global_stream() {
    let d = Deployment::new().await;

    let streams = json(&d.args(&["events", "list", "--format", "json"]));
    let listed: Vec<(&str, u64)> = streams
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["stream_id"].as_str().unwrap(),
                s["version"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(listed, [("order-1", 3), ("order-2", 2), ("user-7", 1)]);
    let orders = json(&d.args(&["events", "list", "--prefix", "order-", "--format", "json"]));
    assert_eq!(orders.as_array().unwrap().len(), 2);

    let shown = json(&d.args(&["events", "show", "order-1", "--format", "json"]));
    let types: Vec<&str> = shown
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event_type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["placed", "paid", "shipped"]);
    let later = json(&d.args(&[
        "events",
        "show",
        "order-1",
        "--from-version",
        "3",
        "--format",
        "json",
    ]));
    assert_eq!(later[0]["stream_version"], 3);
    assert_eq!(later[0]["payload"], json!({ "kind": "shipped" }));

    // The last two events, in commit order; then only `placed`, then only
    // the streams starting with `user-`.
    let tail = json(&d.args(&["events", "tail", "-n", "2", "--format", "json"]));
    let tail: Vec<(&str, &str)> = tail
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["stream_id"].as_str().unwrap(),
                e["event_type"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(tail, [("order-2", "poison"), ("user-7", "registered")]);
    let placed = json(&d.args(&["events", "tail", "--type", "placed", "--format", "json"]));
    assert_eq!(placed.as_array().unwrap().len(), 2);
    let users = json(&d.args(&[
        "events",
        "tail",
        "--stream-prefix",
        "user-",
        "--format",
        "json",
    ]));
    assert_eq!(users.as_array().unwrap().len(), 1);

    // Starting after a position skips what came before it.
    let first = json(&d.args(&["events", "tail", "--format", "json"]));
    let third = first[2]["position"].as_str().unwrap();
    let after = json(&d.args(&["events", "tail", "--after", third, "--format", "json"]));
    assert_eq!(after.as_array().unwrap().len(), 3);

    insta::assert_snapshot!(
        "tail_table",
        normalise(&success(&d.args(&["events", "tail", "-n", "3"])))
    );
    insta::assert_snapshot!(
        "list_table",
        normalise(&success(&d.args(&["events", "list"])))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn status_and_dead_letters_show_what_the_manager_did() {
    let d = Deployment::new().await;
    let poison = d.poison_id().await;

    let status = json(&d.args(&["projections", "status", "--format", "json"]));
    assert_eq!(status[0]["projection"], "tally");
    assert_eq!(status[0]["events_behind"], 0);
    assert_eq!(status[0]["dead_letters"], 1);
    assert_eq!(status[0]["position"], d.manager.position().to_string());

    // One more event: the projection is one behind until it catches up.
    d.events
        .append(
            &StreamId::new("user-8").unwrap(),
            ExpectedVersion::NoStream,
            vec![NewEvent::new("registered", json!({}))],
        )
        .await
        .unwrap();
    let status = json(&d.args(&["projections", "status", "--format", "json"]));
    assert_eq!(status[0]["events_behind"], 1);
    insta::assert_snapshot!(
        "status_table",
        normalise(&success(&d.args(&["projections", "status"])))
    );

    let letters = json(&d.args(&["dead-letters", "list", "--format", "json"]));
    assert_eq!(letters[0]["projection"], "tally");
    assert_eq!(letters[0]["event"]["event_id"], poison.as_str());
    assert_eq!(letters[0]["attempts"], 2);
    assert_eq!(letters[0]["retry_requested"], false);
    let shown = json(&d.args(&["dead-letters", "show", "tally", &poison, "--format", "json"]));
    assert!(
        shown["error"]
            .as_str()
            .unwrap()
            .contains("cannot tally poison event"),
        "{shown}"
    );
    let text = success(&d.args(&["dead-letters", "show", "tally", &poison]));
    assert!(
        text.contains("stream:         order-2 (version 2)"),
        "{text}"
    );
    assert!(
        json(&d.args(&[
            "dead-letters",
            "list",
            "--projection",
            "other",
            "--format",
            "json"
        ]))
        .as_array()
        .unwrap()
        .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_requested_retry_is_applied_by_the_manager_or_recorded_again() {
    let d = Deployment::new().await;
    let poison = d.poison_id().await;

    // Not fixed yet: the manager tries, fails, and records the new attempt.
    let said = success(&d.args(&["dead-letters", "retry", "tally", &poison]));
    assert!(said.contains("retry of event"), "{said}");
    let letters = json(&d.args(&["dead-letters", "list", "--format", "json"]));
    assert_eq!(letters[0]["retry_requested"], true);
    let status = json(&d.args(&["projections", "status", "--format", "json"]));
    assert_eq!(
        status[0]["pending_requests"][0]["kind"],
        "retry_dead_letter"
    );
    d.manager.catch_up().await.unwrap();
    let letters = d.manager.dead_letters().await.unwrap();
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].attempts, 3);
    let status = json(&d.args(&["projections", "status", "--format", "json"]));
    assert!(status[0]["pending_requests"].as_array().unwrap().is_empty());

    // Fixed: the running manager applies it within its polling interval.
    d.fixed.store(true, Ordering::SeqCst);
    let running = d.manager.start();
    success(&d.args(&["dead-letters", "retry", "tally", &poison]));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !d.manager.dead_letters().await.unwrap().is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the retry was not applied"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    d.manager.shutdown();
    running.await.unwrap().unwrap();
    assert_eq!(d.tally("order-2").await, Some(2));
    assert!(
        json(&d.args(&["dead-letters", "list", "--format", "json"]))
            .as_array()
            .unwrap()
            .is_empty()
    );

    // Retrying it again: there is nothing left to retry.
    let error = failure(&d.args(&["dead-letters", "retry", "tally", &poison]));
    assert!(error.contains("[CR-E0307]"), "{error}");
}

#[tokio::test(flavor = "multi_thread")]
async fn discard_removes_a_letter_and_reset_makes_the_service_rebuild() {
    let d = Deployment::new().await;
    let poison = d.poison_id().await;

    let said = success(&d.args(&["dead-letters", "discard", "tally", &poison]));
    assert!(said.contains("discarded"), "{said}");
    assert!(d.manager.dead_letters().await.unwrap().is_empty());
    let error = failure(&d.args(&["dead-letters", "discard", "tally", &poison]));
    assert!(error.contains("[CR-E0307]"), "{error}");
    assert_eq!(
        d.tally("order-2").await,
        Some(1),
        "the poison event was never applied"
    );

    // A reset is a rebuild: the read model starts over, so nothing is
    // counted twice, and the fixed poison event is counted this time.
    d.fixed.store(true, Ordering::SeqCst);
    let said = success(&d.args(&["checkpoint", "reset", "tally"]));
    assert!(said.contains("rebuild of `tally` requested"), "{said}");
    let status = json(&d.args(&["projections", "status", "--format", "json"]));
    assert_eq!(status[0]["pending_requests"][0]["kind"], "rebuild");
    d.manager.catch_up().await.unwrap();
    assert_eq!(d.tally("order-1").await, Some(3));
    assert_eq!(d.tally("order-2").await, Some(2));
    let status = json(&d.args(&["projections", "status", "--format", "json"]));
    assert!(status[0]["pending_requests"].as_array().unwrap().is_empty());

    let error = failure(&d.args(&["checkpoint", "reset", "nope"]));
    assert!(
        error.contains("[CR-E0308]") && error.contains("the store has: tally"),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_connections_schemas_and_arguments_say_what_to_do() {
    let d = Deployment::new().await;

    let error = failure(&["events", "list", "--schema", d.schema.name()]);
    assert!(
        error.contains("[CR-E0301]") && error.contains("DATABASE_URL"),
        "{error}"
    );

    let error = failure(&[
        "events",
        "list",
        "--database-url",
        "postgres://postgres@127.0.0.1:1/none",
    ]);
    assert!(error.contains("[CR-E0102]"), "{error}");

    let error = failure(&[
        "events",
        "list",
        "--database-url",
        &d.url,
        "--schema",
        "no_such_schema",
    ]);
    assert!(
        error.contains("[CR-E0302]") && error.contains(d.schema.name()),
        "{error}"
    );

    // A schema that exists but holds no event store (only a projection
    // store), and one that holds no projection store.
    let projections_only = TestSchema::new();
    PostgresProjectionStore::new(d.events.pool().clone())
        .with_schema(projections_only.name())
        .unwrap()
        .migrate()
        .await
        .unwrap();
    let error = failure(&[
        "events",
        "list",
        "--database-url",
        &d.url,
        "--schema",
        projections_only.name(),
    ]);
    assert!(
        error.contains("[CR-E0303]") && error.contains("holds no event store"),
        "{error}"
    );
    let events_only = TestSchema::new();
    d.events
        .clone()
        .with_schema(events_only.name())
        .unwrap()
        .migrate()
        .await
        .unwrap();
    let error = failure(&[
        "projections",
        "status",
        "--database-url",
        &d.url,
        "--schema",
        d.schema.name(),
        "--projection-schema",
        events_only.name(),
    ]);
    assert!(error.contains("[CR-E0304]"), "{error}");

    // A projection store migrated by a release before requests.
    sqlx::query(&format!(
        "DROP TABLE {}.projection_requests",
        projections_only.quoted()
    ))
    .execute(d.events.pool())
    .await
    .unwrap();
    let error = failure(&[
        "dead-letters",
        "list",
        "--database-url",
        &d.url,
        "--schema",
        d.schema.name(),
        "--projection-schema",
        projections_only.name(),
    ]);
    assert!(
        error.contains("[CR-E0311]") && error.contains("migrate()"),
        "{error}"
    );

    let error = failure(&[
        "events",
        "list",
        "--database-url",
        &d.url,
        "--schema",
        "Bad-Name",
    ]);
    assert!(error.contains("[CR-E0101]"), "{error}");

    let error = failure(&d.args(&["events", "show", "order-99"]));
    assert!(error.contains("[CR-E0306]"), "{error}");

    let error = failure(&d.args(&["events", "tail", "--after", "yesterday"]));
    assert!(error.contains("[CR-E0309]"), "{error}");

    let error = failure(&d.args(&["projections", "status", "--key-prefix", "app"]));
    assert!(error.contains("[CR-E0305]"), "{error}");
}

#[tokio::test(flavor = "multi_thread")]
async fn tail_follow_prints_new_events_as_they_are_committed() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};

    let d = Deployment::new().await;
    let mut child = Command::new(env!("CARGO_BIN_EXE_composable"))
        .args(d.args(&[
            "events",
            "tail",
            "--follow",
            "-n",
            "1",
            "--format",
            "json",
            "--stream-prefix",
            "user-",
        ]))
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (lines_tx, mut lines) = tokio::sync::mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            if lines_tx.send(line.unwrap()).is_err() {
                break;
            }
        }
    });
    let wait_line = async |lines: &mut tokio::sync::mpsc::UnboundedReceiver<String>| {
        tokio::time::timeout(Duration::from_secs(10), lines.recv())
            .await
            .expect("a line within 10 s")
            .expect("the command is still running")
    };

    // The last existing event of a `user-` stream, then new ones only.
    let first: serde_json::Value = serde_json::from_str(&wait_line(&mut lines).await).unwrap();
    assert_eq!(first["stream_id"], "user-7");
    for stream in ["order-9", "user-9"] {
        d.events
            .append(
                &StreamId::new(stream).unwrap(),
                ExpectedVersion::NoStream,
                vec![NewEvent::new("registered", json!({ "new": true }))],
            )
            .await
            .unwrap();
    }
    let new: serde_json::Value = serde_json::from_str(&wait_line(&mut lines).await).unwrap();
    assert_eq!(new["stream_id"], "user-9");
    assert_eq!(new["payload"], json!({ "new": true }));
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        lines.try_recv().is_err(),
        "the order-9 event was filtered out"
    );
    child.kill().unwrap();
    child.wait().unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreadable_row_is_shown_fixed_and_retried() {
    let d = Deployment::new().await;
    let id = uuid::Uuid::now_v7();
    let events = format!("{}.events", d.schema.quoted());
    // Metadata the store never writes: the row does not read back.
    sqlx::query(&format!(
        "INSERT INTO {events} (event_id, stream_id, stream_version, event_type, \
         schema_version, payload, metadata) \
         VALUES ($1, 'user-9', 1, 'registered', 1, '{{}}', '{{\"correlation_id\": 9}}')"
    ))
    .bind(id)
    .execute(d.events.pool())
    .await
    .unwrap();
    d.manager.catch_up().await.unwrap();
    let id = id.to_string();

    let list = normalise(&success(&d.args(&["dead-letters", "list"])));
    assert!(list.contains("user-9@? $corrupt-event 1"), "{list}");
    let shown = success(&d.args(&["dead-letters", "show", "tally", &id]));
    assert!(
        shown.contains("stream:         user-9 (unreadable row)"),
        "{shown}"
    );
    assert!(shown.contains("[CR-E0018]"), "{shown}");
    let tail = json(&d.args(&["events", "tail", "-n", "1", "--format", "json"]));
    assert_eq!(tail[0]["event_type"], "$corrupt-event");

    // Fixed in place, then retried: the manager reads the row again.
    sqlx::query(&format!(
        "UPDATE {events} SET metadata = '{{}}' WHERE event_id = $1"
    ))
    .bind(uuid::Uuid::parse_str(&id).unwrap())
    .execute(d.events.pool())
    .await
    .unwrap();
    success(&d.args(&["dead-letters", "retry", "tally", &id]));
    d.manager.catch_up().await.unwrap();
    assert_eq!(d.tally("user-9").await, Some(1));
    assert_eq!(
        d.manager.dead_letters().await.unwrap().len(),
        1,
        "only the poison event is left"
    );
}

/// Sums the events' `n` per stream into a blue/green version; waits on
/// `stall` (when given) at the event whose `n` is 20.
struct Sums {
    stall: Option<Arc<tokio::sync::Notify>>,
}

#[async_trait::async_trait]
impl composable_rust_core::Projection for Sums {
    type Store = PostgresProjectionStore;

    fn name(&self) -> &str {
        "sums"
    }

    async fn apply(
        &self,
        event: &composable_rust_core::StoredEvent,
        tx: &mut composable_rust_postgres::PostgresProjectionTx,
    ) -> Result<(), composable_rust_core::ProjectionError> {
        use composable_rust_core::projection::ProjectionTxExt;
        let n = event.payload["n"].as_u64().unwrap_or_default();
        if let Some(stall) = &self.stall
            && n == 20
        {
            stall.notified().await;
        }
        let key = format!("sum:{}", event.stream_id);
        let sum: u64 = tx.get_json(&key).await?.unwrap_or(0);
        tx.save_json(&key, &(sum + n)).await
    }

    async fn reset(
        &self,
        tx: &mut composable_rust_postgres::PostgresProjectionTx,
    ) -> Result<(), composable_rust_core::ProjectionError> {
        use composable_rust_core::projection::ProjectionTx;
        tx.delete_prefix("sum:").await.map(|_| ())
    }
}

/// `text` with dates and times replaced by placeholders of the same width
/// (`YYYY-MM-DD`, `hh:mm:ss`), so the columns stay aligned.
fn times_hidden(text: &str) -> String {
    text.lines()
        .map(|line| {
            line.split(' ')
                .map(|word| {
                    if chrono::NaiveDate::parse_from_str(word, "%Y-%m-%d").is_ok() {
                        "YYYY-MM-DD"
                    } else if chrono::NaiveTime::parse_from_str(word, "%H:%M:%S").is_ok() {
                        "hh:mm:ss"
                    } else {
                        word
                    }
                })
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// `DATABASE_URL` with its database replaced by `name`.
fn url_of_database(name: &str) -> String {
    let url = services::database_url();
    let (address, query) = url
        .split_once('?')
        .map_or((url.as_str(), None), |(a, q)| (a, Some(q)));
    let host = address.find("://").map_or(0, |at| at + 3);
    let path = address[host..]
        .find('/')
        .map_or(address.len(), |at| host + at);
    let query = query.map_or_else(String::new, |q| format!("?{q}"));
    format!("{}/{name}{query}", &address[..path])
}

/// A blue/green read model in a database of its own (it spans several
/// schemas): 42 events; version 1 live, loaded from the first 40 (2
/// behind); version 2 building, stalled after 2 batches of 10 (20/42),
/// until the test releases it. `rebuilds status` shows both, `--watch`
/// follows version 2 to its switch, and a base without registry or with
/// a bad name gets its code.
#[tokio::test(flavor = "multi_thread")]
async fn rebuilds_status_shows_a_rebuild_and_watch_follows_it_to_the_switch() {
    use std::io::{BufRead, BufReader, Read};
    use std::process::{Command, Stdio};

    use composable_rust_core::projection::blue_green::LoadOptions;
    use composable_rust_postgres::BlueGreen;

    let db = composable_rust_testing::fixtures::TestDatabase::new().await;
    let url = url_of_database(db.name());
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(10)
        .connect_with(db.connect_options())
        .await
        .unwrap();
    let events = PostgresEventStore::new(pool.clone());
    events.migrate().await.unwrap();
    let append = async |ns: std::ops::Range<u64>| {
        for n in ns {
            events
                .append(
                    &StreamId::new(format!("s-{}", n % 3)).unwrap(),
                    ExpectedVersion::Any,
                    vec![NewEvent::new("Added", json!({ "n": n }))],
                )
                .await
                .unwrap();
        }
    };
    append(0..40).await;
    let versions = Arc::new(
        BlueGreen::new(pool.clone(), "orders_read")
            .unwrap()
            .with_load_options(LoadOptions {
                batch_size: 10,
                prefetch: 2,
            }),
    );
    versions.migrate().await.unwrap();
    let source =
        || -> Arc<dyn composable_rust_core::projection::EventSource> { Arc::new(events.clone()) };
    versions
        .rebuild(&Sums { stall: None }, source())
        .await
        .unwrap();
    append(40..42).await;
    let stall = Arc::new(tokio::sync::Notify::new());
    let mut progress = versions.progress();
    let rebuild = {
        let (versions, source, stall) = (Arc::clone(&versions), source(), Arc::clone(&stall));
        tokio::spawn(async move { versions.rebuild(&Sums { stall: Some(stall) }, source).await })
    };
    progress
        .wait_for(|p| !p.done && p.events_applied >= 20)
        .await
        .expect("the load reports progress");
    let args = |args: &[&'static str]| -> Vec<String> {
        let mut all: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
        all.extend(["--database-url".to_owned(), url.clone()]);
        all
    };
    let run = |a: &[&'static str]| {
        let all = args(a);
        success(&all.iter().map(String::as_str).collect::<Vec<_>>())
    };

    insta::assert_snapshot!(
        "rebuilds_status_table",
        times_hidden(&run(&["rebuilds", "status", "--base", "orders_read"]))
    );
    let listed: serde_json::Value = serde_json::from_str(&run(&[
        "rebuilds",
        "status",
        "--base",
        "orders_read",
        "--format",
        "json",
    ]))
    .unwrap();
    let figures: Vec<_> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["version"].as_u64().unwrap(),
                v["state"].as_str().unwrap(),
                v["events_applied"].as_u64().unwrap(),
                v["events_behind"].as_u64().unwrap(),
                v["events_total"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        figures,
        [(1, "live", 40, 2, 42), (2, "building", 20, 22, 42)]
    );
    assert!(listed[0]["switched_at"].is_string(), "{listed}");
    assert!(listed[1]["switched_at"].is_null(), "{listed}");

    // A watch that runs out of time says so; the rebuild goes on.
    let all = args(&[
        "rebuilds",
        "status",
        "--base",
        "orders_read",
        "--watch",
        "--interval",
        "50ms",
        "--timeout",
        "200ms",
    ]);
    let error = failure(&all.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(error.contains("[CR-E0313]"), "{error}");
    assert!(error.contains("20/42 events (47%)"), "{error}");

    // A watch to the end: it says it is watching, then the test lets the
    // rebuild finish.
    let mut child = Command::new(env!("CARGO_BIN_EXE_composable"))
        .args(args(&[
            "rebuilds",
            "status",
            "--base",
            "orders_read",
            "--watch",
            "--interval",
            "100ms",
            "--timeout",
            "60s",
        ]))
        .env_remove("DATABASE_URL")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let first = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        (line, stdout)
    });
    let (first, mut stdout) = tokio::time::timeout(Duration::from_secs(10), first)
        .await
        .expect("the watch prints its first line within 10 s")
        .unwrap();
    assert_eq!(
        first.trim_end(),
        "watching the rebuild of version 2 of `orders_read`: 20/42 events (47%)"
    );
    stall.notify_one();
    let switched = rebuild.await.unwrap().unwrap();
    assert_eq!((switched.from, switched.to), (Some(1), 2));
    let rest = tokio::task::spawn_blocking(move || {
        let mut rest = String::new();
        stdout.read_to_string(&mut rest).unwrap();
        (rest, child.wait().unwrap())
    });
    let (rest, status) = tokio::time::timeout(Duration::from_secs(10), rest)
        .await
        .expect("the watch ends within 10 s of the switch")
        .unwrap();
    assert!(status.success(), "{rest}");
    insta::assert_snapshot!("rebuilds_watch_end", times_hidden(&rest));

    // Nothing building: --watch reports at once.
    let done = run(&["rebuilds", "status", "--base", "orders_read", "--watch"]);
    assert!(
        done.starts_with("no rebuild is running: version 2 is live"),
        "{done}"
    );

    let error = failure(
        &args(&["rebuilds", "status", "--base", "nothing_here"])
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    assert!(error.contains("[CR-E0312]"), "{error}");
    assert!(error.contains("BlueGreen::migrate()"), "{error}");
    let error = failure(
        &args(&["rebuilds", "status", "--base", "Orders-Read"])
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    assert!(error.contains("[CR-E0130]"), "{error}");
    drop(pool);
}
