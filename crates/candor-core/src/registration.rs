//! Dynamic client registration (RFC 7591) and its management protocol (RFC 7592): client
//! metadata read into a `Client`, each refusal naming the field and the problem, and a `Client`
//! written back as the metadata Candor registered.
//!
//! Fields Candor does not know are ignored (RFC 7591 §2: the server "MUST ignore any client
//! metadata sent by the client that it does not understand") and left out of the response, so
//! the response says exactly what was registered.

use crate::clock::UnixTime;
use crate::model::{AuthMethod, Client, ClientLogout, GrantType, SigningAlg, TokenFormat};
use crate::rejection::{Reason, Rejection};
use crate::settings::RegistrationSettings;
use crate::{logout, redirect_uri, scope};
use serde_json::{Map, Value, json};

/// Where clients register; a registered client is managed at `REGISTRATION_PATH/{client_id}`.
pub const REGISTRATION_PATH: &str = "/register";
/// The longest `client_name` kept.
const MAX_NAME_LEN: usize = 200;
/// How many redirect URIs (and post-logout redirect URIs) one registration may carry.
const MAX_URIS: usize = 20;
/// Fields the server manages, which an update must not send (RFC 7592 §2.2).
const SERVER_MANAGED: [&str; 4] =
    ["registration_access_token", "registration_client_uri", "client_id_issued_at", "client_secret_expires_at"];

fn invalid(field: &str, problem: impl Into<String>) -> Rejection {
    Rejection::new(Reason::ClientMetadataInvalid).with("field", field.to_string()).with("problem", problem.into())
}

fn uri_invalid(field: &str, uri: Option<&str>, problem: impl Into<String>) -> Rejection {
    let r = Rejection::new(Reason::RedirectUriInvalid).with("field", field.to_string()).with("problem", problem.into());
    match uri {
        Some(u) => r.with_detail("uri", u.to_string()),
        None => r,
    }
}

/// The metadata object, field by field, with type errors named.
struct Metadata<'a>(&'a Map<String, Value>);

impl<'a> Metadata<'a> {
    fn string(&self, field: &str) -> Result<Option<&'a str>, Rejection> {
        match self.0.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.as_str())),
            Some(_) => Err(invalid(field, "must be a string")),
        }
    }

    fn strings(&self, field: &str) -> Result<Option<Vec<&'a str>>, Rejection> {
        match self.0.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| v.as_str().ok_or_else(|| invalid(field, "must be an array of strings")))
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(_) => Err(invalid(field, "must be an array of strings")),
        }
    }

    fn flag(&self, field: &str) -> Result<bool, Rejection> {
        match self.0.get(field) {
            None | Some(Value::Null) => Ok(false),
            Some(Value::Bool(b)) => Ok(*b),
            Some(_) => Err(invalid(field, "must be true or false")),
        }
    }
}

fn uris(m: &Metadata<'_>, field: &str) -> Result<Vec<String>, Rejection> {
    let list = m.strings(field)?.unwrap_or_default();
    if list.len() > MAX_URIS {
        return Err(uri_invalid(field, None, format!("{} URIs, at most {MAX_URIS}", list.len())));
    }
    for uri in &list {
        redirect_uri::validate_for_registration(uri).map_err(|e| uri_invalid(field, Some(uri), e))?;
    }
    Ok(list.into_iter().map(str::to_string).collect())
}

