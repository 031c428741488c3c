//! Helpers of the event bus tests: buses under random prefixes whose keys
//! are deleted at the end, and the conformance fixture.

use std::time::Duration;

use composable_rust_redis::redis::{self as redis_rs, Commands};
use composable_rust_redis::{RedisBusOptions, RedisStreamsEventBus};
use composable_rust_testing::event_bus_conformance::{BusFixture, BusTime};

use super::support::{keys_under, redis_url, test_prefix};

/// Deletes every key under its prefix when dropped (even after a panic).
#[derive(Debug)]
pub struct PrefixGuard(pub String);

impl Drop for PrefixGuard {
    fn drop(&mut self) {
        let result = (|| -> redis_rs::RedisResult<()> {
            let keys = keys_under(&self.0)?;
            if !keys.is_empty() {
                let mut connection = redis_rs::Client::open(redis_url())?.get_connection()?;
                let _: u64 = connection.del(keys)?;
            }
            Ok(())
        })();
        if let Err(error) = result {
            eprintln!(
                "could not delete the keys of test prefix {}: {error}",
                self.0
            );
        }
    }
}

/// A bus keeping about `max_len` messages per topic under a fresh prefix,
/// and the guard that deletes its keys.
pub async fn fresh_bus(max_len: u64) -> (RedisStreamsEventBus, PrefixGuard) {
    let prefix = test_prefix();
    let url = redis_url();
    let bus = RedisBusOptions::new(&prefix)
        .expect("valid prefix")
        .with_max_len(max_len)
        .connect(&url)
        .await
        .unwrap_or_else(|error| panic!("cannot connect to REDIS_URL={url}: {error}"));
    (bus, PrefixGuard(prefix))
}

/// The visibility timeout of the Redis tests: short, since it is real time.
pub const VISIBILITY_TIMEOUT: Duration = Duration::from_millis(250);

/// A fresh bus for one conformance check.
pub async fn fixture() -> BusFixture<RedisStreamsEventBus> {
    let (bus, guard) = fresh_bus(50).await;
    BusFixture {
        bus,
        time: BusTime::Real,
        visibility_timeout: VISIBILITY_TIMEOUT,
        max_len: 50,
        // MAXLEN ~ trims whole stream nodes (stream-node-max-entries, 100).
        trim_slack: 100,
        guard: Some(Box::new(guard)),
    }
}
