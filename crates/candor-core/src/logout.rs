//! Logout: the end-session endpoint of OpenID Connect RP-Initiated Logout 1.0, and the logout
//! tokens of OpenID Connect Back-Channel Logout 1.0.
//!
//! A logout request is read in two steps: `read` checks the parameters and the `id_token_hint`
//! (an ID token Candor signed; expired ones are accepted, §2), `check_redirect` then checks the
//! `post_logout_redirect_uri` against the client's registration (§3.1). Errors are shown to the
//! user, never sent to an unverified redirect URI.

use crate::authorize::MAX_STATE_LEN;
use crate::clock::UnixTime;
use crate::jws;
use crate::keys::KeyRing;
use crate::model::{Client, SessionRecord};
use crate::params::Params;
use crate::redirect_uri;
use crate::rejection::{Reason, Rejection};
use crate::settings::Settings;
use serde_json::{Value, json};

/// Where the end-session endpoint is served.
pub const END_SESSION_PATH: &str = "/logout";
/// The event a logout token carries (Back-Channel Logout 1.0 §2.4).
pub const BACKCHANNEL_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";
/// The `typ` of a logout token's header (Back-Channel Logout 1.0 §2.4, explicit typing).
pub const LOGOUT_TOKEN_TYPE: &str = "logout+jwt";
/// How long a logout token is valid: §2.4 recommends "no more than two minutes".
pub const LOGOUT_TOKEN_LIFETIME: i64 = 120;

/// What a verified `id_token_hint` says.
#[derive(Debug, Clone, PartialEq)]
pub struct Hint {
    pub sub: String,
    /// The client the ID token was issued to (its `azp`, or its one audience).
    pub client_id: String,
    pub sid: Option<String>,
}

/// A logout request whose parameters and hint have been checked.
#[derive(Debug, Clone, PartialEq)]
pub struct LogoutRequest {
    pub hint: Option<Hint>,
    /// The client that asks: `client_id`, or the hint's.
    pub client_id: Option<String>,
    pub post_logout_redirect_uri: Option<String>,
    pub state: Option<String>,
}

/// Reads a logout request's parameters and verifies its `id_token_hint` with Candor's keys.
pub fn read(params: &Params, keys: &KeyRing, issuer: &str) -> Result<LogoutRequest, Rejection> {
    if let Some(name) = params.first_duplicate() {
        return Err(Rejection::new(Reason::ParameterDuplicated).with("parameter", name.to_string()));
    }
    let get = |name: &'static str| params.get(name).map(|v| v.map(str::to_string));
    let client_id = get("client_id")?;
    let post_logout_redirect_uri = get("post_logout_redirect_uri")?;
    let state = get("state")?;
    if let Some(s) = &state
        && s.len() > MAX_STATE_LEN
    {
        return Err(Rejection::invalid("state", format!("{} bytes, at most {MAX_STATE_LEN}", s.len())));
    }
    let hint = match get("id_token_hint")? {
        Some(token) => Some(verify_hint(&token, keys, issuer)?),
        None => None,
    };
    if let (Some(id), Some(h)) = (&client_id, &hint)
        && *id != h.client_id
    {
        return Err(Rejection::new(Reason::IdTokenHintClientMismatch)
            .with("client_id", id.clone())
            .with("id_token_hint_client", h.client_id.clone()));
    }
    let client_id = client_id.or_else(|| hint.as_ref().map(|h| h.client_id.clone()));
    if post_logout_redirect_uri.is_some() && client_id.is_none() {
        return Err(Rejection::new(Reason::PostLogoutRedirectUriWithoutClient));
    }
    Ok(LogoutRequest { hint, client_id, post_logout_redirect_uri, state })
}

