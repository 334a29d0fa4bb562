//! Signing keys: generation, parsing (once, when loaded), JWS compact signing, JWK publication.

use crate::clock::UnixTime;
use crate::model::{SigningAlg, SigningKeyRecord};
use crate::tokens::{b64url, random_id};
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{KeySize, PublicKeyComponents};
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RSA_PKCS1_SHA256, RsaKeyPair,
};
use serde_json::{Value, json};

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("key generation failed")]
    Generate,
    #[error("stored key {kid} could not be parsed")]
    Parse { kid: String },
    #[error("signing failed")]
    Sign,
    #[error("no active signing key for {0}")]
    NoActiveKey(&'static str),
}

enum Pair {
    Rsa(RsaKeyPair),
    Ec(EcdsaKeyPair),
    Ed(Ed25519KeyPair),
}

/// A parsed signing key, ready to sign.
pub struct SigningKey {
    pub kid: String,
    pub alg: SigningAlg,
    pub created_at: UnixTime,
    pub retired_at: Option<UnixTime>,
    pair: Pair,
    /// A secret derived from the private key (SHA-256 under a label of its own), from which the
    /// keys of stateless server values such as DPoP nonces are derived: every node has it.
    seed: [u8; 32],
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningKey {{ kid: {}, alg: {} }}", self.kid, self.alg.as_str())
    }
}

/// Generates a new key record for `alg` (RSA 2048, P-256 or Ed25519).
pub fn generate(alg: SigningAlg, now: UnixTime) -> Result<SigningKeyRecord, KeyError> {
    let private_der = match alg {
        SigningAlg::RS256 => RsaKeyPair::generate(KeySize::Rsa2048)
            .and_then(|k| k.as_der())
            .map(|d| d.as_ref().to_vec())
            .map_err(|_| KeyError::Generate)?,
        SigningAlg::ES256 => EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING)
            .and_then(|k| k.to_pkcs8v1())
            .map(|d| d.as_ref().to_vec())
            .map_err(|_| KeyError::Generate)?,
        SigningAlg::EdDSA => Ed25519KeyPair::generate()
            .and_then(|k| k.to_pkcs8v1())
            .map(|d| d.as_ref().to_vec())
            .map_err(|_| KeyError::Generate)?,
    };
    let kid = random_id().map_err(|_| KeyError::Generate)?[..16].to_string();
    Ok(SigningKeyRecord { kid, alg, private_der, created_at: now, retired_at: None })
}

impl SigningKey {
    pub fn parse(record: &SigningKeyRecord) -> Result<SigningKey, KeyError> {
        let err = || KeyError::Parse { kid: record.kid.clone() };
        let pair = match record.alg {
            SigningAlg::RS256 => Pair::Rsa(RsaKeyPair::from_pkcs8(&record.private_der).map_err(|_| err())?),
            SigningAlg::ES256 => Pair::Ec(
                EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &record.private_der).map_err(|_| err())?,
            ),
            SigningAlg::EdDSA => Pair::Ed(Ed25519KeyPair::from_pkcs8(&record.private_der).map_err(|_| err())?),
        };
        let mut ctx = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
        ctx.update(b"candor-key-seed-v1\0");
        ctx.update(&record.private_der);
        let mut seed = [0u8; 32];
        seed.copy_from_slice(ctx.finish().as_ref());
        Ok(SigningKey {
            kid: record.kid.clone(),
            alg: record.alg,
            created_at: record.created_at,
            retired_at: record.retired_at,
            pair,
            seed,
        })
    }

    /// Signs `claims` as a JWS in compact serialisation (RFC 7515 §7.1).
    pub fn sign_jwt(&self, claims: &Value) -> Result<String, KeyError> {
        self.sign_jwt_typed(claims, "JWT")
    }

    /// Signs `claims` with `typ` in the header (RFC 9068 §2.1: `at+jwt` for access tokens).
    pub fn sign_jwt_typed(&self, claims: &Value, typ: &str) -> Result<String, KeyError> {
        self.sign_with_header(&json!({ "alg": self.alg.as_str(), "typ": typ, "kid": self.kid }), claims)
    }

    /// Signs `claims` under exactly `header` (whose `alg` must be this key's).
    pub fn sign_with_header(&self, header: &Value, claims: &Value) -> Result<String, KeyError> {
        let signing_input =
            format!("{}.{}", b64url(header.to_string().as_bytes()), b64url(claims.to_string().as_bytes()));
        let sig = match &self.pair {
            Pair::Rsa(k) => {
                let mut sig = vec![0u8; k.public_modulus_len()];
                let rng = aws_lc_rs::rand::SystemRandom::new();
                k.sign(&RSA_PKCS1_SHA256, &rng, signing_input.as_bytes(), &mut sig).map_err(|_| KeyError::Sign)?;
                sig
            }
            Pair::Ec(k) => {
                let rng = aws_lc_rs::rand::SystemRandom::new();
                k.sign(&rng, signing_input.as_bytes()).map_err(|_| KeyError::Sign)?.as_ref().to_vec()
            }
            Pair::Ed(k) => k.sign(signing_input.as_bytes()).as_ref().to_vec(),
        };
        Ok(format!("{signing_input}.{}", b64url(&sig)))
    }

    /// The public key as a JWK (RFC 7517), with `kid`, `alg` and `use`.
    pub fn public_jwk(&self) -> Value {
        let mut jwk = match &self.pair {
            Pair::Rsa(k) => {
                let c: PublicKeyComponents<Vec<u8>> = k.public_key().into();
                json!({ "kty": "RSA", "n": b64url(strip_zeros(&c.n)), "e": b64url(strip_zeros(&c.e)) })
            }
            Pair::Ec(k) => {
                // Uncompressed point: 0x04 || X (32) || Y (32).
                let p = k.public_key().as_ref();
                let (x, y) = if p.len() == 65 { (&p[1..33], &p[33..65]) } else { (&p[0..0], &p[0..0]) };
                json!({ "kty": "EC", "crv": "P-256", "x": b64url(x), "y": b64url(y) })
            }
            Pair::Ed(k) => json!({ "kty": "OKP", "crv": "Ed25519", "x": b64url(k.public_key().as_ref()) }),
        };
        if let Value::Object(m) = &mut jwk {
            m.insert("kid".into(), Value::String(self.kid.clone()));
            m.insert("alg".into(), Value::String(self.alg.as_str().into()));
            m.insert("use".into(), Value::String("sig".into()));
        }
        jwk
    }

    /// OIDC Core §3.1.3.6 `at_hash`: left half of the hash of the access token, base64url.
    /// SHA-256 for all three algorithms (Ed25519's JOSE hash for at_hash is SHA-512 per
    /// OpenID's EdDSA note; see `half_hash`).
    pub fn at_hash(&self, access_token: &str) -> String {
        half_hash(self.alg, access_token)
    }
}

