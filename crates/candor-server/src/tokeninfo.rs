//! POST /introspect (RFC 7662) and POST /revoke (RFC 7009). Both authenticate the client as the
//! token endpoint does; the rules are in `candor_core::introspection`.
//!
//! Both RFCs answer 200 where a token is unknown or dead: introspection with `{"active": false}`,
//! revocation with an empty success. Candor keeps those answers and still says why: the reason is
//! recorded under the trace id (`candor explain`, `/explain`), sent in the revocation's body,
//! and in the introspection's only under detailed disclosure (RFC 7662 §2.2: the server "SHOULD
//! NOT include any additional information about an inactive token").

use crate::respond::{Trace, error_uri, no_store};
use crate::state::AppState;
use crate::token::{client_request, record, refuse};
use axum::Extension;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use candor_core::audit::AuditRecord;
use candor_core::introspection::{self, Found, Revoked};
use candor_core::model::Client;
use candor_core::rejection::{Reason, Rejection};
use serde_json::{Value, json};
use std::sync::Arc;

/// A request to either endpoint, once its client is authenticated.
struct Asked {
    client: Client,
    token: String,
    hint: Option<String>,
}

/// Reads and checks the request: body, duplicates, client authentication, `token`, hint.
async fn asked(
    state: &AppState,
    path: &str,
    headers: &HeaderMap,
    body: crate::respond::Body,
    audit: &mut AuditRecord,
) -> Result<Asked, Rejection> {
    let body = crate::respond::read_body(body)?;
    let (params, client, _) = client_request(state, path, headers, &body, audit).await?;
    let token = params.get("token")?.ok_or_else(|| Rejection::missing("token"))?.to_string();
    let hint = params.get("token_type_hint")?.map(str::to_string);
    introspection::check_hint(hint.as_deref())?;
    Ok(Asked { client, token, hint })
}

fn json_no_store(body: Value) -> Response {
    let mut h = HeaderMap::new();
    no_store(&mut h);
    (StatusCode::OK, h, axum::Json(body)).into_response()
}

/// Store failures are answered as errors (503), never as an inactive token or a done revocation:
/// a resource server must be able to tell "this token is dead" from "ask again".
fn is_failure(r: &Rejection) -> bool {
    matches!(r.reason, Reason::StoreUnavailable | Reason::InternalError)
}

pub async fn introspect(
    State(state): State<Arc<AppState>>,
    Extension(trace): Extension<Trace>,
    headers: HeaderMap,
    body: crate::respond::Body,
) -> Response {
    let now = state.now();
    let mut audit = AuditRecord::success(&trace.0, now, "introspect");
    let asked = match asked(&state, "/introspect", &headers, body, &mut audit).await {
        Ok(a) if a.client.is_public() => {
            Err(Rejection::new(Reason::IntrospectionClientNotConfidential).with("client_id", a.client.id.clone()))
        }
        other => other,
    };
    let asked = match asked {
        Ok(a) => a,
        Err(r) => return refuse(&state, &trace, &headers, audit, &r).await,
    };
    let keys = state.keys();
    let verdict =
        match introspection::find(state.store.as_ref(), state.issuer(&keys), &asked.token, asked.hint.as_deref()).await
        {
            Err(r) if is_failure(&r) => return refuse(&state, &trace, &headers, audit, &r).await,
            Err(r) => Err(r),
            Ok(found) => match judge(&state, &asked.client, &found, now).await {
                Err(r) if is_failure(&r) => return refuse(&state, &trace, &headers, audit, &r).await,
                Err(r) => Err(r.with_internal("grant_id", found.grant_id().to_string())),
                Ok(username) => Ok((found, username)),
            },
        };
    match verdict {
        Ok((found, username)) => {
            tracing::info!(trace = %trace.0, client = %asked.client.id, token = found.kind(), "token introspected: active");
            let mut body = introspection::active_response(&found, &state.settings.issuer, username.as_deref());
            body.insert("trace_id".into(), json!(trace.0));
            json_no_store(Value::Object(body))
        }
        Err(r) => {
            tracing::info!(trace = %trace.0, client = %asked.client.id, reason = r.reason.code(), "token introspected: inactive");
            record(&state, &audit.refused(&r)).await;
            let mut body = json!({ "active": false, "trace_id": trace.0 });
            if state.disclosure.is_detailed() {
                body["reason"] = json!(r.reason.code());
                body["error_description"] = json!(format!("{} [trace {}]", r.describe(true), trace.0));
                body["error_uri"] = json!(error_uri(&state, &r));
            }
            json_no_store(body)
        }
    }
}

