//! Enforcing uniqueness across aggregates: one stream per unique value
//! (`email-{address}`) records who claimed it. The event store's optimistic
//! concurrency lets only one writer claim it; a failed registration
//! releases its claim.

use composable_rust::aggregate::RepositoryError;
use composable_rust::prelude::*;
use composable_rust::{AggregateRepository, InMemoryEventStore};
use serde::{Deserialize, Serialize};

// ANCHOR: claim
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
pub enum ClaimEvent {
    Claimed { by: u64 },
    Released,
}

#[derive(Debug)]
pub enum ClaimCommand {
    Claim { by: u64 },
    Release { by: u64 },
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ClaimError {
    #[error("the address is claimed by user {by}")]
    Taken { by: u64 },
}

/// Who holds one email address, if anyone.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct EmailClaim {
    pub owner: Option<u64>,
}

impl Aggregate for EmailClaim {
    const KIND: &'static str = "email";
    type Event = ClaimEvent;
    type Command = ClaimCommand;
    type Error = ClaimError;
    type Environment = ();

    fn decide(&self, command: ClaimCommand, _: &()) -> Result<Vec<ClaimEvent>, ClaimError> {
        match (command, self.owner) {
            (ClaimCommand::Claim { by }, None) => Ok(vec![ClaimEvent::Claimed { by }]),
            (ClaimCommand::Claim { by }, Some(owner)) if by == owner => Ok(vec![]),
            (ClaimCommand::Claim { .. }, Some(owner)) => Err(ClaimError::Taken { by: owner }),
            (ClaimCommand::Release { by }, Some(owner)) if by == owner => {
                Ok(vec![ClaimEvent::Released])
            }
            (ClaimCommand::Release { .. }, _) => Ok(vec![]),
        }
    }

    fn apply(&mut self, event: &ClaimEvent) {
        self.owner = match event {
            ClaimEvent::Claimed { by } => Some(*by),
            ClaimEvent::Released => None,
        };
    }
}
// ANCHOR_END: claim

/// A user: registering twice is refused.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct User {
    pub email: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
pub enum UserEvent {
    Registered { email: String },
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("the user is already registered")]
pub struct AlreadyRegistered;

impl Aggregate for User {
    const KIND: &'static str = "user";
    type Event = UserEvent;
    type Command = String;
    type Error = AlreadyRegistered;
    type Environment = ();

    fn decide(&self, email: String, _: &()) -> Result<Vec<UserEvent>, AlreadyRegistered> {
        match self.email {
            Some(_) => Err(AlreadyRegistered),
            None => Ok(vec![UserEvent::Registered { email }]),
        }
    }

    fn apply(&mut self, UserEvent::Registered { email }: &UserEvent) {
        self.email = Some(email.clone());
    }
}

pub type Claims = AggregateRepository<EmailClaim, InMemoryEventStore>;
pub type Users = AggregateRepository<User, InMemoryEventStore>;

// ANCHOR: register
#[derive(Debug, thiserror::Error)]
pub enum RegisterError {
    #[error("{0} is already registered; sign in, or use another address")]
    EmailTaken(String),
    #[error(transparent)]
    Claim(RepositoryError<ClaimError>),
    #[error(transparent)]
    User(RepositoryError<AlreadyRegistered>),
}

/// Registers user `id` with `email`, unique across all users.
pub async fn register(
    claims: &Claims,
    users: &Users,
    id: u64,
    email: &str,
) -> Result<(), RegisterError> {
    let email = email.trim().to_lowercase();
    let claim = claims
        .stream_id(&email)
        .map_err(|e| RegisterError::Claim(e.into()))?;
    // 1. Claim the address. Two concurrent claims both expect the version
    //    they loaded (0, no stream, for a fresh address); the store takes
    //    one, and the retry of the other reloads and is refused.
    match claims
        .execute_with_retry(&claim, 3, || ClaimCommand::Claim { by: id })
        .await
    {
        Err(RepositoryError::Rejected(ClaimError::Taken { .. })) => {
            return Err(RegisterError::EmailTaken(email));
        }
        other => other.map_err(RegisterError::Claim)?,
    };
    // 2. Create the user. 3. If that fails, release the claim.
    let user = users
        .stream_id(id)
        .map_err(|e| RegisterError::User(e.into()))?;
    if let Err(error) = users.execute(&user, email).await {
        let release = || ClaimCommand::Release { by: id };
        claims
            .execute_with_retry(&claim, 3, release)
            .await
            .map_err(RegisterError::Claim)?;
        return Err(RegisterError::User(error));
    }
    Ok(())
}
// ANCHOR_END: register

// ANCHOR: test
#[cfg(test)]
mod tests {
    use composable_rust::{EventStoreError, ExpectedVersion, NewEvent};

    use super::*;

    fn repositories() -> (Claims, Users) {
        let events = InMemoryEventStore::new();
        (Claims::new(events.clone(), ()), Users::new(events, ()))
    }

    #[tokio::test]
    async fn a_second_user_cannot_take_the_address() {
        let (claims, users) = repositories();
        register(&claims, &users, 1, "Ada@Example.com")
            .await
            .unwrap();
        let error = register(&claims, &users, 2, " ada@example.com")
            .await
            .unwrap_err();
        assert!(matches!(error, RegisterError::EmailTaken(ref e) if e == "ada@example.com"));
    }

    #[tokio::test]
    async fn a_failed_registration_releases_its_claim() {
        let (claims, users) = repositories();
        register(&claims, &users, 1, "ada@example.com")
            .await
            .unwrap();
        // User 1 exists: registering it again fails after the claim...
        let error = register(&claims, &users, 1, "countess@example.com")
            .await
            .unwrap_err();
        assert!(matches!(
            error,
            RegisterError::User(RepositoryError::Rejected(_))
        ));
        // ...and the claim was released, so the address is free.
        register(&claims, &users, 2, "countess@example.com")
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn the_store_takes_only_the_first_claim_on_a_new_address() {
        let events = InMemoryEventStore::new();
        let claim = StreamId::for_aggregate("email", "bob@example.com").unwrap();
        let claimed = |by: u64| vec![NewEvent::from_event(&ClaimEvent::Claimed { by }).unwrap()];
        // Both writers found no stream, so both expect none.
        events
            .append(&claim, ExpectedVersion::NoStream, claimed(1))
            .await
            .unwrap();
        let late = events
            .append(&claim, ExpectedVersion::NoStream, claimed(2))
            .await;
        assert!(matches!(
            late,
            Err(EventStoreError::WrongExpectedVersion { actual: 1, .. })
        ));
    }
}
// ANCHOR_END: test
