//! Every SQL statement of the projection store's own tables, built once per
//! store from the validated, quoted schema name, and the key range that
//! stands for "every key starting with a prefix".
//!
//! As in the event store (see [`crate::sql`]), the schema name is the only
//! text spliced into SQL; keys, values and positions are bind parameters,
//! so each statement's text is fixed and sqlx prepares it once per
//! connection.

use crate::schema::SchemaName;

/// The statements of one projection store.
#[derive(Debug)]
pub(crate) struct Statements {
    /// The value of key `$1`.
    pub get: String,
    /// Stores many keys at once: `$1` keys, `$2` values (no key twice).
    pub upsert_many: String,
    /// Removes the keys `$1`.
    pub delete_many: String,
    /// Removes the keys in `[$1, $2)` (byte order).
    pub delete_range: String,
    /// Removes the keys `>= $1` (a prefix with no successor).
    pub delete_from: String,
    /// The keys and values in `[$1, $2)`, in key order.
    pub scan_range: String,
    /// The keys and values `>= $1`, in key order.
    pub scan_from: String,
    /// The checkpoint of projection `$1`.
    pub load_position: String,
    /// Sets the checkpoint of projection `$1` to (`$2`, `$3`), but only
    /// forwards, or back to the start (a rebuild): a row comes back only
    /// when it was written. See
    /// [`PostgresProjectionStore`](super::PostgresProjectionStore) on
    /// running one manager per projection.
    pub save_position: String,
    /// Records (or records again, moving it to the end) a dead letter:
    /// `$1` projection, `$2` event id, `$3` event, `$4` error, `$5`
    /// attempts, `$6` failed at.
    pub record_dead_letter: String,
    /// Removes the dead letter (`$1`, `$2`); a row comes back if there was
    /// one.
    pub remove_dead_letter: String,
    /// The dead letters of projection `$1`, oldest first.
    pub dead_letters: String,
}

impl Statements {
    /// Builds the statements for `schema`.
    pub(crate) fn new(schema: &SchemaName) -> Self {
        let s = schema.quoted();
        let data = format!("{s}.projection_data");
        let checkpoints = format!("{s}.projection_checkpoints");
        let letters = format!("{s}.projection_dead_letters");
        Self {
            get: format!("SELECT data FROM {data} WHERE key = $1"),
            upsert_many: format!(
                "INSERT INTO {data} (key, data, updated_at) \
                 SELECT u.key, u.data, now() \
                 FROM unnest($1::text[], $2::bytea[]) AS u(key, data) \
                 ON CONFLICT (key) DO UPDATE SET \
                     data = EXCLUDED.data, updated_at = EXCLUDED.updated_at"
            ),
            delete_many: format!("DELETE FROM {data} WHERE key = ANY($1::text[])"),
            delete_range: format!("DELETE FROM {data} WHERE key >= $1 AND key < $2"),
            delete_from: format!("DELETE FROM {data} WHERE key >= $1"),
            scan_range: format!(
                "SELECT key, data FROM {data} WHERE key >= $1 AND key < $2 ORDER BY key"
            ),
            scan_from: format!("SELECT key, data FROM {data} WHERE key >= $1 ORDER BY key"),
            load_position: format!(
                "SELECT commit_position, sequence FROM {checkpoints} WHERE projection = $1"
            ),
            save_position: format!(
                "INSERT INTO {checkpoints} AS c (projection, commit_position, sequence, updated_at) \
                 VALUES ($1, $2, $3, now()) \
                 ON CONFLICT (projection) DO UPDATE SET \
                     commit_position = EXCLUDED.commit_position, \
                     sequence = EXCLUDED.sequence, \
                     updated_at = EXCLUDED.updated_at \
                 WHERE (EXCLUDED.commit_position, EXCLUDED.sequence) \
                           > (c.commit_position, c.sequence) \
                    OR (EXCLUDED.commit_position, EXCLUDED.sequence) = (0, 0) \
                 RETURNING 1"
            ),
            record_dead_letter: format!(
                "INSERT INTO {letters} AS l \
                     (projection, event_id, event, error, attempts, failed_at) \
                 VALUES ($1, $2, $3, $4, $5, $6) \
                 ON CONFLICT (projection, event_id) DO UPDATE SET \
                     event = EXCLUDED.event, \
                     error = EXCLUDED.error, \
                     attempts = EXCLUDED.attempts, \
                     failed_at = EXCLUDED.failed_at, \
                     recorded = DEFAULT"
            ),
            remove_dead_letter: format!(
                "DELETE FROM {letters} WHERE projection = $1 AND event_id = $2 RETURNING 1"
            ),
            dead_letters: format!(
                "SELECT event, error, attempts, failed_at FROM {letters} \
                 WHERE projection = $1 ORDER BY recorded"
            ),
        }
    }
}

/// The smallest string greater than every string that starts with
/// `prefix`, in byte order (the `"C"` collation of the key column), or
/// `None` if there is none (`prefix` is empty, or only `char::MAX`).
///
/// UTF-8 preserves code-point order, so it is `prefix` with its last
/// character replaced by the next code point (dropping trailing
/// `char::MAX`es first). Every key `k` with `prefix <= k < successor`
/// starts with `prefix`, and every key that starts with it lies there:
/// the range is exact, needs no LIKE escaping, and is a range scan of the
/// primary key.
pub(crate) fn prefix_successor(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        if let Some(next) = next_char(last) {
            chars.push(next);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

/// The next Unicode scalar value after `c` (skipping the surrogates).
fn next_char(c: char) -> Option<char> {
    match c {
        '\u{D7FF}' => Some('\u{E000}'),
        char::MAX => None,
        c => char::from_u32(u32::from(c) + 1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn successors_bound_exactly_the_keys_with_the_prefix() {
        assert_eq!(prefix_successor("orders:").as_deref(), Some("orders;"));
        assert_eq!(prefix_successor("a%").as_deref(), Some("a&"));
        assert_eq!(prefix_successor("a_").as_deref(), Some("a`"));
        assert_eq!(prefix_successor("a\\").as_deref(), Some("a]"));
        assert_eq!(prefix_successor("\u{D7FF}").as_deref(), Some("\u{E000}"));
        assert_eq!(prefix_successor("a\u{10FFFF}").as_deref(), Some("b"));
        assert_eq!(prefix_successor(""), None);
        assert_eq!(prefix_successor("\u{10FFFF}\u{10FFFF}"), None);

        for prefix in ["orders:", "a%", "é", "x\u{10FFFF}"] {
            let upper = prefix_successor(prefix).unwrap();
            for key in [
                prefix.to_owned(),
                format!("{prefix}1"),
                format!("{prefix}\u{10FFFF}"),
            ] {
                assert!(key.as_bytes() >= prefix.as_bytes() && key.as_bytes() < upper.as_bytes());
            }
            assert!(upper.as_bytes() > prefix.as_bytes());
            assert!(!upper.starts_with(prefix));
        }
    }

    #[test]
    fn statements_only_splice_the_quoted_schema() {
        let schema = SchemaName::new("shop").unwrap();
        let sql = Statements::new(&schema);
        assert!(sql.get.contains("\"shop\".projection_data"));
        assert!(
            sql.save_position
                .contains("\"shop\".projection_checkpoints")
        );
        assert!(
            sql.dead_letters
                .contains("\"shop\".projection_dead_letters")
        );
    }
}
