//! Access tokens: minting them opaque (`cda_…`) or as JWTs (RFC 9068), for one resource (RFC
//! 8707) or for Candor itself, and finding the token a bearer presents.
//!
//! Both formats are stored (by hash) when issued, so either can be revoked, introspected and
//! explained. A JWT's stored key is `tokens::jwt_key` of the whole token, so the store finds only
//! the exact token Candor signed: a found JWT needs no signature check. The signature is checked
//! only to explain why a JWT was not found.

use crate::clock::{UnixTime, rfc3339};
use crate::keys::KeyRing;
use crate::model::{AccessTokenRecord, Client, Resource, TokenFormat};
use crate::rejection::{Reason, Rejection};
use crate::scope::Scope;
use crate::settings::Settings;
use crate::store::Store;
use crate::tokens::{self, Secret, SecretKind, fingerprint, hash_secret, jwt_key, ordered_id};
use crate::{jws, resource};
use serde_json::{Value, json};

/// RFC 9068 §2.1: the `typ` of a JWT access token.
pub const JWT_TYP: &str = "at+jwt";

/// What an access token is minted for.
#[derive(Debug, Clone, Copy)]
pub struct Spec<'a> {
    pub grant_id: &'a str,
    pub client: &'a Client,
    /// The user, or `None` for a client_credentials token (its subject is then the client).
    pub user_id: Option<&'a str>,
    pub auth_time: Option<UnixTime>,
    /// The scope the grant allows this token.
    pub scope: &'a Scope,
    /// The resource it is for (RFC 8707), or `None` for Candor itself.
    pub resource: Option<&'a Resource>,
    /// The DPoP key it is bound to (RFC 9449), if any.
    pub dpop_jkt: Option<&'a str>,
}

/// A minted access token: the value for the response and the record to store before sending it.
#[derive(Debug, Clone)]
pub struct Minted {
    pub value: String,
    pub record: AccessTokenRecord,
    /// The token's scope: the granted scopes its resource understands.
    pub scope: Scope,
    pub expires_in: i64,
    /// `Bearer`, or `DPoP` when bound to a DPoP key (RFC 9449 §5).
    pub token_type: &'static str,
}

/// Mints an access token: the resource's format, lifetime and algorithm if it has a resource,
/// else the client's format with the provider's lifetime.
pub fn mint(keys: &KeyRing, settings: &Settings, now: UnixTime, spec: &Spec<'_>) -> Result<Minted, Rejection> {
    let (format, lifetime, scope) = match spec.resource {
        Some(r) => (
            r.access_token_format,
            r.access_token_lifetime.unwrap_or(settings.access_token_lifetime),
            resource::token_scope(spec.scope, r),
        ),
        None => (spec.client.access_token_format, settings.access_token_lifetime, spec.scope.clone()),
    };
    let mut record = AccessTokenRecord {
        hash: String::new(),
        grant_id: spec.grant_id.to_string(),
        client_id: spec.client.id.clone(),
        user_id: spec.user_id.map(str::to_string),
        scope: scope.to_string(),
        audience: spec.resource.map(|r| r.id.clone()),
        format,
        dpop_jkt: spec.dpop_jkt.map(str::to_string),
        issued_at: now,
        expires_at: now + lifetime,
        revoked_at: None,
    };
    let value = match format {
        TokenFormat::Opaque => {
            let secret = Secret::generate(SecretKind::AccessToken).map_err(|_| Rejection::internal())?;
            record.hash = secret.hash;
            secret.value
        }
        TokenFormat::Jwt => {
            let jti = ordered_id().map_err(|_| Rejection::internal())?;
            let jwt = sign_jwt(keys, settings, spec, &record, &jti)?;
            record.hash = jwt_key(&jwt, &jti);
            jwt
        }
    };
    let token_type = if record.dpop_jkt.is_some() { crate::dpop::TOKEN_TYPE } else { "Bearer" };
    Ok(Minted { value, record, scope, expires_in: lifetime, token_type })
}