fn strip_zeros(b: &[u8]) -> &[u8] {
    let first = b.iter().position(|x| *x != 0).unwrap_or(b.len().saturating_sub(1));
    &b[first..]
}

/// The left-most half of the hash used by the JWS algorithm (OIDC Core §3.1.3.6). For EdDSA with
/// Ed25519 the hash is SHA-512 (OpenID Connect Core errata / EdDSA registration).
pub fn half_hash(alg: SigningAlg, value: &str) -> String {
    use aws_lc_rs::digest;
    let d = match alg {
        SigningAlg::RS256 | SigningAlg::ES256 => digest::digest(&digest::SHA256, value.as_bytes()),
        SigningAlg::EdDSA => digest::digest(&digest::SHA512, value.as_bytes()),
    };
    let bytes = d.as_ref();
    b64url(&bytes[..bytes.len() / 2])
}

/// The keys in force: the newest unretired key per algorithm signs; retired keys stay
/// published until `publish_until` so tokens signed with them still verify.
#[derive(Debug)]
pub struct KeyRing {
    keys: Vec<SigningKey>,
    /// The key of the server's DPoP nonces, derived once per ring (see `nonce_key`).
    nonce: crate::dpop::NonceKey,
}

impl KeyRing {
    /// Builds the ring from stored records (newest first). A record that does not parse is an error:
    /// a corrupted key must stop the server, not silently disappear from JWKS.
    pub fn from_records(records: &[SigningKeyRecord]) -> Result<KeyRing, KeyError> {
        let keys = records.iter().map(SigningKey::parse).collect::<Result<Vec<_>, _>>()?;
        // Derived from the active RS256 key, which every node shares (a rotation changes it;
        // clients then fetch a new nonce once).
        let seed = keys
            .iter()
            .filter(|k| k.alg == SigningAlg::RS256 && k.retired_at.is_none())
            .max_by_key(|k| k.created_at)
            .map(|k| k.seed)
            .unwrap_or_default();
        Ok(KeyRing { keys, nonce: crate::dpop::NonceKey::derive(&seed) })
    }

    /// Whether `records` are exactly the keys of this ring (same ids, same retirement), so the
    /// ring need not be parsed again.
    pub fn same_keys(&self, records: &[SigningKeyRecord]) -> bool {
        self.keys.len() == records.len()
            && self.keys.iter().zip(records).all(|(k, r)| k.kid == r.kid && k.retired_at == r.retired_at)
    }

