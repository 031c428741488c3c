//! Listing 35-1: a checkout charges a payment gateway from an effect. Each
//! attempt has a time limit, a circuit breaker stops calling a gateway that
//! keeps failing, and a retry policy tries transient failures again. The
//! tests move a `TestClock`: no test waits for real time.

use std::sync::Arc;
use std::time::Duration;

use composable_rust::error::{CodedError, ErrorCode, coded_error};
use composable_rust::resilience::{Backoff, CircuitBreaker, ResilienceError, RetryPolicy, timeout};
use composable_rust::{Clock, Effect, Effects, Reducer, async_trait};

// ANCHOR: gateway
/// The gateway could not be reached, or answered "try again".
pub const GATEWAY_UNAVAILABLE: ErrorCode =
    ErrorCode::new("APP-E0101", "payment gateway unavailable");
/// The gateway refused the card.
pub const CARD_DECLINED: ErrorCode = ErrorCode::new("APP-E0102", "card declined");

/// What can go wrong charging a card. Each error says whether retrying can
/// help: that is all the resilience primitives need to know.
#[coded_error(crate = ::composable_rust::core)]
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum GatewayError {
    #[code(GATEWAY_UNAVAILABLE, transient)]
    #[error("the payment gateway is unavailable; try again later")]
    Unavailable,
    #[code(CARD_DECLINED, permanent)]
    #[error("the card was declined; ask the customer for another card")]
    Declined,
    /// Refused by the breaker, or cut short by the timeout: code and class
    /// stay the resilience error's.
    #[code(transparent)]
    #[error(transparent)]
    Resilience(#[from] ResilienceError),
}

/// The payment service, as the application sees it.
#[async_trait]
pub trait PaymentGateway: Send + Sync + 'static {
    /// Charges `cents` for `order` (the order id is the idempotency key:
    /// charging the same order twice charges it once).
    async fn charge(&self, order: &str, cents: u64) -> Result<String, GatewayError>;
}
// ANCHOR_END: gateway

impl std::fmt::Debug for dyn PaymentGateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("dyn PaymentGateway")
    }
}

// ANCHOR: environment
/// The checkout's dependencies: the gateway, the clock, and how to call
/// the gateway. The breaker is shared by every clone of the environment,
/// so every checkout sees the same gateway health.
#[derive(Debug, Clone)]
pub struct PaymentEnvironment {
    pub gateway: Arc<dyn PaymentGateway>,
    pub clock: Arc<dyn Clock>,
    pub breaker: CircuitBreaker,
    pub retry: RetryPolicy,
    pub attempt_timeout: Duration,
}

impl PaymentEnvironment {
    pub fn new(gateway: Arc<dyn PaymentGateway>, clock: Arc<dyn Clock>) -> Self {
        let breaker = CircuitBreaker::builder("payment-gateway")
            .with_failure_threshold(3)
            .with_cool_down(Duration::from_secs(30))
            .with_clock(Arc::clone(&clock))
            .build();
        // 3 attempts, 200 ms then 400 ms apart (less up to half, at random),
        // and never more than 10 s in all.
        let backoff =
            Backoff::new(Duration::from_millis(200), Duration::from_secs(2)).with_jitter(0.5);
        let retry = RetryPolicy::new(backoff)
            .with_max_attempts(3)
            .with_max_elapsed(Duration::from_secs(10));
        Self {
            gateway,
            clock,
            breaker,
            retry,
            attempt_timeout: Duration::from_secs(2),
        }
    }
}
// ANCHOR_END: environment

// ANCHOR: charge
/// One charge, made resilient: a time limit on each attempt, inside the
/// breaker (a timed-out attempt counts as a failure), inside the retry
/// (a refused or failed attempt is transient, so it waits and tries again).
pub async fn charge(
    env: &PaymentEnvironment,
    order: &str,
    cents: u64,
) -> Result<String, GatewayError> {
    env.retry
        .retry(&env.clock, || {
            env.breaker.call(|| async {
                timeout(
                    &env.clock,
                    env.attempt_timeout,
                    env.gateway.charge(order, cents),
                )
                .await?
            })
        })
        .await
}
// ANCHOR_END: charge

