//! The shop's configuration: every setting comes from an environment
//! variable (twelve-factor), read once at startup by [`Config::from_env`].
//! Tests build a [`Config`] directly and change what they need.

use std::net::SocketAddr;

use metrics_exporter_prometheus::PrometheusHandle;

use crate::codes;

/// Every environment variable the shop reads (the compose file must set
/// or knowingly leave each of them).
pub const ENV_VARS: &[&str] = &[
    "DATABASE_URL",
    "REDIS_URL",
    "KAFKA_BOOTSTRAP",
    "SHOP_BIND",
    "SHOP_BUS",
    "SHOP_SCHEMA",
    "SHOP_REDIS_PREFIX",
    "SHOP_TOKEN_SECRET",
    "SHOP_MAX_IN_FLIGHT",
    "SHOP_MAX_BODY_BYTES",
    "RUST_LOG",
];

/// The shortest accepted token secret: HMAC-SHA256 keys shorter than the
/// hash output weaken the signature.
pub const MIN_SECRET_BYTES: usize = 32;

/// Which event bus carries the events to the checkout saga.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BusKind {
    /// Redis Streams on `REDIS_URL` (the default).
    Redis,
    /// A Kafka-protocol broker at `KAFKA_BOOTSTRAP` (Kafka, Redpanda, tansu).
    Kafka {
        /// `host:port[,host:port...]`.
        bootstrap: String,
    },
    /// In the process: for unit tests and demos (lost on restart).
    Memory,
}

/// Why the configuration cannot be used. Each message names the variable
/// and what to set it to.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A required variable is not set.
    #[error("[{code}] {variable} is not set: {hint}", code = codes::CONFIG_MISSING)]
    Missing {
        /// The variable.
        variable: &'static str,
        /// What to set it to.
        hint: &'static str,
    },
    /// A variable is set to something unusable.
    #[error("[{code}] {variable}={value:?} is invalid: {expected}", code = codes::CONFIG_INVALID)]
    Invalid {
        /// The variable.
        variable: &'static str,
        /// Its value (never the token secret's).
        value: String,
        /// What it must be.
        expected: &'static str,
    },
}

/// The shop's settings. Public fields: tests build one with
/// [`Config::new`] and adjust it.
#[derive(Clone)]
pub struct Config {
    /// PostgreSQL: the event store and the read models.
    pub database_url: String,
    /// Redis: the bus (by default), the cart cache, the best-sellers.
    pub redis_url: String,
    /// Which bus carries events to the saga.
    pub bus: BusKind,
    /// Where the HTTP server listens (port 0: any free port).
    pub bind: SocketAddr,
    /// The PostgreSQL schema of the event store and read models.
    pub schema: String,
    /// The prefix of every Redis key (and bus stream) of the shop.
    pub redis_prefix: String,
    /// The HMAC-SHA256 key of bearer tokens.
    pub token_secret: Vec<u8>,
    /// Concurrent requests served before new ones get 503.
    pub max_in_flight: usize,
    /// The largest accepted request body.
    pub max_body_bytes: usize,
    /// The Prometheus recorder that `/metrics` renders, if installed.
    pub metrics: Option<PrometheusHandle>,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the secret, never the URLs' passwords.
        f.debug_struct("Config")
            .field("bus", &self.bus)
            .field("bind", &self.bind)
            .field("schema", &self.schema)
            .field("redis_prefix", &self.redis_prefix)
            .field("max_in_flight", &self.max_in_flight)
            .field("max_body_bytes", &self.max_body_bytes)
            .finish_non_exhaustive()
    }
}

impl Config {
    /// A configuration with the defaults of the documented variables.
    pub fn new(
        database_url: impl Into<String>,
        redis_url: impl Into<String>,
        token_secret: impl Into<Vec<u8>>,
    ) -> Self {
        Self {
            database_url: database_url.into(),
            redis_url: redis_url.into(),
            bus: BusKind::Redis,
            bind: SocketAddr::from(([127, 0, 0, 1], 8080)),
            schema: "shop".into(),
            redis_prefix: "shop".into(),
            token_secret: token_secret.into(),
            max_in_flight: 256,
            max_body_bytes: 65_536,
            metrics: None,
        }
    }

