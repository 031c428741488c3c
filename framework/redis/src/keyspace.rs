//! Where a store's data lives in Redis: the validated [`KeyPrefix`] and the
//! [`Keyspace`] that turns the keys a projection uses into Redis keys (the
//! layout is documented on [`Keyspace`]).

use crate::error::RedisStoreError;

/// The longest prefix accepted, in bytes.
pub const MAX_PREFIX_LEN: usize = 128;

/// A validated key prefix: 1 to [`MAX_PREFIX_LEN`] bytes of printable
/// characters, without whitespace, control characters, braces (they
/// delimit the prefix) or the glob characters `* ? [ ] \` (so
/// `redis-cli --scan --pattern` and the store's own `SCAN`s match it
/// literally).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KeyPrefix(String);

impl KeyPrefix {
    /// Validates `prefix`.
    ///
    /// # Errors
    ///
    /// [`RedisStoreError::InvalidKeyPrefix`] (`CR-E0201`) saying what is
    /// wrong with it.
    pub fn new(prefix: &str) -> Result<Self, RedisStoreError> {
        let reject = |reason| {
            Err(RedisStoreError::InvalidKeyPrefix {
                prefix: prefix.escape_debug().to_string(),
                reason,
            })
        };
        if prefix.is_empty() {
            return reject("it is empty");
        }
        if prefix.len() > MAX_PREFIX_LEN {
            return reject("it is longer than 128 bytes");
        }
        if prefix.chars().any(char::is_whitespace) {
            return reject("it contains whitespace");
        }
        if prefix.chars().any(char::is_control) {
            return reject("it contains a control character");
        }
        if prefix.contains(['{', '}']) {
            return reject("it contains a brace, which the store uses to delimit the prefix");
        }
        if prefix.contains(['*', '?', '[', ']', '\\']) {
            return reject("it contains a glob character (* ? [ ] \\)");
        }
        Ok(Self(prefix.to_owned()))
    }

    /// The prefix as given.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for KeyPrefix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Maps the keys a projection uses to Redis keys under one [`KeyPrefix`].
///
/// Every Redis key a store touches starts with its prefix in braces, so
/// several projections, tenants or tests can share one Redis safely:
///
/// | Redis key | holds |
/// |---|---|
/// | `{prefix}:data:<key>` | the read model: values, counters, hashes, sorted sets, `apply_once` markers |
/// | `{prefix}:checkpoints` | a hash: projection name → `commit/sequence` |
/// | `{prefix}:dead-letters:<projection>` | a hash: event id → the dead letter as JSON |
/// | `{prefix}:requests:<projection>` | a hash: requests for the projection's manager (`rebuild`, `retry:<event id>`) → when filed |
/// | `{prefix}:cache:<key>` | cache entries (`ProjectionCache::cache_get` ...) |
/// | `{prefix}:bus:<topic>` | an event bus topic: a stream with its consumer groups (`RedisStreamsEventBus`) |
///
/// The braces make the prefix a Redis Cluster *hash tag*: all of a store's
/// keys live in one slot, which the commit script across them requires. They
/// also delimit the prefix: a store with prefix `a` can never see the keys
/// of a store with prefix `a:b`, because `{a}:` is not a prefix of `{a:b}:`.
/// Read-model keys, checkpoints, dead letters and cache entries are in
/// separate namespaces, so resetting a read model (`delete_prefix("")`)
/// never touches checkpoints, dead letters or the cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keyspace {
    prefix: KeyPrefix,
    /// `{prefix}:`
    root: String,
}

impl Keyspace {
    /// The keyspace of `prefix`.
    pub fn new(prefix: KeyPrefix) -> Self {
        let root = format!("{{{prefix}}}:");
        Self { prefix, root }
    }

    /// The prefix.
    pub fn prefix(&self) -> &KeyPrefix {
        &self.prefix
    }

    /// The Redis key of read-model key `key`: `{prefix}:data:<key>`.
    pub fn data(&self, key: &str) -> String {
        format!("{}data:{key}", self.root)
    }

