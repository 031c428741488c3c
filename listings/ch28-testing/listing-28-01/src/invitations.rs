//! Invitations: invite someone by email; the invitation expires unless it
//! is accepted in time. The reducer decides; the environment sends mail
//! and tells the time.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use composable_rust::chrono::{DateTime, Utc};
use composable_rust::prelude::*;

/// How long an invitation can be accepted.
pub const VALID_FOR: Duration = Duration::from_secs(48 * 60 * 60);

// ANCHOR: environment
/// Sends mail. Production uses an SMTP or HTTP client; tests use
/// [`InMemoryMailer`].
#[async_trait]
pub trait Mailer: Send + Sync + 'static {
    async fn send(&self, to: &str, body: &str) -> Result<(), MailError>;
}

impl fmt::Debug for dyn Mailer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("dyn Mailer")
    }
}

/// The mail server refused a message.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("mail to {to} was refused: {reason}")]
pub struct MailError {
    pub to: String,
    pub reason: String,
}

/// Everything the reducer may not do itself.
#[derive(Debug, Clone)]
pub struct InvitationEnv {
    pub clock: Arc<dyn Clock>,
    pub mailer: Arc<dyn Mailer>,
}
// ANCHOR_END: environment

/// Where one invitation stands.
#[derive(Debug, Clone, PartialEq)]
pub enum Status {
    Sending,
    Sent { at: DateTime<Utc> },
    Undeliverable { reason: String },
    Accepted,
    Expired,
}

/// Every invitation, by email address.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Invitations {
    pub by_email: BTreeMap<String, Status>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum InvitationAction {
    Invite { email: String },
    Sent { email: String },
    SendFailed { email: String, reason: String },
    Accept { email: String },
    Expire { email: String },
}

// ANCHOR: reducer
#[derive(Debug)]
pub struct InvitationReducer;

impl Reducer for InvitationReducer {
    type State = Invitations;
    type Action = InvitationAction;
    type Environment = InvitationEnv;

    fn reduce(
        &self,
        state: &mut Invitations,
        action: InvitationAction,
        env: &InvitationEnv,
    ) -> Effects<InvitationAction> {
        use InvitationAction::*;
        let status = |email: &str| state.by_email.get(email).cloned();
        match action {
            // An address without `@`, or one already invited: nothing to do.
            Invite { email } if !email.contains('@') || status(&email).is_some() => Effects::new(),
            Invite { email } => {
                state.by_email.insert(email.clone(), Status::Sending);
                let mailer = Arc::clone(&env.mailer);
                vec![Effect::future(async move {
                    let body = "You are invited: reply within 48 hours.";
                    Some(match mailer.send(&email, body).await {
                        Ok(()) => Sent { email },
                        Err(error) => SendFailed {
                            email,
                            reason: error.reason,
                        },
                    })
                })]
            }
            // Only for an invitation being sent: a stray or late report
            // must not create one (a property test found that).
            Sent { email } if status(&email) == Some(Status::Sending) => {
                let at = env.clock.now();
                state.by_email.insert(email.clone(), Status::Sent { at });
                let expiry = format!("expiry:{email}");
                vec![Effect::delay(VALID_FOR, Expire { email }).cancellable(expiry)]
            }
            SendFailed { email, reason } if status(&email) == Some(Status::Sending) => {
                state
                    .by_email
                    .insert(email, Status::Undeliverable { reason });
                Effects::new()
            }
            Accept { email } if matches!(status(&email), Some(Status::Sent { .. })) => {
                state.by_email.insert(email.clone(), Status::Accepted);
                vec![Effect::cancel(format!("expiry:{email}"))]
            }
            Expire { email } if matches!(status(&email), Some(Status::Sent { .. })) => {
                state.by_email.insert(email, Status::Expired);
                Effects::new()
            }
            // Accepting an expired invitation, expiring an accepted one...
            Sent { .. } | SendFailed { .. } | Accept { .. } | Expire { .. } => Effects::new(),
        }
    }
}
// ANCHOR_END: reducer

// ANCHOR: fake
/// A mailer that keeps what it sends, and bounces one domain the way a real
/// server bounces an unknown one: a real implementation of [`Mailer`], in
/// memory, not a script of expected calls.
#[derive(Debug, Clone, Default)]
pub struct InMemoryMailer {
    sent: Arc<Mutex<Vec<String>>>,
    bounced_domain: Option<String>,
}

impl InMemoryMailer {
    pub fn new() -> Self {
        Self::default()
    }

    /// Refuses every address at `domain`.
    #[must_use]
    pub fn with_bounced_domain(mut self, domain: &str) -> Self {
        self.bounced_domain = Some(domain.to_owned());
        self
    }

