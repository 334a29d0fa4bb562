//! POST /token (RFC 6749 §3.2, §5).

use crate::authorize::{content_type, is_form};
use crate::respond::{Trace, no_store};
use crate::state::AppState;
use axum::Extension;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use candor_core::audit::AuditRecord;
use candor_core::client_auth::{self, Presented};
use candor_core::grant::{self, GrantContext, GrantRequest};
use candor_core::params::{Encoding, Params};
use candor_core::rejection::{Reason, Rejection};
use candor_core::tokens::safe_identifier;
use std::sync::Arc;

/// Reads the body as a form (RFC 6749 §3.2) or, as several providers accept, JSON.
pub(crate) fn parse_body(headers: &HeaderMap, body: &Bytes) -> Result<Params, Rejection> {
    let ct = content_type(headers);
    let mime = ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    if is_form(headers) {
        Params::from_urlencoded(body, Encoding::Form)
    } else if mime == "application/json" || mime.ends_with("+json") {
        Params::from_json(body)
    } else {
        Err(Rejection::new(Reason::ContentTypeUnsupported)
            .with("content_type", ct)
            .with("expected", "application/x-www-form-urlencoded"))
    }
}

pub(crate) fn presented(headers: &HeaderMap, params: &Params) -> Result<Presented, Rejection> {
    let basic = match headers.get(header::AUTHORIZATION) {
        None => None,
        Some(v) => {
            let text = v
                .to_str()
                .map_err(|_| Rejection::new(Reason::BasicAuthMalformed).with("problem", "the header is not ASCII"))?;
            match text.split_once(' ') {
                Some((scheme, creds)) if scheme.eq_ignore_ascii_case("basic") => Some(creds.to_string()),
                _ => {
                    return Err(Rejection::new(Reason::BasicAuthMalformed).with(
                        "problem",
                        format!(
                            "scheme {:?} is not accepted at the token endpoint; use Basic",
                            text.split(' ').next().unwrap_or("")
                        ),
                    ));
                }
            }
        }
    };
    Ok(Presented {
        basic,
        body_client_id: params.get("client_id")?.map(str::to_string),
        body_client_secret: params.get("client_secret")?.map(str::to_string),
        client_assertion_type: params.get("client_assertion_type")?.map(str::to_string),
        client_assertion: params.get("client_assertion")?.map(str::to_string),
    })
}

/// The first steps of every request a client authenticates as at the token endpoint (`/token`,
/// `/introspect`, `/revoke`): the body read, no parameter twice, the client authenticated. The
/// audit record learns what it can on the way, so a refusal still names the client it claimed to be.
pub(crate) async fn client_request(
    state: &AppState,
    path: &str,
    headers: &HeaderMap,
    body: &Bytes,
    audit: &mut AuditRecord,
) -> Result<(Params, candor_core::model::Client, candor_core::model::AuthMethod), Rejection> {
    let params = parse_body(headers, body)?;
    audit.encoding = Some(format!("{:?}", params.encoding).to_lowercase());
    audit.grant_type = params.get("grant_type").ok().flatten().map(|g| g.chars().take(64).collect());
    audit.client_id = params.get("client_id").ok().flatten().map(safe_identifier);
    if let Some(dup) = params.first_duplicate() {
        return Err(Rejection::duplicated(dup));
    }
    let creds = presented(headers, &params)?;
    match client_auth::authenticate(state.store.as_ref(), &creds, &assertion_context(state, path)).await {
        Ok((client, method)) => {
            audit.client_id = Some(client.id.clone());
            Ok((params, client, method))
        }
        Err(r) => {
            // Only a refusal needs the client the credentials claim (the Basic header's id, or
            // the assertion's sub), for its audit record: a success names the client itself.
            let claimed = match (&creds.basic, &creds.client_assertion) {
                (Some(basic), _) => client_auth::decode_basic(basic).ok().map(|(id, _)| id),
                (None, Some(a)) => {
                    candor_core::jws::parse(a).ok().and_then(|j| j.claims["sub"].as_str().map(str::to_string))
                }
                (None, None) => None,
            };
            if let Some(id) = claimed {
                audit.client_id = Some(safe_identifier(&id));
            }
            Err(r)
        }
    }
}

/// What a client assertion sent to `path` (`/token`, `/introspect`…) is checked against: its
/// audience may be the issuer, the token endpoint or that endpoint.
pub(crate) fn assertion_context<'a>(state: &'a AppState, path: &'a str) -> client_auth::AssertionContext<'a> {
    client_auth::AssertionContext {
        issuer: &state.settings.issuer,
        path,
        now: state.now(),
        leeway: state.settings.client_assertion_leeway,
        sealing: state.sealing.as_ref(),
    }
}

