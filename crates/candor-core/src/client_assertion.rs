//! Client authentication with a signed JWT (OIDC Core §9, RFC 7523 §2.2 and §3): `private_key_jwt`
//! (the client signs a short-lived assertion with its private key; Candor verifies it with the
//! public keys registered for the client) and `client_secret_jwt` (an HMAC keyed by the client's
//! secret, which Candor keeps sealed, `sealed.rs`).
//!
//! Every rule that fails is named, with the facts: a clock difference is reported in seconds
//! against the configured leeway, so "invalid_client" never hides a skewed clock.

use crate::clock::{UnixTime, rfc3339};
use crate::jws::{self, JwsError, Parsed};
use crate::rejection::{Reason, Rejection};
use crate::tokens::safe_identifier;
use serde_json::{Value, json};

/// RFC 7523 §2.2: the only `client_assertion_type` for a JWT.
pub const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// Longest `jti` kept for replay detection.
const MAX_JTI_LEN: usize = 256;
/// How far ahead of the server's time (beyond the leeway) an assertion's `exp` may lie. Its
/// `jti` is remembered until then, so an assertion valid for a year would be a year of storage;
/// libraries sign assertions for a minute or a few.
pub const MAX_LIFETIME: i64 = 3600;

/// A verified assertion: whose it is, and what to remember against its replay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub client_id: String,
    pub jti: String,
    /// Until when the `jti` must be remembered: the assertion's expiry.
    pub expires_at: UnixTime,
}

fn malformed(problem: impl Into<String>) -> Rejection {
    Rejection::new(Reason::ClientAssertionMalformed).with("problem", problem.into())
}

/// Checks `client_assertion_type` and reads the assertion without trusting it: the client it
/// claims to be (`sub`, which RFC 7523 §3 requires to equal `iss`), so that its keys can be found.
pub fn read(assertion_type: Option<&str>, assertion: &str) -> Result<(Parsed, String), Rejection> {
    match assertion_type {
        Some(ASSERTION_TYPE) => {}
        Some(other) => {
            return Err(Rejection::new(Reason::ClientAssertionTypeUnsupported)
                .with("client_assertion_type", safe_identifier(other))
                .with("expected", ASSERTION_TYPE));
        }
        None => return Err(Rejection::missing("client_assertion_type").with("expected", ASSERTION_TYPE)),
    }
    let parsed = jws::parse(assertion).map_err(|e| malformed(e.explain()))?;
    let sub = parsed.claims["sub"].as_str().ok_or_else(|| malformed("the assertion has no sub (the client_id)"))?;
    let iss = parsed.claims["iss"].as_str().ok_or_else(|| malformed("the assertion has no iss (the client_id)"))?;
    if iss != sub {
        return Err(Rejection::new(Reason::ClientAssertionIssuerMismatch)
            .with("iss", safe_identifier(iss))
            .with("sub", safe_identifier(sub))
            .with("problem", "iss and sub must both be the client_id (RFC 7523 §3)"));
    }
    let client_id = sub.to_string();
    Ok((parsed, client_id))
}

/// What verifies a client's assertions.
#[derive(Clone, Copy)]
pub enum Keys<'a> {
    /// `private_key_jwt`: the client's public keys, a JWK Set.
    Public(&'a Value),
    /// `client_secret_jwt`: the client's secret, the HMAC key.
    Secret(&'a [u8]),
}

/// What an assertion is checked against.
pub struct Expect<'a> {
    /// The client's keys.
    pub keys: Keys<'a>,
    /// The audiences that identify Candor: the issuer, the token endpoint's URL and the URL of
    /// the endpoint called (RFC 7523 §3: "the token endpoint URL of the authorization server"
    /// may be used; OIDC Core §9 names the token endpoint; the issuer is what newer clients send).
    pub audiences: &'a [String],
    pub now: UnixTime,
    /// Seconds of clock difference tolerated on `exp`, `iat` and `nbf`.
    pub leeway: i64,
}

