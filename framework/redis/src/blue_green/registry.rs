//! The registry of a blue/green Redis read model: one hash,
//! `{<base>}:blue-green`, and the Lua scripts that change it atomically.
//!
//! | field | holds |
//! |---|---|
//! | `live` | the number of the version readers use (absent before the first switch) |
//! | `next` | the last version number handed out (`HINCRBY`, never reused) |
//! | `v<n>:state` | `building`, `live`, `retired`, `failed` or `dropping` |
//! | `v<n>:projection` | the projection that loads it |
//! | `v<n>:created_at`, `v<n>:switched_at`, `v<n>:retired_at`, `v<n>:failed_at` | RFC 3339 times, by the [`Clock`](composable_rust_core::clock::Clock) |
//!
//! Every change of more than one field is one script, so a reader of the
//! hash never sees half of it; `HGETALL "{<base>}:blue-green"` in
//! `redis-cli` shows it all.

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat, Utc};

use super::{Version, VersionState};
use crate::connection::LuaScript;
use crate::error::RedisStoreError;

/// Registers version `next + 1` as building. ARGV: projection, now.
pub(super) static REGISTER: LuaScript = LuaScript::new(
    r"local n = redis.call('HINCRBY', KEYS[1], 'next', 1)
redis.call('HSET', KEYS[1], 'v'..n..':state', 'building', 'v'..n..':projection', ARGV[1],
  'v'..n..':created_at', ARGV[2])
return n",
);

/// Makes version ARGV[2] live if the live version is still ARGV[1] (''
/// for none) and ARGV[2] is still building; retires the old one. ARGV[3]:
/// now. Returns {'switched'} or {'refused', live, state}.
pub(super) static SWITCH: LuaScript = LuaScript::new(
    r"local live = redis.call('HGET', KEYS[1], 'live') or ''
local state = redis.call('HGET', KEYS[1], 'v'..ARGV[2]..':state') or ''
if live ~= ARGV[1] or state ~= 'building' then
  return {'refused', live, state}
end
redis.call('HSET', KEYS[1], 'live', ARGV[2], 'v'..ARGV[2]..':state', 'live',
  'v'..ARGV[2]..':switched_at', ARGV[3])
if live ~= '' then
  redis.call('HSET', KEYS[1], 'v'..live..':state', 'retired', 'v'..live..':retired_at', ARGV[3])
end
return {'switched', live, state}",
);

/// Marks version ARGV[1] failed (at ARGV[2]) if it is still building.
pub(super) static FAIL: LuaScript = LuaScript::new(
    r"local field = 'v'..ARGV[1]..':state'
if redis.call('HGET', KEYS[1], field) == 'building' then
  redis.call('HSET', KEYS[1], field, 'failed', 'v'..ARGV[1]..':failed_at', ARGV[2])
  return 1
end
return 0",
);

/// Marks version ARGV[1] `dropping` if it is retired, failed or already
/// dropping, and not live; returns 1 if it did.
pub(super) static CLAIM_DROP: LuaScript = LuaScript::new(
    r"if redis.call('HGET', KEYS[1], 'live') == ARGV[1] then return 0 end
local field = 'v'..ARGV[1]..':state'
local state = redis.call('HGET', KEYS[1], field)
if state == 'retired' or state == 'failed' or state == 'dropping' then
  redis.call('HSET', KEYS[1], field, 'dropping')
  return 1
end
return 0",
);

/// Removes version ARGV[1]'s fields if it is `dropping` (its keys are gone).
pub(super) static FORGET: LuaScript = LuaScript::new(
    r"local v = 'v'..ARGV[1]..':'
if redis.call('HGET', KEYS[1], v..'state') ~= 'dropping' then return 0 end
redis.call('HDEL', KEYS[1], v..'state', v..'projection', v..'created_at', v..'switched_at',
  v..'retired_at', v..'failed_at')
return 1",
);

/// Extends the lock KEYS[1] to ARGV[2] ms if it still holds token ARGV[1].
pub(super) static RENEW: LuaScript = LuaScript::new(
    r"if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0",
);

/// Deletes the lock KEYS[1] if it still holds token ARGV[1].
pub(super) static UNLOCK: LuaScript = LuaScript::new(
    r"if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0",
);

