//! DPoP (RFC 9449): proofs of possession of a key, and tokens bound to that key.
//!
//! A client sends a `DPoP` header with a JWT signed by its own key pair, the public key in the
//! JWT's header. Candor checks the proof (§4.3), remembers its `jti` so it is used once, and binds
//! the tokens it issues to the key's thumbprint (RFC 7638, `jkt`): a bound access token works only
//! with a fresh proof by the same key, and a bound refresh token (every public client's) only
//! with a proof by the same key.
//!
//! Server nonces (§8) are stateless: the time, in windows of `NONCE_WINDOW` seconds, and an HMAC
//! of it under a key every node derives from the shared signing keys; a nonce is good for the
//! window it was made in and the next.

use crate::clock::{UnixTime, rfc3339};
use crate::jws;
use crate::rejection::{Reason, Rejection};
use crate::tokens::{b64url, b64url_decode, safe_identifier};
use aws_lc_rs::{digest, hmac};
use serde_json::{Value, json};

/// The `typ` of a DPoP proof (§4.2).
pub const TYP: &str = "dpop+jwt";
/// The token type of a DPoP-bound access token (§5).
pub const TOKEN_TYPE: &str = "DPoP";
/// Seconds in one nonce window.
pub const NONCE_WINDOW: i64 = 300;

/// What a proof must match.
#[derive(Debug, Clone, Copy)]
pub struct Expect<'a> {
    /// The HTTP method of the request (`htm`).
    pub method: &'a str,
    /// The URL of the endpoint, as the issuer names it (`htu`, compared without query and fragment).
    pub url: &'a str,
    pub now: UnixTime,
    /// Seconds `iat` may lie from now, either way.
    pub leeway: i64,
    /// At a resource: the access token the proof must carry the hash of (`ath`, §4.2).
    pub access_token: Option<&'a str>,
    /// The nonce keys, when nonces are required.
    pub nonce: Option<&'a NonceKey>,
}

/// A checked proof: the key's thumbprint and what the store must remember.
#[derive(Debug, Clone, PartialEq)]
pub struct Proof {
    pub jkt: String,
    pub jti: String,
    pub iat: UnixTime,
}

impl Proof {
    /// Until when its `jti` must be remembered: past that, the proof is refused as stale anyway.
    pub fn remember_until(&self, leeway: i64) -> UnixTime {
        self.iat + leeway + 1
    }
}

fn invalid(problem: impl Into<String>) -> Rejection {
    Rejection::new(Reason::DpopProofInvalid).with("problem", problem.into())
}

/// Checks one DPoP proof (RFC 9449 §4.3): shape, `typ`, an asymmetric `alg`, a public `jwk`, the
/// signature, `htm`, `htu`, `iat`, `ath` and the nonce. The `jti` is for the store to check.
pub fn verify(proof: &str, e: &Expect<'_>) -> Result<Proof, Rejection> {
    let parsed = jws::parse(proof).map_err(|err| invalid(err.explain()))?;
    let typ = parsed.header["typ"].as_str().unwrap_or("");
    if !typ.eq_ignore_ascii_case(TYP) {
        return Err(invalid(format!("typ is {:?}, a DPoP proof's is \"dpop+jwt\"", safe_identifier(typ))));
    }
    let jwk = &parsed.header["jwk"];
    if !jwk.is_object() {
        return Err(invalid("the header has no jwk: the proof carries the client's public key"));
    }
    if let Some(private) = ["d", "p", "q", "dp", "dq", "qi", "k"].into_iter().find(|m| jwk.get(*m).is_some()) {
        return Err(invalid(format!(
            "the jwk holds private key material ({private:?}): only the public key belongs in the proof; this key is compromised"
        )));
    }
    let mut key = jwk.clone();
    if let Value::Object(m) = &mut key {
        // The proof names its key itself: a kid or use in it selects nothing.
        m.remove("kid");
        m.remove("use");
    }
    jws::verify(&parsed, &json!({ "keys": [key] })).map_err(|err| invalid(err.explain()))?;
    let jkt = thumbprint(jwk).map_err(invalid)?;
    let claims = &parsed.claims;
    let jti = claims["jti"].as_str().filter(|j| !j.is_empty()).ok_or_else(|| invalid("no jti"))?;
    if jti.len() > 256 {
        return Err(invalid("the jti is longer than 256 characters"));
    }
    let htm = claims["htm"].as_str().ok_or_else(|| invalid("no htm (the HTTP method)"))?;
    let htu = claims["htu"].as_str().ok_or_else(|| invalid("no htu (the endpoint's URL)"))?;
    if htm != e.method {
        return Err(Rejection::new(Reason::DpopProofWrongTarget)
            .with("claim", "htm")
            .with("expected", e.method.to_string())
            .with("received", safe_identifier(htm)));
    }
    if !same_url(htu, e.url) {
        return Err(Rejection::new(Reason::DpopProofWrongTarget)
            .with("claim", "htu")
            .with("expected", e.url.to_string())
            .with("received", safe_identifier(htu)));
    }
    let iat = claims["iat"].as_i64().ok_or_else(|| invalid("no iat (a number of seconds)"))?;
    if (iat - e.now).abs() > e.leeway {
        return Err(Rejection::new(Reason::DpopProofStale)
            .with("iat", rfc3339(iat))
            .with("server_time", rfc3339(e.now))
            .with(if iat < e.now { "seconds_old" } else { "seconds_in_future" }, (iat - e.now).abs())
            .with("leeway_seconds", e.leeway));
    }
    if let Some(token) = e.access_token {
        let expected = b64url(digest::digest(&digest::SHA256, token.as_bytes()).as_ref());
        match claims["ath"].as_str() {
            None => return Err(invalid("no ath: at a resource the proof carries the access token's hash")),
            Some(ath) if ath != expected => {
                return Err(invalid("ath is not the hash of this access token: the proof was made for another token"));
            }
            Some(_) => {}
        }
    }
    if let Some(keys) = e.nonce {
        let sent = claims["nonce"].as_str();
        if !sent.is_some_and(|n| keys.accepts(n, e.now)) {
            return Err(Rejection::new(Reason::DpopNonceRequired)
                .with("nonce", keys.current(e.now))
                .with("problem", if sent.is_some() { "the nonce is stale or not this server's" } else { "no nonce" }));
        }
    }
    Ok(Proof { jkt, jti: jti.to_string(), iat })
}

