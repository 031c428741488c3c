//! Shared helpers: the Redis URL, stores under test key prefixes that
//! delete their keys when dropped, and a dump of a store's read model.

use std::collections::BTreeMap;
use std::ops::Deref;

use composable_rust_redis::redis as redis_rs;
use composable_rust_redis::{RedisProjectionStore, RedisStoreOptions};
use composable_rust_testing::fixtures::TestKeyPrefix;

pub(crate) use composable_rust_testing::services::redis_url;

/// A store under a fresh test prefix, whose keys are deleted when it is
/// dropped (even when the test panicked). Derefs to the store.
#[derive(Debug)]
pub(crate) struct TestStore {
    pub store: RedisProjectionStore,
    // Fields drop in order: the store, then its keys.
    pub prefix: TestKeyPrefix,
}

/// A store with default options under a fresh prefix.
pub(crate) async fn fresh_store() -> TestStore {
    fresh_store_with(|options| options).await
}

/// A store under a fresh prefix, with options adjusted by `configure`.
pub(crate) async fn fresh_store_with(
    configure: impl FnOnce(RedisStoreOptions) -> RedisStoreOptions,
) -> TestStore {
    store_under(TestKeyPrefix::new(), configure).await
}

/// A store under `prefix`, with options adjusted by `configure`.
pub(crate) async fn store_under(
    prefix: TestKeyPrefix,
    configure: impl FnOnce(RedisStoreOptions) -> RedisStoreOptions,
) -> TestStore {
    let options = configure(RedisStoreOptions::new(prefix.as_str()).expect("valid prefix"));
    let store = options
        .connect(prefix.url())
        .await
        .unwrap_or_else(|error| panic!("cannot connect to REDIS_URL={}: {error}", prefix.url()));
    TestStore { store, prefix }
}

impl Deref for TestStore {
    type Target = RedisProjectionStore;
    fn deref(&self) -> &RedisProjectionStore {
        &self.store
    }
}

/// The read model of `store`: every read-model key (without the store's
/// prefix) with its Redis type and contents, for comparing two stores.
pub(crate) async fn dump(store: &RedisProjectionStore) -> BTreeMap<String, String> {
    let mut connection = store.connection();
    let data_prefix = store.keyspace().data("");
    let pattern = format!("{data_prefix}*");
    let mut keys: Vec<String> = Vec::new();
    let mut cursor: u64 = 0;
    loop {
        let (next, batch): (u64, Vec<String>) = redis_rs::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(&pattern)
            .arg("COUNT")
            .arg(1000)
            .query_async(&mut connection)
            .await
            .expect("SCAN");
        keys.extend(batch);
        if next == 0 {
            break;
        }
        cursor = next;
    }
    let mut dump = BTreeMap::new();
    for key in keys {
        let kind: String = redis_rs::cmd("TYPE")
            .arg(&key)
            .query_async(&mut connection)
            .await
            .expect("TYPE");
        let contents = match kind.as_str() {
            "string" => {
                let value: Vec<u8> = redis_rs::cmd("GET")
                    .arg(&key)
                    .query_async(&mut connection)
                    .await
                    .expect("GET");
                String::from_utf8_lossy(&value).into_owned()
            }
            "zset" => {
                let members: Vec<(String, f64)> = redis_rs::cmd("ZRANGE")
                    .arg(&key)
                    .arg(0)
                    .arg(-1)
                    .arg("WITHSCORES")
                    .query_async(&mut connection)
                    .await
                    .expect("ZRANGE");
                format!("{members:?}")
            }
            "hash" => {
                let fields: BTreeMap<String, String> = redis_rs::cmd("HGETALL")
                    .arg(&key)
                    .query_async(&mut connection)
                    .await
                    .expect("HGETALL");
                format!("{fields:?}")
            }
            other => format!("<{other}>"),
        };
        let short = key.strip_prefix(&data_prefix).unwrap_or(&key).to_owned();
        dump.insert(short, format!("{kind}: {contents}"));
    }
    dump
}
