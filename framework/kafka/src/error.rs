//! Errors of the Kafka backend, with stable codes in the `CR-E04xx` range
//! (core owns `CR-E00xx`, PostgreSQL `CR-E01xx`, Redis `CR-E02xx`).
//!
//! Through the [`EventBus`](composable_rust_core::event_bus::EventBus)
//! trait the same errors arrive as [`EventBusError::Backend`], keeping
//! their code, class and message, with the [`KafkaBusError`] downcastable
//! from the [`BackendError`]. Whether retrying can help follows the
//! librdkafka error code, mapped explicitly in [`kafka_error_class`].

use std::sync::Arc;

use composable_rust_core::error::{BackendError, ErrorClass, coded_error};
use composable_rust_core::event_bus::EventBusError;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};

/// The codes owned by `composable-rust-kafka`.
pub mod codes {
    composable_rust_core::error_codes! {
        /// A topic name or topic prefix cannot be a Kafka topic name.
        INVALID_TOPIC_NAME = ("CR-E0401", "invalid Kafka topic name");
        /// librdkafka rejected the client configuration.
        INVALID_CONFIG = ("CR-E0402", "invalid Kafka client configuration");
        /// The brokers could not be reached or did not answer in time.
        UNREACHABLE = ("CR-E0403", "the Kafka brokers could not be reached");
        /// A broker refused or failed an operation.
        OPERATION_FAILED = ("CR-E0404", "a Kafka operation failed");
    }
}

/// What can go wrong in the Kafka backend. Its `Display` starts with the
/// code, e.g. `[CR-E0403] ...`, and says what happened and what to do.
#[coded_error]
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum KafkaBusError {
    /// A topic name (or the bus's topic prefix) is not a valid Kafka topic
    /// name (`CR-E0401`).
    #[code(codes::INVALID_TOPIC_NAME, configuration)]
    #[error(
        "`{name}` cannot be a Kafka topic name: {reason}; Kafka topic names are 1 to 249 \
         ASCII letters, digits and . _ - (no `:` or `/`, which the other buses accept), \
         e.g. \"orders\" or \"billing.payments\""
    )]
    InvalidTopicName {
        /// The rejected name (with the bus's prefix, if any).
        name: String,
        /// Why it was rejected.
        reason: &'static str,
    },
    /// librdkafka refused the configuration (`CR-E0402`).
    #[code(codes::INVALID_CONFIG, configuration)]
    #[error(
        "librdkafka refused the client configuration ({what}): {source}; check the \
         bootstrap servers and every property set with `with_client_config` against \
         librdkafka's CONFIGURATION.md"
    )]
    InvalidConfig {
        /// Which client was being created (`"producer"`, `"consumer"`,
        /// `"admin client"`).
        what: &'static str,
        /// What librdkafka reported.
        source: Arc<KafkaError>,
    },
    /// The brokers could not be reached, or did not answer in time
    /// (`CR-E0403`).
    #[code(codes::UNREACHABLE, transient)]
    #[error(
        "could not reach the Kafka brokers at {bootstrap} to {operation}: {source}; check \
         that a broker listens there (KAFKA_BOOTSTRAP, e.g. 127.0.0.1:9092; `ci/start-services` \
         starts one locally) and that its advertised listener is reachable from here"
    )]
    Unreachable {
        /// The bootstrap servers.
        bootstrap: String,
        /// What the bus was doing, e.g. `"publish to a topic"`.
        operation: &'static str,
        /// What librdkafka reported.
        source: Arc<KafkaError>,
    },
    /// A broker refused or failed an operation (`CR-E0404`); the class
    /// follows the error code (see [`kafka_error_class`]).
    #[code(codes::OPERATION_FAILED, class = kafka_error_class(source))]
    #[error("Kafka failed to {operation}: {source}; {}", advice(source))]
    Operation {
        /// What the bus was doing.
        operation: &'static str,
        /// What librdkafka reported.
        source: Arc<KafkaError>,
    },
}