/// Whether two URLs name the same endpoint (§4.3: without query and fragment, with RFC 3986
/// §6.2.2 and §6.2.3 normalisation: case of scheme and host, default ports, empty path).
pub fn same_url(a: &str, b: &str) -> bool {
    let norm = |s: &str| {
        url::Url::parse(s).ok().map(|mut u| {
            u.set_query(None);
            u.set_fragment(None);
            u.to_string()
        })
    };
    matches!((norm(a), norm(b)), (Some(x), Some(y)) if x == y)
}

/// The JWK SHA-256 thumbprint (RFC 7638 §3): the required members in lexicographic order, no
/// whitespace, hashed, base64url.
pub fn thumbprint(jwk: &Value) -> Result<String, String> {
    let member =
        |name: &str| jwk[name].as_str().map(str::to_string).ok_or_else(|| format!("the jwk has no {name:?} member"));
    // serde_json keeps members in insertion order here: written in the order RFC 7638 requires.
    let canonical = match jwk["kty"].as_str() {
        Some("RSA") => format!(r#"{{"e":{},"kty":"RSA","n":{}}}"#, json!(member("e")?), json!(member("n")?)),
        Some("EC") => format!(
            r#"{{"crv":{},"kty":"EC","x":{},"y":{}}}"#,
            json!(member("crv")?),
            json!(member("x")?),
            json!(member("y")?)
        ),
        Some("OKP") => format!(r#"{{"crv":{},"kty":"OKP","x":{}}}"#, json!(member("crv")?), json!(member("x")?)),
        other => return Err(format!("the jwk's kty {other:?} is not RSA, EC or OKP")),
    };
    Ok(b64url(digest::digest(&digest::SHA256, canonical.as_bytes()).as_ref()))
}

/// Whether `value` has the shape of a thumbprint (43 base64url characters, a SHA-256).
pub fn is_thumbprint(value: &str) -> bool {
    value.len() == 43 && b64url_decode(value).is_some_and(|b| b.len() == 32)
}

/// The key of the server's nonces.
pub struct NonceKey(hmac::Key);

impl std::fmt::Debug for NonceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NonceKey")
    }
}

impl NonceKey {
    /// A key derived from secret material every node shares (the signing keys), under a label of
    /// its own: the nonces reveal nothing of it, and a key rotation only makes clients fetch a
    /// new nonce once.
    pub fn derive(secret: &[u8]) -> NonceKey {
        let mut ctx = digest::Context::new(&digest::SHA256);
        ctx.update(b"candor-dpop-nonce-v1\0");
        ctx.update(secret);
        NonceKey(hmac::Key::new(hmac::HMAC_SHA256, ctx.finish().as_ref()))
    }