/// Reads client metadata (RFC 7591 §2, OIDC Dynamic Client Registration 1.0 §2, and the
/// registration fields of RFC 9126, RFC 9449 and the logout specifications) into a client with
/// id `id`, made at `now`. The secret and the registration token are the caller's to set.
pub fn read(body: &Value, id: &str, now: UnixTime, policy: &RegistrationSettings) -> Result<Client, Rejection> {
    let Value::Object(map) = body else {
        return Err(invalid("(body)", "the body must be a JSON object of client metadata"));
    };
    let m = Metadata(map);
    if map.contains_key("software_statement") {
        return Err(Rejection::new(Reason::SoftwareStatementUnsupported)
            .with("problem", "no software statement issuer is trusted here; send the metadata as plain fields"));
    }
    if map.contains_key("jwks_uri") {
        return Err(invalid("jwks_uri", "keys are not fetched from the client: send the public keys as jwks"));
    }

    // RFC 7591 §2: grant_types defaults to authorization_code and response_types to code; here
    // response_types defaults to none for a client without that grant, which the RFC's default
    // would make inconsistent (§2.1) and refuse for no benefit.
    let grant_types = match m.strings("grant_types")? {
        None => vec![GrantType::AuthorizationCode],
        Some(list) => {
            let mut grants = Vec::new();
            for g in list {
                let grant = GrantType::ALL.into_iter().find(|t| t.as_str() == g).ok_or_else(|| {
                    let supported: Vec<&str> = GrantType::ALL.iter().map(|t| t.as_str()).collect();
                    invalid("grant_types", format!("{g:?} is not supported; supported: {}", supported.join(", ")))
                })?;
                if !grants.contains(&grant) {
                    grants.push(grant);
                }
            }
            grants
        }
    };
    let code_grant = grant_types.contains(&GrantType::AuthorizationCode);
    let response_types = m.strings("response_types")?.unwrap_or_else(|| if code_grant { vec!["code"] } else { vec![] });
    if let Some(other) = response_types.iter().find(|t| **t != "code") {
        return Err(invalid(
            "response_types",
            format!("{other:?} is not supported: only the authorization code flow (\"code\") is (RFC 9700 §2.1.2)"),
        ));
    }
    // §2.1: "the authorization server MUST ensure they are consistent".
    if code_grant != response_types.contains(&"code") {
        return Err(invalid(
            "response_types",
            "response_types [\"code\"] and the authorization_code grant go together: send both or neither (RFC 7591 §2.1)",
        ));
    }

    let redirect_uris = uris(&m, "redirect_uris")?;
    if code_grant && redirect_uris.is_empty() {
        return Err(uri_invalid("redirect_uris", None, "the authorization_code grant needs at least one redirect URI"));
    }

    let auth_method = match m.string("token_endpoint_auth_method")? {
        None => AuthMethod::ClientSecretBasic,
        Some(s) => AuthMethod::parse(s).ok_or_else(|| {
            let supported: Vec<&str> = AuthMethod::ALL.iter().map(|a| a.as_str()).collect();
            invalid(
                "token_endpoint_auth_method",
                format!("{s:?} is not supported; supported: {}", supported.join(", ")),
            )
        })?,
    };
    if auth_method == AuthMethod::None && grant_types.contains(&GrantType::ClientCredentials) {
        return Err(invalid(
            "grant_types",
            "client_credentials needs a client that authenticates; token_endpoint_auth_method is none",
        ));
    }
    let jwks = match (map.get("jwks"), auth_method) {
        (None | Some(Value::Null), AuthMethod::PrivateKeyJwt) => {
            return Err(invalid("jwks", "private_key_jwt needs the client's public keys as jwks"));
        }
        (None | Some(Value::Null), _) => None,
        (Some(keys), AuthMethod::PrivateKeyJwt) => {
            crate::jws::check_public_jwks(keys).map_err(|e| invalid("jwks", e))?;
            Some(keys.clone())
        }
        (Some(_), other) => {
            return Err(invalid(
                "jwks",
                format!("keys are for private_key_jwt; token_endpoint_auth_method is {}", other.as_str()),
            ));
        }
    };

    let name = match m.string("client_name")? {
        None => id.to_string(),
        Some(n) if n.trim().is_empty() => return Err(invalid("client_name", "empty")),
        Some(n) if n.chars().count() > MAX_NAME_LEN => {
            return Err(invalid("client_name", format!("longer than {MAX_NAME_LEN} characters")));
        }
        Some(n) if n.chars().any(char::is_control) => return Err(invalid("client_name", "holds a control character")),
        Some(n) => n.to_string(),
    };

    let scopes = match m.string("scope")? {
        None => scope::STANDARD.iter().map(|s| s.to_string()).collect(),
        Some(s) => {
            let mut scopes: Vec<String> = Vec::new();
            for token in s.split(' ').filter(|t| !t.is_empty()) {
                if !scope::STANDARD.contains(&token) {
                    return Err(invalid(
                        "scope",
                        format!(
                            "{token:?} cannot be registered here; registered clients get scopes of: {}",
                            scope::STANDARD.join(" ")
                        ),
                    ));
                }
                if !scopes.iter().any(|t| t == token) {
                    scopes.push(token.to_string());
                }
            }
            scopes
        }
    };

    let id_token_alg = match m.string("id_token_signed_response_alg")? {
        None => SigningAlg::RS256,
        Some(a) => SigningAlg::parse(a).ok_or_else(|| {
            invalid("id_token_signed_response_alg", format!("{a:?} is not supported; supported: RS256, ES256, EdDSA"))
        })?,
    };

    let post_logout_redirect_uris = uris(&m, "post_logout_redirect_uris")?;
    let backchannel_uri = match m.string("backchannel_logout_uri")? {
        None => None,
        Some(_) if !policy.backchannel_logout => {
            return Err(invalid(
                "backchannel_logout_uri",
                "this provider does not take back-channel logout URIs from registration (an administrator registers them)",
            ));
        }
        Some(u) => {
            logout::validate_backchannel_uri(u).map_err(|e| invalid("backchannel_logout_uri", e))?;
            Some(u.to_string())
        }
    };
    let backchannel_session_required = m.flag("backchannel_logout_session_required")?;
    if backchannel_session_required && backchannel_uri.is_none() {
        return Err(invalid("backchannel_logout_session_required", "there is no backchannel_logout_uri"));
    }

    Ok(Client {
        id: id.to_string(),
        name,
        secret_hash: None,
        redirect_uris,
        grant_types,
        auth_method,
        scopes,
        // Every registered client uses PKCE S256 (RFC 9700 §2.1.1).
        require_pkce: true,
        allow_plain_pkce: false,
        id_token_alg,
        always_issue_refresh_token: false,
        created_at: now,
        jwks,
        require_par: m.flag("require_pushed_authorization_requests")?,
        access_token_format: TokenFormat::Opaque,
        resources: Vec::new(),
        require_dpop: m.flag("dpop_bound_access_tokens")?,
        logout: ClientLogout { post_logout_redirect_uris, backchannel_uri, backchannel_session_required },
        registration_token_hash: None,
        secret_sealed: None,
    })
}