/// Verifies that `token` is an ID token Candor signed: a JWS with one of its keys, its issuer,
/// a `sub` and an audience. Its expiry does not matter (RP-Initiated Logout 1.0 §2: the OP
/// "SHOULD accept" an expired one).
pub fn verify_hint(token: &str, keys: &KeyRing, issuer: &str) -> Result<Hint, Rejection> {
    let invalid = |defect: &str, problem: String| {
        Rejection::new(Reason::IdTokenHintInvalid).with("defect", defect.to_string()).with("problem", problem)
    };
    let parsed = jws::parse(token).map_err(|e| invalid(e.code(), e.explain()))?;
    let published: Vec<Value> = keys.keys().iter().map(|k| k.public_jwk()).collect();
    jws::verify(&parsed, &json!({ "keys": published })).map_err(|e| {
        let problem = match &e {
            jws::JwsError::KeyNotFound { .. } | jws::JwsError::SignatureMismatch { .. } => {
                format!(
                    "{}: it was not signed by this provider (another provider's, or a key removed since)",
                    e.explain()
                )
            }
            other => other.explain(),
        };
        invalid(e.code(), problem)
    })?;
    let claims = &parsed.claims;
    let typ = parsed.header["typ"].as_str().unwrap_or("JWT");
    if typ.eq_ignore_ascii_case("at+jwt") {
        return Err(invalid("access_token", "this is a JWT access token (typ at+jwt); send the ID token".into()));
    }
    if typ.eq_ignore_ascii_case(LOGOUT_TOKEN_TYPE) || claims.get("events").is_some() {
        return Err(invalid("logout_token", "this is a logout token, which ends a session; send the ID token".into()));
    }
    match claims["iss"].as_str() {
        Some(iss) if iss == issuer => {}
        other => {
            return Err(invalid("issuer", format!("iss is {other:?}, this provider is {issuer:?}"))
                .with("expected_issuer", issuer.to_string()));
        }
    }
    let sub = claims["sub"].as_str().ok_or_else(|| invalid("claims", "there is no sub".into()))?;
    let audiences: Vec<&str> = match &claims["aud"] {
        Value::String(a) => vec![a.as_str()],
        Value::Array(list) => list.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    let client_id = match (claims["azp"].as_str(), audiences.as_slice()) {
        (Some(azp), _) => azp,
        (None, [only]) => only,
        _ => return Err(invalid("claims", "there is no azp and not exactly one aud".into())),
    };
    Ok(Hint { sub: sub.to_string(), client_id: client_id.to_string(), sid: claims["sid"].as_str().map(str::to_string) })
}

/// The `post_logout_redirect_uri`, once it is known to be registered for the client (§3.1:
/// compared as redirect URIs are). `client` is the one `LogoutRequest::client_id` names.
pub fn check_redirect(request: &LogoutRequest, client: &Client) -> Result<Option<String>, Rejection> {
    let Some(uri) = &request.post_logout_redirect_uri else { return Ok(None) };
    let registered = &client.logout.post_logout_redirect_uris;
    if registered.iter().any(|r| redirect_uri::matches_registered(uri, r)) {
        return Ok(Some(uri.clone()));
    }
    let r = Rejection::new(Reason::PostLogoutRedirectUriNotRegistered)
        .with("client_id", client.id.clone())
        .with_detail("received", uri.clone());
    Err(match redirect_uri::closest(uri, registered) {
        Some((closest, difference)) => r
            .with_detail("registered", registered.join(" "))
            .with_detail("closest_registered", closest.to_string())
            .with("difference", difference.as_str()),
        None => r.with("registered", "none"),
    })
}

/// Why the user is asked before their session ends (§2: the OP "MUST ask the End-User" unless
/// the request carries an ID token of the current session), or `None` to end it at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Confirm {
    /// No `id_token_hint`: anyone's page could have sent the browser here.
    NoHint,
    /// The hint is the signed-in user's, but from another session (or one without a `sid`).
    OtherSession,
    /// The hint is another user's ID token.
    OtherUser,
}

impl Confirm {
    pub fn explain(self) -> &'static str {
        match self {
            Confirm::NoHint => "The application did not say which sign-in it is ending.",
            Confirm::OtherSession => "The application's sign-in is from an earlier session of your account.",
            Confirm::OtherUser => "The application asked to sign out a different account than the one signed in here.",
        }
    }
}

/// Whether ending `session` for `hint` needs the user's confirmation first.
pub fn confirmation(hint: Option<&Hint>, session: &SessionRecord) -> Option<Confirm> {
    let Some(hint) = hint else { return Some(Confirm::NoHint) };
    if hint.sub != session.user_id {
        return Some(Confirm::OtherUser);
    }
    match (&hint.sid, &session.sid) {
        (Some(a), Some(b)) if a == b => None,
        _ => Some(Confirm::OtherSession),
    }
}

/// A logout token for `client` (Back-Channel Logout 1.0 §2.4): signed with the client's ID
/// token algorithm, typed `logout+jwt`, with `sub`, the session's `sid` if it has one, the
/// back-channel logout event, a `jti` and no `nonce`.
pub fn logout_token(
    keys: &KeyRing,
    settings: &Settings,
    client: &Client,
    sub: &str,
    sid: Option<&str>,
    now: UnixTime,
) -> Result<String, Rejection> {
    let key =
        keys.active(client.id_token_alg).map_err(|e| Rejection::internal().with_internal("keys", e.to_string()))?;
    let jti = crate::tokens::random_id().map_err(|_| Rejection::internal())?;
    let mut claims = json!({
        "iss": settings.issuer,
        "sub": sub,
        "aud": client.id,
        "iat": now,
        "exp": now + LOGOUT_TOKEN_LIFETIME,
        "jti": jti,
        "events": { BACKCHANNEL_EVENT: {} },
    });
    if let (Some(sid), Value::Object(m)) = (sid, &mut claims) {
        m.insert("sid".into(), Value::String(sid.to_string()));
    }
    key.sign_jwt_typed(&claims, LOGOUT_TOKEN_TYPE)
        .map_err(|e| Rejection::internal().with_internal("signing", e.to_string()))
}

