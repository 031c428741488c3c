//! Helpers of the operations tests: a projection generic over its store
//! that tallies events per stream and refuses `poison` events until told
//! they are fixed, the manager settings for tests, and running the
//! `composable` binary.

#![allow(dead_code, unreachable_pub)]

use std::marker::PhantomData;
use std::process::Output;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use composable_rust_core::projection::{
    ProjectionCheckpoint, ProjectionConfig, ProjectionTx, ProjectionTxExt, RetryPolicy,
};
use composable_rust_core::{Projection, ProjectionError, StoredEvent};

/// Counts events per stream under `tally:<stream>`; an event of type
/// `poison` fails (permanently) until `fixed` is set.
#[derive(Debug)]
pub struct Tally<S> {
    pub fixed: Arc<AtomicBool>,
    _store: PhantomData<fn() -> S>,
}

impl<S> Tally<S> {
    pub fn new(fixed: Arc<AtomicBool>) -> Self {
        Self {
            fixed,
            _store: PhantomData,
        }
    }
}

#[async_trait]
impl<S: ProjectionCheckpoint> Projection for Tally<S> {
    type Store = S;

    fn name(&self) -> &str {
        "tally"
    }

    async fn apply(&self, event: &StoredEvent, tx: &mut S::Tx) -> Result<(), ProjectionError> {
        if event.event_type == "poison" && !self.fixed.load(Ordering::SeqCst) {
            return Err(ProjectionError::apply(format!(
                "cannot tally poison event {}",
                event.event_id
            )));
        }
        let key = format!("tally:{}", event.stream_id);
        let count: u64 = tx.get_json(&key).await?.unwrap_or(0);
        tx.save_json(&key, &(count + 1)).await
    }

    async fn reset(&self, tx: &mut S::Tx) -> Result<(), ProjectionError> {
        tx.delete_prefix("tally:").await.map(|_| ())
    }
}

/// Fast retries and polling, so a dead letter takes milliseconds.
pub fn config() -> ProjectionConfig {
    ProjectionConfig {
        batch_size: 100,
        retry: RetryPolicy {
            max_attempts: 2,
            initial_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(1),
        },
        idle_poll_interval: Duration::from_millis(50),
        lag_interval: Duration::from_millis(50),
        ..ProjectionConfig::default()
    }
}

/// Runs `composable` with `args`, `DATABASE_URL` and `REDIS_URL` removed
/// from its environment (tests pass them as options).
pub fn composable(args: &[&str]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_composable"))
        .args(args)
        .env_remove("DATABASE_URL")
        .env_remove("REDIS_URL")
        .output()
        .expect("the composable binary runs")
}

/// The stdout of a successful run; panics with stderr otherwise.
pub fn success(args: &[&str]) -> String {
    let output = composable(args);
    assert!(
        output.status.success(),
        "composable {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("UTF-8 output")
}

/// The parsed JSON stdout of a successful run.
pub fn json(args: &[&str]) -> serde_json::Value {
    let out = success(args);
    serde_json::from_str(&out).unwrap_or_else(|error| panic!("not JSON ({error}): {out}"))
}

/// The stderr of a failed run; panics if it succeeded.
pub fn failure(args: &[&str]) -> String {
    let output = composable(args);
    assert!(
        !output.status.success(),
        "composable {args:?} succeeded: {}",
        String::from_utf8_lossy(&output.stdout)
    );
    String::from_utf8(output.stderr).expect("UTF-8 output")
}

/// `text` with what changes from run to run replaced: UUIDs, positions
/// (`commit/sequence`), dates, times, a lag in seconds (`3s`), and the column padding that follows their
/// widths.
pub fn normalise(text: &str) -> String {
    let mut lines = Vec::new();
    for line in text.lines() {
        let words: Vec<String> = line
            .split_whitespace()
            .map(|word| {
                if uuid::Uuid::parse_str(word).is_ok() {
                    "<uuid>".to_owned()
                } else if is_position(word) {
                    "<position>".to_owned()
                } else if is_date(word) {
                    "<date>".to_owned()
                } else if is_time(word) {
                    "<time>".to_owned()
                } else if is_seconds(word) {
                    "<seconds>".to_owned()
                } else {
                    word.to_owned()
                }
            })
            .collect();
        lines.push(words.join(" "));
    }
    lines.join("\n")
}

fn is_position(word: &str) -> bool {
    word.split_once('/').is_some_and(|(a, b)| {
        !a.is_empty() && !b.is_empty() && a.chars().chain(b.chars()).all(|c| c.is_ascii_digit())
    })
}

fn is_date(word: &str) -> bool {
    chrono::NaiveDate::parse_from_str(word, "%Y-%m-%d").is_ok()
}

fn is_time(word: &str) -> bool {
    chrono::NaiveTime::parse_from_str(word, "%H:%M:%S").is_ok()
}

fn is_seconds(word: &str) -> bool {
    word.strip_suffix('s')
        .is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()))
}