/// Verifies a read assertion: its signature with the client's keys, then `aud`, `exp`, `iat`,
/// `nbf` and the presence of `jti` (its replay is the store's to detect). The signature comes
/// first: nothing else in the assertion is reported before it is known to be the client's.
pub fn verify(parsed: &Parsed, client_id: &str, e: &Expect<'_>) -> Result<Verified, Rejection> {
    match e.keys {
        Keys::Public(jwks) => jws::verify(parsed, jwks),
        Keys::Secret(secret) => jws::verify_hmac(parsed, secret),
    }
    .map_err(|err| signature_rejection(&err, parsed))?;
    let claims = &parsed.claims;
    let aud_ok = match &claims["aud"] {
        Value::String(a) => e.audiences.iter().any(|x| x == a),
        Value::Array(list) => list.iter().any(|a| e.audiences.iter().any(|x| Some(x.as_str()) == a.as_str())),
        _ => false,
    };
    if !aud_ok {
        return Err(Rejection::new(Reason::ClientAssertionAudienceWrong)
            .with("aud", short(&claims["aud"]))
            .with("expected_one_of", json!(e.audiences)));
    }
    let exp = claims["exp"].as_i64().ok_or_else(|| malformed("the assertion has no exp (a number of seconds)"))?;
    if e.now > exp + e.leeway {
        return Err(clock(Reason::ClientAssertionExpired, "exp", exp, e)
            .with("expired_seconds_ago", e.now - exp)
            .with("problem", "the assertion expired; or the client's clock is behind the server's"));
    }
    if exp > e.now + e.leeway + MAX_LIFETIME {
        return Err(clock(Reason::ClientAssertionLifetimeTooLong, "exp", exp, e)
            .with("expires_in_seconds", exp - e.now)
            .with("max_seconds", MAX_LIFETIME)
            .with("problem", "an assertion authenticates one request: give it an exp a few minutes ahead"));
    }
    for claim in ["iat", "nbf"] {
        if let Some(t) = claims[claim].as_i64()
            && t > e.now + e.leeway
        {
            return Err(clock(Reason::ClientAssertionNotYetValid, claim, t, e)
                .with("seconds_in_the_future", t - e.now)
                .with("problem", "the client's clock is ahead of the server's"));
        }
    }
    let jti =
        claims["jti"].as_str().ok_or_else(|| malformed("the assertion has no jti (OIDC Core §9 requires one)"))?;
    if jti.is_empty() || jti.len() > MAX_JTI_LEN {
        return Err(malformed(format!("the jti must be 1 to {MAX_JTI_LEN} characters")));
    }
    Ok(Verified { client_id: client_id.to_string(), jti: jti.to_string(), expires_at: exp })
}

/// A clock fact set: the claim's time, the server's, and the leeway allowed.
fn clock(reason: Reason, claim: &'static str, at: UnixTime, e: &Expect<'_>) -> Rejection {
    Rejection::new(reason).with(claim, rfc3339(at)).with("server_time", rfc3339(e.now)).with("leeway_seconds", e.leeway)
}

fn signature_rejection(err: &JwsError, parsed: &Parsed) -> Rejection {
    let r = Rejection::new(Reason::ClientAssertionSignatureInvalid)
        .with("defect", err.code())
        .with("explanation", err.explain())
        .with("alg", safe_identifier(parsed.alg().unwrap_or_default()));
    match parsed.kid() {
        Some(kid) => r.with("kid", safe_identifier(kid)),
        None => r,
    }
}

/// A claim value to report, cut short.
fn short(v: &Value) -> Value {
    let text = v.to_string();
    if text.len() <= 200 {
        return v.clone();
    }
    let mut end = 200;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    Value::String(format!("{}…", &text[..end]))
}

