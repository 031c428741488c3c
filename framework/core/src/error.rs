//! Errors with stable codes and retry classes: the one error model of
//! Composable Rust.
//!
//! Every user-facing error carries an [`ErrorCode`] (`CR-E0001`, ...) and
//! answers one question through its [`ErrorClass`]: **can retrying help?**
//!
//! | class | meaning | what runners do |
//! |---|---|---|
//! | [`Transient`](ErrorClass::Transient) | connection, timeout, serialization failure, deadlock | retry with backoff, report it |
//! | [`Permanent`](ErrorClass::Permanent) | this event, row or key will never succeed | dead-letter it and go on |
//! | [`Configuration`](ErrorClass::Configuration) | schema, permissions, versions | stop loudly and say what to fix |
//!
//! Codes never change meaning once released; each is explained in the
//! book's troubleshooting appendix. Each crate owns a range: core uses
//! `CR-E00xx`, PostgreSQL `CR-E01xx`, Redis `CR-E02xx`.
//!
//! Error enums are written once: the [`coded_error`] attribute takes each
//! variant's code and class from its `#[code(...)]` attribute, prefixes its
//! `thiserror` message with the code, and implements [`CodedError`]. A
//! backend's own error crosses a core trait as a [`BackendError`], which
//! keeps its type (downcast it, as sqlx's `DatabaseError`).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

pub use composable_rust_macros::coded_error;

/// A stable, documented error code such as `CR-E0001`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ErrorCode {
    code: &'static str,
    summary: &'static str,
}

impl ErrorCode {
    /// Declares a code. Codes are declared once, with [`error_codes!`](crate::error_codes),
    /// by the crate that owns them.
    pub const fn new(code: &'static str, summary: &'static str) -> Self {
        Self { code, summary }
    }

    /// The code, e.g. `"CR-E0001"`.
    pub const fn as_str(&self) -> &'static str {
        self.code
    }

    /// A one-line summary of what the code means.
    pub const fn summary(&self) -> &'static str {
        self.summary
    }

    /// Whether the code has the form `CR-Ennnn`.
    pub fn is_well_formed(&self) -> bool {
        self.code
            .strip_prefix("CR-E")
            .is_some_and(|digits| digits.len() == 4 && digits.bytes().all(|b| b.is_ascii_digit()))
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code)
    }
}

/// Can retrying help? Every [`CodedError`] answers with one of these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorClass {
    /// The infrastructure failed for now (connection, timeout,
    /// serialization failure, deadlock): the same operation may succeed
    /// later. Runners retry with backoff and report it.
    Transient,
    /// This event, row, key or input will never succeed as it is. Runners
    /// set it aside (dead letters) and go on with the rest.
    Permanent,
    /// The setup is wrong (missing tables, permissions, versions, a bad
    /// URL): nothing will succeed until someone fixes it. Runners stop
    /// and say what to fix.
    Configuration,
}

impl ErrorClass {
    /// The class as a lower-case word (`"transient"`, ...), for logs and
    /// metric labels.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Transient => "transient",
            Self::Permanent => "permanent",
            Self::Configuration => "configuration",
        }
    }
}

impl ErrorClass {
    /// The class of a local I/O error (a file, a pipe): interrupted, timed
    /// out or would-block may succeed if tried again; a full disk or a
    /// broken pipe needs room or a reader first; a missing file, a denied
    /// permission or anything else stays as it is until someone changes it.
    ///
    /// ```
    /// use composable_rust_core::ErrorClass;
    /// use std::io::{Error, ErrorKind};
    ///
    /// assert_eq!(ErrorClass::of_io(&Error::from(ErrorKind::Interrupted)), ErrorClass::Transient);
    /// assert_eq!(ErrorClass::of_io(&Error::from(ErrorKind::PermissionDenied)), ErrorClass::Configuration);
    /// assert_eq!(ErrorClass::of_io(&Error::from(ErrorKind::InvalidData)), ErrorClass::Permanent);
    /// ```
    pub fn of_io(error: &std::io::Error) -> Self {
        use std::io::ErrorKind;
        match error.kind() {
            ErrorKind::Interrupted | ErrorKind::TimedOut | ErrorKind::WouldBlock => Self::Transient,
            ErrorKind::PermissionDenied
            | ErrorKind::NotFound
            | ErrorKind::ReadOnlyFilesystem
            | ErrorKind::StorageFull
            | ErrorKind::BrokenPipe => Self::Configuration,
            _ => Self::Permanent,
        }
    }
}