    /// The addresses mail was delivered to, in order.
    pub fn sent(&self) -> Vec<String> {
        self.sent
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

#[async_trait]
impl Mailer for InMemoryMailer {
    async fn send(&self, to: &str, _body: &str) -> Result<(), MailError> {
        if let Some(domain) = &self.bounced_domain
            && to.ends_with(&format!("@{domain}"))
        {
            let reason = format!("no such domain: {domain}");
            return Err(MailError {
                to: to.to_owned(),
                reason,
            });
        }
        self.sent
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(to.to_owned());
        Ok(())
    }
}
// ANCHOR_END: fake

#[cfg(test)]
mod tests {
    use composable_rust::TestClock;
    use composable_rust::testing::assert_no_effects;

    use super::*;

    fn ada() -> String {
        "ada@example.com".to_owned()
    }

    fn env(clock: &TestClock, mailer: &InMemoryMailer) -> InvitationEnv {
        InvitationEnv {
            clock: Arc::new(clock.clone()),
            mailer: Arc::new(mailer.clone()),
        }
    }

    // ANCHOR: reducer_test
    /// One call of `reduce`: the state after it, the shape of its effects.
    #[test]
    fn inviting_someone_twice_does_nothing_the_second_time() {
        let mut invited = Invitations::default();
        invited.by_email.insert(ada(), Status::Sending);
        let env = env(&TestClock::new(), &InMemoryMailer::new());
        ReducerTest::new(InvitationReducer, env)
            .given_state(invited.clone())
            .when_action(InvitationAction::Invite { email: ada() })
            .then_state(move |state| assert_eq!(*state, invited))
            .then_effects(assert_no_effects)
            .run();
    }

    /// The whole flow: every state, every action the effects feed back,
    /// and 48 hours in no time.
    #[tokio::test]
    async fn an_invitation_nobody_accepts_expires_after_48_hours() {
        let clock = TestClock::starting_at("2026-03-02T09:00:00Z".parse().unwrap());
        let mailer = InMemoryMailer::new();
        let mut store = TestStore::new(
            Invitations::default(),
            InvitationReducer,
            env(&clock, &mailer),
        )
        .with_clock(clock.clone());

        let invite = InvitationAction::Invite { email: ada() };
        store
            .send(invite, |s| drop(s.by_email.insert(ada(), Status::Sending)))
            .await;
        let sent_at = clock.now();
        store
            .receive(InvitationAction::Sent { email: ada() }, |s| {
                s.by_email.insert(ada(), Status::Sent { at: sent_at });
            })
            .await;
        store.advance(VALID_FOR).await;
        store
            .receive(InvitationAction::Expire { email: ada() }, |s| {
                s.by_email.insert(ada(), Status::Expired);
            })
            .await;
        store.finish().await;
        assert_eq!(mailer.sent(), [ada()]);
    }
    // ANCHOR_END: reducer_test

    // ANCHOR: doubles_test
    #[tokio::test]
    async fn a_bounced_invitation_is_undeliverable_and_never_expires() {
        let clock = TestClock::new();
        let mailer = InMemoryMailer::new().with_bounced_domain("nowhere.test");
        let mut store = TestStore::new(
            Invitations::default(),
            InvitationReducer,
            env(&clock, &mailer),
        )
        .with_clock(clock.clone());
        let bob = "bob@nowhere.test".to_owned();

        store
            .send(InvitationAction::Invite { email: bob.clone() }, |s| {
                s.by_email.insert(bob.clone(), Status::Sending);
            })
            .await;
        let reason = "no such domain: nowhere.test".to_owned();
        let failed = InvitationAction::SendFailed {
            email: bob.clone(),
            reason: reason.clone(),
        };
        store
            .receive(failed, |s| {
                s.by_email
                    .insert(bob.clone(), Status::Undeliverable { reason });
            })
            .await;
        // No expiry was scheduled: letting time pass feeds nothing back.
        store.advance(VALID_FOR * 2).await;
        store.finish().await;
        assert!(mailer.sent().is_empty());
    }

    #[tokio::test]
    async fn accepting_in_time_cancels_the_expiry() {
        let clock = TestClock::new();
        let mailer = InMemoryMailer::new();
        let mut store = TestStore::new(
            Invitations::default(),
            InvitationReducer,
            env(&clock, &mailer),
        )
        .with_clock(clock.clone());
        store
            .send(InvitationAction::Invite { email: ada() }, |s| {
                s.by_email.insert(ada(), Status::Sending);
            })
            .await;
        let at = clock.now();
        store
            .receive(InvitationAction::Sent { email: ada() }, |s| {
                s.by_email.insert(ada(), Status::Sent { at });
            })
            .await;
        store.advance(VALID_FOR / 2).await;
        store
            .send(InvitationAction::Accept { email: ada() }, |s| {
                s.by_email.insert(ada(), Status::Accepted);
            })
            .await;
        store.advance(VALID_FOR).await; // the cancelled expiry never fires
        store.finish().await;
    }
    // ANCHOR_END: doubles_test
}
