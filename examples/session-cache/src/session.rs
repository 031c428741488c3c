//! The `Session` aggregate: one sign-in on one device, until sign-out. Its
//! stream is `session-<id>`: the stream id says which session an event is
//! about.

use composable_rust::prelude::*;
use serde::{Deserialize, Serialize};

/// What happened to a session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
pub enum SessionEvent {
    SignedIn {
        user: String,
        device: String,
    },
    /// The user was active: the session lives on.
    SessionRefreshed,
    SignedOut,
}

/// What a session can be asked to do.
#[derive(Debug, Clone)]
pub enum SessionCommand {
    SignIn { user: String, device: String },
    Refresh,
    SignOut,
}

/// Why a command is refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SessionError {
    #[error("this session has already been used to sign in")]
    AlreadyStarted,
    #[error("the session is not active")]
    NotActive,
}

/// Where a session is in its life.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub enum Session {
    #[default]
    New,
    Active,
    Ended,
}

impl Aggregate for Session {
    const KIND: &'static str = "session";
    type Event = SessionEvent;
    type Command = SessionCommand;
    type Error = SessionError;
    type Environment = ();

    fn decide(&self, command: SessionCommand, _: &()) -> Result<Vec<SessionEvent>, SessionError> {
        use SessionCommand::*;
        match (self, command) {
            (Session::New, SignIn { user, device }) => {
                Ok(vec![SessionEvent::SignedIn { user, device }])
            }
            (_, SignIn { .. }) => Err(SessionError::AlreadyStarted),
            (Session::Active, Refresh) => Ok(vec![SessionEvent::SessionRefreshed]),
            (Session::Active, SignOut) => Ok(vec![SessionEvent::SignedOut]),
            _ => Err(SessionError::NotActive),
        }
    }

    fn apply(&mut self, event: &SessionEvent) {
        match event {
            SessionEvent::SignedIn { .. } => *self = Session::Active,
            SessionEvent::SessionRefreshed => {}
            SessionEvent::SignedOut => *self = Session::Ended,
        }
    }
}
