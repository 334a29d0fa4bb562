//! Human passwords: argon2id hashes (PHC strings).

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use subtle::ConstantTimeEq;

#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("the password could not be hashed: {0}")]
    Hash(String),
}

pub fn hash_password(password: &str) -> Result<String, PasswordError> {
    let salt_bytes = crate::tokens::random_bytes::<16>().map_err(|e| PasswordError::Hash(e.to_string()))?;
    let salt = SaltString::encode_b64(&salt_bytes).map_err(|e| PasswordError::Hash(e.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| PasswordError::Hash(e.to_string()))
}

/// Verifies in constant time (argon2's own comparison). A malformed stored hash never verifies.
pub fn verify_password(password: &str, stored: &str) -> bool {
    PasswordHash::new(stored)
        .map(|h| Argon2::default().verify_password(password.as_bytes(), &h).is_ok())
        .unwrap_or(false)
}

/// Verifies passwords with one argon2 memory area that is kept and reused, instead of 19 MiB
/// allocated and freed per verification (which the allocator tends to keep per thread anyway).
/// For a server's few long-lived verifier threads.
#[derive(Default)]
pub struct Verifier {
    blocks: Vec<Block>,
}

impl Verifier {
    /// As `verify_password`: the stored PHC string's own parameters, constant-time comparison,
    /// and a malformed stored hash never verifies.
    pub fn verify(&mut self, password: &str, stored: &str) -> bool {
        self.check(password, stored).unwrap_or(false)
    }

    fn check(&mut self, password: &str, stored: &str) -> Option<bool> {
        let hash = PasswordHash::new(stored).ok()?;
        let algorithm = Algorithm::try_from(hash.algorithm).ok()?;
        let version = match hash.version {
            Some(v) => Version::try_from(v).ok()?,
            None => Version::default(),
        };
        let params = Params::try_from(&hash).ok()?;
        let expected = hash.hash?;
        let mut salt = [0u8; 64];
        let salt = hash.salt?.decode_b64(&mut salt).ok()?;
        let blocks = params.block_count();
        if self.blocks.len() != blocks {
            // Sized for this hash (all of Candor's share the parameters, so this happens once).
            self.blocks = vec![Block::default(); blocks];
        }
        let mut out = vec![0u8; expected.len()];
        Argon2::new(algorithm, version, params)
            .hash_password_into_with_memory(password.as_bytes(), salt, &mut out, &mut self.blocks)
            .ok()?;
        Some(bool::from(out.as_slice().ct_eq(expected.as_bytes())))
    }
}

/// A real argon2id hash (of a random password) to verify against when the user does not exist,
/// so the time a login takes does not reveal whether the username exists.
pub fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| {
        let random = generate_password().unwrap_or_else(|_| "candor-dummy-password".into());
        hash_password(&random).unwrap_or_default()
    })
}

/// A readable generated password for seeded users: 20 characters, ~119 bits.
pub fn generate_password() -> Result<String, crate::tokens::RandomUnavailable> {
    const ALPHABET: &[u8] = b"abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let bytes = crate::tokens::random_bytes::<20>()?;
    Ok(bytes.iter().map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_only_the_right_password() {
        let h = hash_password("correct horse").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("correct horse", &h));
        assert!(!verify_password("wrong", &h));
        assert!(!verify_password("x", "not a hash"));
        assert!(!verify_password("x", dummy_hash()));
    }

    #[test]
    fn the_reusing_verifier_agrees_with_the_reference_verification() {
        let mut v = Verifier::default();
        let h = hash_password("correct horse").unwrap();
        for _ in 0..2 {
            assert!(v.verify("correct horse", &h));
            assert!(!v.verify("correct hors", &h));
        }
        // Other parameters (and argon2i) are read from the stored string.
        let salt = SaltString::encode_b64(b"0123456789abcdef").unwrap();
        let other = Argon2::new(Algorithm::Argon2i, Version::V0x13, Params::new(64, 1, 1, Some(16)).unwrap())
            .hash_password(b"pw", &salt)
            .unwrap()
            .to_string();
        assert!(verify_password("pw", &other));
        assert!(v.verify("pw", &other));
        assert!(!v.verify("pw2", &other));
        for malformed in
            ["", "not a hash", "$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ", "$scrypt$ln=1,r=8,p=1$c2FsdA$aGFzaA"]
        {
            assert!(!v.verify("pw", malformed), "{malformed}");
        }
    }
}
