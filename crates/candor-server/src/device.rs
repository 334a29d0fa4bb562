//! The device authorization grant (RFC 8628): POST /device_authorization, where a device gets its
//! codes, and the verification page (GET|POST /device), where the user enters the user code,
//! signs in and approves or denies. The device polls /token (`token.rs`).

use crate::authorize::{self, Loaded, Pending};
use crate::cookies;
use crate::html::{esc, page};
use crate::respond::{Trace, error_page, html, no_store, refused, see_other};
use crate::state::AppState;
use crate::token::{client_request, refuse};
use axum::Extension;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use candor_core::audit::AuditRecord;
use candor_core::device::{self, Decision, DeviceRequest, UserCode};
use candor_core::params::{Encoding, Params};
use candor_core::rejection::{Disclosure, Fact, Facts, Reason, Rejection};
use candor_core::store::StoreError;
use candor_core::tokens::{hash_secret, hashes_equal};
use serde_json::json;
use std::sync::Arc;

/// How many user codes are drawn before giving up when each drawn one is taken: with 20^8 codes a
/// second draw is already rare.
const USER_CODE_DRAWS: usize = 3;

/// POST /device_authorization (RFC 8628 §3.1-3.2): the client authenticates as at the token
/// endpoint (a public client sends its `client_id`) and receives a device code, a user code and
/// where the user enters it.
pub async fn authorization(
    State(state): State<Arc<AppState>>,
    Extension(trace): Extension<Trace>,
    headers: HeaderMap,
    body: crate::respond::Body,
) -> Response {
    let now = state.now();
    let mut audit = AuditRecord::success(&trace.0, now, "device_authorization");
    let issued = async {
        let body = crate::respond::read_body(body)?;
        let (params, client, _) = client_request(&state, "/device_authorization", &headers, &body, &mut audit).await?;
        crate::token::rate_limit(&state, &client.id)?;
        let mut auth = device::authorize(&params, &client, &state.settings, now, &trace.0)?;
        // Stored before the answer: the codes the device receives exist.
        for draw in 1..=USER_CODE_DRAWS {
            match state.store.insert_device_code(&auth.record).await {
                Ok(()) => return Ok(auth),
                Err(StoreError::Conflict(_)) if draw < USER_CODE_DRAWS => auth.redraw_user_code()?,
                Err(e) => return Err(Rejection::store(e)),
            }
        }
        Err(Rejection::internal())
    }
    .await;
    let auth = match issued {
        Ok(auth) => auth,
        Err(r) => return refuse(&state, &trace, &headers, audit, &r).await,
    };
    audit.grant_id = Some(auth.record.grant_id.clone());
    crate::token::record(&state, &audit).await;
    tracing::info!(trace = %trace.0, client = %auth.record.client_id, "device authorization issued");
    let verification_uri = format!("{}{}", state.settings.base(), device::VERIFICATION_PATH);
    let user_code = auth.user_code.display();
    let body = json!({
        "device_code": auth.device_code.value,
        "user_code": user_code,
        "verification_uri": verification_uri,
        "verification_uri_complete": format!("{verification_uri}?user_code={user_code}"),
        "expires_in": auth.record.expires_at - now,
        "interval": auth.record.poll_interval,
    });
    let mut h = HeaderMap::new();
    no_store(&mut h);
    (StatusCode::OK, h, axum::Json(body)).into_response()
}

/// The CSRF token of the verification page's form: the interactions' token (bound to the
/// browser cookie), for the page's path instead of an interaction id.
fn csrf_token(browser: &str) -> String {
    authorize::csrf_token(browser, device::VERIFICATION_PATH)
}

/// GET /device: the form where the user enters the code, filled in when the device's
/// `verification_uri_complete` brought them here.
pub async fn page_get(
    State(state): State<Arc<AppState>>,
    Extension(trace): Extension<Trace>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    let params = Params::from_urlencoded(q.unwrap_or_default().as_bytes(), Encoding::Query).ok();
    if let Some(done) = params.as_ref().and_then(|p| p.get("result").ok().flatten()).and_then(result_page) {
        return done;
    }
    let (browser, new_browser) = match authorize::browser_cookie(&headers) {
        Ok(b) => b,
        Err(r) => return error_page(&state, &r, &trace),
    };
    let typed = params.as_ref().and_then(|p| p.get("user_code").ok().flatten()).unwrap_or_default();
    // Shown as the device shows it when it reads as a code; otherwise as it came.
    let shown = UserCode::parse(typed).map_or_else(|_| typed.to_string(), |c| c.display());
    let mut response = code_form(&csrf_token(&browser), &shown, None, StatusCode::OK);
    if new_browser {
        cookies::set(response.headers_mut(), cookies::BROWSER, &browser, 24 * 3600, state.secure_cookies);
    }
    response
}