impl KafkaBusError {
    /// A librdkafka error met while doing `operation` against `bootstrap`:
    /// [`Unreachable`](Self::Unreachable) for transport failures and
    /// timeouts, [`Operation`](Self::Operation) otherwise.
    pub fn from_kafka(error: KafkaError, operation: &'static str, bootstrap: &str) -> Self {
        let unreachable = matches!(
            error.rdkafka_error_code(),
            Some(
                RDKafkaErrorCode::BrokerTransportFailure
                    | RDKafkaErrorCode::AllBrokersDown
                    | RDKafkaErrorCode::OperationTimedOut
                    | RDKafkaErrorCode::RequestTimedOut
                    | RDKafkaErrorCode::MessageTimedOut
                    | RDKafkaErrorCode::NetworkException
                    | RDKafkaErrorCode::Resolve
            )
        );
        if unreachable {
            Self::Unreachable {
                bootstrap: bootstrap.to_owned(),
                operation,
                source: Arc::new(error),
            }
        } else {
            Self::Operation {
                operation,
                source: Arc::new(error),
            }
        }
    }
}

/// Whether retrying an operation that failed with `error` can help:
///
/// - **transient**: the broker is away, busy or moving (transport
///   failures, timeouts, leader or coordinator changes, a rebalance in
///   progress, a full local queue, a topic not yet known to every broker);
/// - **configuration**: authorization and authentication failures, an
///   invalid configuration or an unsupported feature (a person must act);
/// - **permanent** for everything else (a message too large, a corrupt
///   record, an invalid topic, a policy violation): the same message fails
///   the same way again.
pub fn kafka_error_class(error: &KafkaError) -> ErrorClass {
    let Some(code) = error.rdkafka_error_code() else {
        return match error {
            KafkaError::ClientConfig(..) | KafkaError::ClientCreation(..) => {
                ErrorClass::Configuration
            }
            KafkaError::Canceled | KafkaError::NoMessageReceived => ErrorClass::Transient,
            _ => ErrorClass::Permanent,
        };
    };
    code_class(code)
}

/// The class of a librdkafka error code; see [`kafka_error_class`].
pub fn code_class(code: RDKafkaErrorCode) -> ErrorClass {
    use RDKafkaErrorCode as C;
    match code {
        C::BrokerTransportFailure
        | C::AllBrokersDown
        | C::OperationTimedOut
        | C::RequestTimedOut
        | C::MessageTimedOut
        | C::NetworkException
        | C::Resolve
        | C::QueueFull
        | C::LeaderNotAvailable
        | C::NotLeaderForPartition
        | C::CoordinatorNotAvailable
        | C::NotCoordinator
        | C::CoordinatorLoadInProgress
        | C::RebalanceInProgress
        | C::IllegalGeneration
        | C::UnknownMemberId
        | C::NotEnoughReplicas
        | C::NotEnoughReplicasAfterAppend
        | C::UnknownTopicOrPartition
        | C::NotController
        | C::KafkaStorageError
        | C::FencedLeaderEpoch
        | C::UnknownLeaderEpoch
        | C::PreferredLeaderNotAvailable => ErrorClass::Transient,
        C::TopicAuthorizationFailed
        | C::GroupAuthorizationFailed
        | C::ClusterAuthorizationFailed
        | C::TransactionalIdAuthorizationFailed
        | C::SaslAuthenticationFailed
        | C::Authentication
        | C::UnsupportedSASLMechanism
        | C::IllegalSASLState
        | C::UnsupportedVersion
        | C::UnsupportedFeature
        | C::InvalidArgument
        | C::InvalidReplicationFactor
        | C::InvalidConfig => ErrorClass::Configuration,
        _ => ErrorClass::Permanent,
    }
}

fn advice(error: &KafkaError) -> &'static str {
    match kafka_error_class(error) {
        ErrorClass::Transient => "retrying later can succeed (the broker is busy, moving or away)",
        ErrorClass::Configuration => {
            "check the brokers' ACLs, credentials and version against the client's settings"
        }
        _ => {
            "the same request fails the same way again; see the message for what the broker refused"
        }
    }
}

impl From<KafkaBusError> for EventBusError {
    fn from(error: KafkaBusError) -> Self {
        EventBusError::Backend(BackendError::new(error))
    }
}

/// The longest Kafka topic name, in bytes.
pub const MAX_TOPIC_LEN: usize = 249;

