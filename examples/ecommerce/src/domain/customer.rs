//! Customers: a registration is one event on the customer's stream. The
//! customer id is drawn by the server, so a registration never conflicts.

use composable_rust::prelude::*;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// What happens to a customer (stream `customer-{uuid}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
pub enum CustomerEvent {
    /// The customer registered.
    #[serde(rename = "customer.registered")]
    Registered {
        /// The id the server drew.
        customer_id: Uuid,
        /// The name given.
        name: String,
        /// The e-mail address given.
        email: String,
    },
}

/// The stream of customer `customer_id`.
///
/// # Errors
///
/// Never for a UUID; the type is the store's.
pub fn customer_stream(customer_id: Uuid) -> Result<StreamId, composable_rust::EventStoreError> {
    StreamId::for_aggregate("customer", customer_id)
}
