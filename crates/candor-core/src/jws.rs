//! Compact JWS (RFC 7515) as a stranger may send one: parsing without trusting it, and
//! verification against a JWK Set (RFC 7517) with the algorithms Candor signs with itself
//! (RS256, ES256, EdDSA). Used for client assertions (RFC 7523) and by the client tools.
//!
//! Every failure is a `JwsError` with a stable code and an explanation that says what to check.

use aws_lc_rs::signature::{self, UnparsedPublicKey};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;

/// The algorithms a JWS may be verified with against a JWK Set of public keys.
pub const ALGORITHMS: [&str; 3] = ["RS256", "ES256", "EdDSA"];
/// The HMAC algorithms (RFC 7518 §3.2) of `client_secret_jwt`, verified only by `verify_hmac`
/// with a client's secret, never against a JWK Set: a public key is never taken for an HMAC key.
pub const HMAC_ALGORITHMS: [&str; 3] = ["HS256", "HS384", "HS512"];

/// Longest token parsed, in bytes: a JWS Candor verifies is a few kilobytes at most.
const MAX_LEN: usize = 16 * 1024;

/// Why a JWS could not be read or verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwsError {
    /// Not three base64url parts of JSON (`problem` says which part and how).
    Malformed { problem: String },
    /// `alg` is `none`: not signed at all.
    Unsigned,
    /// `alg` is an HMAC algorithm (a shared-secret signature) or unknown.
    AlgUnsupported { alg: String },
    /// A shared-secret signature was expected (`client_secret_jwt`) and `alg` is another.
    NotHmac { alg: String },
    /// No key in the JWK Set fits the `kid` and `alg` of the header.
    KeyNotFound { kid: Option<String>, alg: String },
    /// The signature does not verify with any fitting key.
    SignatureMismatch { kid: Option<String>, alg: String },
}

impl JwsError {
    pub fn code(&self) -> &'static str {
        match self {
            JwsError::Malformed { .. } => "malformed",
            JwsError::Unsigned => "unsigned",
            JwsError::AlgUnsupported { .. } => "alg_unsupported",
            JwsError::NotHmac { .. } => "alg_not_hmac",
            JwsError::KeyNotFound { .. } => "key_not_found",
            JwsError::SignatureMismatch { .. } => "signature_mismatch",
        }
    }

    pub fn explain(&self) -> String {
        match self {
            JwsError::Malformed { problem } => format!("not a compact JWS: {problem}"),
            JwsError::Unsigned => "alg is none: the token is not signed".into(),
            JwsError::AlgUnsupported { alg } if alg.starts_with("HS") => format!(
                "alg {alg} is an HMAC signature with a shared secret; sign with a private key ({})",
                ALGORITHMS.join(", ")
            ),
            JwsError::AlgUnsupported { alg } => format!("alg {alg} is not one of {}", ALGORITHMS.join(", ")),
            JwsError::NotHmac { alg } => format!(
                "alg {alg} is not an HMAC: a client_secret_jwt client signs with its client secret ({})",
                HMAC_ALGORITHMS.join(", ")
            ),
            JwsError::KeyNotFound { kid: Some(kid), alg } => {
                format!("no {alg} key with kid {kid:?} is registered (a rotated key not registered yet?)")
            }
            JwsError::KeyNotFound { kid: None, alg } => format!("no {alg} key is registered"),
            JwsError::SignatureMismatch { kid, alg } => match kid {
                Some(kid) => format!("the {alg} signature does not verify with the registered key {kid:?}"),
                None => format!("the {alg} signature verifies with none of the registered {alg} keys"),
            },
        }
    }
}

impl std::fmt::Display for JwsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.explain())
    }
}

/// A JWS read but not yet verified: nothing in it may be trusted before `verify`.
#[derive(Debug, Clone, PartialEq)]
pub struct Parsed {
    pub header: Value,
    pub claims: Value,
    signing_input: String,
    signature: Vec<u8>,
}

fn malformed(problem: impl Into<String>) -> JwsError {
    JwsError::Malformed { problem: problem.into() }
}

fn json_part(name: &str, part: &str) -> Result<Value, JwsError> {
    let bytes = URL_SAFE_NO_PAD.decode(part).map_err(|_| malformed(format!("the {name} is not base64url")))?;
    let value: Value = serde_json::from_slice(&bytes).map_err(|_| malformed(format!("the {name} is not JSON")))?;
    if !value.is_object() {
        return Err(malformed(format!("the {name} is not a JSON object")));
    }
    Ok(value)
}

impl Parsed {
    pub fn alg(&self) -> Option<&str> {
        self.header["alg"].as_str()
    }

    pub fn kid(&self) -> Option<&str> {
        self.header["kid"].as_str()
    }
}