pub async fn token(
    State(state): State<Arc<AppState>>,
    Extension(trace): Extension<Trace>,
    headers: HeaderMap,
    body: crate::respond::Body,
) -> Response {
    let mut audit = AuditRecord::success(&trace.0, state.now(), "token");
    let result = match crate::respond::read_body(body) {
        Ok(body) => exchange(&state, &trace, &headers, &body, &mut audit).await,
        Err(r) => Err(r),
    };
    match result {
        Ok(resp) => {
            // The success's audit record was committed with the tokens (GrantContext::audit).
            let mut h = HeaderMap::new();
            no_store(&mut h);
            if headers.contains_key(crate::dpop::HEADER) {
                crate::dpop::add_nonce(&state, &mut h);
            }
            (StatusCode::OK, h, axum::Json(resp)).into_response()
        }
        Err(r) => refuse(&state, &trace, &headers, audit, &r).await,
    }
}

/// A refusal of an endpoint that authenticates clients (`/token`, `/introspect`, `/revoke`,
/// `/par`): recorded under the trace id with what was learned of the request, then answered as
/// the token endpoint answers errors.
pub(crate) async fn refuse(
    state: &AppState,
    trace: &Trace,
    headers: &HeaderMap,
    audit: AuditRecord,
    r: &Rejection,
) -> Response {
    let rec = audit.refused(r);
    record(state, &rec).await;
    crate::respond::client_error(state, r, trace, headers.contains_key(header::AUTHORIZATION), &rec.endpoint)
}

/// Writes an audit record before the response leaves. A failure is logged, not fatal: the
/// tokens (if any) are already committed and the client must get them.
pub async fn record(state: &AppState, rec: &AuditRecord) {
    // A refusal because the store is gone cannot be recorded there either, and trying would hold
    // the answer for another connection timeout; its error-level log line is the record.
    if rec.reason.as_deref() == Some(candor_core::Reason::StoreUnavailable.code()) {
        return;
    }
    if let Err(e) = state.store.record_audit(rec).await {
        tracing::error!(trace = %rec.trace_id, error = %e, "audit record could not be written");
    }
}

/// The client's token request rate (`[limits] token_rate`), which its device authorization
/// requests share.
pub(crate) fn rate_limit(state: &AppState, client_id: &str) -> Result<(), Rejection> {
    let s = &state.settings;
    match state.rate_limits.take(client_id, s.token_rate, s.token_burst, std::time::Instant::now()) {
        Ok(()) => Ok(()),
        Err(wait) => Err(Rejection::new(candor_core::Reason::RateLimited)
            .with("client_id", client_id.to_string())
            .with("rate", s.token_rate)
            .with("burst", crate::ratelimit::burst_of(s.token_rate, s.token_burst))
            .with("retry_after", wait)),
    }
}

async fn exchange(
    state: &AppState,
    trace: &Trace,
    headers: &HeaderMap,
    body: &Bytes,
    audit: &mut AuditRecord,
) -> Result<grant::TokenResponse, Rejection> {
    let (params, client, method) = client_request(state, "/token", headers, body, audit).await?;
    rate_limit(state, &client.id)?;
    let request = GrantRequest::parse(&params).map_err(|r| r.with("client_id", client.id.clone()))?;
    // RFC 9449 §5: a proof binds the tokens to its key; a client registered for DPoP must send one.
    let proof = crate::dpop::proof(state, headers, "POST", "/token", None).await?;
    candor_core::dpop::check_required(&client, proof.as_ref())?;
    let keys = state.keys();
    let ctx = GrantContext {
        store: state.store.as_ref(),
        keys: &keys,
        settings: &state.settings,
        now: state.now(),
        trace: &trace.0,
        audit: &*audit,
        dpop_jkt: proof.as_ref().map(|p| p.jkt.as_str()),
    };
    let grant = request.grant_type();
    let result = match candor_core::resource::requested_one(&params) {
        Ok(resource) => grant::handle(&ctx, &client, request, resource.as_deref()).await,
        Err(r) => Err(r),
    };
    match &result {
        Ok(_) => {
            tracing::info!(trace = %trace.0, client = %client.id, grant = grant.as_str(), auth = method.as_str(), encoding = ?params.encoding, "tokens issued")
        }
        Err(r) => {
            tracing::info!(trace = %trace.0, client = %client.id, grant = grant.as_str(), reason = r.reason.code(), encoding = ?params.encoding, "token request refused")
        }
    }
    result.map_err(|r| if params.encoding == Encoding::Json { r.with("body_encoding", "json") } else { r })
}
