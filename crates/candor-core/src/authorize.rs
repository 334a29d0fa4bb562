//! The authorization endpoint's rules (RFC 6749 §4.1.1, OIDC Core §3.1.2): validating the
//! request, deciding whether the user must log in or consent, and issuing the code.

use crate::clock::UnixTime;
use crate::model::{Client, CodeRecord, GrantType};
use crate::params::Params;
use crate::pkce::CodeChallenge;
use crate::redirect_uri;
use crate::rejection::{Reason, Rejection};
use crate::scope::{self, Scope};
use crate::settings::Settings;
use crate::tokens::{Secret, SecretKind, ordered_id};
use serde::{Deserialize, Serialize};

/// A validated authorization request: everything needed to finish it after login and consent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuthorizationRequest {
    pub client_id: String,
    pub redirect_uri: String,
    pub redirect_uri_sent: bool,
    pub scope: String,
    /// The resources (RFC 8707) the tokens of the grant may be for.
    #[serde(default)]
    pub resources: Vec<String>,
    /// The DPoP key the code is bound to (RFC 9449 §10).
    #[serde(default)]
    pub dpop_jkt: Option<String>,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub prompt_none: bool,
    pub prompt_login: bool,
    pub prompt_consent: bool,
    pub max_age: Option<i64>,
    pub code_challenge: Option<CodeChallenge>,
    /// When the request arrived: `prompt=login` is satisfied only by a login after this.
    pub received_at: UnixTime,
}

/// Where a rejection at /authorize goes.
#[derive(Debug, Clone, PartialEq)]
pub enum AuthorizeFailure {
    /// RFC 6749 §4.1.2.1: with an unknown client or an invalid redirect URI the server "MUST NOT
    /// automatically redirect the user-agent to the invalid redirection URI": show a page.
    Page(Rejection),
    /// Every other error goes back to the client's redirect URI.
    Redirect { rejection: Rejection, redirect_uri: String, state: Option<String> },
}

impl AuthorizeFailure {
    pub fn rejection(&self) -> &Rejection {
        match self {
            AuthorizeFailure::Page(r) => r,
            AuthorizeFailure::Redirect { rejection, .. } => rejection,
        }
    }
}

/// The longest `state` or `nonce` accepted.
pub(crate) const MAX_STATE_LEN: usize = 2048;