/// Reads a compact JWS: three base64url parts, a JSON header with `alg`, JSON claims.
pub fn parse(token: &str) -> Result<Parsed, JwsError> {
    if token.len() > MAX_LEN {
        return Err(malformed(format!("{} bytes, more than {MAX_LEN}", token.len())));
    }
    let parts: Vec<&str> = token.split('.').collect();
    if parts.len() != 3 {
        return Err(malformed(format!(
            "a JWS has 3 parts separated by '.', this has {}{}",
            parts.len(),
            if parts.len() == 5 { " (an encrypted JWE?)" } else { "" }
        )));
    }
    let header = json_part("header", parts[0])?;
    let claims = json_part("payload", parts[1])?;
    let signature = URL_SAFE_NO_PAD.decode(parts[2]).map_err(|_| malformed("the signature is not base64url"))?;
    if header["alg"].as_str().is_none() {
        return Err(malformed("the header has no alg"));
    }
    let signing_input = format!("{}.{}", parts[0], parts[1]);
    Ok(Parsed { header, claims, signing_input, signature })
}

/// The key type an algorithm's keys have.
fn kty_of(alg: &str) -> Option<&'static str> {
    match alg {
        "RS256" => Some("RSA"),
        "ES256" => Some("EC"),
        "EdDSA" => Some("OKP"),
        _ => None,
    }
}

/// Verifies `jws` with a key of `jwks` that fits its header (the `kid`, if it names one, and the
/// key type of its `alg`); returns the algorithm.
pub fn verify<'p>(jws: &'p Parsed, jwks: &Value) -> Result<&'p str, JwsError> {
    let alg = jws.alg().unwrap_or_default();
    if alg == "none" {
        return Err(JwsError::Unsigned);
    }
    let kty = kty_of(alg).ok_or_else(|| JwsError::AlgUnsupported { alg: alg.to_string() })?;
    let kid = jws.kid().map(str::to_string);
    let keys: Vec<&Value> = jwks["keys"]
        .as_array()
        .map(|keys| {
            keys.iter()
                .filter(|k| k["kty"].as_str() == Some(kty))
                .filter(|k| k["use"].as_str().is_none_or(|u| u == "sig"))
                .filter(|k| k["alg"].as_str().is_none_or(|a| a == alg))
                .filter(|k| kid.as_deref().is_none_or(|kid| k["kid"].as_str() == Some(kid)))
                .collect()
        })
        .unwrap_or_default();
    if keys.is_empty() {
        return Err(JwsError::KeyNotFound { kid, alg: alg.to_string() });
    }
    if keys.iter().any(|key| verifies(alg, key, jws.signing_input.as_bytes(), &jws.signature)) {
        Ok(alg)
    } else {
        Err(JwsError::SignatureMismatch { kid, alg: alg.to_string() })
    }
}

/// Verifies `jws` as an HMAC (HS256, HS384, HS512) keyed with `secret`, in constant time;
/// returns the algorithm.
pub fn verify_hmac<'p>(jws: &'p Parsed, secret: &[u8]) -> Result<&'p str, JwsError> {
    use aws_lc_rs::hmac;
    let alg = jws.alg().unwrap_or_default();
    let algorithm = match alg {
        "none" => return Err(JwsError::Unsigned),
        "HS256" => hmac::HMAC_SHA256,
        "HS384" => hmac::HMAC_SHA384,
        "HS512" => hmac::HMAC_SHA512,
        other => return Err(JwsError::NotHmac { alg: other.to_string() }),
    };
    let key = hmac::Key::new(algorithm, secret);
    hmac::verify(&key, jws.signing_input.as_bytes(), &jws.signature)
        .map(|()| alg)
        .map_err(|_| JwsError::SignatureMismatch { kid: jws.kid().map(str::to_string), alg: alg.to_string() })
}

fn verifies(alg: &str, key: &Value, input: &[u8], sig: &[u8]) -> bool {
    let field = |n: &str| key[n].as_str().and_then(|v| URL_SAFE_NO_PAD.decode(v).ok());
    match alg {
        "RS256" => match (field("n"), field("e")) {
            (Some(n), Some(e)) => signature::RsaPublicKeyComponents { n, e }
                .verify(&signature::RSA_PKCS1_2048_8192_SHA256, input, sig)
                .is_ok(),
            _ => false,
        },
        "ES256" => match (key["crv"].as_str(), field("x"), field("y")) {
            (Some("P-256"), Some(x), Some(y)) => {
                let mut point = Vec::with_capacity(65);
                point.push(4u8);
                point.extend(x);
                point.extend(y);
                UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, point).verify(input, sig).is_ok()
            }
            _ => false,
        },
        "EdDSA" => match (key["crv"].as_str(), field("x")) {
            (Some("Ed25519"), Some(x)) => UnparsedPublicKey::new(&signature::ED25519, x).verify(input, sig).is_ok(),
            _ => false,
        },
        _ => false,
    }
}