/// RFC 9068 §2.2: iss, exp, aud, sub, client_id, iat, jti, and scope and auth_time when known.
fn sign_jwt(
    keys: &KeyRing,
    settings: &Settings,
    spec: &Spec<'_>,
    record: &AccessTokenRecord,
    jti: &str,
) -> Result<String, Rejection> {
    let alg = spec.resource.map_or(spec.client.id_token_alg, |r| r.signing_alg);
    let key = keys.active(alg).map_err(|e| Rejection::internal().with_internal("keys", e.to_string()))?;
    let mut claims = json!({
        "iss": settings.issuer,
        // §3: without a resource, the default resource: the issuer itself (its userinfo).
        "aud": record.audience.as_deref().unwrap_or(&settings.issuer),
        // §2.2: a token with no user (client_credentials) has the client as its subject.
        "sub": record.user_id.as_deref().unwrap_or(&record.client_id),
        "client_id": record.client_id,
        "iat": record.issued_at,
        "exp": record.expires_at,
        "jti": jti,
    });
    if let Value::Object(m) = &mut claims {
        if !record.scope.is_empty() {
            m.insert("scope".into(), json!(record.scope));
        }
        if let Some(at) = spec.auth_time {
            m.insert("auth_time".into(), json!(at));
        }
        if let Some(jkt) = spec.dpop_jkt {
            // RFC 9449 §6.1: the key the token is bound to.
            m.insert("cnf".into(), crate::dpop::confirmation(jkt));
        }
    }
    key.sign_jwt_typed(&claims, JWT_TYP).map_err(|e| Rejection::internal().with_internal("signing", e.to_string()))
}

/// Who issues tokens here: what a presented JWT is checked against.
#[derive(Clone, Copy)]
pub struct Issuer<'a> {
    pub keys: &'a KeyRing,
    pub issuer: &'a str,
}

/// The record of a presented access token, opaque or JWT, dead or alive (the caller judges), or
/// why there is none: a defect, an ID token sent in its place, another issuer's JWT.
pub async fn find(store: &dyn Store, issuer: Issuer<'_>, value: &str) -> Result<AccessTokenRecord, Rejection> {
    if tokens::is_jwt_shaped(value) {
        return find_jwt(store, issuer, value).await;
    }
    // The cheap shape test first; the full defect diagnosis only for a value that fails it.
    if !tokens::is_shaped_as(value, SecretKind::AccessToken) {
        let defect = tokens::inspect(value, SecretKind::AccessToken).err().unwrap_or(tokens::Defect::NotACandorValue);
        return Err(Rejection::new(Reason::AccessTokenMalformed)
            .with("defect", defect.code())
            .with("explanation", defect.explain(SecretKind::AccessToken)));
    }
    find_shaped(store, value).await
}

/// The record of an opaque access token that passed `tokens::is_shaped_as`.
pub async fn find_shaped(store: &dyn Store, value: &str) -> Result<AccessTokenRecord, Rejection> {
    store
        .access_token(&hash_secret(value))
        .await
        .map_err(Rejection::store)?
        .ok_or_else(|| Rejection::new(Reason::AccessTokenUnknown).with("token_fingerprint", fingerprint(value)))
}

fn jwt_defect(code: &'static str, explanation: impl Into<String>) -> Rejection {
    Rejection::new(Reason::AccessTokenMalformed).with("defect", code).with("explanation", explanation.into())
}