/// Validates the client and redirect URI first, then the rest of the request.
pub fn validate(
    params: &Params,
    client: Option<&Client>,
    now: UnixTime,
) -> Result<AuthorizationRequest, AuthorizeFailure> {
    let page = AuthorizeFailure::Page;
    let client_id = params.get("client_id").map_err(page)?.ok_or_else(|| page(Rejection::missing("client_id")))?;
    let Some(client) = client else {
        return Err(page(Rejection::new(Reason::ClientUnknown).with_detail("client_id", client_id.to_string())));
    };
    let requested_uri = params.get("redirect_uri").map_err(page)?;
    let (redirect_uri, redirect_uri_sent) = match requested_uri {
        Some(uri) => {
            if !client.redirect_uris.iter().any(|r| redirect_uri::matches_registered(uri, r)) {
                let mut rej = Rejection::new(Reason::RedirectUriNotRegistered).with_detail("received", uri.to_string());
                if let Some((closest, difference)) = redirect_uri::closest(uri, &client.redirect_uris) {
                    rej = rej
                        .with_detail("registered", client.redirect_uris.join(" "))
                        .with_detail("closest_registered", closest.to_string())
                        .with("difference", difference.as_str());
                }
                return Err(page(rej));
            }
            (uri.to_string(), true)
        }
        None => match client.redirect_uris.as_slice() {
            [only] => (only.clone(), false),
            [] => return Err(page(Rejection::new(Reason::RedirectUriNotRegistered).with("registered", "none"))),
            _ => {
                return Err(page(
                    Rejection::new(Reason::RedirectUriRequired).with("registered_count", client.redirect_uris.len()),
                ));
            }
        },
    };
    // From here on, errors are sent back to the (now trusted) redirect URI, with the state;
    // a state that cannot be used (sent twice, too long, a control character) is refused, not
    // dropped, and not echoed.
    let state_param = params.get("state");
    let state = state_param.as_ref().ok().copied().flatten().map(str::to_string);
    let fail = |rejection: Rejection| AuthorizeFailure::Redirect {
        rejection,
        redirect_uri: redirect_uri.clone(),
        state: state.clone(),
    };
    if let Err(rejection) = state_param {
        return Err(fail(rejection));
    }
    if let Some(dup) = params.first_duplicate() {
        return Err(fail(Rejection::duplicated(dup)));
    }
    if let Some(s) = &state
        && s.len() > MAX_STATE_LEN
    {
        return Err(fail(Rejection::invalid("state", format!("{} bytes, at most {MAX_STATE_LEN}", s.len()))));
    }
    let response_type =
        params.get("response_type").map_err(fail)?.ok_or_else(|| fail(Rejection::missing("response_type")))?;
    if response_type != "code" {
        return Err(fail(
            Rejection::new(Reason::ResponseTypeUnsupported)
                .with("response_type", response_type.to_string())
                .with("supported", "code"),
        ));
    }
    if let Some(mode) = params.get("response_mode").map_err(fail)?
        && mode != "query"
    {
        return Err(fail(Rejection::invalid("response_mode", format!("{mode:?} is not supported; use query"))));
    }
    for unsupported in ["request", "request_uri"] {
        if params.get(unsupported).map_err(fail)?.is_some() {
            return Err(fail(Rejection::invalid(
                if unsupported == "request" { "request" } else { "request_uri" },
                "request objects are not supported (OIDC Core §6)",
            )));
        }
    }
    if !client.may_use(GrantType::AuthorizationCode) {
        return Err(fail(
            Rejection::new(Reason::GrantTypeNotAllowedForClient)
                .with("grant_type", "authorization_code")
                .with("allowed", client.grant_types.iter().map(|g| g.as_str()).collect::<Vec<_>>().join(" ")),
        ));
    }
    let scope = Scope::parse(params.get("scope").map_err(fail)?.unwrap_or("")).map_err(fail)?;
    scope.require_allowed(&Scope::from_stored(&client.scopes.join(" "))).map_err(fail)?;
    if scope.contains(scope::OPENID) && !redirect_uri_sent {
        // OIDC Core §3.1.2.1: redirect_uri is REQUIRED in an authentication request.
        return Err(fail(
            Rejection::missing("redirect_uri")
                .with("rule", "OIDC Core 3.1.2.1 requires redirect_uri when scope includes openid"),
        ));
    }
    let resources = crate::resource::requested(params).map_err(fail)?;
    crate::resource::check_allowed(client, &resources).map_err(fail)?;
    let dpop_jkt = match params.get("dpop_jkt").map_err(fail)? {
        Some(j) if !crate::dpop::is_thumbprint(j) => {
            return Err(fail(Rejection::invalid(
                "dpop_jkt",
                "not a JWK SHA-256 thumbprint (RFC 7638: 43 base64url characters)",
            )));
        }
        other => other.map(str::to_string),
    };
    let nonce = params.get("nonce").map_err(fail)?.map(str::to_string);
    if let Some(n) = &nonce
        && n.len() > MAX_STATE_LEN
    {
        return Err(fail(Rejection::invalid("nonce", format!("{} bytes, at most {MAX_STATE_LEN}", n.len()))));
    }
    let (mut prompt_none, mut prompt_login, mut prompt_consent) = (false, false, false);
    if let Some(prompt) = params.get("prompt").map_err(fail)? {
        for value in prompt.split(' ').filter(|v| !v.is_empty()) {
            match value {
                "none" => prompt_none = true,
                "login" => prompt_login = true,
                "consent" => prompt_consent = true,
                "select_account" => {}
                other => return Err(fail(Rejection::invalid("prompt", format!("unknown value {other:?}")))),
            }
        }
        if prompt_none && (prompt_login || prompt_consent) {
            // OIDC Core §3.1.2.1: "If this parameter contains none with any other value, an error is returned."
            return Err(fail(Rejection::invalid("prompt", "none cannot be combined with other values")));
        }
    }
    let max_age = match params.get("max_age").map_err(fail)? {
        None => None,
        Some(v) => Some(v.parse::<i64>().ok().filter(|n| *n >= 0).ok_or_else(|| {
            fail(Rejection::invalid("max_age", format!("{v:?} is not a non-negative number of seconds")))
        })?),
    };
    let challenge = params.get("code_challenge").map_err(fail)?;
    let method = params.get("code_challenge_method").map_err(fail)?;
    let code_challenge = match (challenge, method) {
        (Some(c), m) => Some(CodeChallenge::parse(c, m, client.allow_plain_pkce).map_err(fail)?),
        (None, Some(_)) => {
            return Err(fail(
                Rejection::missing("code_challenge")
                    .with("problem", "code_challenge_method was sent without code_challenge"),
            ));
        }
        (None, None) if client.pkce_required() => {
            return Err(fail(
                Rejection::new(Reason::PkceChallengeRequired)
                    .with("client_type", if client.is_public() { "public" } else { "confidential" }),
            ));
        }
        (None, None) => None,
    };
    Ok(AuthorizationRequest {
        client_id: client.id.clone(),
        redirect_uri,
        redirect_uri_sent,
        scope: scope.to_string(),
        resources,
        dpop_jkt,
        state,
        nonce,
        prompt_none,
        prompt_login,
        prompt_consent,
        max_age,
        code_challenge,
        received_at: now,
    })
}

