//! Deleting data: soft delete (an event that hides), hard delete (a
//! tombstone event that removes read-model rows) and erasure (the personal
//! data is encrypted with a key per person, kept outside the event store;
//! erasing deletes the key, so the events that stay are unreadable).

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use composable_rust::event::decode;
use composable_rust::prelude::*;
use composable_rust::{InMemoryProjectionStore, ProjectionError, Upcasters};
use serde::{Deserialize, Serialize};

// ANCHOR: keys
/// Personal data as the events store it: encrypted under its subject's key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sealed {
    pub subject: String,
    pub nonce: String,
    pub ciphertext: String,
}

/// What opening a `Sealed` value gives.
#[derive(Debug, Clone, PartialEq)]
pub enum Personal {
    Known(String),
    Erased,
}

/// One key per data subject. Kept outside the event store (its own table,
/// or a KMS), so deleting a key really deletes it.
#[derive(Default)]
pub struct KeyStore {
    keys: Mutex<HashMap<String, Key>>,
}

impl KeyStore {
    /// Encrypts `value` under `subject`'s key, creating the key if needed.
    pub fn seal(&self, subject: &str, value: &str) -> Sealed {
        let mut keys = self.keys.lock().unwrap_or_else(PoisonError::into_inner);
        let key = keys
            .entry(subject.to_owned())
            .or_insert_with(|| ChaCha20Poly1305::generate_key(&mut OsRng));
        let nonce = ChaCha20Poly1305::generate_nonce(&mut OsRng);
        let ciphertext = ChaCha20Poly1305::new(key)
            .encrypt(&nonce, value.as_bytes())
            .expect("ChaCha20-Poly1305 encrypts any value under 256 GiB");
        Sealed {
            subject: subject.to_owned(),
            nonce: hex::encode(nonce),
            ciphertext: hex::encode(ciphertext),
        }
    }

    /// Decrypts `sealed`, or `Erased` once its subject's key is gone.
    pub fn open(&self, sealed: &Sealed) -> Personal {
        let keys = self.keys.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(key) = keys.get(&sealed.subject) else {
            return Personal::Erased;
        };
        let (Ok(nonce), Ok(ciphertext)) =
            (hex::decode(&sealed.nonce), hex::decode(&sealed.ciphertext))
        else {
            return Personal::Erased;
        };
        let cipher = ChaCha20Poly1305::new(key);
        match cipher.decrypt(Nonce::from_slice(&nonce), ciphertext.as_slice()) {
            Ok(bytes) => String::from_utf8(bytes).map_or(Personal::Erased, Personal::Known),
            Err(_) => Personal::Erased,
        }
    }

    /// Crypto-shredding: forgets `subject`'s key for good.
    pub fn erase(&self, subject: &str) {
        let mut keys = self.keys.lock().unwrap_or_else(PoisonError::into_inner);
        keys.remove(subject);
    }
}

impl std::fmt::Debug for KeyStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let keys = self.keys.lock().unwrap_or_else(PoisonError::into_inner);
        write!(f, "KeyStore({} keys)", keys.len())
    }
}
// ANCHOR_END: keys

// ANCHOR: member
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
pub enum MemberEvent {
    Joined {
        email: Sealed,
    },
    /// Soft delete: the member is hidden, and can be brought back.
    Deactivated,
    /// The tombstone: read models drop the member for good.
    Erased,
}

#[derive(Debug)]
pub enum MemberCommand {
    Join { email: Sealed },
    Deactivate,
    Erase,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MemberError {
    #[error("the member already joined")]
    AlreadyJoined,
    #[error("the member is not active")]
    NotActive,
}

#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct Member {
    pub active: bool,
    pub erased: bool,
    pub email: Option<Sealed>,
}

impl Aggregate for Member {
    const KIND: &'static str = "member";
    type Event = MemberEvent;
    type Command = MemberCommand;
    type Error = MemberError;
    type Environment = ();

    fn decide(&self, command: MemberCommand, _: &()) -> Result<Vec<MemberEvent>, MemberError> {
        match command {
            MemberCommand::Join { .. } if self.email.is_some() || self.erased => {
                Err(MemberError::AlreadyJoined)
            }
            MemberCommand::Join { email } => Ok(vec![MemberEvent::Joined { email }]),
            MemberCommand::Deactivate if !self.active => Err(MemberError::NotActive),
            MemberCommand::Deactivate => Ok(vec![MemberEvent::Deactivated]),
            MemberCommand::Erase if self.erased => Ok(vec![]),
            MemberCommand::Erase => Ok(vec![MemberEvent::Erased]),
        }
    }

    fn apply(&mut self, event: &MemberEvent) {
        match event {
            MemberEvent::Joined { email } => {
                self.active = true;
                self.email = Some(email.clone());
            }
            MemberEvent::Deactivated => self.active = false,
            MemberEvent::Erased => {
                *self = Member {
                    erased: true,
                    ..Member::default()
                }
            }
        }
    }
}
// ANCHOR_END: member

