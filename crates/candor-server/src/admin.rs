//! Explanations over HTTP: the admin API (`/admin/traces/{id}`, `/admin/rejections`), the
//! client's own view (`POST /explain`), and the layer that writes refusals to the audit log.

use crate::html::esc;
use crate::metrics::Refused;
use crate::respond::{Trace, html, no_store};
use crate::state::AppState;
use axum::extract::{MatchedPath, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use candor_core::audit::{self, AuditRecord};
use candor_core::client_auth;
use candor_core::clock::rfc3339;
use candor_core::tokens::{hash_secret, hashes_equal};
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;

/// Records every refusal the handler did not record itself, before the response leaves.
pub async fn audit_layer(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let endpoint = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched".to_string(), |p| p.as_str().trim_start_matches('/').to_string());
    let trace = req.extensions().get::<Trace>().cloned();
    let response = next.run(req).await;
    if let (Some(refused), Some(trace)) = (response.extensions().get::<Refused>(), trace)
        && !refused.audited
    {
        let mut rec = AuditRecord::rejected(&trace.0, state.now(), &endpoint, &refused.rejection);
        rec.client_id = refused.rejection.facts.get("client_id").and_then(Value::as_str).map(str::to_string);
        crate::token::record(&state, &rec).await;
    }
    response
}

fn json_response(status: StatusCode, v: Value) -> Response {
    let mut h = HeaderMap::new();
    no_store(&mut h);
    (status, h, axum::Json(v)).into_response()
}

/// Admin requests authenticate with the admin token: `Authorization: Bearer <token>`, or Basic
/// with the token as password (so a browser can open the HTML page).
/// `None` when the request carries the admin token, else the refusal to send.
fn admin_refusal(state: &AppState, headers: &HeaderMap) -> Option<Response> {
    let Some(expected) = &state.admin_token_hash else {
        return Some(json_response(
            StatusCode::NOT_FOUND,
            json!({"error": "not_found", "error_description": "the admin API is off: set admin_token in the configuration"}),
        ));
    };
    let presented = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| {
        let (scheme, rest) = v.split_once(' ')?;
        if scheme.eq_ignore_ascii_case("bearer") {
            Some(rest.trim().to_string())
        } else if scheme.eq_ignore_ascii_case("basic") {
            let decoded = base64::engine::general_purpose::STANDARD.decode(rest.trim()).ok()?;
            let text = String::from_utf8(decoded).ok()?;
            text.split_once(':').map(|(_, p)| p.to_string())
        } else {
            None
        }
    });
    match presented {
        Some(p) if hashes_equal(&hash_secret(&p), expected) => None,
        _ => {
            let mut r = json_response(
                StatusCode::UNAUTHORIZED,
                json!({"error": "invalid_token", "error_description": "admin requests need the admin token"}),
            );
            r.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(r#"Basic realm="candor admin""#));
            Some(r)
        }
    }
}

/// `GET /admin/traces/{id}`: the full explanation, internal facts included.
pub async fn trace(State(state): State<Arc<AppState>>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    if let Some(r) = admin_refusal(&state, &headers) {
        return r;
    }
    match audit::explain(state.store.as_ref(), &id, true, true).await {
        Ok(Some(e)) => json_response(StatusCode::OK, e.to_json()),
        Ok(None) => json_response(
            StatusCode::NOT_FOUND,
            json!({"error": "not_found", "error_description": format!("no trace {id} is recorded (unknown, or older than the audit retention)")}),
        ),
        Err(e) => {
            tracing::error!(error = %e, "explain failed");
            json_response(StatusCode::SERVICE_UNAVAILABLE, json!({"error": "temporarily_unavailable"}))
        }
    }
}

#[derive(Deserialize)]
pub struct RejectionFilter {
    client: Option<String>,
    reason: Option<String>,
}

/// `GET /admin/rejections`: recent refusals by client and reason, as a page.
pub async fn rejections(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(f): Query<RejectionFilter>,
) -> Response {
    if let Some(r) = admin_refusal(&state, &headers) {
        return r;
    }
    let client = f.client.as_deref().filter(|c| !c.is_empty());
    let reason = f.reason.as_deref().filter(|c| !c.is_empty());
    let (recent, counts) = match (
        state.store.recent_rejections(client, reason, 200).await,
        state.store.rejection_counts(state.now() - 24 * 3600).await,
    ) {
        (Ok(r), Ok(c)) => (r, c),
        (Err(e), _) | (_, Err(e)) => {
            tracing::error!(error = %e, "listing rejections failed");
            return json_response(StatusCode::SERVICE_UNAVAILABLE, json!({"error": "temporarily_unavailable"}));
        }
    };
    let link = |c: &Option<String>, r: &str| {
        format!("/admin/rejections?client={}&reason={}", esc(c.as_deref().unwrap_or("")), esc(r))
    };
    let count_rows: String = counts
        .iter()
        .map(|(c, r, n)| {
            format!(
                r#"<tr><td>{}</td><td><a href="{}"><code>{}</code></a></td><td class="num">{n}</td></tr>"#,
                esc(c.as_deref().unwrap_or("(none)")),
                link(c, r),
                esc(r)
            )
        })
        .collect();
    let recent_rows: String = recent
        .iter()
        .map(|a| {
            let summary = a.reason().map(|r| r.description()).unwrap_or("");
            format!(
                r#"<tr><td>{}</td><td>{}</td><td><code>{}</code><br><span class="muted">{}</span></td><td><a href="/admin/traces/{t}"><code>{t}</code></a></td></tr>"#,
                esc(&rfc3339(a.at)),
                esc(a.client_id.as_deref().unwrap_or("(none)")),
                esc(a.reason.as_deref().unwrap_or("")),
                esc(summary),
                t = esc(&a.trace_id)
            )
        })
        .collect();
    let filter = match (client, reason) {
        (None, None) => String::new(),
        _ => format!(
            r#"<p class="muted">Filtered: client {} · reason {} — <a href="/admin/rejections">show all</a></p>"#,
            esc(client.unwrap_or("any")),
            esc(reason.unwrap_or("any"))
        ),
    };
    let body = format!(
        r#"<h1>Refused requests</h1>
{filter}
<h2>Last 24 hours, by client and reason</h2>
<table><thead><tr><th>Client</th><th>Reason</th><th class="num">Count</th></tr></thead><tbody>{count_rows}</tbody></table>
<h2>Most recent</h2>
<table><thead><tr><th>Time (UTC)</th><th>Client</th><th>Reason</th><th>Trace</th></tr></thead><tbody>{recent_rows}</tbody></table>"#,
        count_rows = if counts.is_empty() {
            r#"<tr><td colspan="3" class="muted">No refusals.</td></tr>"#.to_string()
        } else {
            count_rows
        },
        recent_rows = if recent.is_empty() {
            r#"<tr><td colspan="4" class="muted">No refusals.</td></tr>"#.to_string()
        } else {
            recent_rows
        },
    );
    html(StatusCode::OK, crate::html::wide_page("Refused requests", &body))
}

/// `POST /explain`: a client reads the explanation of one of its own requests. It authenticates
/// exactly as at the token endpoint and sends `trace_id`. Other clients' traces are not found.
pub async fn client_explain(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: crate::respond::Body,
) -> Response {
    let not_found = || {
        json_response(
            StatusCode::NOT_FOUND,
            json!({"error": "not_found", "error_description": "no trace with this id belongs to the authenticated client"}),
        )
    };
    let params = match crate::respond::read_body(body).and_then(|body| crate::token::parse_body(&headers, &body)) {
        Ok(p) => p,
        Err(r) => {
            return json_response(
                StatusCode::from_u16(r.reason.status()).unwrap_or(StatusCode::BAD_REQUEST),
                json!({"error": r.reason.error(), "reason": r.reason.code(), "error_description": r.describe(false)}),
            );
        }
    };
    let authenticated = match crate::token::presented(&headers, &params) {
        Ok(creds) => {
            let context = crate::token::assertion_context(&state, "/explain");
            client_auth::authenticate(state.store.as_ref(), &creds, &context).await
        }
        Err(r) => Err(r),
    };
    let client = match authenticated {
        Ok((c, _)) => c,
        Err(r) => {
            let mut resp = json_response(
                StatusCode::UNAUTHORIZED,
                json!({"error": "invalid_client", "reason": r.reason.code(), "error_description": r.describe(false)}),
            );
            resp.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(r#"Basic realm="candor""#));
            return resp;
        }
    };
    let Ok(Some(trace_id)) = params.get("trace_id") else {
        return json_response(
            StatusCode::BAD_REQUEST,
            json!({"error": "invalid_request", "reason": "parameter_missing", "error_description": "trace_id is required"}),
        );
    };
    match state.store.audit(trace_id).await {
        Ok(Some(rec)) if rec.client_id.as_deref() == Some(client.id.as_str()) => {}
        Ok(_) => return not_found(),
        Err(_) => return json_response(StatusCode::SERVICE_UNAVAILABLE, json!({"error": "temporarily_unavailable"})),
    }
    match audit::explain(state.store.as_ref(), trace_id, true, false).await {
        Ok(Some(e)) => json_response(StatusCode::OK, e.to_json()),
        Ok(None) => not_found(),
        Err(_) => json_response(StatusCode::SERVICE_UNAVAILABLE, json!({"error": "temporarily_unavailable"})),
    }
}
