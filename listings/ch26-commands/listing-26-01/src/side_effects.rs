//! Side effects after a decision: the reducer decides and returns the
//! email to send as an effect (a value); the store runs it and feeds the
//! outcome back as an action.

use std::sync::Arc;

use composable_rust::prelude::*;

// ANCHOR: feature
/// The outside world, behind a trait, so tests pass a double.
#[async_trait]
pub trait Mailer: Send + Sync + 'static {
    async fn send_welcome(&self, email: &str) -> Result<(), String>;
}

impl std::fmt::Debug for dyn Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("dyn Mailer")
    }
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Signups {
    pub registered: Vec<String>,
    pub welcomed: Vec<String>,
    pub to_retry: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum SignupAction {
    Register { email: String },
    WelcomeSent { email: String },
    WelcomeFailed { email: String, reason: String },
}

#[derive(Debug)]
pub struct SignupReducer;

impl Reducer for SignupReducer {
    type State = Signups;
    type Action = SignupAction;
    type Environment = Arc<dyn Mailer>;

    fn reduce(
        &self,
        state: &mut Signups,
        action: SignupAction,
        mailer: &Arc<dyn Mailer>,
    ) -> Effects<SignupAction> {
        match action {
            SignupAction::Register { email } => {
                state.registered.push(email.clone());
                // The decision is made; the email is work for later.
                let mailer = Arc::clone(mailer);
                vec![Effect::future(async move {
                    Some(match mailer.send_welcome(&email).await {
                        Ok(()) => SignupAction::WelcomeSent { email },
                        Err(reason) => SignupAction::WelcomeFailed { email, reason },
                    })
                })]
            }
            SignupAction::WelcomeSent { email } => {
                state.welcomed.push(email);
                vec![]
            }
            SignupAction::WelcomeFailed { email, .. } => {
                state.to_retry.push(email);
                vec![]
            }
        }
    }
}
// ANCHOR_END: feature

// ANCHOR: test
#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use composable_rust::testing::TestStore;

    use super::*;

    /// Records what it sends; refuses addresses at `down.example`.
    #[derive(Debug, Default)]
    struct RecordingMailer(Mutex<Vec<String>>);

    #[async_trait]
    impl Mailer for RecordingMailer {
        async fn send_welcome(&self, email: &str) -> Result<(), String> {
            if email.ends_with("@down.example") {
                return Err("mail server unavailable".into());
            }
            self.0.lock().unwrap().push(email.to_owned());
            Ok(())
        }
    }

    #[tokio::test]
    async fn the_store_runs_the_effect_and_feeds_the_outcome_back() {
        let mailer = Arc::new(RecordingMailer::default());
        let mut store = TestStore::new(Signups::default(), SignupReducer, mailer.clone() as _);
        let ada = "ada@example.com".to_owned();
        store
            .send(SignupAction::Register { email: ada.clone() }, |s| {
                s.registered.push(ada.clone())
            })
            .await;
        store
            .receive(SignupAction::WelcomeSent { email: ada.clone() }, |s| {
                s.welcomed.push(ada.clone());
            })
            .await;
        store.finish().await;
        assert_eq!(*mailer.0.lock().unwrap(), [ada]);
    }

    #[tokio::test]
    async fn a_failed_email_is_remembered_for_a_retry() {
        let mailer: Arc<dyn Mailer> = Arc::new(RecordingMailer::default());
        let mut store = TestStore::new(Signups::default(), SignupReducer, mailer);
        let bob = "bob@down.example".to_owned();
        store
            .send(SignupAction::Register { email: bob.clone() }, |s| {
                s.registered.push(bob.clone())
            })
            .await;
        let failed = SignupAction::WelcomeFailed {
            email: bob.clone(),
            reason: "mail server unavailable".into(),
        };
        store
            .receive(failed, |s| s.to_retry.push(bob.clone()))
            .await;
        store.finish().await;
    }
}
// ANCHOR_END: test