    /// Reads the configuration from the environment (see [`ENV_VARS`]).
    ///
    /// # Errors
    ///
    /// [`ConfigError`] naming the first variable that is missing or invalid.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the configuration through `lookup` (the environment in
    /// [`from_env`](Self::from_env); a map in tests).
    ///
    /// # Errors
    ///
    /// As [`from_env`](Self::from_env).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let required = |variable: &'static str, hint: &'static str| {
            lookup(variable)
                .filter(|value| !value.is_empty())
                .ok_or(ConfigError::Missing { variable, hint })
        };
        let database_url = required(
            "DATABASE_URL",
            "set it to the PostgreSQL URL, e.g. postgres://postgres@localhost:5432/postgres",
        )?;
        let redis_url = required(
            "REDIS_URL",
            "set it to the Redis URL, e.g. redis://127.0.0.1:6379",
        )?;
        let secret = required(
            "SHOP_TOKEN_SECRET",
            "set it to a random string of at least 32 bytes, e.g. `openssl rand -hex 32`",
        )?;
        if secret.len() < MIN_SECRET_BYTES {
            return Err(ConfigError::Invalid {
                variable: "SHOP_TOKEN_SECRET",
                value: "(hidden)".into(),
                expected: "at least 32 bytes",
            });
        }
        let mut config = Self::new(database_url, redis_url, secret.into_bytes());
        config.bus = match lookup("SHOP_BUS").as_deref() {
            None | Some("" | "redis") => BusKind::Redis,
            Some("memory") => BusKind::Memory,
            Some("kafka") => BusKind::Kafka {
                bootstrap: required(
                    "KAFKA_BOOTSTRAP",
                    "SHOP_BUS=kafka needs the brokers, e.g. KAFKA_BOOTSTRAP=localhost:9092",
                )?,
            },
            Some(other) => {
                return Err(ConfigError::Invalid {
                    variable: "SHOP_BUS",
                    value: other.into(),
                    expected: "redis, kafka or memory",
                });
            }
        };
        if let Some(bind) = lookup("SHOP_BIND") {
            config.bind = bind.parse().map_err(|_| ConfigError::Invalid {
                variable: "SHOP_BIND",
                value: bind.clone(),
                expected: "an address and port, e.g. 127.0.0.1:8080 or 0.0.0.0:8080",
            })?;
        }
        if let Some(schema) = lookup("SHOP_SCHEMA") {
            config.schema = schema;
        }
        if let Some(prefix) = lookup("SHOP_REDIS_PREFIX") {
            config.redis_prefix = prefix;
        }
        config.max_in_flight =
            positive(&lookup, "SHOP_MAX_IN_FLIGHT")?.unwrap_or(config.max_in_flight);
        config.max_body_bytes =
            positive(&lookup, "SHOP_MAX_BODY_BYTES")?.unwrap_or(config.max_body_bytes);
        Ok(config)
    }

    /// This configuration with the server on `bind`.
    #[must_use]
    pub fn with_bind(mut self, bind: SocketAddr) -> Self {
        self.bind = bind;
        self
    }

    /// This configuration with `bus`.
    #[must_use]
    pub fn with_bus(mut self, bus: BusKind) -> Self {
        self.bus = bus;
        self
    }

    /// This configuration with the PostgreSQL schema `schema`.
    #[must_use]
    pub fn with_schema(mut self, schema: impl Into<String>) -> Self {
        self.schema = schema.into();
        self
    }

    /// This configuration with the Redis key prefix `prefix`.
    #[must_use]
    pub fn with_redis_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.redis_prefix = prefix.into();
        self
    }

    /// This configuration with at most `max` requests in flight.
    #[must_use]
    pub fn with_max_in_flight(mut self, max: usize) -> Self {
        self.max_in_flight = max;
        self
    }

    /// This configuration with `/metrics` rendering `handle`.
    #[must_use]
    pub fn with_metrics(mut self, handle: PrometheusHandle) -> Self {
        self.metrics = Some(handle);
        self
    }
}

/// A positive integer variable, if set.
fn positive(
    lookup: &impl Fn(&str) -> Option<String>,
    variable: &'static str,
) -> Result<Option<usize>, ConfigError> {
    let Some(value) = lookup(variable) else {
        return Ok(None);
    };
    match value.parse::<usize>() {
        Ok(parsed) if parsed > 0 => Ok(Some(parsed)),
        _ => Err(ConfigError::Invalid {
            variable,
            value,
            expected: "a positive integer",
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn lookup(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| map.get(name).cloned()
    }

    const BASE: [(&str, &str); 3] = [
        ("DATABASE_URL", "postgres://localhost/db"),
        ("REDIS_URL", "redis://localhost"),
        ("SHOP_TOKEN_SECRET", "0123456789abcdef0123456789abcdef"),
    ];

    #[test]
    fn defaults_follow_the_contract() {
        let config = Config::from_lookup(lookup(&BASE)).unwrap();
        assert_eq!(config.bus, BusKind::Redis);
        assert_eq!(config.bind.to_string(), "127.0.0.1:8080");
        assert_eq!(config.schema, "shop");
        assert_eq!(config.max_in_flight, 256);
        assert_eq!(config.max_body_bytes, 65_536);
    }

    #[test]
    fn a_short_secret_or_kafka_without_brokers_is_refused() {
        let mut pairs = BASE.to_vec();
        pairs[2] = ("SHOP_TOKEN_SECRET", "short");
        let error = Config::from_lookup(lookup(&pairs)).unwrap_err();
        assert!(error.to_string().contains("SHOP_TOKEN_SECRET"), "{error}");
        assert!(!error.to_string().contains("short"), "the secret leaked");

        let mut pairs = BASE.to_vec();
        pairs.push(("SHOP_BUS", "kafka"));
        let error = Config::from_lookup(lookup(&pairs)).unwrap_err();
        assert!(error.to_string().contains("KAFKA_BOOTSTRAP"), "{error}");
    }

    #[test]
    fn every_variable_read_is_listed() {
        let read = std::cell::RefCell::new(Vec::new());
        let mut pairs = BASE.to_vec();
        pairs.push(("SHOP_BUS", "kafka"));
        pairs.push(("KAFKA_BOOTSTRAP", "localhost:9092"));
        let base = lookup(&pairs);
        Config::from_lookup(|name| {
            read.borrow_mut().push(name.to_owned());
            base(name)
        })
        .unwrap();
        for name in read.into_inner() {
            assert!(
                ENV_VARS.contains(&name.as_str()),
                "{name} is not in ENV_VARS"
            );
        }
    }
}