async fn find_jwt(store: &dyn Store, issuer: Issuer<'_>, value: &str) -> Result<AccessTokenRecord, Rejection> {
    let parsed = jws::parse(value).map_err(|e| jwt_defect("jwt_malformed", e.explain()))?;
    let claim = |name: &str| parsed.claims[name].as_str().map(tokens::safe_identifier);
    let typ = parsed.header["typ"].as_str().unwrap_or("").to_ascii_lowercase();
    let is_access = typ == JWT_TYP || typ == "application/at+jwt";
    let iss = claim("iss").unwrap_or_default();
    if iss != issuer.issuer {
        return Err(Rejection::new(Reason::AccessTokenUnknown)
            .with("token_issuer", if iss.is_empty() { "none".to_string() } else { iss })
            .with("issuer", issuer.issuer.to_string())
            .with("problem", "a JWT issued by another provider (its iss), not by this one"));
    }
    if is_access
        && let Some(jti) = parsed.claims["jti"].as_str()
        && let Some(record) = store.access_token(&jwt_key(value, jti)).await.map_err(Rejection::store)?
    {
        return Ok(record);
    }
    // Not a token Candor stored: say what it is instead.
    let all_keys = issuer.keys.jwks(i64::MIN / 2, i64::MAX / 4);
    if let Err(e) = jws::verify(&parsed, &all_keys) {
        return Err(jwt_defect(
            "jwt_signature_invalid",
            format!("a JWT naming this issuer whose signature does not verify: it was altered ({})", e.explain()),
        ));
    }
    if !is_access {
        // Signed by Candor, not an access token: an ID token (OIDC Core §2), sent by mistake.
        let client_id = match &parsed.claims["aud"] {
            Value::String(s) => s.clone(),
            Value::Array(a) => a.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(" "),
            _ => String::new(),
        };
        let mut r = Rejection::new(Reason::IdTokenAsAccessToken).with("client_id", tokens::safe_identifier(&client_id));
        if let Some(iat) = parsed.claims["iat"].as_i64() {
            r = r.with("issued_at", rfc3339(iat));
        }
        return Err(r);
    }
    Err(Rejection::new(Reason::AccessTokenUnknown)
        .with("token_fingerprint", fingerprint(value))
        .with("problem", "a JWT access token this provider signed but has no record of (swept, or another store)"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::generate;
    use crate::model::{AuthMethod, GrantType, SigningAlg};

    fn client(format: TokenFormat) -> Client {
        Client {
            id: "app".into(),
            name: "App".into(),
            secret_hash: None,
            redirect_uris: vec![],
            grant_types: vec![GrantType::ClientCredentials],
            auth_method: AuthMethod::ClientSecretBasic,
            scopes: vec![],
            require_pkce: false,
            allow_plain_pkce: false,
            id_token_alg: SigningAlg::ES256,
            always_issue_refresh_token: false,
            created_at: 0,
            jwks: None,
            require_par: false,
            access_token_format: format,
            resources: vec!["https://api.example/".into()],
            require_dpop: false,
            logout: Default::default(),
            registration_token_hash: None,
            secret_sealed: None,
        }
    }

    fn ring() -> KeyRing {
        KeyRing::from_records(&[generate(SigningAlg::RS256, 0).unwrap(), generate(SigningAlg::ES256, 0).unwrap()])
            .unwrap()
    }

    fn settings() -> Settings {
        Settings::new("https://id.example")
    }

    #[test]
    fn a_jwt_for_a_resource_carries_the_rfc_9068_claims_and_the_resource_scopes_only() {
        let keys = ring();
        let resource = Resource {
            id: "https://api.example/".into(),
            name: "API".into(),
            scopes: vec!["orders:read".into()],
            access_token_format: TokenFormat::Jwt,
            access_token_lifetime: Some(120),
            signing_alg: SigningAlg::RS256,
            created_at: 0,
        };
        let c = client(TokenFormat::Opaque);
        let scope = Scope::parse("openid orders:read").unwrap();
        let spec = Spec {
            grant_id: "g",
            client: &c,
            user_id: Some("u1"),
            auth_time: Some(90),
            scope: &scope,
            resource: Some(&resource),
            dpop_jkt: None,
        };
        let m = mint(&keys, &settings(), 100, &spec).unwrap();
        assert_eq!((m.expires_in, m.scope.to_string()), (120, "orders:read".to_string()));
        let parsed = jws::parse(&m.value).unwrap();
        assert_eq!(parsed.header["typ"], "at+jwt");
        assert_eq!(parsed.header["alg"], "RS256");
        jws::verify(&parsed, &keys.jwks(100, 0)).unwrap();
        let c = &parsed.claims;
        assert_eq!((c["iss"].as_str(), c["aud"].as_str()), (Some("https://id.example"), Some("https://api.example/")));
        assert_eq!((c["sub"].as_str(), c["client_id"].as_str()), (Some("u1"), Some("app")));
        assert_eq!((c["iat"].as_i64(), c["exp"].as_i64(), c["auth_time"].as_i64()), (Some(100), Some(220), Some(90)));
        assert_eq!(c["scope"], "orders:read");
        assert_eq!(m.record.hash, jwt_key(&m.value, c["jti"].as_str().unwrap()));
        assert_eq!(m.record.audience.as_deref(), Some("https://api.example/"));
    }

    #[test]
    fn without_a_resource_the_client_format_holds_and_a_jwt_is_for_the_issuer() {
        let keys = ring();
        let scope = Scope::parse("svc").unwrap();
        let opaque = client(TokenFormat::Opaque);
        let spec = Spec {
            grant_id: "g",
            client: &opaque,
            user_id: None,
            auth_time: None,
            scope: &scope,
            resource: None,
            dpop_jkt: None,
        };
        let m = mint(&keys, &settings(), 100, &spec).unwrap();
        assert!(m.value.starts_with("cda_"));
        assert_eq!(m.record.hash, hash_secret(&m.value));
        let jwt = client(TokenFormat::Jwt);
        let m = mint(&keys, &settings(), 100, &Spec { client: &jwt, ..spec }).unwrap();
        let parsed = jws::parse(&m.value).unwrap();
        assert_eq!(parsed.header["alg"], "ES256", "the client's algorithm");
        assert_eq!(
            (parsed.claims["aud"].as_str(), parsed.claims["sub"].as_str()),
            (Some("https://id.example"), Some("app"))
        );
        assert!(parsed.claims.get("auth_time").is_none());
        assert!(tokens::is_jwt_shaped(&m.value));
        // Bound to a DPoP key: the record and the JWT's cnf name it.
        let m = mint(&keys, &settings(), 100, &Spec { client: &jwt, dpop_jkt: Some("jkt-1"), ..spec }).unwrap();
        assert_eq!(m.record.dpop_jkt.as_deref(), Some("jkt-1"));
        assert_eq!(jws::parse(&m.value).unwrap().claims["cnf"]["jkt"], "jkt-1");
    }
}