/// The replayed-assertion refusal (the store found the `jti` already used).
pub fn replayed(v: &Verified) -> Rejection {
    Rejection::new(Reason::ClientAssertionReplayed)
        .with("jti", safe_identifier(&v.jti))
        .with("remembered_until", rfc3339(v.expires_at))
        .with("problem", "each assertion may be used once: sign a new one, with a new jti, for every request")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{SigningKey, generate};
    use crate::model::SigningAlg;

    const AUD: &str = "https://id.example.com/token";

    fn key() -> SigningKey {
        SigningKey::parse(&generate(SigningAlg::ES256, 0).unwrap()).unwrap()
    }

    fn assertion(k: &SigningKey, claims: Value) -> String {
        k.sign_jwt(&claims).unwrap()
    }

    fn claims(exp: i64) -> Value {
        json!({"iss": "app", "sub": "app", "aud": AUD, "exp": exp, "iat": exp - 60, "jti": "j1"})
    }

    fn check(k: &SigningKey, token: &str, now: i64) -> Result<Verified, Rejection> {
        let (parsed, client) = read(Some(ASSERTION_TYPE), token)?;
        let jwks = json!({"keys": [k.public_jwk()]});
        let audiences = vec!["https://id.example.com".to_string(), AUD.to_string()];
        verify(&parsed, &client, &Expect { keys: Keys::Public(&jwks), audiences: &audiences, now, leeway: 30 })
    }

    #[test]
    fn a_valid_assertion_names_its_client_jti_and_expiry() {
        let k = key();
        let v = check(&k, &assertion(&k, claims(1_060)), 1_000).unwrap();
        assert_eq!(v, Verified { client_id: "app".into(), jti: "j1".into(), expires_at: 1_060 });
        // The issuer as audience, and an array holding one of them, are accepted too.
        let mut c = claims(1_060);
        c["aud"] = json!(["https://elsewhere", "https://id.example.com"]);
        assert!(check(&k, &assertion(&k, c), 1_000).is_ok());
    }

    #[test]
    fn clock_differences_are_reported_in_seconds_against_the_leeway() {
        let k = key();
        // Expired 40 s ago with 30 s of leeway.
        let r = check(&k, &assertion(&k, claims(960)), 1_000).unwrap_err();
        assert_eq!(r.reason, Reason::ClientAssertionExpired);
        assert_eq!(r.facts.get("expired_seconds_ago"), Some(&json!(40)));
        assert_eq!(r.facts.get("leeway_seconds"), Some(&json!(30)));
        // Within the leeway, accepted.
        assert!(check(&k, &assertion(&k, claims(975)), 1_000).is_ok());
        // Issued 100 s in the future: the client's clock is ahead.
        let mut c = claims(1_200);
        c["iat"] = json!(1_100);
        let r = check(&k, &assertion(&k, c), 1_000).unwrap_err();
        assert_eq!(r.reason, Reason::ClientAssertionNotYetValid);
        assert_eq!(r.facts.get("seconds_in_the_future"), Some(&json!(100)));
    }

    #[test]
    fn each_rule_is_named() {
        let k = key();
        let with = |f: &dyn Fn(&mut Value)| {
            let mut c = claims(1_060);
            f(&mut c);
            check(&k, &assertion(&k, c), 1_000).unwrap_err().reason
        };
        assert_eq!(
            with(&|c| c["aud"] = json!("https://id.example.com/authorize")),
            Reason::ClientAssertionAudienceWrong
        );
        assert_eq!(with(&|c| c["iss"] = json!("other")), Reason::ClientAssertionIssuerMismatch);
        assert_eq!(with(&|c| drop(c.as_object_mut().unwrap().remove("jti"))), Reason::ClientAssertionMalformed);
        assert_eq!(with(&|c| drop(c.as_object_mut().unwrap().remove("exp"))), Reason::ClientAssertionMalformed);
        // Signed by another key.
        let other = key();
        let r = check(&k, &assertion(&other, claims(1_060)), 1_000).unwrap_err();
        assert_eq!(r.reason, Reason::ClientAssertionSignatureInvalid);
        assert_eq!(r.facts.get("defect"), Some(&json!("key_not_found")));
        // The assertion type.
        let r = read(Some("urn:ietf:params:oauth:client-assertion-type:saml2-bearer"), "x").unwrap_err();
        assert_eq!(r.reason, Reason::ClientAssertionTypeUnsupported);
        assert_eq!(read(None, "x").unwrap_err().reason, Reason::ParameterMissing);
        assert_eq!(read(Some(ASSERTION_TYPE), "not a jwt").unwrap_err().reason, Reason::ClientAssertionMalformed);
        assert_eq!(
            replayed(&check(&k, &assertion(&k, claims(1_060)), 1_000).unwrap()).reason,
            Reason::ClientAssertionReplayed
        );
    }
}
