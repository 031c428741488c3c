//! The payment provider, behind a trait. [`FakePayments`] follows the
//! contract of the demo: the token `tok_decline` is declined, any other
//! `tok_...` is charged. Calls carry an idempotency key (the saga's
//! command id), as real providers take one: a repeated call returns the
//! first call's result and charges nothing twice.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use async_trait::async_trait;
use uuid::Uuid;

use super::Cents;

/// The token the fake provider declines.
pub const DECLINED_TOKEN: &str = "tok_decline";

/// Why a charge or refund did not happen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PaymentError {
    /// The provider said no: permanent for this order.
    #[error("declined: {reason}")]
    Declined {
        /// The provider's reason.
        reason: String,
    },
    /// The provider could not be reached: retry.
    #[error("the payment provider is unreachable")]
    Unreachable,
}

/// A payment provider.
#[async_trait]
pub trait PaymentGateway: Send + Sync + 'static {
    /// Charges `amount_cents` for `order_id` with `token`; returns the
    /// charge id.
    async fn charge(
        &self,
        key: &str,
        order_id: Uuid,
        token: &str,
        amount_cents: Cents,
    ) -> Result<String, PaymentError>;

    /// Refunds what `order_id` was charged; the amount, or `None` if
    /// nothing was charged.
    async fn refund(&self, key: &str, order_id: Uuid) -> Result<Option<Cents>, PaymentError>;
}

impl std::fmt::Debug for dyn PaymentGateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("dyn PaymentGateway")
    }
}

/// The fake provider: in memory.
#[derive(Debug, Default)]
pub struct FakePayments {
    state: Mutex<FakeState>,
}

#[derive(Debug, Default)]
struct FakeState {
    /// Results by idempotency key.
    charges_by_key: HashMap<String, Result<String, PaymentError>>,
    /// Amount charged and not refunded, by order.
    charged: HashMap<Uuid, Cents>,
    /// Refunds by idempotency key.
    refunds_by_key: HashMap<String, Option<Cents>>,
}

impl FakePayments {
    /// The amount charged and not refunded for `order_id`.
    pub fn charged(&self, order_id: Uuid) -> Option<Cents> {
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .charged
            .get(&order_id)
            .copied()
    }
}

#[async_trait]
impl PaymentGateway for FakePayments {
    async fn charge(
        &self,
        key: &str,
        order_id: Uuid,
        token: &str,
        amount_cents: Cents,
    ) -> Result<String, PaymentError> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(result) = state.charges_by_key.get(key) {
            return result.clone();
        }
        let result = if token == DECLINED_TOKEN {
            Err(PaymentError::Declined {
                reason: "the card was declined".into(),
            })
        } else {
            state.charged.insert(order_id, amount_cents);
            Ok(format!("ch_{}", order_id.simple()))
        };
        state.charges_by_key.insert(key.to_owned(), result.clone());
        result
    }

    async fn refund(&self, key: &str, order_id: Uuid) -> Result<Option<Cents>, PaymentError> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(result) = state.refunds_by_key.get(key) {
            return Ok(*result);
        }
        let refunded = state.charged.remove(&order_id);
        state.refunds_by_key.insert(key.to_owned(), refunded);
        Ok(refunded)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_repeated_charge_charges_once_and_tok_decline_is_declined() {
        let payments = FakePayments::default();
        let order = Uuid::new_v4();
        let first = payments.charge("k1", order, "tok_visa", 500).await.unwrap();
        let again = payments.charge("k1", order, "tok_visa", 500).await.unwrap();
        assert_eq!(first, again);
        assert_eq!(payments.refund("r1", order).await, Ok(Some(500)));
        assert_eq!(
            payments.refund("r1", order).await,
            Ok(Some(500)),
            "same key, same answer"
        );
        assert_eq!(
            payments.refund("r2", order).await,
            Ok(None),
            "nothing left to refund"
        );
        let declined = payments
            .charge("k2", Uuid::new_v4(), DECLINED_TOKEN, 500)
            .await;
        assert!(matches!(declined, Err(PaymentError::Declined { .. })));
    }
}
