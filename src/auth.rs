//! Password hashing: argon2id with RustCrypto's defaults (m = 19 MiB, t = 2,
//! p = 1, the OWASP minimum that RELIABILITY.md asks for).

use argon2::Argon2;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};

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

#[cfg(test)]
mod tests {
    use super::*;

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
