//! Turning a `Rejection` into a response: status, `error`, `error_description`, `error_uri`, the
//! trace id — all derived from the rejection, never re-mapped by hand.

use crate::html::{esc, page};
use crate::state::AppState;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use candor_core::authorize::redirect_to;
use candor_core::rejection::Rejection;
use serde_json::{Value, json};

/// The header every response carries.
pub const TRACE_HEADER: &str = "candor-trace-id";

/// The trace id of the current request (set by the trace middleware).
#[derive(Debug, Clone)]
pub struct Trace(pub String);

/// A request body as the handlers take it: the bytes, or why they could not be read.
pub type Body = Result<axum::body::Bytes, axum::extract::rejection::BytesRejection>;

/// The bytes of a request body, or a precise refusal: `body_too_large` (HTTP 413) past
/// `BODY_LIMIT`, whether the declared length said so or the bytes read so far; `body_malformed`
/// if the body could not be read at all (the connection broke, a chunk was malformed).
pub fn read_body(body: Body) -> Result<axum::body::Bytes, Rejection> {
    body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            Rejection::new(candor_core::Reason::BodyTooLarge).with("limit_bytes", crate::BODY_LIMIT)
        } else {
            Rejection::new(candor_core::Reason::BodyMalformed).with("problem", e.body_text())
        }
    })
}

/// Marks a response as a refusal, for the audit and metrics layers.
/// A 503 says when to come back (RFC 9110 §10.2.3).
pub fn refused(mut response: Response, r: &Rejection, audited: bool) -> Response {
    if response.status() == StatusCode::SERVICE_UNAVAILABLE {
        response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static(RETRY_AFTER_SECONDS));
    }
    // A 429 carries the wait it was computed with (`rate_limited`'s `retry_after`).
    if response.status() == StatusCode::TOO_MANY_REQUESTS
        && let Some(wait) = r.facts.get("retry_after")
        && let Ok(v) = HeaderValue::from_str(&wait.to_string())
    {
        response.headers_mut().insert(header::RETRY_AFTER, v);
    }
    response.extensions_mut().insert(crate::metrics::Refused { rejection: r.clone(), audited });
    response
}

/// How long a client is asked to wait after `store_unavailable`: a lost connection is
/// re-established, or a failing disk found, in about that time.
pub const RETRY_AFTER_SECONDS: &str = "5";

fn status(r: &Rejection) -> StatusCode {
    StatusCode::from_u16(r.reason.status()).unwrap_or(StatusCode::BAD_REQUEST)
}

pub fn error_uri(state: &AppState, r: &Rejection) -> String {
    format!("{}/errors/{}", state.settings.base(), r.reason.code())
}

fn log(r: &Rejection, trace: &Trace, endpoint: &str) {
    // Facts never contain secrets (only fingerprints), so they may be logged in full.
    if matches!(r.reason, candor_core::Reason::InternalError | candor_core::Reason::StoreUnavailable) {
        tracing::error!(trace = %trace.0, endpoint, reason = r.reason.code(), facts = %json!(r.facts.to_json(true)), internal = ?r.facts, "internal failure");
    } else {
        tracing::info!(trace = %trace.0, endpoint, reason = r.reason.code(), error = r.reason.error(), "request rejected");
    }
}

/// The JSON error body of RFC 6749 §5.2, plus Candor's `reason`, `trace_id` and (when detailed) `facts`.
pub fn error_json(state: &AppState, r: &Rejection, trace: &Trace) -> Value {
    let detailed = state.disclosure.is_detailed();
    let mut body = json!({
        "error": r.reason.error(),
        "error_description": format!("{} [trace {}]", r.describe(detailed), trace.0),
        "error_uri": error_uri(state, r),
        "reason": r.reason.code(),
        "trace_id": trace.0,
    });
    if detailed && let Value::Object(m) = &mut body {
        m.insert("facts".into(), Value::Object(r.facts.to_json(true)));
    }
    body
}

/// An error of an endpoint that authenticates clients as the token endpoint does (/token,
/// /introspect, /revoke, /par): RFC 6749 §5.2 JSON, `no-store`, and 401 with
/// `WWW-Authenticate` for a failed client authentication.
pub fn client_error(state: &AppState, r: &Rejection, trace: &Trace, used_basic: bool, endpoint: &str) -> Response {
    log(r, trace, endpoint);
    let mut headers = HeaderMap::new();
    no_store(&mut headers);
    if r.reason == candor_core::Reason::DpopNonceRequired {
        crate::dpop::add_nonce(state, &mut headers);
    }
    if r.reason.is_client_authentication() {
        let scheme = if used_basic { r#"Basic realm="candor", charset="UTF-8""# } else { r#"Basic realm="candor""# };
        headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(scheme));
    }
    refused((status(r), headers, axum::Json(error_json(state, r, trace))).into_response(), r, true)
}