    /// The hash of checkpoints: `{prefix}:checkpoints`.
    pub fn checkpoints(&self) -> String {
        format!("{}checkpoints", self.root)
    }

    /// The hash of `projection`'s dead letters:
    /// `{prefix}:dead-letters:<projection>`.
    pub fn dead_letters(&self, projection: &str) -> String {
        format!("{}dead-letters:{projection}", self.root)
    }

    /// The hash of requests filed for `projection`'s manager:
    /// `{prefix}:requests:<projection>`.
    pub fn requests(&self, projection: &str) -> String {
        format!("{}requests:{projection}", self.root)
    }

    /// The Redis key of cache entry `key`: `{prefix}:cache:<key>`.
    pub fn cache(&self, key: &str) -> String {
        format!("{}cache:{key}", self.root)
    }

    /// The stream of event bus topic `topic`: `{prefix}:bus:<topic>`.
    pub fn stream(&self, topic: &str) -> String {
        format!("{}bus:{topic}", self.root)
    }

    /// A `SCAN ... MATCH` pattern for the read-model keys starting with
    /// `prefix`.
    pub(crate) fn data_pattern(&self, prefix: &str) -> String {
        format!("{}data:{}*", self.root, escape_glob(prefix))
    }

    /// A `SCAN ... MATCH` pattern for the cache keys starting with `prefix`.
    pub(crate) fn cache_pattern(&self, prefix: &str) -> String {
        format!("{}cache:{}*", self.root, escape_glob(prefix))
    }

    /// A `SCAN ... MATCH` pattern for every key of this keyspace.
    pub(crate) fn everything_pattern(&self) -> String {
        // The prefix holds no glob characters (see KeyPrefix).
        format!("{}*", self.root)
    }
}

/// `text` with Redis glob characters escaped, so a `MATCH` pattern matches
/// it literally.
fn escape_glob(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

#[cfg(test)]
mod tests {
    use composable_rust_core::CodedError;

    use super::*;

    #[test]
    fn good_prefixes_are_accepted() {
        for prefix in [
            "a",
            "myapp:orders",
            "tenant-42/leaderboard",
            "é",
            &"x".repeat(128),
        ] {
            assert_eq!(KeyPrefix::new(prefix).unwrap().as_str(), prefix);
        }
    }

    #[test]
    fn bad_prefixes_are_rejected_with_a_coded_reason() {
        let long = "x".repeat(129);
        for (prefix, reason) in [
            ("", "empty"),
            (long.as_str(), "longer than 128"),
            ("a b", "whitespace"),
            ("a\tb", "whitespace"),
            ("a\u{7}b", "control"),
            ("a{b", "brace"),
            ("a}", "brace"),
            ("a*", "glob"),
            ("a?", "glob"),
            ("[a]", "glob"),
            ("a\\b", "glob"),
        ] {
            let error = KeyPrefix::new(prefix).unwrap_err();
            assert_eq!(error.code().as_str(), "CR-E0201");
            let text = error.to_string();
            assert!(text.starts_with("[CR-E0201]"), "{text}");
            assert!(text.contains(reason), "{prefix:?}: {text}");
        }
    }

    #[test]
    fn the_layout_keeps_namespaces_and_prefixes_apart() {
        let keys = Keyspace::new(KeyPrefix::new("app").unwrap());
        assert_eq!(keys.data("orders:1"), "{app}:data:orders:1");
        assert_eq!(keys.checkpoints(), "{app}:checkpoints");
        assert_eq!(keys.dead_letters("totals"), "{app}:dead-letters:totals");
        assert_eq!(keys.cache("orders:1"), "{app}:cache:orders:1");
        assert_eq!(keys.requests("totals"), "{app}:requests:totals");
        assert_eq!(keys.stream("orders"), "{app}:bus:orders");
        assert_eq!(keys.data_pattern("a*b"), "{app}:data:a\\*b*");
        assert_eq!(keys.cache_pattern(""), "{app}:cache:*");
        assert_eq!(keys.everything_pattern(), "{app}:*");

        let nested = Keyspace::new(KeyPrefix::new("app:data").unwrap());
        assert!(!nested.data("x").starts_with("{app}:"));
    }
}
