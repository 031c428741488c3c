//! Comparing the shape (not the values) of two payloads, for the lock's
//! messages and its "values only" re-recording.

use serde_json::Value;

/// The structural differences between two payloads: a field added or
/// removed, a value of another JSON type. Values of the same type are
/// the same shape; arrays compare element by element.
pub(super) fn shape_differences(at: &str, recorded: &Value, now: &Value, out: &mut Vec<String>) {
    match (recorded, now) {
        (Value::Object(old), Value::Object(new)) => {
            for (key, value) in old {
                match new.get(key) {
                    Some(other) => shape_differences(&format!("{at}.{key}"), value, other, out),
                    None => out.push(format!("`{at}.{key}` is gone")),
                }
            }
            for key in new.keys().filter(|key| !old.contains_key(*key)) {
                out.push(format!("`{at}.{key}` is new"));
            }
        }
        (Value::Array(old), Value::Array(new)) => {
            for (index, (a, b)) in old.iter().zip(new).enumerate() {
                shape_differences(&format!("{at}[{index}]"), a, b, out);
            }
        }
        (old, new) if json_type(old) != json_type(new) => out.push(format!(
            "`{at}` was {}, is {} now",
            json_type(old),
            json_type(new)
        )),
        _ => {}
    }
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn shape_differences_name_fields_and_types() {
        let mut out = Vec::new();
        shape_differences(
            "payload",
            &json!({ "cents": 1, "owner": "a", "tags": [1] }),
            &json!({ "amount": 1, "owner": 2, "tags": ["x"] }),
            &mut out,
        );
        assert_eq!(
            out,
            [
                "`payload.cents` is gone",
                "`payload.owner` was a string, is a number now",
                "`payload.tags[0]` was a number, is a string now",
                "`payload.amount` is new",
            ]
        );
        let mut same = Vec::new();
        shape_differences("payload", &json!({ "a": 1 }), &json!({ "a": 2 }), &mut same);
        assert!(same.is_empty());
    }
}
