//! Bearer tokens: `<customer_id>.<expiry_unix>.<hex hmac-sha256>`, the
//! HMAC over `<customer_id>.<expiry_unix>` with `SHOP_TOKEN_SECRET`.
//! Stateless (no session table), checked in constant time (hmac's
//! `verify_slice`), and they expire. There is no revocation list: keep
//! the lifetime short, and rotate the secret to revoke every token.

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use uuid::Uuid;

type HmacSha256 = Hmac<Sha256>;

/// How long a token is valid.
pub const TOKEN_LIFETIME: chrono::Duration = chrono::Duration::hours(24);

/// Why a token is refused. Deliberately coarse towards the caller (the
/// HTTP error says only "invalid or expired"); the variant is for logs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not three dot-separated parts of the right shapes.
    #[error("the token is malformed")]
    Malformed,
    /// The signature does not match: forged, or another secret.
    #[error("the token's signature is invalid")]
    BadSignature,
    /// Past its expiry.
    #[error("the token expired")]
    Expired,
}

/// Signs and verifies tokens with one secret.
#[derive(Clone)]
pub struct Tokens {
    secret: Vec<u8>,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tokens(secret hidden)")
    }
}

impl Tokens {
    /// Tokens signed with `secret`.
    pub fn new(secret: impl Into<Vec<u8>>) -> Self {
        Self {
            secret: secret.into(),
        }
    }

    fn mac(&self, payload: &str) -> HmacSha256 {
        // HMAC takes keys of any length: this cannot fail.
        let mut mac =
            HmacSha256::new_from_slice(&self.secret).expect("HMAC accepts any key length");
        mac.update(payload.as_bytes());
        mac
    }

    /// A token for `customer_id`, valid until `now` + [`TOKEN_LIFETIME`].
    pub fn issue(&self, customer_id: Uuid, now: DateTime<Utc>) -> String {
        let payload = format!("{customer_id}.{}", (now + TOKEN_LIFETIME).timestamp());
        let signature = hex::encode(self.mac(&payload).finalize().into_bytes());
        format!("{payload}.{signature}")
    }

    /// The customer `token` was issued to, if it is genuine and not expired
    /// at `now`.
    ///
    /// # Errors
    ///
    /// [`TokenError`].
    pub fn verify(&self, token: &str, now: DateTime<Utc>) -> Result<Uuid, TokenError> {
        let mut parts = token.split('.');
        let (Some(customer), Some(expiry), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenError::Malformed);
        };
        let signature = hex::decode(signature).map_err(|_| TokenError::Malformed)?;
        // Check the signature before trusting anything the token says.
        self.mac(&format!("{customer}.{expiry}"))
            .verify_slice(&signature)
            .map_err(|_| TokenError::BadSignature)?;
        let expiry: i64 = expiry.parse().map_err(|_| TokenError::Malformed)?;
        if expiry <= now.timestamp() {
            return Err(TokenError::Expired);
        }
        customer.parse().map_err(|_| TokenError::Malformed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_verifies_until_it_expires_and_not_when_tampered_with() {
        let tokens = Tokens::new(b"0123456789abcdef0123456789abcdef".to_vec());
        let customer = Uuid::new_v4();
        let now = Utc::now();
        let token = tokens.issue(customer, now);
        assert_eq!(tokens.verify(&token, now), Ok(customer));
        assert_eq!(
            tokens.verify(&token, now + TOKEN_LIFETIME),
            Err(TokenError::Expired)
        );
        let other = Uuid::new_v4();
        let forged = token.replacen(&customer.to_string(), &other.to_string(), 1);
        assert_eq!(tokens.verify(&forged, now), Err(TokenError::BadSignature));
        let stranger = Tokens::new(b"another secret, also 32 bytes long!".to_vec());
        assert_eq!(stranger.verify(&token, now), Err(TokenError::BadSignature));
        assert_eq!(tokens.verify("a.b", now), Err(TokenError::Malformed));
        assert_eq!(tokens.verify("a.b.zz", now), Err(TokenError::Malformed));
    }
}
