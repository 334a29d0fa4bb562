//! Dynamic client registration: POST /register (RFC 7591) and a registered client's
//! configuration endpoint, GET|PUT|DELETE /register/{client_id} (RFC 7592). Off unless
//! `[registration] enabled`; with `initial_access_token` only its holders may register.

use crate::respond::{Trace, error_json, no_store, refused};
use crate::state::AppState;
use axum::Extension;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use candor_core::audit::AuditRecord;
use candor_core::model::{AuthMethod, Client};
use candor_core::registration::{self, REGISTRATION_PATH};
use candor_core::rejection::{Reason, Rejection};
use candor_core::tokens::{Secret, SecretKind, hash_secret, hashes_equal, random_id};
use serde_json::{Value, json};
use std::sync::Arc;

type AppStateRef = State<Arc<AppState>>;

/// Open registrations one address may make before each next one waits (1 s, then doubling up
/// to `login_max_delay`); the count is forgotten an hour after the last (throttle.rs).
pub const OPEN_REGISTRATIONS_FREE: u32 = 20;

/// A refusal as RFC 7591 §3.2.2 JSON (with Candor's reason and trace id); a token refusal
/// challenges with `WWW-Authenticate: Bearer` (RFC 6750 §3).
fn fail(state: &AppState, trace: &Trace, r: &Rejection) -> Response {
    tracing::info!(trace = %trace.0, reason = r.reason.code(), error = r.reason.error(), "registration request refused");
    let mut headers = HeaderMap::new();
    no_store(&mut headers);
    if r.reason.error() == "invalid_token" {
        let challenge =
            format!(r#"Bearer realm="candor", error="invalid_token", error_description="{}""#, r.reason.description());
        if let Ok(v) = HeaderValue::from_str(&challenge) {
            headers.insert(header::WWW_AUTHENTICATE, v);
        }
    }
    let status = StatusCode::from_u16(r.reason.status()).unwrap_or(StatusCode::BAD_REQUEST);
    refused((status, headers, axum::Json(error_json(state, r, trace))).into_response(), r, false)
}

/// Records a registration request that succeeded under its trace id, and logs it.
async fn recorded(state: &AppState, trace: &Trace, endpoint: &str, client_id: &str, what: &str) {
    let mut audit = AuditRecord::success(&trace.0, state.now(), endpoint);
    audit.client_id = Some(client_id.to_string());
    crate::token::record(state, &audit).await;
    tracing::info!(trace = %trace.0, client = %client_id, "{what}");
}

fn answer(status: StatusCode, body: Value) -> Response {
    let mut headers = HeaderMap::new();
    no_store(&mut headers);
    (status, headers, axum::Json(body)).into_response()
}

fn enabled(state: &AppState) -> Result<(), Rejection> {
    if state.settings.registration.enabled {
        Ok(())
    } else {
        Err(Rejection::new(Reason::RegistrationDisabled)
            .with("setting", "[registration] enabled = true in candor.toml"))
    }
}

/// The bearer token of the `Authorization` header, if it has one.
fn bearer(headers: &HeaderMap) -> Option<String> {
    let text = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = text.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim().to_string())
}

/// RFC 7591 §3.1: the metadata comes as a JSON object.
fn read_json(headers: &HeaderMap, body: crate::respond::Body) -> Result<Value, Rejection> {
    let body = crate::respond::read_body(body)?;
    let content_type = crate::authorize::content_type(headers);
    if !content_type.split(';').next().is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json")) {
        return Err(Rejection::new(Reason::ContentTypeUnsupported)
            .with("content_type", content_type)
            .with("expected", "application/json (RFC 7591 §3.1)"));
    }
    serde_json::from_slice(&body)
        .map_err(|e| Rejection::new(Reason::BodyMalformed).with("problem", format!("not JSON: {e}")))
}

fn configuration_uri(state: &AppState, client_id: &str) -> String {
    let id: String = url::form_urlencoded::byte_serialize(client_id.as_bytes()).collect();
    format!("{}{REGISTRATION_PATH}/{id}", state.settings.base())
}

