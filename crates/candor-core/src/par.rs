//! Pushed authorization requests (RFC 9126): the client sends its authorization request to
//! `/par` over the back channel, authenticated, and gets a `request_uri` to send the browser to
//! `/authorize` with instead of the parameters. The request is validated when it is pushed, so
//! its errors reach the client directly, not through the browser.

use crate::authorize::{self, AuthorizeFailure};
use crate::clock::{UnixTime, rfc3339};
use crate::model::{Client, PushedRequest};
use crate::params::{Encoding, Params};
use crate::rejection::{Reason, Rejection};
use crate::store::Taking;
use crate::tokens::{self, Secret, SecretKind, fingerprint, hash_secret};

/// RFC 9126 §2.2: the `request_uri` is a URN of this form.
pub const REQUEST_URI_PREFIX: &str = "urn:ietf:params:oauth:request_uri:";
/// Seconds a pushed request may wait for its use (RFC 9126 §2.2 suggests a short lifetime: the
/// browser is redirected at once).
pub const LIFETIME: i64 = 90;

/// Parameters that authenticate the client at /par and are no part of the authorization request.
const CLIENT_AUTHENTICATION: [&str; 3] = ["client_secret", "client_assertion", "client_assertion_type"];

/// A pushed request, accepted: the `request_uri` to return and the record to store.
#[derive(Debug)]
pub struct Pushed {
    pub request_uri: String,
    pub record: PushedRequest,
}

/// Validates a request pushed by the authenticated `client` exactly as /authorize would, and
/// prepares it for the store (RFC 9126 §2.1). `proof_jkt` is the key of the DPoP proof sent with
/// the push, if any: RFC 9449 §10.1 binds the code to it, as a `dpop_jkt` parameter would, and
/// both must then name the same key.
pub fn push(params: &Params, client: &Client, now: UnixTime, proof_jkt: Option<&str>) -> Result<Pushed, Rejection> {
    if params.get("request_uri")?.is_some() {
        return Err(Rejection::invalid(
            "request_uri",
            "a pushed request cannot itself refer to a request_uri (RFC 9126 §2.1)",
        ));
    }
    if let Some(id) = params.get("client_id")?
        && id != client.id
    {
        return Err(Rejection::new(Reason::ClientIdConflict)
            .with("body_client_id", tokens::safe_identifier(id))
            .with("authenticated_client_id", client.id.clone()));
    }
    let mut serializer = url::form_urlencoded::Serializer::new(String::new());
    serializer.append_pair("client_id", &client.id);
    if let Some(jkt) = proof_jkt {
        if let Some(sent) = params.get("dpop_jkt")? {
            crate::dpop::check_binding(Some(sent), Some(jkt))
                .map_err(|r| r.with("problem", "the dpop_jkt parameter names another key than the DPoP proof's"))?;
        }
        serializer.append_pair("dpop_jkt", jkt);
    }
    for (name, value) in params.pairs() {
        let name = name.as_str();
        let bound_by_proof = name == "dpop_jkt" && proof_jkt.is_some();
        if name != "client_id" && !CLIENT_AUTHENTICATION.contains(&name) && !bound_by_proof {
            serializer.append_pair(name, value);
        }
    }
    let form = serializer.finish();
    let request = Params::from_urlencoded(form.as_bytes(), Encoding::Form)?;
    authorize::validate(&request, Some(client), now).map_err(|f| match f {
        AuthorizeFailure::Page(r) | AuthorizeFailure::Redirect { rejection: r, .. } => r,
    })?;
    let secret = Secret::generate(SecretKind::RequestUri).map_err(|_| Rejection::internal())?;
    Ok(Pushed {
        request_uri: format!("{REQUEST_URI_PREFIX}{}", secret.value),
        record: PushedRequest {
            hash: secret.hash,
            client_id: client.id.clone(),
            params: form,
            expires_at: now + LIFETIME,
        },
    })
}

/// RFC 9126 §5: a client registered to push its requests (`require_pushed_authorization_requests`)
/// may not send their parameters through the browser.
pub fn check_required(client: &Client, pushed: bool) -> Result<(), Rejection> {
    if client.require_par && !pushed {
        return Err(Rejection::new(Reason::ParRequired).with("client_id", client.id.clone()));
    }
    Ok(())
}

/// The hash a `request_uri` is stored under, or why the value is none Candor issued.
pub fn request_uri_hash(request_uri: &str) -> Result<String, Rejection> {
    let value = request_uri.strip_prefix(REQUEST_URI_PREFIX).ok_or_else(|| {
        Rejection::new(Reason::RequestUriUnknown)
            .with("problem", format!("a request_uri from /par starts with {REQUEST_URI_PREFIX}"))
    })?;
    if let Err(defect) = tokens::inspect(value, SecretKind::RequestUri) {
        return Err(Rejection::new(Reason::RequestUriUnknown)
            .with("defect", defect.code())
            .with("explanation", defect.explain(SecretKind::RequestUri)));
    }
    Ok(hash_secret(value))
}