/// Checks an update's body against the client it replaces (RFC 7592 §2.2): it names the
/// client, it does not send the server-managed fields, and a `client_secret` it sends is the
/// client's. `secret_matches` says whether a given secret is the current one.
pub fn check_update(body: &Value, client_id: &str, secret_matches: impl Fn(&str) -> bool) -> Result<(), Rejection> {
    let Value::Object(map) = body else {
        return Err(invalid("(body)", "the body must be a JSON object of client metadata"));
    };
    match map.get("client_id") {
        Some(Value::String(id)) if id == client_id => {}
        Some(Value::String(id)) => {
            return Err(invalid("client_id", format!("{id:?} is not the client of this URI ({client_id:?})")));
        }
        Some(_) => return Err(invalid("client_id", "must be a string")),
        None => return Err(invalid("client_id", "an update must carry the client_id (RFC 7592 §2.2)")),
    }
    if let Some(field) = SERVER_MANAGED.iter().find(|f| map.contains_key(**f)) {
        return Err(invalid(field, "managed by the server: an update must not send it (RFC 7592 §2.2)"));
    }
    match map.get("client_secret") {
        None | Some(Value::Null) => Ok(()),
        Some(Value::String(s)) if secret_matches(s) => Ok(()),
        Some(_) => Err(invalid("client_secret", "not this client's secret; leave it out to keep the secret")),
    }
}

