//! The shop's application service: what the outside world (an HTTP
//! handler, a command line, a test) calls. Each method loads an order from
//! its events, lets the aggregate decide, and appends what it decided.

use composable_rust::aggregate::RepositoryError;
use composable_rust::postgres::PostgresEventStore;
use composable_rust::prelude::*;
use composable_rust::uuid::Uuid;
use composable_rust::{AggregateRepository, EventStoreError};

use crate::catalog::Cents;
use crate::order::{Line, Order, OrderCommand, OrderError, Status};

// ANCHOR: error
/// Why a request to the shop failed. In every case nothing was written.
#[derive(Debug, thiserror::Error)]
pub enum ShopError {
    /// The order refused the command (a `STORE-E` code).
    #[error(transparent)]
    Rejected(#[from] OrderError),
    /// No order has this id.
    #[error("there is no order {0}; place it first, or check the id")]
    NotFound(Uuid),
    /// The event store failed; the error keeps the framework's `CR-E` code.
    #[error(transparent)]
    Store(#[from] EventStoreError),
}

impl ShopError {
    /// The error's stable code: the shop's own, or the framework's.
    pub fn code(&self) -> &'static str {
        match self {
            ShopError::Rejected(error) => error.code(),
            ShopError::NotFound(_) => "STORE-E0007",
            ShopError::Store(error) => error.code().as_str(),
        }
    }
}
// ANCHOR_END: error

// ANCHOR: shop
/// How many times a command is tried when another request changed the same
/// order between loading it and appending.
const ATTEMPTS: usize = 3;

/// The shop: orders, stored as events in PostgreSQL.
#[derive(Debug)]
pub struct Shop {
    orders: AggregateRepository<Order, PostgresEventStore>,
}

impl Shop {
    /// A shop on `events` (connected, migrated, in the schema of your
    /// choice).
    pub fn new(events: PostgresEventStore) -> Self {
        Self {
            orders: AggregateRepository::new(events, ()),
        }
    }

    /// Places order `id` for `customer`.
    pub async fn place_order(
        &self,
        id: Uuid,
        customer: &str,
        lines: Vec<Line>,
    ) -> Result<Order, ShopError> {
        let customer = customer.to_string();
        self.execute(id, move || OrderCommand::Place {
            customer: customer.clone(),
            lines: lines.clone(),
        })
        .await
    }

    /// Records that order `id` was paid `amount`.
    pub async fn pay(&self, id: Uuid, amount: Cents) -> Result<Order, ShopError> {
        self.execute(id, || OrderCommand::Pay { amount }).await
    }

    /// Records that order `id` was shipped.
    pub async fn ship(&self, id: Uuid) -> Result<Order, ShopError> {
        self.execute(id, || OrderCommand::Ship).await
    }

    /// Cancels order `id`.
    pub async fn cancel(&self, id: Uuid, reason: &str) -> Result<Order, ShopError> {
        self.execute(id, || OrderCommand::Cancel {
            reason: reason.to_string(),
        })
        .await
    }

    /// Order `id` as its events say it is now.
    pub async fn order(&self, id: Uuid) -> Result<Order, ShopError> {
        let loaded = self.orders.load(&self.orders.stream_id(id)?).await?;
        if loaded.state.status == Status::New {
            return Err(ShopError::NotFound(id));
        }
        Ok(loaded.state)
    }
    // ANCHOR_END: shop

    // ANCHOR: execute
    /// Loads the order, decides, and appends expecting the version it
    /// loaded. If another request appended first, the append is refused
    /// and the command is decided again on the fresh state.
    async fn execute(
        &self,
        id: Uuid,
        command: impl Fn() -> OrderCommand,
    ) -> Result<Order, ShopError> {
        let stream = self.orders.stream_id(id)?;
        match self
            .orders
            .execute_with_retry(&stream, ATTEMPTS, command)
            .await
        {
            Ok(executed) => Ok(executed.state),
            // Only `Place` is allowed on an order nobody placed.
            Err(RepositoryError::Rejected(OrderError::NotAllowed {
                status: Status::New,
                ..
            })) => Err(ShopError::NotFound(id)),
            Err(RepositoryError::Rejected(error)) => Err(error.into()),
            Err(RepositoryError::Store(error)) => Err(error.into()),
        }
    }
    // ANCHOR_END: execute
}