// ANCHOR: erase
/// Erases member `id`: the tombstone first (read models drop the row),
/// then the key (every copy of the email, in every event and backup, is
/// now unreadable).
pub async fn erase_member<S: EventStore>(
    members: &composable_rust::AggregateRepository<Member, S>,
    keys: &KeyStore,
    id: u64,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let stream = members.stream_id(id)?;
    members.execute(&stream, MemberCommand::Erase).await?;
    keys.erase(stream.as_str());
    Ok(())
}
// ANCHOR_END: erase

// ANCHOR: directory
/// A row of the member directory (a read model).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub email: String,
    pub active: bool,
}

/// The directory: soft-deleted members stay, flagged; erased ones go.
#[derive(Debug)]
pub struct Directory(pub std::sync::Arc<KeyStore>);

#[async_trait]
impl Projection for Directory {
    type Store = InMemoryProjectionStore;

    fn name(&self) -> &str {
        "member-directory"
    }

    fn handles(&self, event: &StoredEvent) -> bool {
        event.stream_id.as_str().starts_with("member-")
    }

    async fn apply(
        &self,
        event: &StoredEvent,
        tx: &mut <Self::Store as ProjectionStore>::Tx,
    ) -> Result<(), ProjectionError> {
        let key = format!("directory:{}", event.stream_id);
        match decode::<MemberEvent>(event, &Upcasters::new())? {
            Some(MemberEvent::Joined { email }) => match self.0.open(&email) {
                Personal::Known(email) => {
                    tx.save_json(
                        &key,
                        &Entry {
                            email,
                            active: true,
                        },
                    )
                    .await
                }
                Personal::Erased => Ok(()), // replayed after erasure: nothing to show
            },
            Some(MemberEvent::Deactivated) => {
                let entry: Option<Entry> = tx.get_json(&key).await?;
                match entry {
                    Some(entry) => {
                        tx.save_json(
                            &key,
                            &Entry {
                                active: false,
                                ..entry
                            },
                        )
                        .await
                    }
                    None => Ok(()),
                }
            }
            Some(MemberEvent::Erased) => tx.delete(&key).await,
            None => Ok(()),
        }
    }

    async fn reset(
        &self,
        tx: &mut <Self::Store as ProjectionStore>::Tx,
    ) -> Result<(), ProjectionError> {
        tx.delete_prefix("directory:").await.map(|_| ())
    }
}
// ANCHOR_END: directory

// ANCHOR: test
#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use composable_rust::{AggregateRepository, InMemoryEventStore, ProjectionManager};

    use super::*;

    type Members = AggregateRepository<Member, InMemoryEventStore>;

    async fn join(members: &Members, keys: &KeyStore, id: u64, email: &str) -> StreamId {
        let stream = members.stream_id(id).unwrap();
        let email = keys.seal(stream.as_str(), email);
        members
            .execute(&stream, MemberCommand::Join { email })
            .await
            .unwrap();
        stream
    }

    async fn entry(directory: &ProjectionManager<Directory>, stream: &StreamId) -> Option<Entry> {
        directory
            .store()
            .get_json(&format!("directory:{stream}"))
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn soft_delete_hides_and_erasure_leaves_nothing_readable() {
        let events = InMemoryEventStore::new();
        let keys = Arc::new(KeyStore::default());
        let members = Members::new(events.clone(), ());
        let store = Arc::new(InMemoryProjectionStore::new());
        let directory = ProjectionManager::new(Directory(keys.clone()), store, events.clone());
        let ada = join(&members, &keys, 1, "ada@example.com").await;
        let bob = join(&members, &keys, 2, "bob@example.com").await;

        // Soft delete: still there, flagged, and the event says why.
        members
            .execute(&bob, MemberCommand::Deactivate)
            .await
            .unwrap();
        directory.catch_up().await.unwrap();
        let bob_entry = Entry {
            email: "bob@example.com".into(),
            active: false,
        };
        assert_eq!(entry(&directory, &bob).await, Some(bob_entry.clone()));

        // Erasure: the row goes, and the stored email can no longer be read.
        erase_member(&members, &keys, 1).await.unwrap();
        directory.catch_up().await.unwrap();
        assert_eq!(entry(&directory, &ada).await, None);
        let joined = &events.load_stream(&ada, 0).await.unwrap()[0];
        assert!(!joined.payload.to_string().contains("ada@example.com"));
        let Some(MemberEvent::Joined { email }) = decode(joined, &Upcasters::new()).unwrap() else {
            panic!("the first event is Joined");
        };
        assert_eq!(keys.open(&email), Personal::Erased);

        // A rebuild from the whole history brings nothing back.
        directory.rebuild().await.unwrap();
        assert_eq!(entry(&directory, &ada).await, None);
        assert_eq!(entry(&directory, &bob).await, Some(bob_entry));
    }
}
// ANCHOR_END: test