    /// The key that signs for `alg` now.
    pub fn active(&self, alg: SigningAlg) -> Result<&SigningKey, KeyError> {
        self.keys
            .iter()
            .filter(|k| k.alg == alg && k.retired_at.is_none())
            .max_by_key(|k| k.created_at)
            .ok_or(KeyError::NoActiveKey(alg.as_str()))
    }

    /// The JWK Set (RFC 7517 §5): active keys, and retired keys whose tokens may still be alive
    /// (retired after `now - keep_retired_for`).
    pub fn jwks(&self, now: UnixTime, keep_retired_for: i64) -> Value {
        let keys: Vec<Value> = self
            .keys
            .iter()
            .filter(|k| k.retired_at.is_none_or(|r| r + keep_retired_for > now))
            .map(SigningKey::public_jwk)
            .collect();
        json!({ "keys": keys })
    }

    /// The key of the server's DPoP nonces: derived from the active RS256 key, which every node
    /// shares (a rotation changes it; clients then fetch a new nonce once).
    pub fn nonce_key(&self) -> &crate::dpop::NonceKey {
        &self.nonce
    }

    pub fn algorithms(&self) -> Vec<SigningAlg> {
        SigningAlg::ALL.into_iter().filter(|a| self.active(*a).is_ok()).collect()
    }

    pub fn keys(&self) -> &[SigningKey] {
        &self.keys
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokens::b64url_decode;
    use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED, ED25519, RSA_PKCS1_2048_8192_SHA256, UnparsedPublicKey};

    fn verify(token: &str, jwk: &Value, alg: SigningAlg) -> bool {
        let (input, sig) = token.rsplit_once('.').unwrap();
        let sig = b64url_decode(sig).unwrap();
        let field = |n: &str| b64url_decode(jwk[n].as_str().unwrap()).unwrap();
        match alg {
            SigningAlg::RS256 => aws_lc_rs::signature::RsaPublicKeyComponents { n: field("n"), e: field("e") }
                .verify(&RSA_PKCS1_2048_8192_SHA256, input.as_bytes(), &sig)
                .is_ok(),
            SigningAlg::ES256 => {
                let mut point = vec![4u8];
                point.extend(field("x"));
                point.extend(field("y"));
                UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, point).verify(input.as_bytes(), &sig).is_ok()
            }
            SigningAlg::EdDSA => UnparsedPublicKey::new(&ED25519, field("x")).verify(input.as_bytes(), &sig).is_ok(),
        }
    }

    #[test]
    fn a_ring_knows_whether_stored_records_are_its_keys() {
        let records = vec![generate(SigningAlg::ES256, 1000).unwrap(), generate(SigningAlg::EdDSA, 1000).unwrap()];
        let ring = KeyRing::from_records(&records).unwrap();
        assert!(ring.same_keys(&records));
        let mut retired = records.clone();
        retired[0].retired_at = Some(2000);
        assert!(!ring.same_keys(&retired), "a retirement must be picked up");
        let mut added = records.clone();
        added.insert(0, generate(SigningAlg::ES256, 3000).unwrap());
        assert!(!ring.same_keys(&added), "a new key must be picked up");
        assert!(!ring.same_keys(&records[..1]), "a removed key must be picked up");
    }

    #[test]
    fn every_algorithm_signs_tokens_its_published_jwk_verifies() {
        for alg in SigningAlg::ALL {
            let record = generate(alg, 1000).unwrap();
            let key = SigningKey::parse(&record).unwrap();
            let token = key.sign_jwt(&json!({"sub": "u1"})).unwrap();
            let jwk = key.public_jwk();
            assert_eq!(jwk["kid"], record.kid);
            assert!(verify(&token, &jwk, alg), "{alg:?}");
            let header: Value =
                serde_json::from_slice(&b64url_decode(token.split('.').next().unwrap()).unwrap()).unwrap();
            assert_eq!(header["alg"], alg.as_str());
        }
    }

    #[test]
    fn retired_keys_stay_published_for_the_window_then_leave() {
        let mut old = generate(SigningAlg::ES256, 100).unwrap();
        old.retired_at = Some(200);
        let new = generate(SigningAlg::ES256, 200).unwrap();
        let ring = KeyRing::from_records(&[new.clone(), old.clone()]).unwrap();
        assert_eq!(ring.active(SigningAlg::ES256).unwrap().kid, new.kid);
        assert_eq!(ring.jwks(250, 3600)["keys"].as_array().unwrap().len(), 2);
        assert_eq!(ring.jwks(200 + 3600, 3600)["keys"].as_array().unwrap().len(), 1);
    }

    #[test]
    fn at_hash_matches_the_oidc_example() {
        // OIDC Core Appendix A.3 example: at_hash of "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y".
        assert_eq!(
            half_hash(SigningAlg::RS256, "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y"),
            "77QmUPtjPfzWtF2AnpK9RQ"
        );
    }
}