    fn at_window(&self, window: i64) -> String {
        let bytes = window.to_be_bytes();
        let tag = hmac::sign(&self.0, &bytes);
        let mut out = bytes.to_vec();
        out.extend_from_slice(&tag.as_ref()[..16]);
        b64url(&out)
    }

    /// The nonce to hand out at `now`.
    pub fn current(&self, now: UnixTime) -> String {
        self.at_window(now.div_euclid(NONCE_WINDOW))
    }

    /// A nonce made in this window or the previous one.
    pub fn accepts(&self, nonce: &str, now: UnixTime) -> bool {
        let window = now.div_euclid(NONCE_WINDOW);
        [window, window - 1].into_iter().any(|w| {
            let expected = self.at_window(w);
            crate::tokens::hashes_equal(&expected, nonce)
        })
    }
}

/// Whether a grant bound to `bound` (a key thumbprint) may be used with a proof by `proof`'s key.
pub fn check_binding(bound: Option<&str>, proof: Option<&str>) -> Result<(), Rejection> {
    match (bound, proof) {
        (None, _) => Ok(()),
        (Some(b), None) => Err(Rejection::new(Reason::DpopProofMissing).with("bound_to", b.to_string())),
        (Some(b), Some(p)) if crate::tokens::hashes_equal(b, p) => Ok(()),
        (Some(b), Some(p)) => Err(Rejection::new(Reason::DpopKeyMismatch)
            .with("bound_to", b.to_string())
            .with("proof_key", p.to_string())),
    }
}

/// RFC 9449 §5.2: a client registered with `dpop_bound_access_tokens` (`--require-dpop`) sends a
/// proof with every token request.
pub fn check_required(client: &crate::model::Client, proof: Option<&Proof>) -> Result<(), Rejection> {
    if client.require_dpop && proof.is_none() {
        return Err(Rejection::new(Reason::DpopProofMissing).with("client_id", client.id.clone()));
    }
    Ok(())
}

