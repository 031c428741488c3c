//! Listing 8-1: an owner directory (accounts filed under the first letter
//! of their owner's name) whose first version cannot file some names.

use std::collections::BTreeMap;
use std::marker::PhantomData;

use async_trait::async_trait;
use bank::account::AccountEvent;
use composable_rust::ProjectionError;
use composable_rust::Upcasters;
use composable_rust::event::decode;
use composable_rust::prelude::*;

// ANCHOR: initials
/// The letter an owner is filed under: version 1, which only knows A to Z.
pub fn ascii_initial(owner: &str) -> Result<char, ProjectionError> {
    match owner.chars().next() {
        Some(first) if first.is_ascii_alphabetic() => Ok(first.to_ascii_uppercase()),
        _ => Err(ProjectionError::apply(format!(
            "cannot file owner {owner:?}: names must start with a letter from A to Z"
        ))),
    }
}

/// The fix: any letter, in upper case.
pub fn initial(owner: &str) -> Result<char, ProjectionError> {
    match owner.chars().next() {
        Some(first) if first.is_alphabetic() => Ok(first.to_uppercase().next().unwrap_or(first)),
        _ => Err(ProjectionError::apply(format!(
            "cannot file owner {owner:?}: names must start with a letter"
        ))),
    }
}
// ANCHOR_END: initials

// ANCHOR: projection
/// The accounts filed under one letter: stream id -> owner.
pub type Letter = BTreeMap<String, String>;

/// The key of one letter of the directory.
pub fn letter_key(letter: char) -> String {
    format!("owners:{letter}")
}

/// The owner directory behind the search box.
#[derive(Debug)]
pub struct OwnerDirectory<S> {
    initial: fn(&str) -> Result<char, ProjectionError>,
    upcasters: Upcasters,
    _store: PhantomData<fn() -> S>,
}

impl<S> OwnerDirectory<S> {
    /// A directory that files owners with `initial`.
    pub fn new(initial: fn(&str) -> Result<char, ProjectionError>) -> Self {
        Self {
            initial,
            upcasters: Upcasters::new(),
            _store: PhantomData,
        }
    }
}

#[async_trait]
impl<S: ProjectionCheckpoint> Projection for OwnerDirectory<S> {
    type Store = S;

    fn name(&self) -> &str {
        "owner-directory"
    }

    fn handles(&self, event: &StoredEvent) -> bool {
        event.event_type == "Opened"
    }

    async fn apply(&self, event: &StoredEvent, tx: &mut S::Tx) -> Result<(), ProjectionError> {
        let Some(AccountEvent::Opened { owner }) = decode(event, &self.upcasters)? else {
            return Ok(());
        };
        let key = letter_key((self.initial)(&owner)?);
        let mut letter: Letter = tx.get_json(&key).await?.unwrap_or_default();
        letter.insert(event.stream_id.to_string(), owner);
        tx.save_json(&key, &letter).await
    }

    async fn reset(&self, tx: &mut S::Tx) -> Result<(), ProjectionError> {
        tx.delete_prefix("owners:").await.map(|_| ())
    }
}
// ANCHOR_END: projection

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn files_owners_under_their_initial() {
        let mut harness = ProjectionTestHarness::new(OwnerDirectory::new(initial));
        for (stream, owner) in [("account-1", "ada"), ("account-2", "Édouard")] {
            let opened = AccountEvent::Opened {
                owner: owner.into(),
            };
            harness.given_events(stream, [opened]).await;
        }
        let a: Letter = harness.get_json("owners:A").await.unwrap();
        assert_eq!(a["account-1"], "ada");
        let e: Letter = harness.get_json("owners:É").await.unwrap();
        assert_eq!(e["account-2"], "Édouard");
        harness.assert_idempotent().await;
        harness.assert_rebuild_matches().await;
    }

    #[test]
    fn version_one_only_knows_a_to_z() {
        assert_eq!(ascii_initial("grace").unwrap(), 'G');
        assert!(ascii_initial("Édouard").is_err());
        assert_eq!(initial("Édouard").unwrap(), 'É');
    }
}