/// Checks that `jwks` is a JWK Set Candor can verify with: a `keys` array of public signing keys
/// of the supported types, each complete, none with private parts.
pub fn check_public_jwks(jwks: &Value) -> Result<(), String> {
    let keys = jwks["keys"].as_array().ok_or("a JWK Set is an object with a \"keys\" array")?;
    if keys.is_empty() {
        return Err("the JWK Set has no keys".into());
    }
    for (i, k) in keys.iter().enumerate() {
        let kty = k["kty"].as_str().ok_or_else(|| format!("key {i} has no kty"))?;
        let needed: &[&str] = match kty {
            "RSA" => &["n", "e"],
            "EC" => &["crv", "x", "y"],
            "OKP" => &["crv", "x"],
            other => return Err(format!("key {i}: kty {other} is not RSA, EC or OKP")),
        };
        for n in needed {
            if k[*n].as_str().is_none() {
                return Err(format!("key {i} ({kty}) has no {n}"));
            }
        }
        if ["d", "p", "q", "dp", "dq", "qi", "k"].iter().any(|n| k.get(*n).is_some()) {
            return Err(format!("key {i} holds private key material: register the public key only"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{SigningKey, generate};
    use crate::model::SigningAlg;
    use serde_json::json;

    fn key(alg: SigningAlg) -> SigningKey {
        SigningKey::parse(&generate(alg, 0).unwrap()).unwrap()
    }

    #[test]
    fn every_algorithm_verifies_with_its_key_and_fails_with_another() {
        for alg in SigningAlg::ALL {
            let (k, other) = (key(alg), key(alg));
            let token = k.sign_jwt(&json!({"sub": "x"})).unwrap();
            let jws = parse(&token).unwrap();
            assert_eq!(verify(&jws, &json!({"keys": [k.public_jwk()]})), Ok(alg.as_str()));
            // Another key with the same kid would be a mismatch; with its own kid, not found.
            let mut impostor = other.public_jwk();
            impostor["kid"] = k.public_jwk()["kid"].clone();
            assert_eq!(verify(&jws, &json!({"keys": [impostor]})).unwrap_err().code(), "signature_mismatch");
            assert_eq!(verify(&jws, &json!({"keys": [other.public_jwk()]})).unwrap_err().code(), "key_not_found");
            assert!(check_public_jwks(&json!({"keys": [k.public_jwk()]})).is_ok());
        }
    }

    #[test]
    fn unsigned_hmac_and_damaged_tokens_are_named() {
        let part = |v: Value| URL_SAFE_NO_PAD.encode(v.to_string());
        let none = format!("{}.{}.", part(json!({"alg": "none"})), part(json!({})));
        assert_eq!(verify(&parse(&none).unwrap(), &json!({"keys": []})), Err(JwsError::Unsigned));
        let hs = format!("{}.{}.c2ln", part(json!({"alg": "HS256"})), part(json!({})));
        let e = verify(&parse(&hs).unwrap(), &json!({"keys": []})).unwrap_err();
        assert!(e.explain().contains("HMAC"), "{e}");
        assert!(parse("a.b").unwrap_err().explain().contains("3 parts"));
        assert!(parse("a.b.c.d.e").unwrap_err().explain().contains("JWE"));
        assert!(parse(&format!("{}.e30.", part(json!({"typ": "JWT"})))).unwrap_err().explain().contains("no alg"));
        assert!(parse("!!.e30.").unwrap_err().explain().contains("header is not base64url"));
    }

    #[test]
    fn a_registered_jwk_set_must_be_public_signing_keys() {
        assert!(check_public_jwks(&json!([])).is_err());
        assert!(check_public_jwks(&json!({"keys": []})).is_err());
        assert!(check_public_jwks(&json!({"keys": [{"kty": "oct", "k": "c2VjcmV0"}]})).unwrap_err().contains("oct"));
        let private = json!({"keys": [{"kty": "EC", "crv": "P-256", "x": "a", "y": "b", "d": "c"}]});
        assert!(check_public_jwks(&private).unwrap_err().contains("private"));
    }

    #[test]
    fn an_hmac_verifies_only_with_its_secret_and_never_against_public_keys() {
        use aws_lc_rs::hmac;
        let sign = |alg: &str, algorithm: hmac::Algorithm, secret: &[u8]| {
            let input = format!(
                "{}.{}",
                URL_SAFE_NO_PAD.encode(format!(r#"{{"alg":"{alg}"}}"#)),
                URL_SAFE_NO_PAD.encode(r#"{"sub":"app"}"#)
            );
            let tag = hmac::sign(&hmac::Key::new(algorithm, secret), input.as_bytes());
            format!("{input}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()))
        };
        for (alg, algorithm) in
            [("HS256", hmac::HMAC_SHA256), ("HS384", hmac::HMAC_SHA384), ("HS512", hmac::HMAC_SHA512)]
        {
            let token = parse(&sign(alg, algorithm, b"cds_secret")).unwrap();
            assert_eq!(verify_hmac(&token, b"cds_secret").unwrap(), alg);
            assert_eq!(verify_hmac(&token, b"cds_other").unwrap_err().code(), "signature_mismatch");
            // The same token is no signature against a JWK Set, whatever keys it holds.
            let jwks = serde_json::json!({"keys": [{"kty": "oct", "k": URL_SAFE_NO_PAD.encode("cds_secret")}]});
            assert_eq!(verify(&token, &jwks).unwrap_err().code(), "alg_unsupported");
        }
        let signed = key(SigningAlg::ES256).sign_jwt(&serde_json::json!({"sub": "app"})).unwrap();
        assert_eq!(verify_hmac(&parse(&signed).unwrap(), b"cds_secret").unwrap_err().code(), "alg_not_hmac");
    }
}