fn code_form(csrf: &str, code: &str, error: Option<(&Rejection, &Trace)>, status: StatusCode) -> Response {
    let (error, hint) = match error {
        Some((r, trace)) => {
            let detail = r.facts.get("problem").and_then(|v| v.as_str()).unwrap_or_default();
            let message = match r.reason {
                Reason::UserCodeExpired => "This code has expired. Start again on your device to get a new code.",
                Reason::UserCodeUsed => "This code was already used. Start again on your device to get a new code.",
                Reason::RateLimited => "Too many wrong codes from this network. Wait a moment and try again.",
                _ => "That code is not right.",
            };
            let detail = if detail.is_empty() { String::new() } else { format!(" ({})", esc(detail)) };
            let e = format!(
                r#"<p class="error" role="alert">{}{detail}</p><p class="muted">Reason <code>{}</code> · trace <code>{}</code></p>"#,
                esc(message),
                esc(r.reason.code()),
                esc(&trace.0)
            );
            (e, "")
        }
        None if !code.is_empty() => {
            (String::new(), r#"<p class="muted">Check that this code is the one your device shows.</p>"#)
        }
        None => (String::new(), ""),
    };
    let body = format!(
        r#"<h1>Connect a device</h1>
<p class="muted">Enter the code your device shows.</p>
{error}
<form method="post" action="{path}">
<input type="hidden" name="csrf" value="{csrf}">
<label for="user_code">Code</label>
<input type="text" id="user_code" name="user_code" value="{code}" autocomplete="off" autocapitalize="characters" spellcheck="false" required autofocus>
{hint}
<div class="actions"><button type="submit">Continue</button></div>
</form>"#,
        path = device::VERIFICATION_PATH,
        csrf = esc(csrf),
        code = esc(code),
    );
    html(status, page("Connect a device", &body))
}

/// POST /device: the code the user entered. Wrong codes from one address are throttled like
/// failed sign-ins; a right one starts the sign-in and confirmation (an interaction).
pub async fn page_post(
    State(state): State<Arc<AppState>>,
    Extension(trace): Extension<Trace>,
    peer: Option<Extension<authorize::ConnectInfo>>,
    headers: HeaderMap,
    body: crate::respond::Body,
) -> Response {
    let browser = cookies::get(&headers, cookies::BROWSER).unwrap_or_default();
    let form = match authorize::read_form(&headers, body) {
        Ok(f) => f,
        Err(r) => return error_page(&state, &r, &trace),
    };
    let csrf = csrf_token(&browser);
    let sent_csrf = form.get("csrf").ok().flatten().unwrap_or_default();
    if browser.is_empty() || !hashes_equal(&hash_secret(sent_csrf), &hash_secret(&csrf)) {
        let r = Rejection::invalid(
            "csrf",
            "the form's CSRF token is missing or wrong (or cookies are blocked); reload the page",
        );
        return error_page(&state, &r, &trace);
    }
    let typed = form.get("user_code").ok().flatten().unwrap_or_default().to_string();
    let refuse_code = |r: Rejection, status: StatusCode| {
        tracing::info!(trace = %trace.0, reason = r.reason.code(), "user code refused");
        refused(code_form(&csrf, &typed, Some((&r, &trace)), status), &r, false)
    };
    let s = &state.settings;
    let address = authorize::client_address(&state, peer, &headers);
    let keys = [crate::throttle::Key::user_code_address(address, s.login_address_free_failures)];
    let now = state.now();
    // An admitted attempt counts as a failure unless the code is right (throttle.rs).
    let attempt = match state.throttle.begin(&keys, s.login_max_delay, now).await {
        Ok(attempt) => attempt,
        Err(wait) => {
            let r = Rejection::new(Reason::RateLimited).with("retry_after", wait);
            return refuse_code(r, StatusCode::TOO_MANY_REQUESTS);
        }
    };
    let code = match UserCode::parse(&typed) {
        Ok(c) => c,
        Err(r) => return refuse_code(r, StatusCode::BAD_REQUEST),
    };
    let found = match state.store.device_code_by_user_code(&code.hash()).await {
        Ok(found) => found,
        Err(e) => return error_page(&state, &Rejection::store(e), &trace),
    };
    let known = found.is_some();
    let record = match device::check_user_code(found, now) {
        Ok(record) => record,
        Err(r) => {
            // A code that exists, but expired or used, is no guess: it does not count.
            if known {
                attempt.succeeded();
            }
            return refuse_code(r, StatusCode::BAD_REQUEST);
        }
    };
    attempt.succeeded();
    let login = match authorize::current_login(&state, &headers).await {
        Ok(l) => l,
        Err(r) => return error_page(&state, &r, &trace),
    };
    let pending = Pending::Device(DeviceRequest::new(&record, &code));
    match authorize::new_interaction(&state, &headers, &pending, login).await {
        Ok(response) => response,
        Err(r) => error_page(&state, &r, &trace),
    }
}

/// The confirmation page (RFC 8628 §5.4: the user confirms the device, the client and the code,
/// even if they consented to the client before, since a code can be phished).
pub(crate) async fn confirm_page(state: &AppState, l: &Loaded, req: &DeviceRequest, user_id: &str) -> Response {
    let name = authorize::client_label(state, &req.client_id).await;
    let username = authorize::username(state, user_id).await;
    let (items, apis) = authorize::grant_items(state, &req.scope, &req.resources).await;
    let items = if items.is_empty() { "<li>Sign you in on the device</li>".to_string() } else { items };
    let body = format!(
        r#"<h1>Connect this device?</h1>
<p>A device showing the code <strong><code>{code}</code></strong> asks, for {name}, to:</p>
<ul class="scopes">{items}</ul>
{apis}
<p class="muted">Signed in as <strong>{username}</strong>. Allow only if you started this on a device you have with you and it shows this code.</p>
{form}"#,
        code = esc(&req.user_code),
        username = esc(&username),
        form = authorize::decision_form(l),
    );
    html(StatusCode::OK, page("Connect a device", &body))
}

/// The user's decision on the confirmation page: recorded once, while the device authorization
/// is pending and unexpired, with an audit record on the grant's timeline.
pub(crate) async fn decide(
    state: &AppState,
    trace: &Trace,
    l: &Loaded,
    req: &DeviceRequest,
    user_id: &str,
    auth_time: i64,
    decision: Option<&str>,
) -> Response {
    let decision = match decision {
        Some("allow") => {
            if let Err(r) = authorize::grant_consent(state, user_id, &req.client_id, &req.scope).await {
                return error_page(state, &r, trace);
            }
            Decision::Approved { user_id: user_id.to_string(), auth_time }
        }
        Some("deny") => Decision::Denied { user_id: user_id.to_string() },
        _ => return error_page(state, &Rejection::invalid("decision", "must be allow or deny"), trace),
    };
    let now = state.now();
    let decided = match state.store.decide_device_code(&req.device_hash, &decision, now, &trace.0).await {
        Ok(d) => d,
        Err(e) => return error_page(state, &Rejection::store(e), trace),
    };
    let _ = state.store.take_interaction(&l.record.hash).await;
    if !decided {
        // Expired or decided elsewhere meanwhile: say which.
        let r = match state.store.device_code(&req.device_hash).await {
            Ok(found) => {
                device::check_user_code(found, now).err().unwrap_or_else(|| Rejection::new(Reason::UserCodeUsed))
            }
            Err(e) => Rejection::store(e),
        };
        return error_page(state, &r, trace);
    }
    let result = match decision {
        Decision::Approved { .. } => "approved",
        Decision::Denied { .. } => "denied",
    };
    let mut audit = AuditRecord::success(&trace.0, now, "device");
    audit.client_id = Some(req.client_id.clone());
    audit.grant_id = Some(req.grant_id.clone());
    let decision_fact = Fact { name: "decision", value: json!(result), disclosure: Disclosure::Public };
    audit.facts = serde_json::to_value(Facts(vec![decision_fact])).unwrap_or_default();
    crate::token::record(state, &audit).await;
    tracing::info!(trace = %trace.0, client = %req.client_id, user = %user_id, result, "device authorization decided");
    // After a form POST, 303 (RFC 9700 §4.11): a reload shows the result, not the form again.
    see_other(&format!("{}?result={result}", device::VERIFICATION_PATH))
}

/// The page after the decision (`/device?result=…`); it only says what the user just did.
fn result_page(result: &str) -> Option<Response> {
    let (title, body) = match result {
        "approved" => (
            "Device connected",
            "<h1>Device connected</h1><p>You can return to your device; it continues on its own.</p>",
        ),
        "denied" => {
            ("Access denied", "<h1>Access denied</h1><p>The device was not connected. You can close this page.</p>")
        }
        _ => return None,
    };
    Some(html(StatusCode::OK, page(title, body)))
}