impl fmt::Display for ErrorClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error that carries a stable [`ErrorCode`] and says whether retrying
/// can help. Implement it with [`coded_error`].
///
/// # Examples
///
/// ```
/// use composable_rust_core::error::{CodedError, ErrorClass, ErrorCode, coded_error};
///
/// const QUOTA_EXCEEDED: ErrorCode = ErrorCode::new("CR-E0998", "quota exceeded");
/// const SERVICE_BUSY: ErrorCode = ErrorCode::new("CR-E0999", "service busy");
///
/// #[coded_error]
/// #[derive(Debug, thiserror::Error)]
/// enum UploadError {
///     #[code(QUOTA_EXCEEDED, permanent)]
///     #[error("the upload needs {needed} bytes, the quota has {left}; delete files first")]
///     Quota { needed: u64, left: u64 },
///     #[code(SERVICE_BUSY, transient)]
///     #[error("the storage service is busy; try again")]
///     Busy,
/// }
///
/// let error = UploadError::Quota { needed: 10, left: 2 };
/// assert_eq!(error.code().as_str(), "CR-E0998");
/// assert_eq!(error.class(), ErrorClass::Permanent);
/// assert!(error.to_string().starts_with("[CR-E0998] the upload needs 10 bytes"));
/// assert!(UploadError::Busy.is_transient(), "a runner retries it");
/// ```
pub trait CodedError: std::error::Error + Send + Sync + 'static {
    /// The stable code of this error.
    fn code(&self) -> ErrorCode;

    /// Whether retrying can help.
    fn class(&self) -> ErrorClass;

    /// Whether retrying the same operation later can succeed.
    fn is_transient(&self) -> bool {
        self.class() == ErrorClass::Transient
    }
}

/// A backend's own error (PostgreSQL, Redis, ...) as it crosses a core
/// trait such as [`EventStore`](crate::EventStore) or
/// [`ProjectionStore`](crate::ProjectionStore). It keeps the backend's
/// code, class, message and type: [`downcast_ref`](Self::downcast_ref)
/// gets the typed error back.
///
/// ```
/// use composable_rust_core::error::{BackendError, CodedError, ErrorClass};
/// # use composable_rust_core::error::{coded_error, ErrorCode};
/// # const UNREACHABLE: ErrorCode = ErrorCode::new("CR-E0999", "example");
/// # #[coded_error]
/// # #[derive(Debug, thiserror::Error)]
/// # enum MyBackendError {
/// #     #[code(UNREACHABLE, transient)]
/// #     #[error("could not reach the server; start it")]
/// #     Unreachable,
/// # }
/// let error = BackendError::new(MyBackendError::Unreachable);
/// assert_eq!(error.class(), ErrorClass::Transient);
/// assert!(matches!(error.downcast_ref::<MyBackendError>(), Some(MyBackendError::Unreachable)));
/// assert!(error.to_string().starts_with("[CR-E0999] "));
/// ```
#[derive(Clone)]
pub struct BackendError {
    inner: Arc<dyn CodedError>,
}

impl BackendError {
    /// Wraps a backend's error.
    pub fn new(error: impl CodedError) -> Self {
        Self {
            inner: Arc::new(error),
        }
    }

    /// A backend error made of a code, a class and a message, for a store
    /// or adapter that has no error enum of its own.
    ///
    /// ```
    /// use composable_rust_core::error::{BackendError, CodedError, ErrorClass, ErrorCode};
    ///
    /// const READ_DB_DOWN: ErrorCode = ErrorCode::new("APP-E0001", "read database unavailable");
    /// let error = BackendError::from_message(READ_DB_DOWN, ErrorClass::Transient, "the read database is down");
    /// assert_eq!(error.to_string(), "[APP-E0001] the read database is down");
    /// assert!(error.is_transient());
    /// ```
    pub fn from_message(code: ErrorCode, class: ErrorClass, message: impl Into<String>) -> Self {
        Self::new(MessageError {
            code,
            class,
            message: message.into(),
        })
    }