/// RFC 9449 §6: the `cnf` claim of a bound token.
pub fn confirmation(jkt: &str) -> Value {
    json!({ "jkt": jkt })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{SigningKey, generate};
    use crate::model::SigningAlg;

    fn key(alg: SigningAlg) -> SigningKey {
        SigningKey::parse(&generate(alg, 0).unwrap()).unwrap()
    }

    fn proof(k: &SigningKey, claims: Value) -> String {
        let mut jwk = k.public_jwk();
        jwk.as_object_mut().unwrap().remove("kid");
        k.sign_with_header(&json!({ "typ": "dpop+jwt", "alg": k.alg.as_str(), "jwk": jwk }), &claims).unwrap()
    }

    fn expect<'a>(nonce: Option<&'a NonceKey>, token: Option<&'a str>) -> Expect<'a> {
        Expect { method: "POST", url: "https://id.example/token", now: 1000, leeway: 60, access_token: token, nonce }
    }

    #[test]
    fn the_rfc_7638_example_thumbprint() {
        // RFC 7638 §3.1.
        let jwk = json!({
            "kty": "RSA",
            "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
            "e": "AQAB",
            "alg": "RS256",
            "kid": "2011-04-29"
        });
        assert_eq!(thumbprint(&jwk).unwrap(), "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
    }

    #[test]
    fn a_good_proof_passes_for_every_algorithm_and_names_its_key() {
        for alg in SigningAlg::ALL {
            let k = key(alg);
            let p =
                proof(&k, json!({"jti": "j1", "htm": "POST", "htu": "https://ID.example:443/token?x=1", "iat": 990}));
            let checked = verify(&p, &expect(None, None)).unwrap_or_else(|r| panic!("{alg:?}: {r:?}"));
            assert_eq!(checked.jkt, thumbprint(&k.public_jwk()).unwrap());
            assert_eq!((checked.jti.as_str(), checked.iat), ("j1", 990));
        }
    }

    #[test]
    fn each_broken_rule_is_named() {
        let k = key(SigningAlg::ES256);
        let good = json!({"jti": "j1", "htm": "POST", "htu": "https://id.example/token", "iat": 1000});
        let with = |name: &str, v: Value| {
            let mut c = good.clone();
            c[name] = v;
            proof(&k, c)
        };
        let reason = |p: &str, e: &Expect<'_>| verify(p, e).unwrap_err().reason;
        assert_eq!(reason(&with("htm", json!("GET")), &expect(None, None)), Reason::DpopProofWrongTarget);
        assert_eq!(
            reason(&with("htu", json!("http://internal:8080/token")), &expect(None, None)),
            Reason::DpopProofWrongTarget
        );
        assert_eq!(reason(&with("iat", json!(900)), &expect(None, None)), Reason::DpopProofStale);
        assert_eq!(reason(&with("iat", json!(1100)), &expect(None, None)), Reason::DpopProofStale);
        assert_eq!(reason(&with("jti", json!("")), &expect(None, None)), Reason::DpopProofInvalid);
        // At a resource: the access token's hash.
        let ath = b64url(digest::digest(&digest::SHA256, b"AT").as_ref());
        assert!(verify(&with("ath", json!(ath)), &expect(None, Some("AT"))).is_ok());
        assert_eq!(reason(&with("ath", json!(ath)), &expect(None, Some("other"))), Reason::DpopProofInvalid);
        assert_eq!(reason(&proof(&k, good.clone()), &expect(None, Some("AT"))), Reason::DpopProofInvalid);
        // Not a DPoP proof: a plain JWT, a private key inside, a forged signature.
        let plain = k.sign_jwt(&good).unwrap();
        assert_eq!(reason(&plain, &expect(None, None)), Reason::DpopProofInvalid);
        let mut jwk = k.public_jwk();
        jwk["d"] = json!("c2VjcmV0");
        let leaked = k.sign_with_header(&json!({ "typ": "dpop+jwt", "alg": "ES256", "jwk": jwk }), &good).unwrap();
        let r = verify(&leaked, &expect(None, None)).unwrap_err();
        assert!(r.facts.get("problem").unwrap().as_str().unwrap().contains("private"), "{r:?}");
        let other = key(SigningAlg::ES256);
        let forged = k
            .sign_with_header(&json!({ "typ": "dpop+jwt", "alg": "ES256", "jwk": other.public_jwk() }), &good)
            .unwrap();
        assert_eq!(reason(&forged, &expect(None, None)), Reason::DpopProofInvalid);
    }

    #[test]
    fn a_client_registered_for_dpop_needs_a_proof_and_a_bound_grant_its_key() {
        let mut client: crate::model::Client = serde_json::from_value(json!({
            "id": "app", "name": "App", "secret_hash": null, "redirect_uris": [], "grant_types": [],
            "auth_method": "none", "scopes": [], "require_pkce": true, "allow_plain_pkce": false,
            "id_token_alg": "ES256", "always_issue_refresh_token": false, "created_at": 0, "jwks": null,
            "require_par": false, "access_token_format": "opaque", "resources": [], "require_dpop": true
        }))
        .unwrap();
        let proof = Proof { jkt: "k1".into(), jti: "j".into(), iat: 0 };
        assert_eq!(check_required(&client, None).unwrap_err().reason, Reason::DpopProofMissing);
        assert!(check_required(&client, Some(&proof)).is_ok());
        client.require_dpop = false;
        assert!(check_required(&client, None).is_ok());
        assert!(check_binding(None, None).is_ok() && check_binding(Some("k1"), Some("k1")).is_ok());
        assert_eq!(check_binding(Some("k1"), None).unwrap_err().reason, Reason::DpopProofMissing);
        assert_eq!(check_binding(Some("k1"), Some("k2")).unwrap_err().reason, Reason::DpopKeyMismatch);
    }

    #[test]
    fn nonces_hold_for_their_window_and_the_next_and_are_the_server_s() {
        let keys = NonceKey::derive(b"shared");
        let n = keys.current(1000);
        assert!(keys.accepts(&n, 1000) && keys.accepts(&n, 1000 + NONCE_WINDOW));
        assert!(!keys.accepts(&n, 1000 + 2 * NONCE_WINDOW));
        assert!(!NonceKey::derive(b"another").accepts(&n, 1000));
        let k = key(SigningAlg::EdDSA);
        let claims = json!({"jti": "j", "htm": "POST", "htu": "https://id.example/token", "iat": 1000});
        let r = verify(&proof(&k, claims.clone()), &expect(Some(&keys), None)).unwrap_err();
        assert_eq!((r.reason, r.reason.error()), (Reason::DpopNonceRequired, "use_dpop_nonce"));
        assert_eq!(r.facts.get("nonce").unwrap(), &json!(n));
        let mut with_nonce = claims;
        with_nonce["nonce"] = json!(n);
        assert!(verify(&proof(&k, with_nonce), &expect(Some(&keys), None)).is_ok());
    }
}
