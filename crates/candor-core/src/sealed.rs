//! Client secrets Candor has to read back. Every other secret is stored only as a hash; a
//! `client_secret_jwt` client's secret is the HMAC key of its assertions (RFC 7523, OIDC Core §9),
//! so Candor must have the secret itself to verify one. It is sealed (AES-256-GCM, RFC 5116)
//! under a key the operator holds outside the store (`[client_assertion] secret_key`), bound to
//! the client's id: the store alone, leaked or copied, reveals no secret, and a sealed value
//! moved to another client does not open.

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// Bytes of a sealing key.
pub const KEY_LEN: usize = 32;
/// The version prefix of a sealed value.
const PREFIX: &str = "v1.";

/// The operator's key for sealing client secrets.
pub struct SealingKey(LessSafeKey);

impl std::fmt::Debug for SealingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SealingKey(…)")
    }
}

impl SealingKey {
    /// A key from its base64url (or standard base64) text: 32 bytes.
    pub fn parse(text: &str) -> Result<SealingKey, String> {
        let text = text.trim();
        let bytes = URL_SAFE_NO_PAD
            .decode(text.trim_end_matches('='))
            .or_else(|_| base64::engine::general_purpose::STANDARD.decode(text))
            .map_err(|_| "not base64 (make one with: openssl rand -base64 32)".to_string())?;
        if bytes.len() != KEY_LEN {
            return Err(format!("{} bytes, must be {KEY_LEN} (openssl rand -base64 32)", bytes.len()));
        }
        let key = UnboundKey::new(&AES_256_GCM, &bytes).map_err(|_| "not an AES-256 key".to_string())?;
        Ok(SealingKey(LessSafeKey::new(key)))
    }

    /// Seals `secret` for `client_id`.
    pub fn seal(&self, client_id: &str, secret: &str) -> Result<String, String> {
        let nonce_bytes = crate::tokens::random_bytes::<NONCE_LEN>().map_err(|e| e.to_string())?;
        let mut sealed = secret.as_bytes().to_vec();
        self.0
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce_bytes), Aad::from(client_id), &mut sealed)
            .map_err(|_| "sealing failed".to_string())?;
        let mut out = nonce_bytes.to_vec();
        out.extend(sealed);
        Ok(format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(out)))
    }

    /// Opens what `seal` made for `client_id`; fails for another key, another client or a change.
    pub fn open(&self, client_id: &str, sealed: &str) -> Result<String, String> {
        let body = sealed.strip_prefix(PREFIX).ok_or("not a sealed value of this version")?;
        let mut bytes = URL_SAFE_NO_PAD.decode(body).map_err(|_| "not base64url")?;
        if bytes.len() < NONCE_LEN {
            return Err("too short".into());
        }
        let mut rest = bytes.split_off(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(&bytes).map_err(|_| "bad nonce")?;
        let plain = self
            .0
            .open_in_place(nonce, Aad::from(client_id), &mut rest)
            .map_err(|_| "it does not open with this key (another secret_key?) for this client")?;
        String::from_utf8(plain.to_vec()).map_err(|_| "not UTF-8".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> SealingKey {
        SealingKey::parse(&URL_SAFE_NO_PAD.encode([byte; KEY_LEN])).unwrap()
    }

    #[test]
    fn a_sealed_secret_opens_only_with_its_key_for_its_client() {
        let k = key(7);
        let sealed = k.seal("app", "cds_secret").unwrap();
        assert!(!sealed.contains("cds_secret"));
        assert_ne!(sealed, k.seal("app", "cds_secret").unwrap(), "a fresh nonce each time");
        assert_eq!(k.open("app", &sealed).unwrap(), "cds_secret");
        assert!(k.open("other-app", &sealed).is_err(), "bound to the client id");
        assert!(key(8).open("app", &sealed).is_err(), "another key");
        let mut tampered = sealed.clone();
        tampered.push('A');
        assert!(k.open("app", &tampered).is_err());
        assert!(k.open("app", "v1.").is_err() && k.open("app", "nope").is_err());
    }

    #[test]
    fn keys_must_be_32_bytes_of_base64() {
        assert!(SealingKey::parse("c2hvcnQ").unwrap_err().contains("32"));
        assert!(SealingKey::parse("not base64!").is_err());
        let standard = base64::engine::general_purpose::STANDARD.encode([1u8; 32]);
        assert!(SealingKey::parse(&standard).is_ok());
    }
}