/// The logged-in user as the authorization endpoint sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LoggedIn<'a> {
    pub user_id: &'a str,
    pub auth_time: UnixTime,
    /// The user logged in during this authorization request (not an earlier session).
    pub during_this_request: bool,
}

/// What has to happen before a code can be issued. Login and consent are outcomes, not errors.
#[derive(Debug, Clone, PartialEq)]
pub enum Next {
    Login,
    Consent { missing: Vec<String> },
    Issue { user_id: String, auth_time: UnixTime },
    Fail(Rejection),
}

/// Decides the next step from the session, the consent on record and the prompt.
/// `consented_now` is true right after the user approved the consent page for this request.
pub fn decide(
    req: &AuthorizationRequest,
    login: Option<LoggedIn<'_>>,
    consented: &[String],
    consented_now: bool,
    now: UnixTime,
) -> Next {
    let fresh_enough = |l: &LoggedIn<'_>| {
        // OIDC Core §3.1.2.1 prompt=login: "SHOULD prompt the End-User for reauthentication":
        // only a login made for this very request counts, however recent an older session is.
        let after_prompt = !req.prompt_login || l.during_this_request;
        let within_max_age = req.max_age.is_none_or(|m| now - l.auth_time <= m);
        after_prompt && within_max_age
    };
    let Some(login) = login.filter(fresh_enough) else {
        if req.prompt_none {
            return Next::Fail(
                Rejection::new(Reason::LoginRequired)
                    .with("max_age", req.max_age.map_or(serde_json::Value::Null, Into::into)),
            );
        }
        return Next::Login;
    };
    let requested = Scope::from_stored(&req.scope);
    let missing: Vec<String> =
        requested.iter().filter(|s| !consented.iter().any(|c| c == s)).map(str::to_string).collect();
    let needs_consent = !consented_now && (req.prompt_consent || !missing.is_empty());
    if needs_consent {
        if req.prompt_none {
            return Next::Fail(
                Rejection::new(Reason::ConsentRequired).with("scopes_without_consent", missing.join(" ")),
            );
        }
        return Next::Consent { missing };
    }
    Next::Issue { user_id: login.user_id.to_string(), auth_time: login.auth_time }
}

/// Issues the code for a completed request. The caller stores the record before redirecting.
pub fn issue_code(
    req: &AuthorizationRequest,
    user_id: &str,
    auth_time: UnixTime,
    sid: Option<&str>,
    settings: &Settings,
    now: UnixTime,
    trace: &str,
) -> Result<(Secret, CodeRecord), Rejection> {
    let secret = Secret::generate(SecretKind::AuthorizationCode).map_err(|_| Rejection::internal())?;
    let grant_id = ordered_id().map_err(|_| Rejection::internal())?;
    let record = CodeRecord {
        hash: secret.hash.clone(),
        grant_id,
        client_id: req.client_id.clone(),
        user_id: user_id.to_string(),
        redirect_uri: req.redirect_uri.clone(),
        redirect_uri_sent: req.redirect_uri_sent,
        scope: req.scope.clone(),
        resources: req.resources.clone(),
        nonce: req.nonce.clone(),
        code_challenge: req.code_challenge.clone(),
        dpop_jkt: req.dpop_jkt.clone(),
        sid: sid.map(str::to_string),
        auth_time,
        issued_at: now,
        expires_at: now + settings.code_lifetime,
        redeemed_at: None,
        redeemed_trace: None,
        issued_trace: trace.to_string(),
        session_ended_at: None,
    };
    Ok((secret, record))
}