/// RFC 6750 §3: a bearer-token error with `WWW-Authenticate`.
pub fn bearer_error(state: &AppState, r: &Rejection, trace: &Trace) -> Response {
    log(r, trace, "userinfo");
    // A grant that no longer holds (user disabled or removed) makes the token invalid:
    // RFC 6750 §3.1 `invalid_token`, 401 — whatever the reason's token-endpoint error would be.
    let (code, error) = match r.reason.error() {
        "invalid_grant" => (StatusCode::UNAUTHORIZED, "invalid_token"),
        // RFC 9449 §7.1, §9: a resource answers proof and nonce errors with 401.
        e @ ("invalid_dpop_proof" | "use_dpop_nonce") => (StatusCode::UNAUTHORIZED, e),
        e => (status(r), e),
    };
    let mut headers = HeaderMap::new();
    no_store(&mut headers);
    // RFC 9449 §7.1: a DPoP refusal challenges with the DPoP scheme and the algorithms it takes.
    let scheme = if crate::dpop::is_dpop_reason(r.reason) {
        if r.reason == candor_core::Reason::DpopNonceRequired {
            crate::dpop::add_nonce(state, &mut headers);
        }
        format!(r#"DPoP algs="{}""#, candor_core::jws::ALGORITHMS.join(" "))
    } else {
        r#"Bearer realm="candor""#.to_string()
    };
    // §3.1: a request without authentication information gets no error code.
    let challenge = if r.reason == candor_core::Reason::AccessTokenMissing {
        scheme
    } else {
        let desc = r.describe(false).replace(['"', '\\'], "'");
        format!(r#"{scheme}, error="{error}", error_description="{desc}""#)
    };
    if let Ok(v) = HeaderValue::from_str(&challenge) {
        headers.insert(header::WWW_AUTHENTICATE, v);
    }
    let mut body = error_json(state, r, trace);
    body["error"] = Value::String(error.to_string());
    refused((code, headers, axum::Json(body)).into_response(), r, false)
}

/// RFC 6749 §4.1.2.1: an error sent back to the client's redirect URI, with `state` and `iss` (RFC 9207).
pub fn redirect_error(
    state: &AppState,
    r: &Rejection,
    trace: &Trace,
    redirect_uri: &str,
    client_state: Option<&str>,
) -> Response {
    log(r, trace, "authorize");
    let desc = format!("{} [trace {}]", r.describe(state.disclosure.is_detailed()), trace.0);
    let uri = error_uri(state, r);
    let mut params: Vec<(&str, &str)> =
        vec![("error", r.reason.error()), ("error_description", &desc), ("error_uri", &uri)];
    if let Some(s) = client_state {
        params.push(("state", s));
    }
    params.push(("iss", &state.settings.issuer));
    refused(redirect(&redirect_to(redirect_uri, &params)), r, false)
}

/// An error shown to the person in the browser, never sent to the client's redirect URI.
pub fn error_page(state: &AppState, r: &Rejection, trace: &Trace) -> Response {
    titled_error_page(
        state,
        r,
        trace,
        "authorize",
        "This sign-in request cannot continue",
        "The application that sent you here made a request this provider refuses. Nothing was shared with it.",
    )
}

/// An error page with its own heading and first words (what happened to the person).
pub fn titled_error_page(
    state: &AppState,
    r: &Rejection,
    trace: &Trace,
    endpoint: &str,
    heading: &str,
    outcome: &str,
) -> Response {
    log(r, trace, endpoint);
    let facts = r.facts.to_json(state.disclosure.is_detailed());
    let mut rows = String::new();
    for (k, v) in &facts {
        let v = match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        rows.push_str(&format!("<dt>{}</dt><dd>{}</dd>", esc(k), esc(&v)));
    }
    let body = format!(
        r#"<h1>{heading}</h1>
<p class="error" role="alert">{desc}</p>
<p class="muted">{outcome}
If you are its developer: <a href="{uri}">what <code>{code}</code> means and how to fix it</a>.</p>
{facts}
<p class="muted">Trace id: <code>{trace}</code></p>"#,
        heading = esc(heading),
        outcome = esc(outcome),
        desc = esc(r.reason.description()),
        uri = esc(&error_uri(state, r)),
        code = esc(r.reason.code()),
        facts = if rows.is_empty() { String::new() } else { format!(r#"<dl class="facts">{rows}</dl>"#) },
        trace = esc(&trace.0),
    );
    refused(html(status(r), page("Request refused", &body)), r, false)
}

pub fn no_store(headers: &mut HeaderMap) {
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
}

/// An HTML response with the page security headers.
pub fn html(status: StatusCode, body: String) -> Response {
    let mut headers = HeaderMap::new();
    no_store(&mut headers);
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'self'; img-src 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    (status, headers, body).into_response()
}

/// A 303 See Other: after a form POST the browser follows with GET (RFC 9110 §15.4.4).
pub fn see_other(location: &str) -> Response {
    location_response(StatusCode::SEE_OTHER, location)
}

/// A 302 Found to the client's redirect URI (RFC 6749 §4.1.2 uses 302 in its examples).
pub fn redirect(location: &str) -> Response {
    location_response(StatusCode::FOUND, location)
}

fn location_response(status: StatusCode, location: &str) -> Response {
    let mut headers = HeaderMap::new();
    no_store(&mut headers);
    match HeaderValue::from_str(location) {
        Ok(v) => {
            headers.insert(header::LOCATION, v);
            (status, headers).into_response()
        }
        Err(_) => (StatusCode::INTERNAL_SERVER_ERROR, headers, "invalid redirect location").into_response(),
    }
}
