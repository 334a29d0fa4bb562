//! OIDC Discovery (`/.well-known/openid-configuration`), the JWK Set, and the reason pages.

use crate::html::{esc, page};
use crate::respond::html;
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use candor_core::model::{AuthMethod, GrantType};
use candor_core::rejection::Reason;
use candor_core::scope;
use serde_json::{Value, json};
use std::sync::Arc;

pub fn document(state: &AppState) -> Value {
    let base = state.settings.base();
    let algs: Vec<&str> = state.keys().algorithms().iter().map(|a| a.as_str()).collect();
    // client_secret_jwt only with a key to seal its secrets; HMAC assertions only for it.
    let methods: Vec<&str> = AuthMethod::ALL
        .iter()
        .filter(|m| **m != AuthMethod::ClientSecretJwt || state.sealing.is_some())
        .map(|m| m.as_str())
        .collect();
    let confidential: Vec<&str> = methods.iter().copied().filter(|m| *m != "none").collect();
    let mut assertion_algs = candor_core::jws::ALGORITHMS.to_vec();
    if state.sealing.is_some() {
        assertion_algs.extend(candor_core::jws::HMAC_ALGORITHMS);
    }
    let mut doc = json!({
        "issuer": state.settings.issuer,
        "authorization_endpoint": format!("{base}/authorize"),
        "token_endpoint": format!("{base}/token"),
        "userinfo_endpoint": format!("{base}/userinfo"),
        "introspection_endpoint": format!("{base}/introspect"),
        "revocation_endpoint": format!("{base}/revoke"),
        "pushed_authorization_request_endpoint": format!("{base}/par"),
        // RFC 8628 §4.
        "device_authorization_endpoint": format!("{base}/device_authorization"),
        // Per client (`candor client add --require-par`), not for every client.
        "require_pushed_authorization_requests": false,
        "jwks_uri": format!("{base}/jwks.json"),
        "scopes_supported": scope::STANDARD,
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": GrantType::ALL.iter().map(|g| g.as_str()).collect::<Vec<_>>(),
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": algs,
        "token_endpoint_auth_methods_supported": methods,
        // private_key_jwt assertions (OIDC Discovery §3: required when private_key_jwt is listed).
        "token_endpoint_auth_signing_alg_values_supported": assertion_algs,
        // RFC 7662 §2.1: introspection needs an authenticated client; RFC 7009 lets a public
        // client revoke its own tokens with its client_id.
        "introspection_endpoint_auth_methods_supported":
            confidential,
        "introspection_endpoint_auth_signing_alg_values_supported": assertion_algs,
        "revocation_endpoint_auth_methods_supported": methods,
        "revocation_endpoint_auth_signing_alg_values_supported": assertion_algs,
        "code_challenge_methods_supported": ["S256"],
        // RFC 9449 §5.1.
        "dpop_signing_alg_values_supported": candor_core::jws::ALGORITHMS,
        "claims_supported": ["sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "at_hash", "azp", "sid",
                             "name", "preferred_username", "email", "email_verified"],
        "prompt_values_supported": ["none", "login", "consent", "select_account"],
        "authorization_response_iss_parameter_supported": true,
        "claims_parameter_supported": false,
        "request_parameter_supported": false,
        "request_uri_parameter_supported": false,
        "require_request_uri_registration": false,
        // OIDC RP-Initiated Logout 1.0 §2.1 and Back-Channel Logout 1.0 §2.1.
        "end_session_endpoint": format!("{base}{}", candor_core::logout::END_SESSION_PATH),
        "frontchannel_logout_supported": false,
        "backchannel_logout_supported": true,
        "backchannel_logout_session_supported": true,
        "service_documentation": format!("{base}/errors/"),
    });
    // RFC 8414 §2 / OIDC Discovery §3: only when registration is on.
    if state.settings.registration.enabled
        && let Value::Object(m) = &mut doc
    {
        let endpoint = format!("{base}{}", candor_core::registration::REGISTRATION_PATH);
        m.insert("registration_endpoint".into(), Value::String(endpoint));
    }
    doc
}

fn json_cached(value: Value) -> Response {
    let mut h = HeaderMap::new();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=60"));
    h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    (StatusCode::OK, h, axum::Json(value)).into_response()
}

pub async fn openid_configuration(State(state): State<Arc<AppState>>) -> Response {
    json_cached(document(&state))
}

/// The keys that verify Candor's tokens, retired ones included while their tokens live.
pub async fn jwks(State(state): State<Arc<AppState>>) -> Response {
    json_cached(state.keys().jwks(state.now(), state.settings.id_token_lifetime))
}

/// `/errors/<reason>`: the reason's documentation page (docs/reasons/<reason>.md).
pub async fn reason_page(Path(code): Path<String>) -> Response {
    let Some(reason) = Reason::from_code(&code) else {
        return html(
            StatusCode::NOT_FOUND,
            page(
                "Unknown reason",
                &format!(
                    "<h1>Unknown reason</h1><p><code>{}</code> is not a Candor reason code. <a href=\"/errors/\">All reasons</a>.</p>",
                    esc(&code)
                ),
            ),
        );
    };
    let markdown = candor_core::docs::page(reason);
    let mut body = String::new();
    pulldown_cmark::html::push_html(&mut body, pulldown_cmark::Parser::new(markdown));
    body.push_str(r#"<p class="muted"><a href="/errors/">All reasons</a></p>"#);
    html(StatusCode::OK, crate::html::wide_page(reason.code(), &body))
}

pub async fn reason_index() -> Response {
    let items: String = Reason::ALL
        .iter()
        .map(|r| {
            format!(
                r#"<li><a href="/errors/{c}"><code>{c}</code></a> — {d}</li>"#,
                c = esc(r.code()),
                d = esc(r.description())
            )
        })
        .collect();
    html(StatusCode::OK, page("Reasons", &format!("<h1>Why a request was refused</h1><ul>{items}</ul>")))
}