    /// The backend's error, if it is a `T`.
    pub fn downcast_ref<T: CodedError>(&self) -> Option<&T> {
        let inner: &(dyn std::error::Error + 'static) = &*self.inner;
        inner.downcast_ref::<T>()
    }

    /// Whether the backend's error is a `T`.
    pub fn is<T: CodedError>(&self) -> bool {
        self.downcast_ref::<T>().is_some()
    }
}

impl fmt::Debug for BackendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.inner, f)
    }
}

impl fmt::Display for BackendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&*self.inner, f)
    }
}

impl std::error::Error for BackendError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.inner.source()
    }
}

impl CodedError for BackendError {
    fn code(&self) -> ErrorCode {
        self.inner.code()
    }

    fn class(&self) -> ErrorClass {
        self.inner.class()
    }
}

/// The error behind [`BackendError::from_message`].
#[derive(Debug, thiserror::Error)]
#[error("[{code}] {message}")]
struct MessageError {
    code: ErrorCode,
    class: ErrorClass,
    message: String,
}

impl CodedError for MessageError {
    fn code(&self) -> ErrorCode {
        self.code
    }

    fn class(&self) -> ErrorClass {
        self.class
    }
}

/// Declares a crate's error codes: one constant per code, and `ALL`, every
/// code in order. Used as `error_codes! { /// doc \n NAME = ("CR-E0101", "summary"); ... }`.
#[macro_export]
macro_rules! error_codes {
    ($( $(#[$meta:meta])* $name:ident = ($code:literal, $summary:literal); )*) => {
        $(
            $(#[$meta])*
            pub const $name: $crate::error::ErrorCode = $crate::error::ErrorCode::new($code, $summary);
        )*
        /// Every code this crate owns, in order.
        pub const ALL: &[$crate::error::ErrorCode] = &[$($name),*];
    };
}

/// The codes owned by `composable-rust-core`.
pub mod codes {
    crate::error_codes! {
        /// An action was sent to a store that is shutting down.
        STORE_SHUT_DOWN = ("CR-E0001", "action sent to a store that is shutting down");
        /// Effects were still running when a store's shutdown deadline passed.
        SHUTDOWN_TIMED_OUT = ("CR-E0002", "effects still running at the shutdown deadline");
        /// An append found the stream at another version than expected.
        WRONG_EXPECTED_VERSION = ("CR-E0003", "stream not at the expected version (concurrency conflict)");
        /// A stream id was rejected.
        INVALID_STREAM_ID = ("CR-E0004", "invalid stream id");
        /// A stored payload does not fit today's event type.
        EVENT_DECODE = ("CR-E0005", "stored event cannot be decoded");
        /// A stored event's type no longer exists.
        UNKNOWN_EVENT_TYPE = ("CR-E0006", "unknown stored event type");
        /// An event could not be encoded.
        EVENT_ENCODE = ("CR-E0007", "event cannot be encoded");
        /// An old schema version has no upcaster.
        MISSING_UPCASTER = ("CR-E0008", "no upcaster for an old event schema version");
        /// An append carried no events.
        EMPTY_APPEND = ("CR-E0009", "append without events");
        /// An event id was used twice.
        DUPLICATE_EVENT_ID = ("CR-E0010", "duplicate event id");
        /// A projection failed to apply an event.
        PROJECTION_APPLY = ("CR-E0011", "a projection failed to apply an event");
        /// A read-model value could not be (de)serialized.
        PROJECTION_SERIALIZATION = ("CR-E0012", "read-model value cannot be (de)serialized");
        /// Waiting for a projection to reach a position timed out.
        PROJECTION_WAIT_TIMED_OUT = ("CR-E0013", "projection did not reach a position in time");
        /// A dead letter was not found.
        DEAD_LETTER_NOT_FOUND = ("CR-E0014", "no such dead letter");
        /// A topic, consumer group or consumer name was rejected.
        INVALID_BUS_NAME = ("CR-E0015", "invalid topic, consumer group or consumer name");
        /// A message on the event bus is not in the form the bus writes.
        BUS_MESSAGE_DECODE = ("CR-E0016", "event bus message cannot be decoded");
        /// Waiting for the event publisher to reach a position timed out.
        PUBLISHER_WAIT_TIMED_OUT = ("CR-E0017", "event publisher did not reach a position in time");
        /// A saga id was rejected.
        INVALID_SAGA_ID = ("CR-E0030", "invalid saga id");
        /// A saga's command could not be delivered; it stays pending.
        SAGA_DISPATCH_FAILED = ("CR-E0031", "a saga command could not be dispatched");
        /// Another writer kept appending to a saga's stream.
        SAGA_CONFLICT = ("CR-E0032", "a saga was changed by another writer on every attempt");
        /// A saga's stream holds records the runtime did not write that way.
        SAGA_STREAM_CORRUPT = ("CR-E0033", "a saga's stream is inconsistent");
        /// An event was given to a saga runtime that is shut down.
        SAGA_RUNTIME_SHUT_DOWN = ("CR-E0034", "event given to a saga runtime that is shut down");
        /// A stored event cannot be read back (its row or payload is corrupt).
        CORRUPT_EVENT = ("CR-E0018", "a stored event cannot be read back");
        /// An event's payload cannot be stored so that it reads back.
        UNSTORABLE_PAYLOAD = ("CR-E0019", "an event payload cannot be stored and read back");
        /// An aggregate refused a command (its own error says why).
        COMMAND_REJECTED = ("CR-E0020", "an aggregate refused a command");
        /// A temporal load or a replay asked for a version the stream has not reached.
        VERSION_PAST_END = ("CR-E0021", "a version past the end of the stream was asked for");
        /// A multi-stream append named no stream, too many, or one stream twice.
        INVALID_STREAM_APPENDS = ("CR-E0024", "a multi-stream append names no stream, too many, or one stream twice");
        /// A condition on an aggregate's state (for the replay debugger) does not parse.
        INVALID_STATE_CONDITION = ("CR-E0022", "a state condition does not parse");
        /// Text is neither a stream version nor a time.
        INVALID_AS_OF = ("CR-E0023", "neither a version nor a time");
        /// A saga's declared map (its steps and compensations) is not a saga.
        INVALID_SAGA_MAP = ("CR-E0035", "a saga map declares no steps, a step twice, or a step without success");
        /// A saga instance has no recorded history.
        SAGA_NOT_FOUND = ("CR-E0036", "no saga instance with this id has recorded anything");
        /// A saga does something else than its declared map says.
        SAGA_MAP_MISMATCH = ("CR-E0037", "a saga's declared map does not match what the saga does");
        /// Runners were still busy when a graceful shutdown's deadline passed.
        SHUTDOWN_UNFINISHED = ("CR-E0050", "runners still busy at the shutdown deadline");
        /// A runner failed while shutting down.
        SHUTDOWN_RUNNER_FAILED = ("CR-E0051", "a runner failed while shutting down");
        /// A circuit breaker is open and refused the call without making it.
        CIRCUIT_OPEN = ("CR-E0040", "a circuit breaker is open and refused the call");
        /// An operation did not finish within its time limit.
        TIMED_OUT = ("CR-E0041", "an operation did not finish within its time limit");
        /// A bulkhead was full (every slot busy, its queue full).
        BULKHEAD_FULL = ("CR-E0042", "a bulkhead is full and refused the call");
    }
}

/// Errors reported by the [`Store`](crate::Store).
#[coded_error]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The store no longer accepts actions.
    #[code(codes::STORE_SHUT_DOWN, configuration)]
    #[error(
        "the store is shutting down and did not run this action; \
         send actions before calling Store::shutdown, or create a new Store"
    )]
    ShutDown,
    /// Shutdown gave up waiting and cancelled the remaining effects.
    #[code(codes::SHUTDOWN_TIMED_OUT, transient)]
    #[error(
        "{in_flight} effect(s) were still running when the shutdown deadline of \
         {deadline:?} passed and were cancelled; pass a longer deadline to Store::shutdown, \
         or make long-running effects finish sooner"
    )]
    ShutdownTimedOut {
        /// How many effects were cancelled.
        in_flight: usize,
        /// The deadline that passed.
        deadline: Duration,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_start_with_their_code() {
        let errors = [
            StoreError::ShutDown,
            StoreError::ShutdownTimedOut {
                in_flight: 2,
                deadline: Duration::from_secs(1),
            },
        ];
        for error in errors {
            let prefix = format!("[{}] ", error.code());
            assert!(error.to_string().starts_with(&prefix), "{error}");
            assert!(!error.to_string().contains("[{"), "{error}");
        }
    }
}