/// Checks that `name` is a legal Kafka topic name: 1 to 249 bytes of ASCII
/// letters, digits and `. _ -`, and not `.` or `..`.
///
/// # Errors
///
/// [`KafkaBusError::InvalidTopicName`] (`CR-E0401`) saying why.
pub fn validate_topic_name(name: &str) -> Result<(), KafkaBusError> {
    let reason = if name.is_empty() {
        Some("it is empty")
    } else if name.len() > MAX_TOPIC_LEN {
        Some("it is longer than 249 bytes")
    } else if name == "." || name == ".." {
        Some("`.` and `..` are reserved")
    } else if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        Some("it contains a character other than ASCII letters, digits and . _ -")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(KafkaBusError::InvalidTopicName {
            name: name.escape_debug().to_string(),
            reason,
        }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use composable_rust_core::CodedError;

    #[test]
    fn topic_names_are_validated() {
        for good in ["orders", "billing.payments", "a_b-c.d", &"x".repeat(249)] {
            validate_topic_name(good).unwrap();
        }
        for (bad, reason) in [
            ("", "empty"),
            (&*"x".repeat(250), "longer"),
            (".", "reserved"),
            ("..", "reserved"),
            ("a:b", "character"),
            ("a/b", "character"),
            ("a b", "character"),
        ] {
            let error = validate_topic_name(bad).unwrap_err();
            assert_eq!(error.code().as_str(), "CR-E0401");
            assert_eq!(error.class(), ErrorClass::Configuration);
            let text = error.to_string();
            assert!(text.starts_with("[CR-E0401]"), "{text}");
            assert!(text.contains(reason), "{bad:?}: {text}");
        }
    }

    #[test]
    fn every_mapped_code_has_its_class() {
        use RDKafkaErrorCode as C;
        for code in [
            C::BrokerTransportFailure,
            C::AllBrokersDown,
            C::RequestTimedOut,
            C::NotCoordinator,
            C::RebalanceInProgress,
            C::UnknownTopicOrPartition,
            C::QueueFull,
            C::NotEnoughReplicas,
        ] {
            assert_eq!(code_class(code), ErrorClass::Transient, "{code:?}");
        }
        for code in [
            C::TopicAuthorizationFailed,
            C::GroupAuthorizationFailed,
            C::SaslAuthenticationFailed,
            C::UnsupportedVersion,
            C::InvalidConfig,
        ] {
            assert_eq!(code_class(code), ErrorClass::Configuration, "{code:?}");
        }
        for code in [
            C::MessageSizeTooLarge,
            C::InvalidRecord,
            C::InvalidMessage,
            C::InvalidTopic,
            C::PolicyViolation,
        ] {
            assert_eq!(code_class(code), ErrorClass::Permanent, "{code:?}");
        }
    }

    #[test]
    fn transport_failures_are_unreachable_and_transient() {
        let error = KafkaBusError::from_kafka(
            KafkaError::MessageProduction(RDKafkaErrorCode::AllBrokersDown),
            "publish to a topic",
            "127.0.0.1:1",
        );
        assert_eq!(error.code().as_str(), "CR-E0403");
        assert!(error.class() == ErrorClass::Transient);
        assert!(error.to_string().contains("127.0.0.1:1"), "{error}");
        let refused = KafkaBusError::from_kafka(
            KafkaError::MessageProduction(RDKafkaErrorCode::MessageSizeTooLarge),
            "publish to a topic",
            "127.0.0.1:1",
        );
        assert_eq!(refused.code().as_str(), "CR-E0404");
        assert_eq!(refused.class(), ErrorClass::Permanent);
        let config = KafkaBusError::from_kafka(
            KafkaError::ClientCreation("bad property".into()),
            "create a producer",
            "127.0.0.1:1",
        );
        assert_eq!(config.class(), ErrorClass::Configuration);
        // Through the trait: same code, class and type.
        let through: EventBusError = refused.into();
        assert_eq!(through.code().as_str(), "CR-E0404");
        let EventBusError::Backend(backend) = &through else {
            panic!("{through:?}")
        };
        assert!(backend.is::<KafkaBusError>());
    }
}
