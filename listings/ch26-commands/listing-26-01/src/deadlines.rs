//! Deadlines and scheduled work: a seat hold expires after 15 minutes
//! unless it is paid. The expiry is an `Effect::delay`, cancelled by the
//! payment; tests move a `TestClock` instead of waiting.

use std::time::Duration;

use composable_rust::{Effect, Effects, Reducer};

// ANCHOR: feature
pub const HOLD_FOR: Duration = Duration::from_secs(15 * 60);

#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum Hold {
    #[default]
    None,
    Held,
    Paid,
    Expired,
}

#[derive(Debug, Clone, PartialEq)]
pub enum HoldAction {
    Place,
    Pay,
    Expire,
}

#[derive(Debug)]
pub struct HoldReducer;

impl Reducer for HoldReducer {
    type State = Hold;
    type Action = HoldAction;
    type Environment = ();

    fn reduce(&self, hold: &mut Hold, action: HoldAction, _: &()) -> Effects<HoldAction> {
        match (action, *hold) {
            (HoldAction::Place, Hold::None) => {
                *hold = Hold::Held;
                vec![Effect::delay(HOLD_FOR, HoldAction::Expire).cancellable("expiry")]
            }
            (HoldAction::Pay, Hold::Held) => {
                *hold = Hold::Paid;
                vec![Effect::cancel("expiry")]
            }
            (HoldAction::Expire, Hold::Held) => {
                *hold = Hold::Expired;
                vec![]
            }
            _ => vec![], // too late, or twice: nothing to do
        }
    }
}
// ANCHOR_END: feature

// ANCHOR: test
#[cfg(test)]
mod tests {
    use composable_rust::testing::TestStore;

    use super::*;

    #[tokio::test]
    async fn an_unpaid_hold_expires_after_fifteen_minutes() {
        let mut store = TestStore::new(Hold::None, HoldReducer, ());
        store.send(HoldAction::Place, |h| *h = Hold::Held).await;
        store.advance(HOLD_FOR - Duration::from_secs(1)).await;
        assert_eq!(
            store.clock().pending_sleepers(),
            1,
            "the expiry still waits"
        );
        store.advance(Duration::from_secs(1)).await;
        store
            .receive(HoldAction::Expire, |h| *h = Hold::Expired)
            .await;
        store.finish().await;
    }

    #[tokio::test]
    async fn paying_cancels_the_expiry() {
        let mut store = TestStore::new(Hold::None, HoldReducer, ());
        store.send(HoldAction::Place, |h| *h = Hold::Held).await;
        store.advance(Duration::from_secs(5 * 60)).await;
        store.send(HoldAction::Pay, |h| *h = Hold::Paid).await;
        assert_eq!(
            store.clock().pending_sleepers(),
            0,
            "the expiry was cancelled"
        );
        store.advance(HOLD_FOR).await;
        store.finish().await; // no Expire arrived, and nothing is left running
    }
}
// ANCHOR_END: test