/// The metadata Candor registered for `client` (RFC 7591 §3.2.1), without secrets.
pub fn metadata(client: &Client) -> Value {
    let code_grant = client.grant_types.contains(&GrantType::AuthorizationCode);
    let mut m = json!({
        "client_id": client.id,
        "client_id_issued_at": client.created_at,
        "client_name": client.name,
        "redirect_uris": client.redirect_uris,
        "grant_types": client.grant_types.iter().map(|g| g.as_str()).collect::<Vec<_>>(),
        "response_types": if code_grant { vec!["code"] } else { vec![] },
        "token_endpoint_auth_method": client.auth_method.as_str(),
        "scope": client.scopes.join(" "),
        "id_token_signed_response_alg": client.id_token_alg.as_str(),
        "post_logout_redirect_uris": client.logout.post_logout_redirect_uris,
        "require_pushed_authorization_requests": client.require_par,
        "dpop_bound_access_tokens": client.require_dpop,
    });
    if let Value::Object(map) = &mut m {
        if let Some(jwks) = &client.jwks {
            map.insert("jwks".into(), jwks.clone());
        }
        if let Some(uri) = &client.logout.backchannel_uri {
            map.insert("backchannel_logout_uri".into(), json!(uri));
            map.insert("backchannel_logout_session_required".into(), json!(client.logout.backchannel_session_required));
        }
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open() -> RegistrationSettings {
        RegistrationSettings { enabled: true, initial_token_hash: None, backchannel_logout: false }
    }

    fn refused(body: Value) -> (Reason, String, String) {
        let r = read(&body, "c1", 10, &open()).unwrap_err();
        let get = |k: &str| r.facts.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
        (r.reason, get("field"), get("problem"))
    }

    #[test]
    fn defaults_follow_rfc_7591_and_every_client_uses_pkce() {
        let c =
            read(&json!({"redirect_uris": ["https://app.example/cb"], "ignored_field": 1}), "c1", 10, &open()).unwrap();
        assert_eq!(c.grant_types, vec![GrantType::AuthorizationCode]);
        assert_eq!(c.auth_method, AuthMethod::ClientSecretBasic);
        assert_eq!((c.name.as_str(), c.created_at, c.require_pkce), ("c1", 10, true));
        assert_eq!(c.scopes, vec!["openid", "profile", "email", "offline_access"]);
        let m = metadata(&c);
        assert_eq!(m["response_types"], json!(["code"]));
        assert!(m.get("ignored_field").is_none() && m.get("client_secret").is_none());
        let service =
            read(&json!({"grant_types": ["client_credentials"], "scope": "openid"}), "s", 0, &open()).unwrap();
        assert_eq!(metadata(&service)["response_types"], json!([]));
    }

    #[test]
    fn each_refusal_names_the_field_and_the_problem() {
        let cb = json!(["https://app.example/cb"]);
        assert_eq!(refused(json!([])).0, Reason::ClientMetadataInvalid);
        let (reason, field, _) = refused(json!({}));
        assert_eq!((reason, field.as_str()), (Reason::RedirectUriInvalid, "redirect_uris"));
        let (reason, _, problem) = refused(json!({"redirect_uris": ["https://app.example/cb#x"]}));
        assert!(reason == Reason::RedirectUriInvalid && problem.contains("fragment"), "{problem}");
        let (_, field, problem) = refused(json!({"redirect_uris": cb, "response_types": ["code id_token"]}));
        assert!(field == "response_types" && problem.contains("9700"), "{problem}");
        let (_, field, _) =
            refused(json!({"redirect_uris": cb, "grant_types": ["refresh_token"], "response_types": ["code"]}));
        assert_eq!(field, "response_types", "code without the authorization_code grant");
        let (_, field, problem) = refused(json!({"redirect_uris": cb, "grant_types": ["implicit"]}));
        assert!(field == "grant_types" && problem.contains("supported"), "{problem}");
        let (_, field, _) = refused(
            json!({"grant_types": ["client_credentials"], "response_types": [], "token_endpoint_auth_method": "none"}),
        );
        assert_eq!(field, "grant_types");
        let (_, field, _) = refused(json!({"redirect_uris": cb, "token_endpoint_auth_method": "private_key_jwt"}));
        assert_eq!(field, "jwks");
        let (_, field, _) = refused(json!({"redirect_uris": cb, "token_endpoint_auth_method": "tls_client_auth"}));
        assert_eq!(field, "token_endpoint_auth_method");
        let (_, field, _) = refused(json!({"redirect_uris": cb, "jwks_uri": "https://app.example/jwks"}));
        assert_eq!(field, "jwks_uri");
        let (_, field, problem) = refused(json!({"redirect_uris": cb, "scope": "openid admin"}));
        assert!(field == "scope" && problem.contains("\"admin\""), "{problem}");
        let (_, field, _) = refused(json!({"redirect_uris": "https://app.example/cb"}));
        assert_eq!(field, "redirect_uris", "a string is not a list");
        let (_, field, _) = refused(json!({"redirect_uris": cb, "backchannel_logout_uri": "https://app.example/bc"}));
        assert_eq!(field, "backchannel_logout_uri", "not from registration unless the operator allows it");
        let (_, field, _) = refused(json!({"redirect_uris": cb, "id_token_signed_response_alg": "none"}));
        assert_eq!(field, "id_token_signed_response_alg");
        assert_eq!(refused(json!({"software_statement": "eyJ..."})).0, Reason::SoftwareStatementUnsupported);
    }

    #[test]
    fn allowed_back_channel_uris_are_checked_and_round_trip() {
        let policy = RegistrationSettings { backchannel_logout: true, ..open() };
        let body = json!({
            "redirect_uris": ["https://app.example/cb"], "backchannel_logout_uri": "https://app.example/bc",
            "backchannel_logout_session_required": true, "post_logout_redirect_uris": ["https://app.example/bye"],
            "dpop_bound_access_tokens": true, "require_pushed_authorization_requests": true,
        });
        let c = read(&body, "c1", 0, &policy).unwrap();
        let m = metadata(&c);
        for k in [
            "backchannel_logout_uri",
            "backchannel_logout_session_required",
            "post_logout_redirect_uris",
            "dpop_bound_access_tokens",
        ] {
            assert_eq!(m[k], body[k], "{k}");
        }
        let bad =
            json!({"redirect_uris": ["https://app.example/cb"], "backchannel_logout_uri": "ftp://app.example/bc"});
        assert_eq!(read(&bad, "c1", 0, &policy).unwrap_err().reason, Reason::ClientMetadataInvalid);
    }

    #[test]
    fn an_update_names_its_client_and_leaves_server_fields_alone() {
        let ok = |s: &str| s == "cds_current";
        assert!(check_update(&json!({"client_id": "c1"}), "c1", ok).is_ok());
        assert!(check_update(&json!({"client_id": "c1", "client_secret": "cds_current"}), "c1", ok).is_ok());
        for (body, field) in [
            (json!({}), "client_id"),
            (json!({"client_id": "c2"}), "client_id"),
            (json!({"client_id": "c1", "registration_access_token": "x"}), "registration_access_token"),
            (json!({"client_id": "c1", "client_secret": "cds_old"}), "client_secret"),
        ] {
            let r = check_update(&body, "c1", ok).unwrap_err();
            assert_eq!(r.facts.get("field").and_then(Value::as_str), Some(field), "{body}");
        }
    }
}