/// Whether `found` is active for `caller`: `Ok` with the user's login name (if it has a user), or
/// why not. The user behind a token must still exist and be enabled.
async fn judge(state: &AppState, caller: &Client, found: &Found, now: i64) -> Result<Option<String>, Rejection> {
    introspection::may_introspect(caller, found)?;
    if let Some(r) = introspection::inactive(found, now) {
        return Err(r);
    }
    let user_id = match found {
        Found::Access(a) => a.user_id.clone(),
        Found::Refresh(r) => Some(r.user_id.clone()),
    };
    let Some(user_id) = user_id else { return Ok(None) };
    match state.store.user(&user_id).await.map_err(Rejection::store)? {
        None => Err(Rejection::new(Reason::UserUnknown)),
        Some(u) if u.disabled => Err(Rejection::new(Reason::UserDisabled)),
        Some(u) => Ok(Some(u.username)),
    }
}

pub async fn revoke(
    State(state): State<Arc<AppState>>,
    Extension(trace): Extension<Trace>,
    headers: HeaderMap,
    body: crate::respond::Body,
) -> Response {
    let now = state.now();
    let mut audit = AuditRecord::success(&trace.0, now, "revoke");
    let asked = match asked(&state, "/revoke", &headers, body, &mut audit).await {
        Ok(a) => a,
        Err(r) => return refuse(&state, &trace, &headers, audit, &r).await,
    };
    let keys = state.keys();
    let found = match introspection::find(
        state.store.as_ref(),
        state.issuer(&keys),
        &asked.token,
        asked.hint.as_deref(),
    )
    .await
    {
        Ok(found) => found,
        Err(r) if is_failure(&r) => return refuse(&state, &trace, &headers, audit, &r).await,
        Err(r) => {
            // RFC 7009 §2.2: "invalid tokens do not cause an error response". Nothing was
            // revoked, and the answer says why: a token with a defect may still be live.
            tracing::info!(trace = %trace.0, client = %asked.client.id, reason = r.reason.code(), "revocation: nothing to revoke");
            record(&state, &audit.refused(&r)).await;
            return json_no_store(json!({
                "revoked": false,
                "reason": r.reason.code(),
                "error_description": format!("Nothing was revoked. {} [trace {}]", r.describe(state.disclosure.is_detailed()), trace.0),
                "error_uri": error_uri(&state, &r),
                "trace_id": trace.0,
            }));
        }
    };
    let grant_id = found.grant_id().to_string();
    match introspection::revoke(state.store.as_ref(), &asked.client, &found, now).await {
        Err(r) => {
            let r = r.with_internal("grant_id", grant_id);
            refuse(&state, &trace, &headers, audit, &r).await
        }
        Ok(done) => {
            let body = match &done {
                Revoked::AccessToken { newly } => json!({
                    "revoked": true,
                    "token_type": "access_token",
                    "newly_revoked": newly,
                    "trace_id": trace.0,
                }),
                Revoked::Family { tokens, .. } => json!({
                    "revoked": true,
                    "token_type": "refresh_token",
                    "family_tokens_revoked": tokens,
                    "trace_id": trace.0,
                }),
            };
            tracing::info!(trace = %trace.0, client = %asked.client.id, token = found.kind(), result = %body, "token revoked");
            let rec = AuditRecord { grant_id: Some(grant_id), ..audit };
            record(&state, &rec).await;
            json_no_store(body)
        }
    }
}
