//! Verifying an ID token as a relying party would (OIDC Core §3.1.3.7): signature against the
//! provider's JWKS, then iss, aud, exp, iat, nonce and at_hash.

use aws_lc_rs::digest;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use candor_core::jws;
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

/// Header and claims, unverified.
pub fn decode(token: &str) -> Result<(Value, Value), String> {
    let jws = jws::parse(token).map_err(|e| e.explain())?;
    Ok((jws.header, jws.claims))
}

/// Verifies the signature with the JWKS key named by `kid`; returns the algorithm.
pub fn verify_signature(token: &str, jwks: &Value) -> Result<String, String> {
    let parsed = jws::parse(token).map_err(|e| e.explain())?;
    jws::verify(&parsed, jwks).map(str::to_string).map_err(|e| match e {
        jws::JwsError::KeyNotFound { .. } => format!("{} (rotated? cached JWKS?)", e.explain()),
        e => e.explain(),
    })
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

/// What a JWT access token must match (RFC 9068 §4, as a resource server validates it).
pub struct ExpectAccess<'a> {
    pub issuer: &'a str,
    /// The resource the token was requested for; `None`: any audience (reported, not checked).
    pub audience: Option<&'a str>,
    pub now: i64,
    pub leeway: i64,
}

/// RFC 9068 §4: `typ` is `at+jwt`, the signature verifies with the issuer's keys, `iss` is the
/// issuer, `aud` names the resource, it has not expired, and it has the required claims.
pub fn validate_access_token(token: &str, jwks: &Value, e: &ExpectAccess<'_>) -> Result<Value, String> {
    let (header, claims) = decode(token)?;
    let typ = header["typ"].as_str().unwrap_or("").to_ascii_lowercase();
    if typ != "at+jwt" && typ != "application/at+jwt" {
        return Err(format!(
            "typ is {}, not at+jwt: a resource server following RFC 9068 refuses it (an ID token, or a provider's own JWT format)",
            header["typ"]
        ));
    }
    verify_signature(token, jwks)?;
    if claims["iss"].as_str() != Some(e.issuer) {
        return Err(format!("iss is {}, expected {:?}", claims["iss"], e.issuer));
    }
    if let Some(aud) = e.audience {
        let aud_ok = match &claims["aud"] {
            Value::String(a) => a == aud,
            Value::Array(a) => a.iter().any(|x| x.as_str() == Some(aud)),
            _ => false,
        };
        if !aud_ok {
            return Err(format!("aud is {}, expected the resource {aud:?}", claims["aud"]));
        }
    }
    let exp = claims["exp"].as_i64().ok_or("no exp")?;
    if e.now > exp + e.leeway {
        return Err(format!("expired {} s ago (check the clocks)", e.now - exp));
    }
    if let Some(missing) = ["sub", "client_id", "iat", "jti"].into_iter().find(|c| claims.get(*c).is_none()) {
        return Err(format!("the {missing} claim RFC 9068 §2.2 requires is missing"));
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

    #[test]
    fn an_access_token_must_be_typed_at_jwt_for_the_resource_and_complete() {
        let key = SigningKey::parse(&generate(SigningAlg::ES256, 0).unwrap()).unwrap();
        let jwks = json!({ "keys": [key.public_jwk()] });
        let claims = json!({"iss": "https://id.example", "aud": "https://api/", "exp": 2000, "iat": 1000,
                            "sub": "u", "client_id": "app", "jti": "j"});
        let e = |aud| ExpectAccess { issuer: "https://id.example", audience: aud, now: 1000, leeway: 60 };
        let token = key.sign_jwt_typed(&claims, "at+jwt").unwrap();
        assert!(validate_access_token(&token, &jwks, &e(Some("https://api/"))).is_ok());
        assert!(validate_access_token(&token, &jwks, &e(None)).is_ok());
        assert!(validate_access_token(&token, &jwks, &e(Some("https://other/"))).unwrap_err().starts_with("aud"));
        let id_token = key.sign_jwt(&claims).unwrap();
        assert!(validate_access_token(&id_token, &jwks, &e(None)).unwrap_err().contains("at+jwt"));
        let mut partial = claims.clone();
        partial.as_object_mut().unwrap().remove("jti");
        let token = key.sign_jwt_typed(&partial, "at+jwt").unwrap();
        assert!(validate_access_token(&token, &jwks, &e(None)).unwrap_err().contains("jti"));
    }
}
