//! The shop's error codes, one constant each. An HTTP error body is
//! `{"code": "...", "message": "..."}`; a framework error that surfaces
//! keeps its own `CR-E....` code. The README lists them with their causes.

/// The body is not valid JSON for this route: malformed, a wrong type, a
/// missing or unknown field. Fix the request; nothing was written.
pub const INVALID_BODY: &str = "SHOP-E0001";
/// A field's value is out of range (an empty or oversize string, a
/// quantity outside 1..=100, a payment token not starting with `tok_`).
pub const INVALID_FIELD: &str = "SHOP-E0002";
/// The body is larger than `SHOP_MAX_BODY_BYTES`.
pub const BODY_TOO_LARGE: &str = "SHOP-E0003";
/// No bearer token, or one that is malformed, forged or expired.
pub const UNAUTHENTICATED: &str = "SHOP-E0004";
/// No such product, order or route (or one that is not the caller's).
pub const NOT_FOUND: &str = "SHOP-E0005";
/// `Idempotency-Key` is missing or not 1 to 64 visible ASCII characters.
pub const INVALID_IDEMPOTENCY_KEY: &str = "SHOP-E0006";
/// `Idempotency-Key` was used before with a different body.
pub const IDEMPOTENCY_KEY_REUSED: &str = "SHOP-E0007";
/// The cart is empty: there is nothing to order.
pub const EMPTY_CART: &str = "SHOP-E0008";
/// Too many requests in flight (`SHOP_MAX_IN_FLIGHT`): retry after the
/// `Retry-After` header's seconds.
pub const OVERLOADED: &str = "SHOP-E0009";
/// A backend (PostgreSQL, Redis, the bus) failed; transient: retry.
pub const UNAVAILABLE: &str = "SHOP-E0010";
/// A required environment variable is not set.
pub const CONFIG_MISSING: &str = "SHOP-E0011";
/// An environment variable is set to an unusable value.
pub const CONFIG_INVALID: &str = "SHOP-E0012";
/// The shop could not start (a backend unreachable, a port taken).
pub const STARTUP_FAILED: &str = "SHOP-E0013";

/// Every code, with its HTTP status (0 for codes never sent over HTTP)
/// and a one-line cause: the README's table is checked against it.
pub const ALL: &[(&str, u16, &str)] = &[
    (
        INVALID_BODY,
        400,
        "malformed JSON, wrong type, missing or unknown field",
    ),
    (INVALID_FIELD, 422, "a field's value is out of range"),
    (BODY_TOO_LARGE, 413, "the body exceeds SHOP_MAX_BODY_BYTES"),
    (
        UNAUTHENTICATED,
        401,
        "missing, malformed, forged or expired bearer token",
    ),
    (
        NOT_FOUND,
        404,
        "no such product, order or route (or not the caller's)",
    ),
    (
        INVALID_IDEMPOTENCY_KEY,
        400,
        "Idempotency-Key missing or not 1..=64 visible ASCII characters",
    ),
    (
        IDEMPOTENCY_KEY_REUSED,
        422,
        "Idempotency-Key reused with a different body",
    ),
    (EMPTY_CART, 422, "the cart is empty"),
    (
        OVERLOADED,
        503,
        "too many requests in flight; retry after Retry-After",
    ),
    (UNAVAILABLE, 503, "a backend failed; retry"),
    (
        CONFIG_MISSING,
        0,
        "a required environment variable is not set",
    ),
    (
        CONFIG_INVALID,
        0,
        "an environment variable has an unusable value",
    ),
    (
        STARTUP_FAILED,
        0,
        "a backend is unreachable or the port is taken at startup",
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_readme_lists_every_code_with_its_status() {
        let readme = include_str!("../README.md");
        for (code, status, _) in ALL {
            let row = readme
                .lines()
                .find(|line| line.starts_with(&format!("| {code} |")))
                .unwrap_or_else(|| panic!("{code} is not in the README's table"));
            if *status != 0 {
                assert!(row.contains(&format!("| {status} |")), "{row}");
            }
        }
        let mut codes: Vec<_> = ALL.iter().map(|(code, ..)| *code).collect();
        codes.dedup();
        assert_eq!(codes.len(), ALL.len(), "a code is used twice");
    }
}
