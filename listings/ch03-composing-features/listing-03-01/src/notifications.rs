//! The notifications feature: messages to the customer, delivered through
//! an outbox. It knows nothing about accounts.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use composable_rust::prelude::*;

// ANCHOR: types
/// What the notifications feature knows.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NotificationsState {
    /// The id of the last notification.
    pub last_id: u32,
    /// Notifications being delivered, by id.
    pub sending: BTreeMap<u32, String>,
    /// How many were delivered.
    pub delivered: u32,
}

/// What can happen to notifications.
#[derive(Debug, Clone, PartialEq)]
pub enum NotificationsAction {
    Notify {
        text: String,
    },
    /// Fed back by the delivery effect.
    Delivered {
        id: u32,
    },
}

/// What the notifications feature depends on.
#[derive(Debug, Clone, Default)]
pub struct NotificationsEnvironment {
    pub outbox: Outbox,
}

/// Where notifications go. In production this would send a push message
/// or an email; here it keeps them in a list that tests can read.
#[derive(Debug, Clone, Default)]
pub struct Outbox {
    sent: Arc<Mutex<Vec<String>>>,
}

impl Outbox {
    pub async fn deliver(&self, text: String) {
        self.sent
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(text);
    }

    pub fn sent(&self) -> Vec<String> {
        self.sent
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}
// ANCHOR_END: types

// ANCHOR: reducer
/// The rules of the notifications feature.
#[derive(Debug)]
pub struct NotificationsReducer;

impl Reducer for NotificationsReducer {
    type State = NotificationsState;
    type Action = NotificationsAction;
    type Environment = NotificationsEnvironment;

    fn reduce(
        &self,
        state: &mut NotificationsState,
        action: NotificationsAction,
        env: &NotificationsEnvironment,
    ) -> Effects<NotificationsAction> {
        match action {
            NotificationsAction::Notify { text } => {
                state.last_id += 1;
                let id = state.last_id;
                state.sending.insert(id, text.clone());
                let outbox = env.outbox.clone();
                vec![Effect::future(async move {
                    outbox.deliver(text).await;
                    Some(NotificationsAction::Delivered { id })
                })]
            }
            NotificationsAction::Delivered { id } => {
                if state.sending.remove(&id).is_some() {
                    state.delivered += 1;
                }
                Effects::new()
            }
        }
    }
}
// ANCHOR_END: reducer

// ANCHOR: tests
#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_notification_is_delivered_through_the_outbox() {
        let env = NotificationsEnvironment::default();
        let outbox = env.outbox.clone();
        let mut store = TestStore::new(NotificationsState::default(), NotificationsReducer, env);

        let text = String::from("hello");
        store
            .send(
                NotificationsAction::Notify { text: text.clone() },
                |state| {
                    state.last_id = 1;
                    state.sending.insert(1, text.clone());
                },
            )
            .await;
        store
            .receive(NotificationsAction::Delivered { id: 1 }, |state| {
                state.sending.clear();
                state.delivered = 1;
            })
            .await;
        store.finish().await;

        assert_eq!(outbox.sent(), ["hello"]);
    }
}
// ANCHOR_END: tests
