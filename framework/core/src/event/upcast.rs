//! Upcasting: turning events stored in an old shape into today's shape on
//! load, so the stored history never has to be rewritten.
//!
//! An [`Upcaster`] handles one (type, schema version) pair and returns the
//! event one step newer: the same type at the next version, a renamed type,
//! or [`Upcasted::Discarded`] for an event type that was removed on purpose.
//! [`Upcasters`] applies them repeatedly until no upcaster matches.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::Value;

/// The result of one upcasting step.
#[derive(Debug, Clone, PartialEq)]
pub enum Upcasted {
    /// The event in a newer shape.
    Event {
        /// Its type name (changed when the event was renamed).
        event_type: String,
        /// Its schema version after this step.
        schema_version: u32,
        /// Its payload after this step.
        payload: Value,
    },
    /// The event type was removed; the event is skipped on load.
    Discarded,
}

/// A single upcasting step; any `Fn(Value) -> Result<Upcasted, String>`.
/// Return `Err` with a reason when the payload cannot be upcast; loading
/// then fails with a decode error naming the event.
pub type Upcaster = Arc<dyn Fn(Value) -> Result<Upcasted, String> + Send + Sync>;

/// The registered upcasters, keyed by the (type, version) they upgrade.
#[derive(Clone, Default)]
pub struct Upcasters {
    steps: HashMap<(String, u32), Upcaster>,
}

/// The longest chain of steps followed before giving up (guards against
/// upcasters that loop).
const MAX_STEPS: usize = 64;

impl Upcasters {
    /// No upcasters: every event is loaded as stored.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers `step` for events of `event_type` stored at `version`.
    #[must_use]
    pub fn register(
        mut self,
        event_type: &str,
        version: u32,
        step: impl Fn(Value) -> Result<Upcasted, String> + Send + Sync + 'static,
    ) -> Self {
        self.steps
            .insert((event_type.to_owned(), version), Arc::new(step));
        self
    }

    /// Registers a step that rewrites the payload of `event_type` from
    /// `version` to `version + 1`, keeping its type.
    #[must_use]
    pub fn migrate(
        self,
        event_type: &str,
        version: u32,
        rewrite: impl Fn(Value) -> Result<Value, String> + Send + Sync + 'static,
    ) -> Self {
        let name = event_type.to_owned();
        self.register(event_type, version, move |payload| {
            Ok(Upcasted::Event {
                event_type: name.clone(),
                schema_version: version + 1,
                payload: rewrite(payload)?,
            })
        })
    }

    /// Registers a rename: events stored as `old` at `version` load as
    /// `new` at `new_version`, payload unchanged.
    #[must_use]
    pub fn rename(self, old: &str, version: u32, new: &str, new_version: u32) -> Self {
        let new = new.to_owned();
        self.register(old, version, move |payload| {
            Ok(Upcasted::Event {
                event_type: new.clone(),
                schema_version: new_version,
                payload,
            })
        })
    }

    /// Registers the removal of an event type: stored events of `event_type`
    /// at `version` are skipped on load.
    #[must_use]
    pub fn discard(self, event_type: &str, version: u32) -> Self {
        self.register(event_type, version, |_| Ok(Upcasted::Discarded))
    }

    /// Whether a step is registered for `event_type` at `version`.
    pub(crate) fn handles(&self, event_type: &str, version: u32) -> bool {
        !self.steps.is_empty() && self.steps.contains_key(&(event_type.to_owned(), version))
    }

    /// Applies matching steps until none matches.
    pub fn upcast(
        &self,
        event_type: &str,
        version: u32,
        payload: Value,
    ) -> Result<Upcasted, String> {
        let mut current = Upcasted::Event {
            event_type: event_type.to_owned(),
            schema_version: version,
            payload,
        };
        for _ in 0..MAX_STEPS {
            let Upcasted::Event {
                event_type,
                schema_version,
                payload,
            } = current
            else {
                return Ok(Upcasted::Discarded);
            };
            let Some(step) = self.steps.get(&(event_type.clone(), schema_version)) else {
                return Ok(Upcasted::Event {
                    event_type,
                    schema_version,
                    payload,
                });
            };
            current = step(payload)?;
        }
        Err(format!(
            "upcasting {event_type} v{version} took more than {MAX_STEPS} steps; \
             an upcaster probably returns the type and version it was registered for"
        ))
    }
}

impl std::fmt::Debug for Upcasters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut keys: Vec<_> = self.steps.keys().collect();
        keys.sort();
        f.debug_struct("Upcasters").field("steps", &keys).finish()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn chains_migrations_and_renames() {
        let upcasters = Upcasters::new()
            .migrate("Created", 1, |mut p| {
                p["priority"] = json!("normal");
                Ok(p)
            })
            .rename("Created", 2, "TodoCreated", 2);
        let result = upcasters
            .upcast("Created", 1, json!({ "title": "x" }))
            .unwrap();
        assert_eq!(
            result,
            Upcasted::Event {
                event_type: "TodoCreated".into(),
                schema_version: 2,
                payload: json!({ "title": "x", "priority": "normal" }),
            }
        );
    }

    #[test]
    fn discards_removed_types_and_passes_others_through() {
        let upcasters = Upcasters::new().discard("Pinged", 1);
        assert_eq!(
            upcasters.upcast("Pinged", 1, json!(null)).unwrap(),
            Upcasted::Discarded
        );
        assert!(matches!(
            upcasters.upcast("Other", 1, json!(1)).unwrap(),
            Upcasted::Event { .. }
        ));
    }

    #[test]
    fn a_looping_upcaster_is_reported_not_hung() {
        let upcasters = Upcasters::new().rename("A", 1, "A", 1);
        let error = upcasters.upcast("A", 1, json!(null)).unwrap_err();
        assert!(error.contains("more than 64 steps"), "{error}");
    }
}
