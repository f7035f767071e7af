//! Credentials. Passwords: argon2id with RustCrypto's defaults (m = 19 MiB,
//! t = 2, p = 1, the OWASP minimum that RELIABILITY.md asks for). API
//! tokens: `tok_….` followed by 256 random bits in unpadded base64url (so
//! the whole secret, 74 characters, fits a table cell); the id part finds
//! the record, the SHA-256 of the whole secret is what is stored, and the
//! check compares hashes in constant time. A secret with that much entropy
//! needs no slow hash.

use argon2::Argon2;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use base64ct::{Base64UrlUnpadded, Encoding};

use crate::error::{Error, Result};

pub const MIN_PASSWORD_CHARS: usize = 8;
pub const MAX_PASSWORD_BYTES: usize = 1024;

pub fn hash_password(password: &str) -> Result<String> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(Error::invalid(format!(
            "a password has at least {MIN_PASSWORD_CHARS} characters"
        )));
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(Error::too_large(format!(
            "a password has at most {MAX_PASSWORD_BYTES} bytes"
        )));
    }
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| Error::invalid(format!("cannot hash password: {e}")))
}

/// A real hash of a random password: checked against when the person is
/// unknown, so an unknown email costs the same time as a wrong password.
pub fn dummy_hash() -> &'static str {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| {
        let salt = SaltString::generate(&mut OsRng);
        let secret: [u8; 16] = rand::random();
        Argon2::default()
            .hash_password(&secret, &salt)
            .map(|h| h.to_string())
            .unwrap_or_default()
    })
}

/// Constant-time comparison inside argon2; false for any malformed hash.
pub fn verify_password(password: &str, hash: &str) -> bool {
    match PasswordHash::new(hash) {
        Ok(parsed) => Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// Random bytes in an API token's secret.
const TOKEN_SECRET_BYTES: usize = 32;

/// A new token secret for the token `id` (printed `tok_…`), and the hash
/// to store.
pub fn new_token_secret(id: &str) -> (String, String) {
    let random: [u8; TOKEN_SECRET_BYTES] = rand::random();
    let secret = format!("{id}.{}", Base64UrlUnpadded::encode_string(&random));
    let hash = token_hash(&secret);
    (secret, hash)
}

/// The token id a secret names (its text before the dot), if it has the
/// shape of a secret at all. Nothing about the secret is checked here.
pub fn token_id_of(secret: &str) -> Option<&str> {
    let (id, random) = secret.split_once('.')?;
    let decoded = Base64UrlUnpadded::decode_vec(random).ok()?;
    (decoded.len() == TOKEN_SECRET_BYTES).then_some(id)
}

/// Hex SHA-256 of a token secret.
pub fn token_hash(secret: &str) -> String {
    use sha2::Digest;
    hex(&sha2::Sha256::digest(secret.as_bytes()))
}

/// Whether `secret` hashes to `stored`, compared in constant time.
pub fn token_matches(secret: &str, stored: &str) -> bool {
    use subtle::ConstantTimeEq;
    let computed = token_hash(secret);
    computed.len() == stored.len() && bool::from(computed.as_bytes().ct_eq(stored.as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_secrets_are_random_hashed_and_checked_whole() {
        let (secret, hash) = new_token_secret("tok_X");
        let (other, _) = new_token_secret("tok_X");
        assert_ne!(secret, other);
        assert_eq!(token_id_of(&secret), Some("tok_X"));
        assert!(token_matches(&secret, &hash));
        assert!(!hash.contains(&secret[6..]), "the hash is not the secret");
        // One changed digit, a truncated or a longer secret: rejected.
        let mut tampered = secret.clone().into_bytes();
        let last = tampered.len() - 1;
        tampered[last] = if tampered[last] == b'0' { b'1' } else { b'0' };
        let tampered = String::from_utf8(tampered).unwrap();
        assert!(!token_matches(&tampered, &hash));
        assert!(token_id_of(&secret[..secret.len() - 1]).is_none());
        assert!(token_id_of(&format!("{secret}0")).is_none());
        assert!(token_id_of("tok_X").is_none());
        assert!(!token_matches(&secret, "not a hash"));
    }

    #[test]
    fn hashes_verify_and_use_argon2id_with_the_minimum_cost() {
        let hash = hash_password("s3cret-pass").unwrap();
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        let parsed = PasswordHash::new(&hash).unwrap();
        let m: u32 = parsed.params.get_decimal("m").unwrap();
        let t: u32 = parsed.params.get_decimal("t").unwrap();
        assert!(m >= 19 * 1024 && t >= 2, "m={m} t={t}");
        assert!(verify_password("s3cret-pass", &hash));
        assert!(!verify_password("s3cret-pasS", &hash));
        assert!(!verify_password("s3cret-pass", "not a hash"));
        assert!(hash_password("short").is_err());
    }
}