/// A time as the registry stores it.
pub(super) fn time(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// The versions in the registry `key` (its `HGETALL`), oldest first;
/// `prefix_of(n)` names version `n`'s key prefix.
pub(super) fn parse_versions(
    key: &str,
    fields: BTreeMap<String, String>,
    prefix_of: impl Fn(u32) -> String,
) -> Result<Vec<Version>, RedisStoreError> {
    let mut versions: BTreeMap<u32, Version> = BTreeMap::new();
    for (field, value) in &fields {
        let Some((number, attribute)) = field
            .strip_prefix('v')
            .and_then(|rest| rest.split_once(':'))
            .and_then(|(n, attribute)| Some((n.parse::<u32>().ok()?, attribute)))
        else {
            continue;
        };
        let version = versions.entry(number).or_insert_with(|| Version {
            number,
            prefix: prefix_of(number),
            state: VersionState::Building,
            projection: None,
            created_at: None,
            switched_at: None,
            retired_at: None,
            failed_at: None,
        });
        let at = || parse_time(key, field, value).map(Some);
        match attribute {
            "state" => version.state = parse_state(key, field, value)?,
            "projection" => version.projection = Some(value.clone()),
            "created_at" => version.created_at = at()?,
            "switched_at" => version.switched_at = at()?,
            "retired_at" => version.retired_at = at()?,
            "failed_at" => version.failed_at = at()?,
            _ => {}
        }
    }
    // A version without a state field was half-forgotten: not a version.
    Ok(versions
        .into_values()
        .filter(|version| fields.contains_key(&format!("v{}:state", version.number)))
        .collect())
}

fn parse_state(key: &str, field: &str, value: &str) -> Result<VersionState, RedisStoreError> {
    Ok(match value {
        "building" => VersionState::Building,
        "live" => VersionState::Live,
        "retired" => VersionState::Retired,
        "failed" => VersionState::Failed,
        "dropping" => VersionState::Dropping,
        other => {
            return Err(RedisStoreError::corrupt(
                format!("{key} {field}"),
                format!(
                    "a version's state must be building, live, retired, failed or dropping, \
                     found {other:?}"
                ),
            ));
        }
    })
}

fn parse_time(key: &str, field: &str, value: &str) -> Result<DateTime<Utc>, RedisStoreError> {
    DateTime::parse_from_rfc3339(value)
        .map(|at| at.with_timezone(&Utc))
        .map_err(|error| {
            RedisStoreError::corrupt(
                format!("{key} {field}"),
                format!("a time must be RFC 3339 ({error}), found {value:?}"),
            )
        })
}

/// The live version's number from the `live` field, if any.
pub(super) fn parse_live(key: &str, live: Option<String>) -> Result<Option<u32>, RedisStoreError> {
    live.map(|text| {
        text.parse().map_err(|_| {
            RedisStoreError::corrupt(
                format!("{key} live"),
                format!("the live version must be a number, found {text:?}"),
            )
        })
    })
    .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_registry_parses_back_into_versions_and_rejects_what_it_did_not_write() {
        let fields: BTreeMap<String, String> = [
            ("live", "2"),
            ("next", "2"),
            ("v1:state", "retired"),
            ("v1:retired_at", "2026-01-01T00:00:00.000Z"),
            ("v2:state", "live"),
            ("v2:projection", "totals"),
            // Left over by a forget that did not finish: no state, ignored.
            ("v3:failed_at", "2026-01-01T00:00:00.000Z"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let versions = parse_versions("{b}:blue-green", fields, |n| format!("b.v{n}")).unwrap();
        assert_eq!(versions.len(), 2);
        assert_eq!(versions[0].state, VersionState::Retired);
        assert_eq!(versions[0].prefix, "b.v1");
        assert!(versions[0].retired_at.is_some());
        assert_eq!(versions[1].projection.as_deref(), Some("totals"));

        let bad: BTreeMap<String, String> = [("v1:state".to_owned(), "gone".to_owned())].into();
        let error = parse_versions("{b}:blue-green", bad, |n| format!("b.v{n}")).unwrap_err();
        assert!(error.to_string().starts_with("[CR-E0206]"), "{error}");
        assert!(parse_live("k", Some("x".into())).is_err());
        assert_eq!(parse_live("k", Some("7".into())).unwrap(), Some(7));
    }
}