/// A client's metadata as RFC 7592 §3 answers it: with its configuration URI and registration
/// access token, and its secret when one was just made.
fn information(state: &AppState, client: &Client, access_token: &str, secret: Option<&str>) -> Value {
    let mut body = registration::metadata(client);
    body["registration_client_uri"] = json!(configuration_uri(state, &client.id));
    body["registration_access_token"] = json!(access_token);
    if let Some(s) = secret {
        body["client_secret"] = json!(s);
        // RFC 7591 §3.2.1: 0 means the secret does not expire.
        body["client_secret_expires_at"] = json!(0);
    }
    body
}

/// A new secret for `client` (and, for client_secret_jwt, its sealed copy), set on it.
fn new_secret(state: &AppState, client: &mut Client) -> Result<Secret, Rejection> {
    let secret = Secret::generate(SecretKind::ClientSecret).map_err(|_| Rejection::internal())?;
    client.secret_hash = Some(secret.hash.clone());
    client.secret_sealed = match (client.auth_method, &state.sealing) {
        (AuthMethod::ClientSecretJwt, Some(key)) => {
            Some(key.seal(&client.id, &secret.value).map_err(|e| Rejection::internal().with_internal("sealing", e))?)
        }
        _ => None,
    };
    Ok(secret)
}

/// client_secret_jwt is offered only by a server with a key to seal its secrets.
fn check_method(state: &AppState, client: &Client) -> Result<(), Rejection> {
    if client.auth_method == AuthMethod::ClientSecretJwt && state.sealing.is_none() {
        return Err(Rejection::new(Reason::ClientMetadataInvalid)
            .with("field", "token_endpoint_auth_method")
            .with("problem", "client_secret_jwt is not offered here (the server has no [client_assertion] secret_key); use private_key_jwt"));
    }
    Ok(())
}

/// POST /register.
pub async fn register(
    State(state): AppStateRef,
    Extension(trace): Extension<Trace>,
    peer: Option<Extension<crate::authorize::ConnectInfo>>,
    headers: HeaderMap,
    body: crate::respond::Body,
) -> Response {
    let now = state.now();
    let registered = async {
        enabled(&state)?;
        let _attempt = match &state.settings.registration.initial_token_hash {
            Some(expected) => {
                let presented = bearer(&headers);
                if !presented.as_deref().is_some_and(|t| hashes_equal(&hash_secret(t), expected)) {
                    let what = if presented.is_some() { "other" } else { "none" };
                    return Err(Rejection::new(Reason::RegistrationTokenInvalid).with("presented", what));
                }
                None
            }
            // Open registration: every attempt from an address counts (the guard counts it when dropped).
            None => {
                let address = crate::authorize::client_address(&state, peer, &headers);
                let keys = [crate::throttle::Key::registration_address(address, OPEN_REGISTRATIONS_FREE)];
                match state.throttle.begin(&keys, state.settings.login_max_delay, now).await {
                    Ok(attempt) => Some(attempt),
                    Err(wait) => {
                        return Err(Rejection::new(Reason::RateLimited).with("retry_after", wait).with(
                            "problem",
                            format!(
                                "more than {OPEN_REGISTRATIONS_FREE} registrations from this address within the hour"
                            ),
                        ));
                    }
                }
            }
        };
        let metadata = read_json(&headers, body)?;
        let id = random_id().map_err(|_| Rejection::internal())?[..20].to_string();
        let mut client = registration::read(&metadata, &id, now, &state.settings.registration)?;
        check_method(&state, &client)?;
        let secret = if client.auth_method.uses_secret() { Some(new_secret(&state, &mut client)?) } else { None };
        let access = Secret::generate(SecretKind::RegistrationAccessToken).map_err(|_| Rejection::internal())?;
        client.registration_token_hash = Some(access.hash.clone());
        // Committed before the answer: the credentials the client receives exist.
        state.store.insert_client(&client).await.map_err(Rejection::store)?;
        Ok::<_, Rejection>((client, secret, access))
    }
    .await;
    match registered {
        Ok((client, secret, access)) => {
            recorded(&state, &trace, "register", &client.id, "client registered").await;
            let body = information(&state, &client, &access.value, secret.as_ref().map(|s| s.value.as_str()));
            answer(StatusCode::CREATED, body)
        }
        Err(r) => fail(&state, &trace, &r),
    }
}