/// Appends response parameters to the redirect URI, keeping its own query (RFC 6749 §3.1.2).
pub fn redirect_to(redirect_uri: &str, params: &[(&str, &str)]) -> String {
    let mut out = redirect_uri.to_string();
    let mut sep = if redirect_uri.contains('?') { '&' } else { '?' };
    for (k, v) in params {
        out.push(sep);
        out.push_str(&url::form_urlencoded::byte_serialize(k.as_bytes()).collect::<String>());
        out.push('=');
        out.push_str(&url::form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>());
        sep = '&';
    }
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::model::{AuthMethod, SigningAlg};
    use crate::params::Encoding;

    /// A confidential test client, `app`, redirecting to https://app.example/cb.
    pub(crate) fn confidential_client() -> Client {
        client(false)
    }

    fn client(public: bool) -> Client {
        Client {
            id: "app".into(),
            name: "App".into(),
            secret_hash: None,
            redirect_uris: vec!["https://app.example/cb".into()],
            grant_types: vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
            auth_method: if public { AuthMethod::None } else { AuthMethod::ClientSecretBasic },
            scopes: scope::STANDARD.iter().map(|s| s.to_string()).collect(),
            require_pkce: true,
            allow_plain_pkce: false,
            id_token_alg: SigningAlg::RS256,
            always_issue_refresh_token: false,
            created_at: 0,
            jwks: None,
            require_par: false,
            access_token_format: crate::model::TokenFormat::Opaque,
            resources: vec!["https://api.example/".into()],
            require_dpop: false,
            logout: Default::default(),
            registration_token_hash: None,
            secret_sealed: None,
        }
    }

    fn params(q: &str) -> Params {
        Params::from_urlencoded(q.as_bytes(), Encoding::Query).unwrap()
    }

    const CH: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    #[test]
    fn unknown_clients_and_unregistered_uris_get_a_page_never_a_redirect() {
        let r = validate(&params("client_id=x&response_type=code"), None, 0).unwrap_err();
        assert!(matches!(r, AuthorizeFailure::Page(ref j) if j.reason == Reason::ClientUnknown));
        let r = validate(&params("client_id=app&redirect_uri=https://evil.example/cb"), Some(&client(false)), 0)
            .unwrap_err();
        assert!(matches!(r, AuthorizeFailure::Page(ref j) if j.reason == Reason::RedirectUriNotRegistered));
    }

    #[test]
    fn other_errors_redirect_with_state() {
        let q = format!(
            "client_id=app&redirect_uri=https://app.example/cb&response_type=token&state=s1&code_challenge={CH}&code_challenge_method=S256"
        );
        match validate(&params(&q), Some(&client(false)), 0).unwrap_err() {
            AuthorizeFailure::Redirect { rejection, state, .. } => {
                assert_eq!(rejection.reason, Reason::ResponseTypeUnsupported);
                assert_eq!(state.as_deref(), Some("s1"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn public_clients_must_send_a_challenge() {
        let mut c = client(true);
        c.require_pkce = false;
        let r = validate(&params("client_id=app&redirect_uri=https://app.example/cb&response_type=code"), Some(&c), 0)
            .unwrap_err();
        assert_eq!(r.rejection().reason, Reason::PkceChallengeRequired);
    }

    #[test]
    fn prompt_none_without_session_is_login_required_and_prompt_login_needs_a_fresh_login() {
        let q = format!(
            "client_id=app&redirect_uri=https://app.example/cb&response_type=code&scope=openid&prompt=none&code_challenge={CH}&code_challenge_method=S256"
        );
        let req = validate(&params(&q), Some(&client(false)), 100).unwrap();
        assert!(matches!(decide(&req, None, &[], false, 100), Next::Fail(ref r) if r.reason == Reason::LoginRequired));
        let q = format!(
            "client_id=app&redirect_uri=https://app.example/cb&response_type=code&scope=openid&prompt=login&code_challenge={CH}&code_challenge_method=S256"
        );
        let req = validate(&params(&q), Some(&client(false)), 100).unwrap();
        let old = LoggedIn { user_id: "u", auth_time: 100, during_this_request: false };
        assert_eq!(decide(&req, Some(old), &["openid".into()], false, 100), Next::Login);
        let fresh = LoggedIn { user_id: "u", auth_time: 100, during_this_request: true };
        assert!(matches!(decide(&req, Some(fresh), &["openid".into()], false, 100), Next::Issue { .. }));
    }

    #[test]
    fn resources_are_checked_and_kept_and_only_registered_ones_pass() {
        let base = format!(
            "client_id=app&redirect_uri=https://app.example/cb&response_type=code&code_challenge={CH}&code_challenge_method=S256"
        );
        let q = format!("{base}&resource=https%3A%2F%2Fapi.example%2F&resource=https%3A%2F%2Fapi.example%2F");
        let req = validate(&params(&q), Some(&client(false)), 0).unwrap();
        assert_eq!(req.resources, ["https://api.example/"]);
        let q = format!("{base}&resource=https%3A%2F%2Fother.example%2F&state=s");
        match validate(&params(&q), Some(&client(false)), 0).unwrap_err() {
            AuthorizeFailure::Redirect { rejection, state, .. } => {
                assert_eq!(
                    (rejection.reason, rejection.reason.error()),
                    (Reason::ResourceNotAllowed, "invalid_target")
                );
                assert_eq!(state.as_deref(), Some("s"));
            }
            other => panic!("{other:?}"),
        }
        let q = format!("{base}&resource=api.example");
        assert_eq!(
            validate(&params(&q), Some(&client(false)), 0).unwrap_err().rejection().reason,
            Reason::ResourceInvalid
        );
    }

    #[test]
    fn redirect_keeps_the_registered_query() {
        assert_eq!(
            redirect_to("https://a/cb?x=1", &[("code", "c"), ("state", "a b")]),
            "https://a/cb?x=1&code=c&state=a+b"
        );
    }
}
