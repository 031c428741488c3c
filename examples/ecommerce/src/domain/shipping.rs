//! The carrier, behind a trait. [`FakeCarrier`] accepts every parcel and
//! answers with a tracking number derived from the order id, so a repeated
//! request gets the same number (idempotent without any state).

use async_trait::async_trait;
use uuid::Uuid;

use super::order::Address;

/// Why a shipment could not be created.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShippingError {
    /// The carrier could not be reached: retry.
    #[error("the carrier is unreachable")]
    Unreachable,
}

/// A carrier.
#[async_trait]
pub trait ShippingGateway: Send + Sync + 'static {
    /// Books the shipment of `order_id` to `address`; returns the tracking
    /// number. Repeating it with the same `key` books nothing twice.
    async fn create_shipment(
        &self,
        key: &str,
        order_id: Uuid,
        address: &Address,
    ) -> Result<String, ShippingError>;
}

impl std::fmt::Debug for dyn ShippingGateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("dyn ShippingGateway")
    }
}

/// The fake carrier.
#[derive(Debug, Default)]
pub struct FakeCarrier;

#[async_trait]
impl ShippingGateway for FakeCarrier {
    async fn create_shipment(
        &self,
        _key: &str,
        order_id: Uuid,
        _address: &Address,
    ) -> Result<String, ShippingError> {
        Ok(format!("TRK-{}", &order_id.simple().to_string()[..12]).to_uppercase())
    }
}