/// RFC 7592 §2: the client the registration access token manages, or the same refusal whether
/// the client is unknown, registered by an administrator, or the token is wrong.
async fn managed(state: &AppState, headers: &HeaderMap, client_id: &str) -> Result<(Client, String), Rejection> {
    enabled(state)?;
    let Some(presented) = bearer(headers) else {
        return Err(Rejection::new(Reason::RegistrationAccessTokenInvalid).with("presented", "none"));
    };
    let client = state.store.client(client_id).await.map_err(Rejection::store)?;
    let presented_hash = hash_secret(&presented);
    match client {
        Some(c) if c.registration_token_hash.as_deref().is_some_and(|h| hashes_equal(&presented_hash, h)) => {
            Ok((c, presented))
        }
        _ => Err(Rejection::new(Reason::RegistrationAccessTokenInvalid).with("presented", "other")),
    }
}

/// GET /register/{client_id} (RFC 7592 §2.1).
pub async fn read(
    State(state): AppStateRef,
    Extension(trace): Extension<Trace>,
    headers: HeaderMap,
    Path(client_id): Path<String>,
) -> Response {
    match managed(&state, &headers, &client_id).await {
        Ok((client, token)) => answer(StatusCode::OK, information(&state, &client, &token, None)),
        Err(r) => fail(&state, &trace, &r),
    }
}

/// PUT /register/{client_id} (RFC 7592 §2.2): the whole metadata replaces the registration;
/// the client id, creation time, secret and registration access token stay, unless the new
/// authentication method needs a secret the client does not have (then one is made and shown).
pub async fn update(
    State(state): AppStateRef,
    Extension(trace): Extension<Trace>,
    headers: HeaderMap,
    Path(client_id): Path<String>,
    body: crate::respond::Body,
) -> Response {
    let updated = async {
        let (current, token) = managed(&state, &headers, &client_id).await?;
        let metadata = read_json(&headers, body)?;
        let matches = |s: &str| current.secret_hash.as_deref().is_some_and(|h| hashes_equal(&hash_secret(s), h));
        registration::check_update(&metadata, &current.id, matches)?;
        let mut client = registration::read(&metadata, &current.id, current.created_at, &state.settings.registration)?;
        check_method(&state, &client)?;
        client.registration_token_hash = current.registration_token_hash.clone();
        let mut made = None;
        if client.auth_method.uses_secret() {
            // The secret stays, unless the new method needs one the client lacks (a sealed copy
            // for client_secret_jwt, which cannot be made from the hash): then a new one is made.
            let sealed_needed = client.auth_method == AuthMethod::ClientSecretJwt && current.secret_sealed.is_none();
            if current.secret_hash.is_none() || sealed_needed {
                made = Some(new_secret(&state, &mut client)?);
            } else {
                client.secret_hash = current.secret_hash.clone();
                client.secret_sealed = if client.auth_method == AuthMethod::ClientSecretJwt {
                    current.secret_sealed.clone()
                } else {
                    None
                };
            }
        }
        if !state.store.update_client(&client).await.map_err(Rejection::store)? {
            // Removed between the read and the write.
            return Err(Rejection::new(Reason::RegistrationAccessTokenInvalid).with("presented", "other"));
        }
        Ok::<_, Rejection>((client, token, made))
    }
    .await;
    match updated {
        Ok((client, token, secret)) => {
            recorded(&state, &trace, "register/{client_id}", &client.id, "client registration updated").await;
            answer(StatusCode::OK, information(&state, &client, &token, secret.as_ref().map(|s| s.value.as_str())))
        }
        Err(r) => fail(&state, &trace, &r),
    }
}

/// DELETE /register/{client_id} (RFC 7592 §2.3): the client is removed and everything issued
/// to it revoked; its credentials stop working at once.
pub async fn delete(
    State(state): AppStateRef,
    Extension(trace): Extension<Trace>,
    headers: HeaderMap,
    Path(client_id): Path<String>,
) -> Response {
    let now = state.now();
    let removed = async {
        let (client, _) = managed(&state, &headers, &client_id).await?;
        state.store.remove_client(&client.id, now).await.map_err(Rejection::store)?;
        Ok::<_, Rejection>(client)
    }
    .await;
    match removed {
        Ok(client) => {
            recorded(&state, &trace, "register/{client_id}", &client.id, "client registration deleted").await;
            let mut headers = HeaderMap::new();
            no_store(&mut headers);
            (StatusCode::NO_CONTENT, headers).into_response()
        }
        Err(r) => fail(&state, &trace, &r),
    }
}