// ANCHOR: reducer
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Payment {
    #[default]
    NotStarted,
    Charging,
    Paid {
        receipt: String,
    },
    Failed {
        code: &'static str,
        retry_later: bool,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub enum PaymentAction {
    Pay {
        order: String,
        cents: u64,
    },
    Charged {
        receipt: String,
    },
    ChargeFailed {
        code: &'static str,
        retry_later: bool,
    },
}

#[derive(Debug)]
pub struct PaymentReducer;

impl Reducer for PaymentReducer {
    type State = Payment;
    type Action = PaymentAction;
    type Environment = PaymentEnvironment;

    fn reduce(
        &self,
        payment: &mut Payment,
        action: PaymentAction,
        env: &PaymentEnvironment,
    ) -> Effects<PaymentAction> {
        match action {
            PaymentAction::Pay { order, cents } => {
                if matches!(payment, Payment::Charging | Payment::Paid { .. }) {
                    return vec![];
                }
                *payment = Payment::Charging;
                let env = env.clone();
                vec![Effect::future(async move {
                    Some(match charge(&env, &order, cents).await {
                        Ok(receipt) => PaymentAction::Charged { receipt },
                        Err(error) => PaymentAction::ChargeFailed {
                            code: error.code().as_str(),
                            retry_later: error.is_transient(),
                        },
                    })
                })]
            }
            PaymentAction::Charged { receipt } => {
                *payment = Payment::Paid { receipt };
                vec![]
            }
            PaymentAction::ChargeFailed { code, retry_later } => {
                *payment = Payment::Failed { code, retry_later };
                vec![]
            }
        }
    }
}
// ANCHOR_END: reducer

// ANCHOR: test
#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::sync::Mutex;

    use composable_rust::TestClock;
    use composable_rust::resilience::CircuitState;
    use composable_rust::testing::TestStore;

    use super::*;

    /// What the fake gateway does on each call, in order.
    #[derive(Debug, Clone, Copy)]
    enum Next {
        Fail(fn() -> GatewayError),
        Hang,
        Charge,
    }

    /// A scripted gateway: no network, and it counts its calls.
    #[derive(Debug, Default)]
    struct ScriptedGateway {
        script: Mutex<VecDeque<Next>>,
        calls: Mutex<u32>,
    }

    impl ScriptedGateway {
        fn new(script: impl IntoIterator<Item = Next>) -> Arc<Self> {
            Arc::new(Self {
                script: Mutex::new(script.into_iter().collect()),
                calls: Mutex::new(0),
            })
        }

        fn then(&self, next: Next) {
            self.script.lock().unwrap().push_back(next);
        }

        fn calls(&self) -> u32 {
            *self.calls.lock().unwrap()
        }
    }

    #[async_trait]
    impl PaymentGateway for ScriptedGateway {
        async fn charge(&self, order: &str, _cents: u64) -> Result<String, GatewayError> {
            *self.calls.lock().unwrap() += 1;
            let next = self.script.lock().unwrap().pop_front();
            match next.expect("the test scripted this call") {
                Next::Fail(error) => Err(error()),
                Next::Hang => std::future::pending().await,
                Next::Charge => Ok(format!("receipt-{order}")),
            }
        }
    }

    fn checkout(gateway: &Arc<ScriptedGateway>) -> TestStore<PaymentReducer> {
        let clock = TestClock::new();
        let env = PaymentEnvironment::new(gateway.clone(), Arc::new(clock.clone()));
        TestStore::new(Payment::NotStarted, PaymentReducer, env).with_clock(clock)
    }

    /// Lets the effect run until it waits on the clock, then moves the
    /// clock by `by` (the longest the wait can be).
    async fn advance_when_waiting(store: &mut TestStore<PaymentReducer>, by: Duration) {
        while store.clock().pending_sleepers() == 0 {
            tokio::task::yield_now().await;
        }
        store.advance(by).await;
    }

    fn pay() -> PaymentAction {
        PaymentAction::Pay {
            order: "order-1".into(),
            cents: 4_200,
        }
    }

    fn ms(millis: u64) -> Duration {
        Duration::from_millis(millis)
    }

    #[tokio::test]
    async fn a_flaky_gateway_is_retried_until_it_charges() {
        let unavailable = Next::Fail(|| GatewayError::Unavailable);
        let gateway = ScriptedGateway::new([unavailable, unavailable, Next::Charge]);
        let mut store = checkout(&gateway);

        store.send(pay(), |p| *p = Payment::Charging).await;
        advance_when_waiting(&mut store, ms(200)).await;
        advance_when_waiting(&mut store, ms(400)).await;

        let receipt = "receipt-order-1".to_string();
        store
            .receive(
                PaymentAction::Charged {
                    receipt: receipt.clone(),
                },
                |p| *p = Payment::Paid { receipt },
            )
            .await;
        assert_eq!(gateway.calls(), 3);
        store.finish().await;
    }

    #[tokio::test]
    async fn a_hanging_gateway_times_out_then_the_open_breaker_spares_it() {
        let gateway = ScriptedGateway::new([Next::Hang, Next::Hang, Next::Hang]);
        let mut store = checkout(&gateway);

        // Three attempts, each cut off after 2 s: the breaker opens.
        store.send(pay(), |p| *p = Payment::Charging).await;
        advance_when_waiting(&mut store, Duration::from_secs(2)).await;
        advance_when_waiting(&mut store, ms(200)).await;
        advance_when_waiting(&mut store, Duration::from_secs(2)).await;
        advance_when_waiting(&mut store, ms(400)).await;
        advance_when_waiting(&mut store, Duration::from_secs(2)).await;
        let timed_out = PaymentAction::ChargeFailed {
            code: "CR-E0041",
            retry_later: true,
        };
        store
            .receive(timed_out, |p| {
                *p = Payment::Failed {
                    code: "CR-E0041",
                    retry_later: true,
                }
            })
            .await;
        let breaker = store.environment().breaker.clone();
        assert_eq!(breaker.state(), CircuitState::Open);

        // Paying again is refused by the breaker: the gateway is not called.
        store.send(pay(), |p| *p = Payment::Charging).await;
        advance_when_waiting(&mut store, ms(200)).await;
        advance_when_waiting(&mut store, ms(400)).await;
        let refused = PaymentAction::ChargeFailed {
            code: "CR-E0040",
            retry_later: true,
        };
        store
            .receive(refused, |p| {
                *p = Payment::Failed {
                    code: "CR-E0040",
                    retry_later: true,
                }
            })
            .await;
        assert_eq!(gateway.calls(), 3, "no call while the breaker is open");

        // After the cool-down, one trial call goes through and closes it.
        store.advance(Duration::from_secs(30)).await;
        gateway.then(Next::Charge);
        store.send(pay(), |p| *p = Payment::Charging).await;
        let receipt = "receipt-order-1".to_string();
        store
            .receive(
                PaymentAction::Charged {
                    receipt: receipt.clone(),
                },
                |p| *p = Payment::Paid { receipt },
            )
            .await;
        assert_eq!(breaker.state(), CircuitState::Closed);
        store.finish().await;
    }

    #[tokio::test]
    async fn a_declined_card_is_not_retried() {
        let gateway = ScriptedGateway::new([Next::Fail(|| GatewayError::Declined)]);
        let mut store = checkout(&gateway);

        store.send(pay(), |p| *p = Payment::Charging).await;
        let declined = PaymentAction::ChargeFailed {
            code: "APP-E0102",
            retry_later: false,
        };
        store
            .receive(declined, |p| {
                *p = Payment::Failed {
                    code: "APP-E0102",
                    retry_later: false,
                }
            })
            .await;
        assert_eq!(gateway.calls(), 1);
        store.finish().await;
    }
}
// ANCHOR_END: test