/// The authorization request a `request_uri` stands for, taken for this use: the front channel's
/// `client_id` must be the client that pushed it (RFC 9126 §4), it must not have expired or been
/// used already. Only the pushed parameters count; others sent beside the `request_uri` are
/// ignored (RFC 9126 §4).
pub fn resolve(taking: Taking, request_uri: &str, client_id: &str, now: UnixTime) -> Result<Params, Rejection> {
    let pushed = match taking {
        Taking::Taken(p) => p,
        Taking::AlreadyUsed { used_at } => {
            return Err(Rejection::new(Reason::RequestUriUsed).with("used_at", rfc3339(used_at)));
        }
        Taking::Missing => {
            return Err(
                Rejection::new(Reason::RequestUriUnknown).with("request_uri_fingerprint", fingerprint(request_uri))
            );
        }
    };
    if pushed.client_id != client_id {
        return Err(Rejection::new(Reason::RequestUriClientMismatch)
            .with("client_id", tokens::safe_identifier(client_id))
            .with_detail("pushed_by", pushed.client_id));
    }
    if now >= pushed.expires_at {
        return Err(Rejection::new(Reason::RequestUriExpired)
            .with("expired_at", rfc3339(pushed.expires_at))
            .with("server_time", rfc3339(now))
            .with("lifetime_seconds", LIFETIME));
    }
    Params::from_urlencoded(pushed.params.as_bytes(), Encoding::Form)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{AuthMethod, GrantType, SigningAlg};

    fn client() -> Client {
        Client {
            id: "app".into(),
            name: "App".into(),
            secret_hash: Some("x".into()),
            redirect_uris: vec!["https://app.example.com/cb".into()],
            grant_types: vec![GrantType::AuthorizationCode],
            auth_method: AuthMethod::ClientSecretBasic,
            scopes: vec!["openid".into()],
            require_pkce: false,
            allow_plain_pkce: false,
            id_token_alg: SigningAlg::RS256,
            always_issue_refresh_token: false,
            created_at: 0,
            jwks: None,
            require_par: true,
            access_token_format: crate::model::TokenFormat::Opaque,
            resources: vec![],
            require_dpop: false,
            logout: Default::default(),
            registration_token_hash: None,
            secret_sealed: None,
        }
    }

    fn form(s: &str) -> Params {
        Params::from_urlencoded(s.as_bytes(), Encoding::Form).unwrap()
    }

    #[test]
    fn a_pushed_request_is_validated_stored_without_credentials_and_resolved_once() {
        let pushed = push(
            &form("response_type=code&scope=openid&redirect_uri=https://app.example.com/cb&state=s1&client_secret=shh"),
            &client(),
            100,
            None,
        )
        .unwrap();
        assert!(pushed.request_uri.starts_with(REQUEST_URI_PREFIX));
        assert!(!pushed.record.params.contains("shh"), "client authentication is not stored");
        assert!(pushed.record.params.starts_with("client_id=app&"));
        assert_eq!(pushed.record.expires_at, 190);
        assert_eq!(request_uri_hash(&pushed.request_uri).unwrap(), pushed.record.hash);
        let params = resolve(Taking::Taken(pushed.record.clone()), &pushed.request_uri, "app", 150).unwrap();
        assert_eq!(params.get("state").unwrap(), Some("s1"));
        let late = resolve(Taking::Taken(pushed.record.clone()), &pushed.request_uri, "app", 190).unwrap_err();
        assert_eq!(late.reason, Reason::RequestUriExpired);
        let other = resolve(Taking::Taken(pushed.record), &pushed.request_uri, "other", 150).unwrap_err();
        assert_eq!(other.reason, Reason::RequestUriClientMismatch);
        let used = resolve(Taking::AlreadyUsed { used_at: 120 }, &pushed.request_uri, "app", 150).unwrap_err();
        assert_eq!(used.reason, Reason::RequestUriUsed);
    }

    #[test]
    fn a_dpop_proof_with_the_push_binds_the_code_to_its_key() {
        let (key, other) = ("k".repeat(43), "o".repeat(43));
        let base = "response_type=code&scope=openid&redirect_uri=https://app.example.com/cb";
        let pushed = push(&form(base), &client(), 0, Some(&key)).unwrap();
        assert!(pushed.record.params.contains(&format!("dpop_jkt={key}")), "{}", pushed.record.params);
        let same = push(&form(&format!("{base}&dpop_jkt={key}")), &client(), 0, Some(&key)).unwrap();
        assert_eq!(same.record.params.matches("dpop_jkt=").count(), 1, "{}", same.record.params);
        let differs = push(&form(&format!("{base}&dpop_jkt={other}")), &client(), 0, Some(&key)).unwrap_err();
        assert_eq!(differs.reason, Reason::DpopKeyMismatch);
        let unbound = push(&form(&format!("{base}&dpop_jkt={other}")), &client(), 0, None).unwrap();
        assert!(unbound.record.params.contains(&format!("dpop_jkt={other}")));
    }

    #[test]
    fn a_bad_push_is_refused_directly() {
        let c = client();
        assert_eq!(push(&form("scope=openid"), &c, 0, None).unwrap_err().reason, Reason::ParameterMissing);
        let nested = push(&form("response_type=code&request_uri=urn:x"), &c, 0, None).unwrap_err();
        assert_eq!(nested.reason, Reason::ParameterInvalid);
        let conflict = push(&form("response_type=code&client_id=other"), &c, 0, None).unwrap_err();
        assert_eq!(conflict.reason, Reason::ClientIdConflict);
        let unregistered =
            push(&form("response_type=code&redirect_uri=https://evil.example/cb"), &c, 0, None).unwrap_err();
        assert_eq!(unregistered.reason, Reason::RedirectUriNotRegistered);
        assert_eq!(
            request_uri_hash("https://app.example.com/request.jwt").unwrap_err().reason,
            Reason::RequestUriUnknown
        );
        assert_eq!(check_required(&c, false).unwrap_err().reason, Reason::ParRequired);
        assert!(check_required(&c, true).is_ok());
        assert!(check_required(&Client { require_par: false, ..c }, false).is_ok());
    }
}
