//! The application's errors, each with a stable `INV-E....` code (listed in
//! the README) and a message that says what happened and what to do.
//!
//! Two layers, on purpose:
//!
//! - [`Rejection`]: a business rule refused a command (too little stock, an
//!   unknown sku). Permanent: the same command on the same stock is refused
//!   again, so nobody should retry it. Nothing was written.
//! - [`InventoryError`]: what a caller of the service sees: a rejection, or
//!   a framework error that surfaced (the event store, the bus, a read
//!   model), which keeps its own `CR-E....` code and retry class.

use composable_rust::error::{ErrorCode, coded_error};
use composable_rust::postgres::PostgresError;
use composable_rust::saga::SagaError;
use composable_rust::{EventBusError, EventStoreError, ProjectionError};

/// `INV-E0001`: the sku was never registered.
pub const UNKNOWN_PRODUCT: ErrorCode = ErrorCode::new("INV-E0001", "unknown product");
/// `INV-E0002`: the sku is registered already.
pub const ALREADY_REGISTERED: ErrorCode = ErrorCode::new("INV-E0002", "product already registered");
/// `INV-E0003`: more was asked for than is available.
pub const INSUFFICIENT_STOCK: ErrorCode = ErrorCode::new("INV-E0003", "insufficient stock");
/// `INV-E0004`: no reservation has this id.
pub const UNKNOWN_RESERVATION: ErrorCode = ErrorCode::new("INV-E0004", "unknown reservation");
/// `INV-E0005`: the reservation was released (or expired) already.
pub const RESERVATION_CLOSED: ErrorCode = ErrorCode::new("INV-E0005", "reservation closed");
/// `INV-E0006`: a quantity or a time-to-live of zero.
pub const INVALID_QUANTITY: ErrorCode = ErrorCode::new("INV-E0006", "invalid quantity");
/// `INV-E0007`: an identifier (sku, warehouse, reservation, order) that is
/// empty, too long, or holds characters other than letters, digits, `-`, `_`.
pub const INVALID_IDENTIFIER: ErrorCode = ErrorCode::new("INV-E0007", "invalid identifier");
/// `INV-E0008`: a reservation id reused for a different reservation.
pub const RESERVATION_CONFLICT: ErrorCode = ErrorCode::new("INV-E0008", "reservation conflict");
/// `INV-E0009`: goods received against a purchase order that is not open.
pub const UNKNOWN_PURCHASE_ORDER: ErrorCode = ErrorCode::new("INV-E0009", "unknown purchase order");
/// `INV-E0010`: the supplier could not be reached (transient).
pub const SUPPLIER_UNAVAILABLE: ErrorCode = ErrorCode::new("INV-E0010", "supplier unavailable");
/// `INV-E0011`: a setting of the service (an environment variable) is missing.
pub const MISSING_SETTING: ErrorCode = ErrorCode::new("INV-E0011", "missing setting");

/// Why a command was refused. Every variant is permanent: retrying the
/// same command on the same stock gives the same answer.
#[coded_error(crate = ::composable_rust::core)]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// The sku was never registered.
    #[code(UNKNOWN_PRODUCT, permanent)]
    #[error("product {sku} is not registered; register it before receiving or reserving stock")]
    UnknownProduct {
        /// The sku asked for.
        sku: String,
    },
    /// The sku is registered already.
    #[code(ALREADY_REGISTERED, permanent)]
    #[error("product {sku} is already registered; pick another sku")]
    AlreadyRegistered {
        /// The sku.
        sku: String,
    },
    /// More was asked for than is available (on hand minus reserved).
    #[code(INSUFFICIENT_STOCK, permanent)]
    #[error(
        "only {available} of {sku} available in {warehouse}, {requested} requested; \
         reserve less, or another warehouse"
    )]
    InsufficientStock {
        /// The sku.
        sku: String,
        /// The warehouse.
        warehouse: String,
        /// On hand minus reserved.
        available: u32,
        /// The quantity asked for.
        requested: u32,
    },
    /// No reservation has this id.
    #[code(UNKNOWN_RESERVATION, permanent)]
    #[error("no reservation {reservation_id} of {sku}; check the id the reservation returned")]
    UnknownReservation {
        /// The sku.
        sku: String,
        /// The id asked for.
        reservation_id: String,
    },
    /// The reservation was released or expired: it cannot ship any more.
    #[code(RESERVATION_CLOSED, permanent)]
    #[error("reservation {reservation_id} of {sku} was {how}; reserve the stock again")]
    ReservationClosed {
        /// The sku.
        sku: String,
        /// The reservation.
        reservation_id: String,
        /// `released` or `expired`.
        how: String,
    },
    /// A quantity (or time-to-live) of zero.
    #[code(INVALID_QUANTITY, permanent)]
    #[error("{what} must be greater than zero")]
    InvalidQuantity {
        /// Which value.
        what: &'static str,
    },
    /// An identifier that cannot be used.
    #[code(INVALID_IDENTIFIER, permanent)]
    #[error("{what} {value:?} is invalid: use 1 to 40 ASCII letters, digits, '-' or '_'")]
    InvalidIdentifier {
        /// Which identifier.
        what: &'static str,
        /// The value given.
        value: String,
    },
    /// A reservation id reused for another order, warehouse or quantity.
    #[code(RESERVATION_CONFLICT, permanent)]
    #[error(
        "reservation {reservation_id} of {sku} exists with other details; \
         use a new reservation id for a new reservation"
    )]
    ReservationConflict {
        /// The sku.
        sku: String,
        /// The reservation.
        reservation_id: String,
    },
    /// Goods received against a purchase order that is not open here.
    #[code(UNKNOWN_PURCHASE_ORDER, permanent)]
    #[error(
        "purchase order {purchase_order} is not open for {sku} in {warehouse}; \
         check the delivery note, or receive the goods without a purchase order"
    )]
    UnknownPurchaseOrder {
        /// The sku.
        sku: String,
        /// The warehouse.
        warehouse: String,
        /// The purchase order on the delivery note.
        purchase_order: String,
    },
}

/// What the inventory service's operations return: a [`Rejection`], or a
/// framework error that keeps its `CR-E....` code and retry class. Either
/// way nothing was written by the failed command.
#[coded_error(crate = ::composable_rust::core)]
#[derive(Debug, thiserror::Error)]
pub enum InventoryError {
    /// A business rule refused the command.
    #[code(transparent)]
    #[error(transparent)]
    Rejected(#[from] Rejection),
    /// The event store failed (unreachable, or a concurrency conflict that
    /// kept happening).
    #[code(transparent)]
    #[error(transparent)]
    Store(#[from] EventStoreError),
    /// A saga runtime failed to record or deliver a step.
    #[code(transparent)]
    #[error(transparent)]
    Saga(#[from] SagaError),
    /// A read model failed to update or answer.
    #[code(transparent)]
    #[error(transparent)]
    ReadModel(#[from] ProjectionError),
    /// The event bus failed.
    #[code(transparent)]
    #[error(transparent)]
    Bus(#[from] EventBusError),
    /// PostgreSQL failed while setting up (migrations, tables).
    #[code(transparent)]
    #[error(transparent)]
    Postgres(#[from] PostgresError),
    /// A setting is missing.
    #[code(MISSING_SETTING, configuration)]
    #[error("{name} is not set; set it, e.g. {name}={example}")]
    MissingSetting {
        /// The environment variable.
        name: &'static str,
        /// An example value.
        example: &'static str,
    },
}