/// Back-Channel Logout 1.0 §2.2: an absolute `http`/`https` URI with a host and without a
/// fragment (a query is kept).
pub fn validate_backchannel_uri(uri: &str) -> Result<(), String> {
    if uri.contains('#') {
        return Err("must not contain a fragment (Back-Channel Logout 1.0 §2.2)".into());
    }
    let parsed = url::Url::parse(uri).map_err(|e| format!("not an absolute URI: {e}"))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host().is_none() {
        return Err("must be an http or https URL with a host: Candor posts the logout token to it".into());
    }
    Ok(())
}

/// Where the browser goes after logout: the registered URI with `state` added (§3).
pub fn redirect_after(uri: &str, state: Option<&str>) -> String {
    match state {
        Some(s) => crate::authorize::redirect_to(uri, &[("state", s)]),
        None => uri.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys;
    use crate::model::{ClientLogout, SigningAlg};
    use crate::params::Encoding;

    const ISSUER: &str = "https://id.example";

    fn ring() -> KeyRing {
        KeyRing::from_records(&[
            keys::generate(SigningAlg::RS256, 1).unwrap(),
            keys::generate(SigningAlg::ES256, 1).unwrap(),
        ])
        .unwrap()
    }

    fn id_token(ring: &KeyRing, claims: Value) -> String {
        ring.active(SigningAlg::RS256).unwrap().sign_jwt(&claims).unwrap()
    }

    fn params(q: &str) -> Params {
        Params::from_urlencoded(q.as_bytes(), Encoding::Query).unwrap()
    }

    fn client(uris: &[&str]) -> Client {
        let mut c = crate::authorize::tests::confidential_client();
        c.logout = ClientLogout {
            post_logout_redirect_uris: uris.iter().map(|u| u.to_string()).collect(),
            ..Default::default()
        };
        c
    }

    #[test]
    fn an_expired_id_token_of_this_provider_is_a_hint_and_names_the_client() {
        let ring = ring();
        let token = id_token(&ring, json!({"iss": ISSUER, "sub": "u1", "aud": "app", "exp": 1, "sid": "s1"}));
        let req = read(&params(&format!("id_token_hint={token}&state=xyz")), &ring, ISSUER).unwrap();
        assert_eq!(req.hint, Some(Hint { sub: "u1".into(), client_id: "app".into(), sid: Some("s1".into()) }));
        assert_eq!(req.client_id.as_deref(), Some("app"));
        assert_eq!(req.state.as_deref(), Some("xyz"));
    }

    #[test]
    fn a_hint_from_elsewhere_is_refused_with_what_is_wrong_with_it() {
        let ring = ring();
        let other = KeyRing::from_records(&[keys::generate(SigningAlg::RS256, 1).unwrap()]).unwrap();
        let foreign = id_token(&other, json!({"iss": ISSUER, "sub": "u1", "aud": "app"}));
        let r = read(&params(&format!("id_token_hint={foreign}")), &ring, ISSUER).unwrap_err();
        assert_eq!(r.reason, Reason::IdTokenHintInvalid);
        assert!(r.facts.get("problem").unwrap().as_str().unwrap().contains("not signed by this provider"));

        let wrong_issuer = id_token(&ring, json!({"iss": "https://other.example", "sub": "u1", "aud": "app"}));
        let r = read(&params(&format!("id_token_hint={wrong_issuer}")), &ring, ISSUER).unwrap_err();
        assert_eq!(r.facts.get("defect").unwrap(), "issuer");

        let access = ring
            .active(SigningAlg::RS256)
            .unwrap()
            .sign_jwt_typed(&json!({"iss": ISSUER, "sub": "u1", "aud": "api"}), "at+jwt")
            .unwrap();
        let r = read(&params(&format!("id_token_hint={access}")), &ring, ISSUER).unwrap_err();
        assert_eq!(r.facts.get("defect").unwrap(), "access_token");

        // A logout token the client received, sent back as the hint.
        let sid = Some("s1");
        let logout = logout_token(&ring, &Settings::new(ISSUER), &client(&[]), "u1", sid, 0).unwrap();
        let r = read(&params(&format!("id_token_hint={logout}")), &ring, ISSUER).unwrap_err();
        assert_eq!(r.facts.get("defect").unwrap(), "logout_token");

        let r = read(&params("id_token_hint=not-a-jwt"), &ring, ISSUER).unwrap_err();
        assert_eq!(r.facts.get("defect").unwrap(), "malformed");
    }

    #[test]
    fn a_client_id_must_agree_with_the_hint_and_a_redirect_needs_a_client() {
        let ring = ring();
        let token = id_token(&ring, json!({"iss": ISSUER, "sub": "u1", "aud": ["app"], "azp": "app"}));
        let r = read(&params(&format!("id_token_hint={token}&client_id=other")), &ring, ISSUER).unwrap_err();
        assert_eq!(r.reason, Reason::IdTokenHintClientMismatch);
        let r = read(&params("post_logout_redirect_uri=https://app.example/bye"), &ring, ISSUER).unwrap_err();
        assert_eq!(r.reason, Reason::PostLogoutRedirectUriWithoutClient);
        let r = read(&params("client_id=app&client_id=app"), &ring, ISSUER).unwrap_err();
        assert_eq!(r.reason, Reason::ParameterDuplicated);
        let ok =
            read(&params("client_id=app&post_logout_redirect_uri=https://app.example/bye"), &ring, ISSUER).unwrap();
        assert_eq!(ok.client_id.as_deref(), Some("app"));
    }

    #[test]
    fn the_redirect_must_be_registered_and_a_near_miss_is_named() {
        let ring = ring();
        let req =
            read(&params("client_id=app&post_logout_redirect_uri=https://app.example/bye/"), &ring, ISSUER).unwrap();
        let r = check_redirect(&req, &client(&["https://app.example/bye"])).unwrap_err();
        assert_eq!(r.reason, Reason::PostLogoutRedirectUriNotRegistered);
        assert_eq!(r.facts.get("difference").unwrap(), "trailing_slash");
        let r = check_redirect(&req, &client(&[])).unwrap_err();
        assert_eq!(r.facts.get("registered").unwrap(), "none");
        let ok = check_redirect(&req, &client(&["https://app.example/bye/"])).unwrap();
        assert_eq!(ok.as_deref(), Some("https://app.example/bye/"));
        assert_eq!(redirect_after("https://app.example/bye?x=1", Some("a b")), "https://app.example/bye?x=1&state=a+b");
    }

    #[test]
    fn only_an_id_token_of_this_very_session_ends_it_without_asking() {
        let session = SessionRecord {
            hash: "h".into(),
            sid: Some("s1".into()),
            user_id: "u1".into(),
            auth_time: 1,
            created_at: 1,
            expires_at: 2,
        };
        let hint =
            |sub: &str, sid: Option<&str>| Hint { sub: sub.into(), client_id: "app".into(), sid: sid.map(Into::into) };
        assert_eq!(confirmation(Some(&hint("u1", Some("s1"))), &session), None);
        assert_eq!(confirmation(None, &session), Some(Confirm::NoHint));
        assert_eq!(confirmation(Some(&hint("u1", Some("s0"))), &session), Some(Confirm::OtherSession));
        assert_eq!(confirmation(Some(&hint("u1", None)), &session), Some(Confirm::OtherSession));
        assert_eq!(confirmation(Some(&hint("u2", Some("s1"))), &session), Some(Confirm::OtherUser));
    }

    #[test]
    fn a_logout_token_has_the_claims_and_type_back_channel_logout_requires() {
        let ring = ring();
        let settings = Settings::new(ISSUER);
        let c = client(&[]);
        let token = logout_token(&ring, &settings, &c, "u1", Some("s1"), 1000).unwrap();
        let parsed = jws::parse(&token).unwrap();
        assert_eq!(parsed.header["typ"], LOGOUT_TOKEN_TYPE);
        let jwks = ring.jwks(1000, 0);
        jws::verify(&parsed, &jwks).unwrap();
        let c = &parsed.claims;
        assert_eq!(
            (c["iss"].as_str(), c["aud"].as_str(), c["sub"].as_str(), c["sid"].as_str()),
            (Some(ISSUER), Some(c["aud"].as_str().unwrap()), Some("u1"), Some("s1"))
        );
        assert_eq!(c["exp"].as_i64(), Some(1000 + LOGOUT_TOKEN_LIFETIME));
        assert!(c["events"][BACKCHANNEL_EVENT].is_object());
        assert!(c["jti"].as_str().is_some_and(|j| !j.is_empty()));
        assert!(c.get("nonce").is_none());
    }
}
