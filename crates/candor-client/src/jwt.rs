//! Verifying an ID token as a relying party would (OIDC Core §3.1.3.7): signature against the
//! provider's JWKS, then iss, aud, exp, iat, nonce and at_hash.

use aws_lc_rs::digest;
use aws_lc_rs::signature::{self, UnparsedPublicKey};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;

/// What an ID token must match.
pub struct Expect<'a> {
    pub issuer: &'a str,
    pub client_id: &'a str,
    pub nonce: Option<&'a str>,
    pub access_token: Option<&'a str>,
    pub now: i64,
    /// Allowed clock difference in seconds.
    pub leeway: i64,
}

fn decode_part(s: &str) -> Result<Value, String> {
    let bytes = URL_SAFE_NO_PAD.decode(s).map_err(|_| "a part is not base64url".to_string())?;
    serde_json::from_slice(&bytes).map_err(|_| "a part is not JSON".to_string())
}

/// Header and claims, unverified.
pub fn decode(token: &str) -> Result<(Value, Value), String> {
    let parts: Vec<&str> = token.split('.').collect();
    if parts.len() != 3 {
        return Err(format!("a JWS has 3 parts, this has {}", parts.len()));
    }
    Ok((decode_part(parts[0])?, decode_part(parts[1])?))
}

/// Verifies the signature with the JWKS key named by `kid`; returns the algorithm.
pub fn verify_signature(token: &str, jwks: &Value) -> Result<String, String> {
    let (header, _) = decode(token)?;
    let alg = header["alg"].as_str().ok_or("the header has no alg")?.to_string();
    let kid = header["kid"].as_str();
    let keys = jwks["keys"].as_array().ok_or("the JWKS has no keys array")?;
    let key = keys
        .iter()
        .find(|k| kid.is_none_or(|kid| k["kid"].as_str() == Some(kid)))
        .ok_or_else(|| format!("no key with kid {kid:?} in the JWKS (rotated? cached JWKS?)"))?;
    let (input, sig) = token.rsplit_once('.').ok_or("no signature")?;
    let sig = URL_SAFE_NO_PAD.decode(sig).map_err(|_| "the signature is not base64url")?;
    let field = |n: &str| -> Result<Vec<u8>, String> {
        URL_SAFE_NO_PAD
            .decode(key[n].as_str().ok_or_else(|| format!("the key has no {n}"))?)
            .map_err(|_| format!("the key's {n} is not base64url"))
    };
    let ok = match alg.as_str() {
        "RS256" => signature::RsaPublicKeyComponents { n: field("n")?, e: field("e")? }
            .verify(&signature::RSA_PKCS1_2048_8192_SHA256, input.as_bytes(), &sig)
            .is_ok(),
        "ES256" => {
            let mut point = vec![4u8];
            point.extend(field("x")?);
            point.extend(field("y")?);
            UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, point).verify(input.as_bytes(), &sig).is_ok()
        }
        "EdDSA" => UnparsedPublicKey::new(&signature::ED25519, field("x")?).verify(input.as_bytes(), &sig).is_ok(),
        "none" => return Err("alg none: the token is not signed".into()),
        other => return Err(format!("algorithm {other} is not supported by this tool")),
    };
    if ok { Ok(alg) } else { Err(format!("the {alg} signature does not verify with key {kid:?}")) }
}

/// OIDC Core §3.1.3.6: the left half of the hash of the access token.
pub fn at_hash(alg: &str, access_token: &str) -> String {
    let d = if alg == "EdDSA" {
        digest::digest(&digest::SHA512, access_token.as_bytes())
    } else {
        digest::digest(&digest::SHA256, access_token.as_bytes())
    };
    URL_SAFE_NO_PAD.encode(&d.as_ref()[..d.as_ref().len() / 2])
}

