//! [`StateDiff`]: what changed between two serialized states, field by
//! field, for the [`ReplayDebugger`](super::ReplayDebugger)'s output.
//!
//! The diff works on the JSON an aggregate serializes to (every aggregate
//! is `Serialize`, for snapshots), so it needs nothing more from the
//! aggregate's type and reads the same for every aggregate. It lists the
//! changed leaves by path (`balance`, `history[2]`, `owner.name`) rather
//! than lines of text: a state change from one event is usually a handful
//! of fields, and a path names each one exactly.
//!
//! (`composable-rust-testing` has its own line diff of `Debug` output for
//! assertion failures, where both sides are whole values a test wrote;
//! core cannot depend on that crate.)

use std::collections::BTreeSet;
use std::fmt;

use serde_json::Value;

/// One changed place in a state.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// A field or element that was not there before.
    Added {
        /// Where, e.g. `history[2]`.
        path: String,
        /// Its value.
        value: Value,
    },
    /// A field or element that is gone.
    Removed {
        /// Where.
        path: String,
        /// Its value before.
        value: Value,
    },
    /// A value that changed.
    Changed {
        /// Where.
        path: String,
        /// Before.
        before: Value,
        /// After.
        after: Value,
    },
}

impl Change {
    /// Where the change is.
    pub fn path(&self) -> &str {
        match self {
            Self::Added { path, .. } | Self::Removed { path, .. } | Self::Changed { path, .. } => {
                path
            }
        }
    }
}

impl fmt::Display for Change {
    /// One line: `+ path: value`, `- path: value` or `~ path: before -> after`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Added { path, value } => write!(f, "+ {path}: {value}"),
            Self::Removed { path, value } => write!(f, "- {path}: {value}"),
            Self::Changed {
                path,
                before,
                after,
            } => write!(f, "~ {path}: {before} -> {after}"),
        }
    }
}

/// The changes between two JSON values, field by field.
///
/// ```
/// use composable_rust_core::aggregate::StateDiff;
/// use serde_json::json;
///
/// let before = json!({ "balance": 100, "history": ["opened"] });
/// let after = json!({ "balance": 70, "history": ["opened", "withdrew 30"] });
/// let diff = StateDiff::between(&before, &after);
/// assert_eq!(
///     diff.to_string(),
///     "~ balance: 100 -> 70\n+ history[1]: \"withdrew 30\"\n"
/// );
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StateDiff {
    changes: Vec<Change>,
}

impl StateDiff {
    /// What changed from `before` to `after`: objects are compared field by
    /// field (in the order of their names), arrays element by element;
    /// anything else is compared whole.
    pub fn between(before: &Value, after: &Value) -> Self {
        let mut changes = Vec::new();
        compare(String::new(), before, after, &mut changes);
        Self { changes }
    }

    /// The changes, in order.
    pub fn changes(&self) -> &[Change] {
        &self.changes
    }

    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }
}

impl fmt::Display for StateDiff {
    /// One line per change, each ending with a newline; nothing when
    /// nothing changed.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for change in &self.changes {
            writeln!(f, "{change}")?;
        }
        Ok(())
    }
}

fn compare(path: String, before: &Value, after: &Value, changes: &mut Vec<Change>) {
    match (before, after) {
        (Value::Object(old), Value::Object(new)) => {
            // Sorted here, whatever order serde_json keeps (with its
            // `preserve_order` feature, insertion order), so the same
            // change always prints the same.
            let keys: BTreeSet<&String> = old.keys().chain(new.keys()).collect();
            for key in keys {
                let at = field(&path, key);
                match (old.get(key), new.get(key)) {
                    (Some(old_value), Some(new_value)) => {
                        compare(at, old_value, new_value, changes);
                    }
                    (Some(value), None) => changes.push(Change::Removed {
                        path: at,
                        value: value.clone(),
                    }),
                    (None, Some(value)) => changes.push(Change::Added {
                        path: at,
                        value: value.clone(),
                    }),
                    (None, None) => {}
                }
            }
        }
        (Value::Array(old), Value::Array(new)) => {
            for (index, pair) in old.iter().zip(new).enumerate() {
                compare(format!("{path}[{index}]"), pair.0, pair.1, changes);
            }
            for (index, value) in old.iter().enumerate().skip(new.len()) {
                changes.push(Change::Removed {
                    path: format!("{path}[{index}]"),
                    value: value.clone(),
                });
            }
            for (index, value) in new.iter().enumerate().skip(old.len()) {
                changes.push(Change::Added {
                    path: format!("{path}[{index}]"),
                    value: value.clone(),
                });
            }
        }
        _ if before == after => {}
        _ => changes.push(Change::Changed {
            path: if path.is_empty() {
                "(state)".to_owned()
            } else {
                path
            },
            before: before.clone(),
            after: after.clone(),
        }),
    }
}

/// The path of field `key` under `path`.
fn field(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn nested_fields_and_elements_are_named_by_path() {
        let before = json!({
            "owner": { "name": "Ada", "email": "ada@example.com" },
            "tags": ["a", "b", "c"],
            "closed": false,
        });
        let after = json!({
            "owner": { "name": "Ada Lovelace" },
            "tags": ["a"],
            "closed": true,
            "closed_by": "bank",
        });
        let diff = StateDiff::between(&before, &after);
        let paths: Vec<&str> = diff.changes().iter().map(Change::path).collect();
        assert_eq!(
            paths,
            [
                "closed",
                "closed_by",
                "owner.email",
                "owner.name",
                "tags[1]",
                "tags[2]",
            ]
        );
        assert_eq!(
            diff.to_string(),
            "~ closed: false -> true\n\
             + closed_by: \"bank\"\n\
             - owner.email: \"ada@example.com\"\n\
             ~ owner.name: \"Ada\" -> \"Ada Lovelace\"\n\
             - tags[1]: \"b\"\n\
             - tags[2]: \"c\"\n"
        );
    }

    #[test]
    fn equal_values_have_no_changes_and_a_changed_scalar_state_is_named() {
        let same = json!({ "a": [1, { "b": null }] });
        assert!(StateDiff::between(&same, &same).is_empty());
        assert_eq!(StateDiff::between(&same, &same).to_string(), "");
        let diff = StateDiff::between(&json!(1), &json!("one"));
        assert_eq!(diff.to_string(), "~ (state): 1 -> \"one\"\n");
        // A value that changes kind is one change, not a list of fields.
        let diff = StateDiff::between(&json!({ "x": { "y": 1 } }), &json!({ "x": [1] }));
        assert_eq!(diff.to_string(), "~ x: {\"y\":1} -> [1]\n");
    }
}
