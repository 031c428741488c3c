//! [`StateCondition`]: a condition on an aggregate's serialized state,
//! written as text (`balance < 0`, `owner.name == "Ada"`), so a command
//! line can tell the [`ReplayDebugger`](super::ReplayDebugger) where to
//! stop without Rust code.
//!
//! A condition is `path operator value`: the path names a field the way a
//! [`StateDiff`](super::StateDiff) prints it (`balance`, `owner.name`,
//! `items[2].sku`), the operator is one of `==` `!=` `<` `<=` `>` `>=`,
//! and the value is JSON (`0`, `"Ada"`, `true`, `null`). Numbers compare
//! as numbers, strings in lexicographic order; `<` and friends are false
//! for anything else. A path that is not in the state reads as `null`.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;
use serde_json::Value;

use crate::error::{coded_error, codes};

/// Why a [`StateCondition`] does not parse.
#[coded_error]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConditionError {
    /// The text is not `path operator value`.
    #[code(codes::INVALID_STATE_CONDITION, permanent)]
    #[error(
        "`{condition}` is not a state condition: {reason}; write `path operator value`, \
         e.g. `balance < 0` or `owner.name == \"Ada\"` (operators == != < <= > >=, the \
         value in JSON)"
    )]
    Invalid {
        /// The text given.
        condition: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// One step of a path: a field or an array index.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Field(String),
    Index(usize),
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

/// A condition on a serialized state; parse it from text.
///
/// ```
/// use composable_rust_core::aggregate::StateCondition;
/// use serde_json::json;
///
/// let low: StateCondition = "balance < 100".parse().unwrap();
/// assert!(low.holds(&json!({ "balance": 30 })));
/// assert!(!low.holds(&json!({ "balance": 320 })));
/// let ada: StateCondition = r#"owner.name == "Ada""#.parse().unwrap();
/// assert!(ada.holds(&json!({ "owner": { "name": "Ada" } })));
/// assert!("balance < hundred".parse::<StateCondition>().is_err());
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct StateCondition {
    text: String,
    path: Vec<Segment>,
    op: Op,
    value: Value,
}

impl StateCondition {
    /// Whether the condition holds for `state` (a serialized state).
    pub fn holds(&self, state: &Value) -> bool {
        let mut current = state;
        for segment in &self.path {
            let next = match (segment, current) {
                (Segment::Field(name), Value::Object(map)) => map.get(name),
                (Segment::Index(index), Value::Array(items)) => items.get(*index),
                _ => None,
            };
            match next {
                Some(value) => current = value,
                None => return self.compare(&Value::Null),
            }
        }
        self.compare(current)
    }

    /// Whether the condition holds for `state`, serialized as snapshots
    /// are; a state that does not serialize matches nothing.
    pub fn matches<A: Serialize>(&self, state: &A) -> bool {
        serde_json::to_value(state).is_ok_and(|value| self.holds(&value))
    }

    fn compare(&self, actual: &Value) -> bool {
        use std::cmp::Ordering;
        let order = match (actual, &self.value) {
            (Value::Number(a), Value::Number(b)) => match (a.as_f64(), b.as_f64()) {
                (Some(a), Some(b)) => a.partial_cmp(&b),
                _ => None,
            },
            (Value::String(a), Value::String(b)) => Some(a.cmp(b)),
            (a, b) => (a == b).then_some(Ordering::Equal),
        };
        match self.op {
            Op::Eq => order == Some(Ordering::Equal),
            Op::Ne => order != Some(Ordering::Equal),
            Op::Lt => order == Some(Ordering::Less),
            Op::Le => matches!(order, Some(Ordering::Less | Ordering::Equal)),
            Op::Gt => order == Some(Ordering::Greater),
            Op::Ge => matches!(order, Some(Ordering::Greater | Ordering::Equal)),
        }
    }
}

impl FromStr for StateCondition {
    type Err = ConditionError;

    fn from_str(text: &str) -> Result<Self, ConditionError> {
        let invalid = |reason: String| ConditionError::Invalid {
            condition: text.to_owned(),
            reason,
        };
        let Some(at) = text.find(['=', '!', '<', '>']) else {
            return Err(invalid("it has no operator".into()));
        };
        let (path, rest) = text.split_at(at);
        let (op, value) = [
            ("==", Op::Eq),
            ("!=", Op::Ne),
            ("<=", Op::Le),
            (">=", Op::Ge),
            ("<", Op::Lt),
            (">", Op::Gt),
        ]
        .into_iter()
        .find_map(|(symbol, op)| rest.strip_prefix(symbol).map(|value| (op, value)))
        .ok_or_else(|| invalid(format!("`{}` is not an operator", rest.trim())))?;
        let path = parse_path(path.trim()).map_err(invalid)?;
        let value = value.trim();
        let value = serde_json::from_str(value).map_err(|_| {
            invalid(format!(
                "the value `{value}` is not JSON (write a string in double quotes: \"{value}\")"
            ))
        })?;
        Ok(Self {
            text: text.trim().to_owned(),
            path,
            op,
            value,
        })
    }
}

impl fmt::Display for StateCondition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// `owner.name`, `items[2].sku`: fields separated by dots, indexes in
/// brackets.
fn parse_path(path: &str) -> Result<Vec<Segment>, String> {
    if path.is_empty() {
        return Err("it has no path before the operator".into());
    }
    let mut segments = Vec::new();
    for part in path.split('.') {
        let (name, mut indexes) = match part.find('[') {
            Some(at) => part.split_at(at),
            None => (part, ""),
        };
        if name.is_empty() && segments.is_empty() && indexes.is_empty() {
            return Err(format!("the path `{path}` has an empty field name"));
        }
        if !name.is_empty() {
            if name.chars().any(char::is_whitespace) {
                return Err(format!("the field name `{name}` contains a space"));
            }
            segments.push(Segment::Field(name.to_owned()));
        }
        while !indexes.is_empty() {
            let close = indexes
                .find(']')
                .ok_or_else(|| format!("the path `{path}` has an unclosed `[`"))?;
            let index = indexes[1..close]
                .parse()
                .map_err(|_| format!("`{}` is not an array index", &indexes[1..close]))?;
            segments.push(Segment::Index(index));
            indexes = &indexes[close + 1..];
            if !indexes.is_empty() && !indexes.starts_with('[') {
                return Err(format!("the path `{path}` has text after `]`"));
            }
        }
    }
    Ok(segments)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::error::CodedError;

    fn condition(text: &str) -> StateCondition {
        text.parse().unwrap_or_else(|error| panic!("{error}"))
    }

    #[test]
    fn each_operator_compares_numbers_as_numbers_and_strings_in_order() {
        let state = json!({ "balance": 70, "rate": 1.5, "owner": "Ada" });
        for (text, holds) in [
            ("balance == 70", true),
            ("balance == 70.0", true),
            ("balance != 70", false),
            ("balance < 100", true),
            ("balance<=70", true),
            ("balance > 70", false),
            ("balance >= 70", true),
            ("rate > 1", true),
            (r#"owner == "Ada""#, true),
            (r#"owner < "Bob""#, true),
            (r#"owner > "Bob""#, false),
            // Different kinds are only ever unequal.
            (r#"balance < "100""#, false),
            (r#"balance != "70""#, true),
        ] {
            assert_eq!(condition(text).holds(&state), holds, "{text}");
        }
    }

    #[test]
    fn paths_reach_nested_fields_and_elements_and_missing_ones_read_as_null() {
        let state =
            json!({ "owner": { "name": "Ada" }, "items": [{ "sku": "a" }, { "sku": "b" }] });
        assert!(condition(r#"owner.name == "Ada""#).holds(&state));
        assert!(condition(r#"items[1].sku == "b""#).holds(&state));
        assert!(condition("items[7].sku == null").holds(&state));
        assert!(condition("closed == null").holds(&state));
        assert!(!condition("closed == true").holds(&state));
        assert!(condition("closed != true").holds(&state));
        let matrix = json!({ "rows": [[1, 2], [3, 4]] });
        assert!(condition("rows[1][0] == 3").holds(&matrix));
    }

    #[test]
    fn bad_conditions_say_what_is_wrong() {
        for (text, reason) in [
            ("balance", "it has no operator"),
            ("balance =< 3", "`=< 3` is not an operator"),
            ("< 3", "it has no path before the operator"),
            ("balance < hundred", "the value `hundred` is not JSON"),
            ("items[x] == 1", "`x` is not an array index"),
            ("items[1 == 1", "has an unclosed `[`"),
            (
                "my balance < 1",
                "the field name `my balance` contains a space",
            ),
        ] {
            let error = text.parse::<StateCondition>().unwrap_err();
            assert_eq!(error.code().as_str(), "CR-E0022");
            let message = error.to_string();
            assert!(message.contains(reason), "{text}: {message}");
            assert!(message.contains(&format!("`{text}`")), "{message}");
        }
    }
}