/// Every check, in order; the first failure is returned.
pub fn validate(token: &str, jwks: &Value, e: &Expect<'_>) -> Result<Value, String> {
    let alg = verify_signature(token, jwks)?;
    let (_, claims) = decode(token)?;
    if claims["iss"].as_str() != Some(e.issuer) {
        return Err(format!("iss is {}, expected {:?}", claims["iss"], e.issuer));
    }
    let aud_ok = match &claims["aud"] {
        Value::String(a) => a == e.client_id,
        Value::Array(a) => a.iter().any(|x| x.as_str() == Some(e.client_id)),
        _ => false,
    };
    if !aud_ok {
        return Err(format!("aud is {}, expected to contain {:?}", claims["aud"], e.client_id));
    }
    let exp = claims["exp"].as_i64().ok_or("no exp")?;
    if e.now > exp + e.leeway {
        return Err(format!("expired {} s ago (check the clocks)", e.now - exp));
    }
    if let Some(iat) = claims["iat"].as_i64()
        && iat > e.now + e.leeway
    {
        return Err(format!("iat is {} s in the future: the clocks disagree", iat - e.now));
    }
    if let Some(n) = e.nonce
        && claims["nonce"].as_str() != Some(n)
    {
        return Err(format!("nonce is {}, expected the one sent to /authorize", claims["nonce"]));
    }
    if let (Some(at), Some(h)) = (e.access_token, claims["at_hash"].as_str())
        && at_hash(&alg, at) != h
    {
        return Err("at_hash does not match the access token".into());
    }
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candor_core::keys::{SigningKey, generate};
    use candor_core::model::SigningAlg;
    use serde_json::json;

    fn signed(alg: SigningAlg, claims: Value) -> (String, Value) {
        let key = SigningKey::parse(&generate(alg, 0).unwrap()).unwrap();
        (key.sign_jwt(&claims).unwrap(), json!({ "keys": [key.public_jwk()] }))
    }

    fn expect<'a>(nonce: Option<&'a str>, at: Option<&'a str>) -> Expect<'a> {
        Expect { issuer: "https://id.example", client_id: "app", nonce, access_token: at, now: 1000, leeway: 60 }
    }

    #[test]
    fn valid_tokens_pass_for_every_algorithm_and_each_check_refuses() {
        for alg in SigningAlg::ALL {
            let claims = json!({"iss": "https://id.example", "aud": "app", "exp": 2000, "iat": 1000, "nonce": "n1",
                                "at_hash": at_hash(alg.as_str(), "AT")});
            let (token, jwks) = signed(alg, claims);
            assert!(validate(&token, &jwks, &expect(Some("n1"), Some("AT"))).is_ok(), "{alg:?}");
            assert!(validate(&token, &jwks, &expect(Some("n2"), None)).unwrap_err().contains("nonce"));
            assert!(validate(&token, &jwks, &expect(None, Some("other"))).unwrap_err().contains("at_hash"));
            let mut tampered = token.clone();
            tampered.replace_range(token.len() - 3.., "AAA");
            assert!(validate(&tampered, &jwks, &expect(None, None)).is_err());
        }
        let (token, jwks) = signed(SigningAlg::ES256, json!({"iss": "https://other", "aud": "app", "exp": 2000}));
        assert!(validate(&token, &jwks, &expect(None, None)).unwrap_err().starts_with("iss"));
        let (token, jwks) = signed(SigningAlg::ES256, json!({"iss": "https://id.example", "aud": ["x"], "exp": 2000}));
        assert!(validate(&token, &jwks, &expect(None, None)).unwrap_err().starts_with("aud"));
        let (token, jwks) = signed(SigningAlg::ES256, json!({"iss": "https://id.example", "aud": "app", "exp": 900}));
        assert!(validate(&token, &jwks, &expect(None, None)).unwrap_err().contains("expired"));
        let (other, _) = signed(SigningAlg::ES256, json!({}));
        assert!(verify_signature(&other, &jwks).is_err(), "a key not in the JWKS");
    }
}
